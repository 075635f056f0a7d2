//! Call context: sessions with their labels, labels that stick to a
//! principal, and usage counters — all visible to policy (`input.session`,
//! `input.principal.labels`, `input.usage`).
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
//! The context lives where `[sessions] store` says: in this process
//! ([`memory`]; the embedded default) or in the PostgreSQL audit database
//! ([`database`]; the default there), where every replica sees the same
//! sessions, labels and counts. A context that cannot be read or written
//! denies the call (`audit-unavailable`): a call never runs without its
//! labels.

mod database;
mod memory;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::config::{SessionSettings, SessionStore};
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

/// Sessions, sticky labels and usage counters, in this process or in the
/// audit database.
#[derive(Debug)]
pub struct CallContext {
    settings: SessionSettings,
    store: Store,
}

#[derive(Debug)]
enum Store {
    Memory(memory::Memory),
    Database(database::Database),
}

#[cfg(test)]
impl Default for CallContext {
    fn default() -> Self {
        CallContext::in_memory(SessionSettings::default())
    }
}

/// Calls counted so far, including the current one.
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
    /// A context kept in this process.
    #[cfg(test)]
    fn in_memory(settings: SessionSettings) -> CallContext {
        CallContext {
            settings,
            store: Store::Memory(memory::Memory::default()),
        }
    }

    /// The context `settings.store` names: `audit` must be a PostgreSQL
    /// store for `database` (the config refuses anything else).
    pub fn new(
        settings: SessionSettings,
        audit: &crate::audit::AuditStore,
    ) -> Result<CallContext, crate::Error> {
        let store = match (settings.store, audit) {
            (SessionStore::Memory, _) => Store::Memory(memory::Memory::default()),
            (SessionStore::Database, crate::audit::AuditStore::Postgres(pool)) => {
                Store::Database(database::Database::new(pool.clone()))
            }
            (SessionStore::Database, _) => {
                return Err(crate::Error::Audit(
                    "sessions.store = \"database\" needs a PostgreSQL audit store".into(),
                ));
            }
        };
        Ok(CallContext { settings, store })
    }

    /// Mints a new session for `principal` and returns its id. When the
    /// principal already holds its maximum, its least recently used session
    /// is closed first and that session's labels move to the principal.
    pub async fn open(&self, principal: &Principal) -> Result<String, CallError> {
        let id = format!("s_{}", uuid::Uuid::new_v4().simple());
        match &self.store {
            Store::Memory(memory) => memory.open(owner(principal), &id, &self.settings)?,
            Store::Database(db) => db
                .open(&owner(principal), &id, &self.settings)
                .await
                .map_err(unavailable)?,
        }
        Ok(id)
    }

    /// `session` if it is a live session of `principal`, otherwise a new one:
    /// for faces whose sessions are their connections (MCP).
    pub async fn resume_or_open(
        &self,
        principal: &Principal,
        session: Option<&str>,
    ) -> Result<String, CallError> {
        if let Some(id) = session {
            let owner = owner(principal);
            let live = match &self.store {
                Store::Memory(memory) => memory.is_live(&owner, id)?,
                Store::Database(db) => db.is_live(&owner, id).await.map_err(unavailable)?,
            };
            if live {
                return Ok(id.to_string());
            }
        }
        self.open(principal).await
    }

    /// Counts one call by `principal` and returns what policy sees of its
    /// context. Fails with `unknown-session` when `session` is not a live
    /// session of this principal, and `invalid-request` when it is malformed.
    pub async fn begin_call(
        &self,
        principal: &Principal,
        session: Option<&str>,
    ) -> Result<CallLabels, CallError> {
        if let Some(id) = session {
            check_session_id(id)?;
        }
        let owner = owner(principal);
        let labels = match &self.store {
            Store::Memory(memory) => memory.begin_call(owner, session)?,
            Store::Database(db) => db.begin_call(&owner, session).await.map_err(unavailable)?,
        };
        labels.ok_or_else(|| unknown_session(session.unwrap_or_default()))
    }

    /// The labels a call in `session` carries now, the session's and the
    /// principal's, without counting a call (for the output verifiers).
    pub async fn session_labels(
        &self,
        principal: &Principal,
        session: Option<&str>,
    ) -> Result<Vec<String>, CallError> {
        let owner = owner(principal);
        match &self.store {
            Store::Memory(memory) => memory.session_labels(&owner, session),
            Store::Database(db) => db
                .session_labels(&owner, session)
                .await
                .map_err(unavailable),
        }
    }

    /// Adds `labels` to the call's context: to `session` when there is one,
    /// and to the principal (for the TTL) when there is none or the label is
    /// sticky. A session closed meanwhile hands its labels to the principal.
    pub async fn add_labels(
        &self,
        principal: &Principal,
        session: Option<&str>,
        labels: &[String],
    ) -> Result<(), CallError> {
        if labels.is_empty() {
            return Ok(());
        }
        let labels: Vec<String> = labels.iter().map(|l| bounded(l)).collect();
        let owner = owner(principal);
        match &self.store {
            Store::Memory(memory) => memory.add_labels(owner, session, labels, &self.settings),
            Store::Database(db) => db
                .add_labels(&owner, session, labels, &self.settings)
                .await
                .map_err(unavailable),
        }
    }

    /// The outputs returned earlier in `session`, oldest first; none
    /// without a session.
    pub async fn sources(
        &self,
        principal: &Principal,
        session: Option<&str>,
    ) -> Result<Vec<Source>, CallError> {
        let owner = owner(principal);
        match &self.store {
            Store::Memory(memory) => memory.sources(&owner, session),
            Store::Database(db) => db.sources(&owner, session).await.map_err(unavailable),
        }
    }

    /// Keeps `source` in `session` (nothing without one). When the
    /// session's source content passes `sessions.source_bytes`, the oldest
    /// sources lose their content and keep their digest.
    pub async fn add_source(
        &self,
        principal: &Principal,
        session: Option<&str>,
        mut source: Source,
    ) -> Result<(), CallError> {
        let budget = self.settings.source_bytes;
        if source.content.as_ref().is_some_and(|c| c.len() > budget) {
            source.content = None;
        }
        let owner = owner(principal);
        match &self.store {
            Store::Memory(memory) => memory.add_source(&owner, session, source, budget),
            Store::Database(db) => db
                .add_source(&owner, session, source, budget)
                .await
                .map_err(unavailable),
        }
    }
}

