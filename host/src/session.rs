//! Call context kept by this host: sessions with their labels, labels that
//! stick to a principal, and usage counters — all visible to policy
//! (`input.session`, `input.principal.labels`, `input.usage`).
//!
//! Labels let a policy express flow rules: a tool whose output comes from the
//! open web labels its context `untrusted-content`, and a later side effect
//! can be denied ("no outbound email after reading a web page"). The caller is
//! not trusted to name its own context, so:
//!
//! - session ids are minted here ([`CallContext::open`]) and bound to the
//!   (tenant, principal) that opened them; an id this host did not mint for
//!   the caller is refused (`unknown-session`), so no caller can pick a clean
//!   id or reach another principal's session;
//! - labels of a call made without a session stick to the principal for
//!   `sessions.label_ttl_s`, and so do the `sessions.sticky_labels` (by default
//!   `untrusted-content` and `prompt-injection`) from any call: leaving the session out, or opening a
//!   fresh one, does not wash the taint off;
//! - a session is never forgotten silently: when a principal holds
//!   `sessions.max_per_principal` sessions, opening another evicts the least
//!   recently used one and its labels move to the principal (for the TTL).
//!
//! This state lives in the host process: replicas do not share it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::config::SessionSettings;
use crate::error::{CallError, ErrorCode};
use crate::principal::Principal;

/// Longest session id accepted; minted ids are 34 bytes.
pub const SESSION_ID_MAX: usize = 64;
/// Longest label kept; longer ones are cut (on a character boundary).
pub const LABEL_MAX: usize = 128;
/// Most sources one session keeps; past this the oldest is forgotten.
const SOURCES_MAX: usize = 256;
/// Most labels one session or principal holds. Past this, further labels are
/// dropped with a warning — except sticky ones, which are always kept.
const LABELS_MAX: usize = 256;

/// (tenant, principal id): who owns a session or carries sticky labels.
type Owner = (String, String);

/// Sessions, sticky labels and usage counters of this host.
#[derive(Debug, Default)]
pub struct CallContext {
    settings: SessionSettings,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<String, Session>,
    principals: HashMap<Owner, PrincipalState>,
    tenant_calls: HashMap<String, u64>,
    clock: u64,
}

#[derive(Debug)]
struct Session {
    owner: Owner,
    labels: BTreeSet<String>,
    last_used: u64,
    /// Outputs returned in this session, oldest first (kept only when a
    /// verifier sees sources).
    sources: VecDeque<Source>,
    /// Bytes of source content held.
    source_bytes: usize,
}

#[derive(Debug, Default)]
struct PrincipalState {
    /// Label -> when it stops sticking.
    sticky: BTreeMap<String, Instant>,
    /// Ids of the sessions this principal holds.
    sessions: BTreeSet<String>,
    calls: u64,
}

/// Calls seen by this host, including the current one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Calls by the principal's tenant.
    pub tenant_calls: u64,
    /// Calls by the principal.
    pub principal_calls: u64,
}

/// An output returned earlier in a session, kept for verifiers that check
/// what an answer cites (`sources = true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The call that returned it.
    pub id: String,
    /// The tool that returned it.
    pub target: String,
    /// Where the tool read it, when its arguments named it.
    pub locator: Option<String>,
    /// sha256 of the output's JSON text, lowercase hex.
    pub digest: String,
    /// The output as JSON text, until it no longer fits the session's
    /// source budget.
    pub content: Option<Arc<str>>,
}

/// What policy sees of a call's context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallLabels {
    /// `input.session.labels`: the session's own labels and the principal's.
    pub session: Vec<String>,
    /// `input.principal.labels`: the labels sticking to the principal.
    pub principal: Vec<String>,
    /// Counters including this call.
    pub usage: Usage,
}

impl CallContext {
    /// A context with these settings.
    pub fn new(settings: SessionSettings) -> CallContext {
        CallContext {
            settings,
            state: Mutex::default(),
        }
    }

