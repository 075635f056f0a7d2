//! Call context kept by this host: session labels and usage counters, both
//! visible to policy (`input.session.labels`, `input.usage`).
//!
//! Labels let a policy express flow rules: a tool whose output comes from the
//! open web labels its session `untrusted-content`, and a later call in that
//! session can be denied ("no outbound email after reading a web page").
//! This state lives in the host process: replicas do not share it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// Sessions remembered at once; past this, the oldest half is forgotten.
const MAX_SESSIONS: usize = 100_000;

/// Labels per session and call counters per tenant and principal.
#[derive(Debug, Default)]
pub struct CallContext {
    sessions: Mutex<Sessions>,
    usage: Mutex<HashMap<(bool, String), u64>>,
}

#[derive(Debug, Default)]
struct Sessions {
    labels: HashMap<String, (u64, BTreeSet<String>)>,
    clock: u64,
}

/// Calls seen by this host, including the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Calls by the principal's tenant.
    pub tenant_calls: u64,
    /// Calls by the principal.
    pub principal_calls: u64,
}

impl CallContext {
    /// The labels of `session` so far.
    pub fn labels(&self, session: Option<&str>) -> Vec<String> {
        let Some(session) = session else {
            return Vec::new();
        };
        self.sessions
            .lock()
            .ok()
            .and_then(|s| {
                s.labels
                    .get(session)
                    .map(|(_, l)| l.iter().cloned().collect())
            })
            .unwrap_or_default()
    }

    /// Adds `labels` to `session`.
    pub fn add_labels(&self, session: Option<&str>, labels: &[String]) {
        let (Some(session), false) = (session, labels.is_empty()) else {
            return;
        };
        let Ok(mut sessions) = self.sessions.lock() else {
            return;
        };
        sessions.clock += 1;
        let now = sessions.clock;
        if sessions.labels.len() >= MAX_SESSIONS && !sessions.labels.contains_key(session) {
            let horizon = now - (MAX_SESSIONS as u64 / 2).min(now);
            sessions.labels.retain(|_, (used, _)| *used > horizon);
        }
        let entry = sessions
            .labels
            .entry(session.to_string())
            .or_insert_with(|| (now, BTreeSet::new()));
        entry.0 = now;
        entry.1.extend(labels.iter().cloned());
    }

    /// Counts one call by `principal` of `tenant` and returns the totals.
    pub fn count_call(&self, tenant: &str, principal: &str) -> Usage {
        let Ok(mut usage) = self.usage.lock() else {
            return Usage {
                tenant_calls: 0,
                principal_calls: 0,
            };
        };
        let mut bump = |key: (bool, String)| {
            let n = usage.entry(key).or_insert(0);
            *n += 1;
            *n
        };
        Usage {
            tenant_calls: bump((true, tenant.to_string())),
            principal_calls: bump((false, principal.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CallContext;

    #[test]
    fn labels_accumulate_per_session() {
        let context = CallContext::default();
        context.add_labels(Some("s1"), &["untrusted-content".into()]);
        context.add_labels(Some("s1"), &["pii".into()]);
        context.add_labels(None, &["ignored".into()]);
        assert_eq!(context.labels(Some("s1")), vec!["pii", "untrusted-content"]);
        assert!(context.labels(Some("s2")).is_empty());
        assert!(context.labels(None).is_empty());
    }

    #[test]
    fn usage_counts_tenants_and_principals() {
        let context = CallContext::default();
        context.count_call("acme", "alice");
        let usage = context.count_call("acme", "bob");
        assert_eq!((usage.tenant_calls, usage.principal_calls), (2, 1));
    }
}