fn owner(principal: &Principal) -> Owner {
    (principal.tenant.clone(), principal.id.clone())
}

/// Adds `label` unless `labels` is full (sticky labels always fit).
fn insert_bounded(labels: &mut BTreeSet<String>, label: String, settings: &SessionSettings) {
    if labels.len() < LABELS_MAX || settings.is_sticky(&label) {
        labels.insert(label);
    } else {
        tracing::warn!(%label, "session holds {LABELS_MAX} labels; label dropped");
    }
}

/// Says which session was closed to make room and where its labels went.
fn log_eviction(owner: &Owner, session: &str, labels: &BTreeSet<String>) {
    if !labels.is_empty() {
        tracing::info!(
            principal = %owner.1,
            session = %session,
            labels = ?labels,
            "session limit reached: oldest session closed, its labels now stick to the principal"
        );
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

/// A context in the audit database that cannot be read or written denies
/// the call, as an audit record that cannot be written does.
fn unavailable(cause: sqlx::Error) -> CallError {
    // An unreachable store is logged once, when it goes down.
    if matches!(cause, sqlx::Error::PoolTimedOut) {
        tracing::debug!(error = %cause, "the session store is unavailable");
    } else {
        tracing::error!(error = %cause, "the session store failed");
    }
    CallError::new(
        ErrorCode::AuditUnavailable,
        "the session store (in the audit database) is unavailable, so the call is denied",
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

    #[tokio::test]
    async fn labels_accumulate_per_session_and_sticky_ones_follow_the_principal() {
        let context = CallContext::default();
        let alice = principal("alice", "acme");
        let s1 = context.open(&alice).await.unwrap();
        let s2 = context.open(&alice).await.unwrap();
        context
            .add_labels(&alice, Some(&s1), &labels(&["pii"]))
            .await
            .unwrap();
        assert_eq!(
            context.begin_call(&alice, Some(&s1)).await.unwrap().session,
            ["pii"]
        );
        assert!(
            context
                .begin_call(&alice, Some(&s2))
                .await
                .unwrap()
                .session
                .is_empty()
        );
        context
            .add_labels(&alice, Some(&s1), &labels(&["untrusted-content"]))
            .await
            .unwrap();
        let fresh = context.begin_call(&alice, Some(&s2)).await.unwrap();
        assert_eq!(fresh.session, ["untrusted-content"]);
        assert_eq!(fresh.principal, ["untrusted-content"]);
        let sessionless = context.begin_call(&alice, None).await.unwrap();
        assert_eq!(sessionless.session, ["untrusted-content"]);
    }

    #[tokio::test]
    async fn sessionless_labels_stick_to_the_principal_and_expire() {
        let context = CallContext::in_memory(SessionSettings {
            label_ttl: std::time::Duration::from_millis(50),
            sticky_labels: Vec::new(),
            max_per_principal: 10,
            ..SessionSettings::default()
        });
        let alice = principal("alice", "acme");
        context
            .add_labels(&alice, None, &labels(&["pii"]))
            .await
            .unwrap();
        let s = context.open(&alice).await.unwrap();
        assert_eq!(
            context
                .begin_call(&alice, Some(&s))
                .await
                .unwrap()
                .principal,
            ["pii"]
        );
        tokio::time::sleep(std::time::Duration::from_millis(80)).await;
        assert!(
            context
                .begin_call(&alice, None)
                .await
                .unwrap()
                .session
                .is_empty()
        );
    }

    #[tokio::test]
    async fn sessions_belong_to_their_principal() {
        let context = CallContext::default();
        let alice = principal("alice", "acme");
        let mallory = principal("mallory", "evil");
        let alice_in_other_tenant = principal("alice", "other");
        let s = context.open(&alice).await.unwrap();
        for who in [&mallory, &alice_in_other_tenant] {
            let e = context.begin_call(who, Some(&s)).await.unwrap_err();
            assert_eq!(e.code, ErrorCode::UnknownSession);
            // Tainting through someone else's id lands on the caller, not the owner.
            context
                .add_labels(who, Some(&s), &labels(&["untrusted-content"]))
                .await
                .unwrap();
        }
        assert!(
            context
                .begin_call(&alice, Some(&s))
                .await
                .unwrap()
                .session
                .is_empty()
        );
        let made_up = context
            .begin_call(&alice, Some("s_0123"))
            .await
            .unwrap_err();
        assert_eq!(made_up.code, ErrorCode::UnknownSession);
        for bad in ["", "a b", "x\u{0}", &"a".repeat(65), "é"] {
            let e = context.begin_call(&alice, Some(bad)).await.unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn an_evicted_session_hands_its_labels_to_the_principal() {
        let context = CallContext::in_memory(SessionSettings {
            sticky_labels: Vec::new(),
            max_per_principal: 2,
            ..SessionSettings::default()
        });
        let alice = principal("alice", "acme");
        let tainted = context.open(&alice).await.unwrap();
        context
            .add_labels(&alice, Some(&tainted), &labels(&["untrusted-content"]))
            .await
            .unwrap();
        let _second = context.open(&alice).await.unwrap();
        let third = context.open(&alice).await.unwrap();
        let e = context
            .begin_call(&alice, Some(&tainted))
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownSession);
        let after = context.begin_call(&alice, Some(&third)).await.unwrap();
        assert_eq!(after.principal, ["untrusted-content"]);
        // Another principal's flood does not evict alice's sessions.
        let bob = principal("bob", "acme");
        for _ in 0..10 {
            context.open(&bob).await.unwrap();
        }
        assert!(context.begin_call(&alice, Some(&third)).await.is_ok());
    }

    #[tokio::test]
    async fn labels_are_bounded() {
        let context = CallContext::in_memory(SessionSettings {
            sticky_labels: Vec::new(),
            ..SessionSettings::default()
        });
        let alice = principal("alice", "acme");
        let s = context.open(&alice).await.unwrap();
        let many: Vec<String> = (0..1000)
            .map(|i| format!("{i}{}", "x".repeat(1000)))
            .collect();
        context.add_labels(&alice, Some(&s), &many).await.unwrap();
        let seen = context.begin_call(&alice, Some(&s)).await.unwrap().session;
        assert_eq!(seen.len(), super::LABELS_MAX);
        assert!(seen.iter().all(|l| l.len() <= super::LABEL_MAX));
    }

    #[tokio::test]
    async fn usage_counts_tenants_and_principals() {
        let context = CallContext::default();
        context
            .begin_call(&principal("alice", "acme"), None)
            .await
            .unwrap();
        let usage = context
            .begin_call(&principal("bob", "acme"), None)
            .await
            .unwrap()
            .usage;
        assert_eq!((usage.tenant_calls, usage.principal_calls), (2, 1));
    }

    #[tokio::test]
    async fn a_poisoned_state_denies_every_call_instead_of_forgetting_labels() {
        let context = CallContext::default();
        let alice = principal("alice", "acme");
        let s = context.open(&alice).await.unwrap();
        context
            .add_labels(&alice, Some(&s), &labels(&["untrusted-content"]))
            .await
            .unwrap();
        let super::Store::Memory(memory) = &context.store else {
            unreachable!("an in-memory context")
        };
        memory.poison();
        fn internal<T>(r: Result<T, crate::error::CallError>) -> Option<ErrorCode> {
            r.err().map(|e| e.code)
        }
        assert_eq!(
            internal(context.begin_call(&alice, Some(&s)).await),
            Some(ErrorCode::Internal)
        );
        assert_eq!(
            internal(context.begin_call(&alice, None).await),
            Some(ErrorCode::Internal)
        );
        assert_eq!(
            internal(context.add_labels(&alice, Some(&s), &labels(&["x"])).await),
            Some(ErrorCode::Internal)
        );
        assert_eq!(
            internal(context.open(&alice).await),
            Some(ErrorCode::Internal)
        );
    }

    #[tokio::test]
    async fn sources_stay_in_their_session_within_its_budget() {
        let context = CallContext::in_memory(SessionSettings {
            source_bytes: 10,
            ..SessionSettings::default()
        });
        let (alice, bob) = (principal("alice", "acme"), principal("bob", "acme"));
        let s = context.open(&alice).await.unwrap();
        let source = |id: &str, content: &str| Source {
            id: id.into(),
            target: "fetch.get".into(),
            locator: None,
            digest: format!("digest of {id}"),
            content: Some(content.into()),
        };
        context
            .add_source(&alice, Some(&s), source("a", "123456"))
            .await
            .unwrap();
        context
            .add_source(&alice, Some(&s), source("b", "7890"))
            .await
            .unwrap();
        let held = async |who, session| context.sources(who, session).await.unwrap();
        assert_eq!(held(&alice, Some(&s)).await.len(), 2);
        assert!(
            held(&alice, Some(&s))
                .await
                .iter()
                .all(|s| s.content.is_some())
        );
        // Past the budget the oldest keeps only its digest.
        context
            .add_source(&alice, Some(&s), source("c", "xyz"))
            .await
            .unwrap();
        let kept = held(&alice, Some(&s)).await;
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
            .await
            .unwrap();
        assert_eq!(held(&alice, Some(&s)).await[3].content, None);
        // No session, another principal, another session: nothing.
        context
            .add_source(&alice, None, source("e", "1"))
            .await
            .unwrap();
        assert!(held(&alice, None).await.is_empty());
        assert!(held(&bob, Some(&s)).await.is_empty());
        let other = context.open(&alice).await.unwrap();
        assert!(held(&alice, Some(&other)).await.is_empty());
    }
}