    /// Locks the state. A panic while holding the lock leaves it poisoned:
    /// then every call fails closed (`internal`) rather than see no labels.
    fn lock(&self) -> Result<MutexGuard<'_, State>, CallError> {
        self.state.lock().map_err(|_| {
            CallError::new(
                ErrorCode::Internal,
                "session state is unusable after a host fault; calls are denied",
            )
        })
    }

    /// Mints a new session for `principal` and returns its id. When the
    /// principal already holds its maximum, its least recently used session
    /// is closed first and that session's labels move to the principal.
    pub fn open(&self, principal: &Principal) -> Result<String, CallError> {
        let owner = owner(principal);
        let id = format!("s_{}", uuid::Uuid::new_v4().simple());
        let mut state = self.lock()?;
        state.clock += 1;
        let now = state.clock;
        let held = state.principals.get(&owner).map_or(0, |p| p.sessions.len());
        if held >= self.settings.max_per_principal.max(1) {
            state.evict_oldest(&owner, &self.settings);
        }
        state.sessions.insert(
            id.clone(),
            Session {
                owner: owner.clone(),
                labels: BTreeSet::new(),
                last_used: now,
                sources: VecDeque::new(),
                source_bytes: 0,
            },
        );
        state
            .principals
            .entry(owner)
            .or_default()
            .sessions
            .insert(id.clone());
        Ok(id)
    }

    /// `session` if it is a live session of `principal`, otherwise a new one:
    /// for faces whose sessions are their connections (MCP).
    pub fn resume_or_open(
        &self,
        principal: &Principal,
        session: Option<&str>,
    ) -> Result<String, CallError> {
        if let Some(id) = session {
            let state = self.lock()?;
            if state
                .sessions
                .get(id)
                .is_some_and(|s| s.owner == owner(principal))
            {
                return Ok(id.to_string());
            }
        }
        self.open(principal)
    }

    /// Counts one call by `principal` and returns what policy sees of its
    /// context. Fails with `unknown-session` when `session` is not a live
    /// session of this principal, and `invalid-request` when it is malformed.
    pub fn begin_call(
        &self,
        principal: &Principal,
        session: Option<&str>,
    ) -> Result<CallLabels, CallError> {
        if let Some(id) = session {
            check_session_id(id)?;
        }
        let owner = owner(principal);
        let mut state = self.lock()?;
        state.clock += 1;
        let now = state.clock;
        let mut session_labels = match session {
            Some(id) => {
                let live = state.sessions.get_mut(id).filter(|s| s.owner == owner);
                let Some(live) = live else {
                    return Err(unknown_session(id));
                };
                live.last_used = now;
                live.labels.clone()
            }
            None => BTreeSet::new(),
        };
        let tenant_calls = {
            let n = state.tenant_calls.entry(owner.0.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let record = state.principals.entry(owner).or_default();
        record.calls += 1;
        let clock = Instant::now();
        record.sticky.retain(|_, until| *until > clock);
        let principal_labels: Vec<String> = record.sticky.keys().cloned().collect();
        session_labels.extend(principal_labels.iter().cloned());
        Ok(CallLabels {
            session: session_labels.into_iter().collect(),
            principal: principal_labels,
            usage: Usage {
                tenant_calls,
                principal_calls: record.calls,
            },
        })
    }

    /// The labels a call in `session` carries now, the session's and the
    /// principal's, without counting a call (for the output verifiers).
    pub fn session_labels(
        &self,
        principal: &Principal,
        session: Option<&str>,
    ) -> Result<Vec<String>, CallError> {
        let owner = owner(principal);
        let state = self.lock()?;
        let mut labels = session
            .and_then(|id| state.sessions.get(id))
            .filter(|s| s.owner == owner)
            .map(|s| s.labels.clone())
            .unwrap_or_default();
        if let Some(record) = state.principals.get(&owner) {
            let clock = Instant::now();
            labels.extend(
                record
                    .sticky
                    .iter()
                    .filter(|(_, until)| **until > clock)
                    .map(|(label, _)| label.clone()),
            );
        }
        Ok(labels.into_iter().collect())
    }

    /// Adds `labels` to the call's context: to `session` when there is one,
    /// and to the principal (for the TTL) when there is none or the label is
    /// sticky. A session closed meanwhile hands its labels to the principal.
    pub fn add_labels(
        &self,
        principal: &Principal,
        session: Option<&str>,
        labels: &[String],
    ) -> Result<(), CallError> {
        if labels.is_empty() {
            return Ok(());
        }
        let owner = owner(principal);
        let until = Instant::now() + self.settings.label_ttl;
        let mut state = self.lock()?;
        let mut to_principal = Vec::new();
        match session.and_then(|id| state.sessions.get_mut(id)) {
            Some(live) if live.owner == owner => {
                for label in labels {
                    let label = bounded(label);
                    if self.is_sticky(&label) {
                        to_principal.push(label.clone());
                    }
                    insert_bounded(&mut live.labels, label, &self.settings);
                }
            }
            _ => to_principal.extend(labels.iter().map(|l| bounded(l))),
        }
        let record = state.principals.entry(owner).or_default();
        for label in to_principal {
            if record.sticky.len() < LABELS_MAX || self.is_sticky(&label) {
                record.sticky.insert(label, until);
            } else {
                tracing::warn!(%label, "principal holds {LABELS_MAX} labels; label dropped");
            }
        }
        Ok(())
    }

    /// The outputs returned earlier in `session`, oldest first; none
    /// without a session.
    pub fn sources(
        &self,
        principal: &Principal,
        session: Option<&str>,
    ) -> Result<Vec<Source>, CallError> {
        let owner = owner(principal);
        let state = self.lock()?;
        Ok(session
            .and_then(|id| state.sessions.get(id))
            .filter(|s| s.owner == owner)
            .map(|s| s.sources.iter().cloned().collect())
            .unwrap_or_default())
    }

    /// Keeps `source` in `session` (nothing without one). When the
    /// session's source content passes `sessions.source_bytes`, the oldest
    /// sources lose their content and keep their digest.
    pub fn add_source(
        &self,
        principal: &Principal,
        session: Option<&str>,
        source: Source,
    ) -> Result<(), CallError> {
        let owner = owner(principal);
        let budget = self.settings.source_bytes;
        let mut state = self.lock()?;
        let Some(live) = session
            .and_then(|id| state.sessions.get_mut(id))
            .filter(|s| s.owner == owner)
        else {
            return Ok(());
        };
        let mut source = source;
        if source.content.as_ref().is_some_and(|c| c.len() > budget) {
            source.content = None;
        }
        live.source_bytes += source.content.as_ref().map_or(0, |c| c.len());
        live.sources.push_back(source);
        if live.sources.len() > SOURCES_MAX
            && let Some(oldest) = live.sources.pop_front()
        {
            live.source_bytes -= oldest.content.map_or(0, |c| c.len());
        }
        for older in live.sources.iter_mut() {
            if live.source_bytes <= budget {
                break;
            }
            if let Some(content) = older.content.take() {
                live.source_bytes -= content.len();
            }
        }
        Ok(())
    }

    fn is_sticky(&self, label: &str) -> bool {
        self.settings.sticky_labels.iter().any(|s| s == label)
    }
}

impl State {
    /// Closes `owner`'s least recently used session; its labels move to the
    /// principal so the taint outlives the session.
    fn evict_oldest(&mut self, owner: &Owner, settings: &SessionSettings) {
        let Some(principal) = self.principals.get(owner) else {
            return;
        };
        let oldest = principal
            .sessions
            .iter()
            .min_by_key(|id| self.sessions.get(*id).map_or(0, |s| s.last_used))
            .cloned();
        let Some(oldest) = oldest else {
            return;
        };
        let labels = self
            .sessions
            .remove(&oldest)
            .map(|s| s.labels)
            .unwrap_or_default();
        let until = Instant::now() + settings.label_ttl;
        if let Some(principal) = self.principals.get_mut(owner) {
            principal.sessions.remove(&oldest);
            if !labels.is_empty() {
                tracing::info!(
                    principal = %owner.1,
                    session = %oldest,
                    labels = ?labels,
                    "session limit reached: oldest session closed, its labels now stick to the principal"
                );
            }
            for label in labels {
                principal.sticky.insert(label, until);
            }
        }
    }
}

fn owner(principal: &Principal) -> Owner {
    (principal.tenant.clone(), principal.id.clone())
}

fn insert_bounded(labels: &mut BTreeSet<String>, label: String, settings: &SessionSettings) {
    if labels.len() < LABELS_MAX || settings.sticky_labels.contains(&label) {
        labels.insert(label);
    } else {
        tracing::warn!(%label, "session holds {LABELS_MAX} labels; label dropped");
    }
}

/// `label` cut to [`LABEL_MAX`] bytes on a character boundary.
fn bounded(label: &str) -> String {
    crate::bounds::prefix(label, LABEL_MAX).to_string()
}

/// A session id is at most [`SESSION_ID_MAX`] bytes of ASCII letters, digits,
/// `-` and `_`: it is stored in every audit record of the session.
pub fn check_session_id(id: &str) -> Result<(), CallError> {
    let valid = !id.is_empty()
        && id.len() <= SESSION_ID_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(CallError::new(
            ErrorCode::InvalidRequest,
            format!(
                "session: expected an id minted by this host (1 to {SESSION_ID_MAX} ASCII \
                 letters, digits, `-` or `_`)"
            ),
        ))
    }
}

fn unknown_session(id: &str) -> CallError {
    CallError::new(
        ErrorCode::UnknownSession,
        format!(
            "session `{id}` is not an open session of this principal; open one with \
             POST /v1/sessions, or call without a session"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::{CallContext, SessionSettings, Source};
    use crate::error::ErrorCode;
    use crate::principal::Principal;

    fn principal(id: &str, tenant: &str) -> Principal {
        Principal {
            id: id.into(),
            roles: Vec::new(),
            tenant: tenant.into(),
            attributes: Default::default(),
            policy_document: Default::default(),
        }
    }

    fn labels(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn labels_accumulate_per_session_and_sticky_ones_follow_the_principal() {
        let context = CallContext::default();
        let alice = principal("alice", "acme");
        let s1 = context.open(&alice).unwrap();
        let s2 = context.open(&alice).unwrap();
        context
            .add_labels(&alice, Some(&s1), &labels(&["pii"]))
            .unwrap();
        assert_eq!(
            context.begin_call(&alice, Some(&s1)).unwrap().session,
            ["pii"]
        );
        assert!(
            context
                .begin_call(&alice, Some(&s2))
                .unwrap()
                .session
                .is_empty()
        );
        context
            .add_labels(&alice, Some(&s1), &labels(&["untrusted-content"]))
            .unwrap();
        let fresh = context.begin_call(&alice, Some(&s2)).unwrap();
        assert_eq!(fresh.session, ["untrusted-content"]);
        assert_eq!(fresh.principal, ["untrusted-content"]);
        let sessionless = context.begin_call(&alice, None).unwrap();
        assert_eq!(sessionless.session, ["untrusted-content"]);
    }

    #[test]
    fn sessionless_labels_stick_to_the_principal_and_expire() {
        let context = CallContext::new(SessionSettings {
            label_ttl: std::time::Duration::from_millis(50),
            sticky_labels: Vec::new(),
            max_per_principal: 10,
            ..SessionSettings::default()
        });
        let alice = principal("alice", "acme");
        context.add_labels(&alice, None, &labels(&["pii"])).unwrap();
        let s = context.open(&alice).unwrap();
        assert_eq!(
            context.begin_call(&alice, Some(&s)).unwrap().principal,
            ["pii"]
        );
        std::thread::sleep(std::time::Duration::from_millis(80));
        assert!(context.begin_call(&alice, None).unwrap().session.is_empty());
    }

    #[test]
    fn sessions_belong_to_their_principal() {
        let context = CallContext::default();
        let alice = principal("alice", "acme");
        let mallory = principal("mallory", "evil");
        let alice_in_other_tenant = principal("alice", "other");
        let s = context.open(&alice).unwrap();
        for who in [&mallory, &alice_in_other_tenant] {
            let e = context.begin_call(who, Some(&s)).unwrap_err();
            assert_eq!(e.code, ErrorCode::UnknownSession);
            // Tainting through someone else's id lands on the caller, not the owner.
            context
                .add_labels(who, Some(&s), &labels(&["untrusted-content"]))
                .unwrap();
        }
        assert!(
            context
                .begin_call(&alice, Some(&s))
                .unwrap()
                .session
                .is_empty()
        );
        let made_up = context.begin_call(&alice, Some("s_0123")).unwrap_err();
        assert_eq!(made_up.code, ErrorCode::UnknownSession);
        for bad in ["", "a b", "x\u{0}", &"a".repeat(65), "é"] {
            let e = context.begin_call(&alice, Some(bad)).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{bad:?}");
        }
    }

    #[test]
    fn an_evicted_session_hands_its_labels_to_the_principal() {
        let context = CallContext::new(SessionSettings {
            sticky_labels: Vec::new(),
            max_per_principal: 2,
            ..SessionSettings::default()
        });
        let alice = principal("alice", "acme");
        let tainted = context.open(&alice).unwrap();
        context
            .add_labels(&alice, Some(&tainted), &labels(&["untrusted-content"]))
            .unwrap();
        let _second = context.open(&alice).unwrap();
        let third = context.open(&alice).unwrap();
        let e = context.begin_call(&alice, Some(&tainted)).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownSession);
        let after = context.begin_call(&alice, Some(&third)).unwrap();
        assert_eq!(after.principal, ["untrusted-content"]);
        // Another principal's flood does not evict alice's sessions.
        let bob = principal("bob", "acme");
        for _ in 0..10 {
            context.open(&bob).unwrap();
        }
        assert!(context.begin_call(&alice, Some(&third)).is_ok());
    }

    #[test]
    fn labels_are_bounded() {
        let context = CallContext::new(SessionSettings {
            sticky_labels: Vec::new(),
            ..SessionSettings::default()
        });
        let alice = principal("alice", "acme");
        let s = context.open(&alice).unwrap();
        let many: Vec<String> = (0..1000)
            .map(|i| format!("{i}{}", "x".repeat(1000)))
            .collect();
        context.add_labels(&alice, Some(&s), &many).unwrap();
        let seen = context.begin_call(&alice, Some(&s)).unwrap().session;
        assert_eq!(seen.len(), super::LABELS_MAX);
        assert!(seen.iter().all(|l| l.len() <= super::LABEL_MAX));
    }

    #[test]
    fn usage_counts_tenants_and_principals() {
        let context = CallContext::default();
        context
            .begin_call(&principal("alice", "acme"), None)
            .unwrap();
        let usage = context
            .begin_call(&principal("bob", "acme"), None)
            .unwrap()
            .usage;
        assert_eq!((usage.tenant_calls, usage.principal_calls), (2, 1));
    }

    #[test]
    fn a_poisoned_state_denies_every_call_instead_of_forgetting_labels() {
        let context = std::sync::Arc::new(CallContext::default());
        let alice = principal("alice", "acme");
        let s = context.open(&alice).unwrap();
        context
            .add_labels(&alice, Some(&s), &labels(&["untrusted-content"]))
            .unwrap();
        let holder = context.clone();
        let _ = std::thread::spawn(move || {
            let _guard = holder.state.lock();
            panic!("a host fault while the session state is locked");
        })
        .join();
        assert!(context.state.is_poisoned());
        fn internal<T>(r: Result<T, crate::error::CallError>) -> Option<ErrorCode> {
            r.err().map(|e| e.code)
        }
        assert_eq!(
            internal(context.begin_call(&alice, Some(&s))),
            Some(ErrorCode::Internal)
        );
        assert_eq!(
            internal(context.begin_call(&alice, None)),
            Some(ErrorCode::Internal)
        );
        assert_eq!(
            internal(context.add_labels(&alice, Some(&s), &labels(&["x"]))),
            Some(ErrorCode::Internal)
        );
        assert_eq!(internal(context.open(&alice)), Some(ErrorCode::Internal));
    }

    #[test]
    fn sources_stay_in_their_session_within_its_budget() {
        let context = CallContext::new(SessionSettings {
            source_bytes: 10,
            ..SessionSettings::default()
        });
        let (alice, bob) = (principal("alice", "acme"), principal("bob", "acme"));
        let s = context.open(&alice).unwrap();
        let source = |id: &str, content: &str| Source {
            id: id.into(),
            target: "fetch.get".into(),
            locator: None,
            digest: format!("digest of {id}"),
            content: Some(content.into()),
        };
        context
            .add_source(&alice, Some(&s), source("a", "123456"))
            .unwrap();
        context
            .add_source(&alice, Some(&s), source("b", "7890"))
            .unwrap();
        let held = |who, session| context.sources(who, session).unwrap();
        assert_eq!(held(&alice, Some(&s)).len(), 2);
        assert!(held(&alice, Some(&s)).iter().all(|s| s.content.is_some()));
        // Past the budget the oldest keeps only its digest.
        context
            .add_source(&alice, Some(&s), source("c", "xyz"))
            .unwrap();
        let kept = held(&alice, Some(&s));
        assert_eq!(
            kept.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(kept[0].content, None);
        assert_eq!(kept[0].digest, "digest of a");
        assert!(kept[1].content.is_some() && kept[2].content.is_some());
        // Larger than the whole budget: digest only.
        context
            .add_source(&alice, Some(&s), source("d", &"x".repeat(11)))
            .unwrap();
        assert_eq!(held(&alice, Some(&s))[3].content, None);
        // No session, another principal, another session: nothing.
        context.add_source(&alice, None, source("e", "1")).unwrap();
        assert!(held(&alice, None).is_empty());
        assert!(held(&bob, Some(&s)).is_empty());
        let other = context.open(&alice).unwrap();
        assert!(held(&alice, Some(&other)).is_empty());
    }
}
