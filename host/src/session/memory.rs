//! The call context in this process (`[sessions] store = "memory"`):
//! replicas do not share it, and a restart forgets it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::{CallLabels, LABELS_MAX, Owner, SOURCES_MAX, Source, Usage, insert_bounded};
use crate::config::SessionSettings;
use crate::error::{CallError, ErrorCode};

/// Sessions, sticky labels and usage counters behind one lock.
#[derive(Debug, Default)]
pub(super) struct Memory {
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

impl Memory {
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

    pub(super) fn open(
        &self,
        owner: Owner,
        id: &str,
        settings: &SessionSettings,
    ) -> Result<(), CallError> {
        let mut state = self.lock()?;
        state.clock += 1;
        let now = state.clock;
        let held = state.principals.get(&owner).map_or(0, |p| p.sessions.len());
        if held >= settings.max_per_principal.max(1) {
            state.evict_oldest(&owner, settings);
        }
        state.sessions.insert(
            id.to_string(),
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
            .insert(id.to_string());
        Ok(())
    }

    pub(super) fn is_live(&self, owner: &Owner, id: &str) -> Result<bool, CallError> {
        Ok(self
            .lock()?
            .sessions
            .get(id)
            .is_some_and(|s| &s.owner == owner))
    }

    /// `None` when `session` is not a live session of `owner`.
    pub(super) fn begin_call(
        &self,
        owner: Owner,
        session: Option<&str>,
    ) -> Result<Option<CallLabels>, CallError> {
        let mut state = self.lock()?;
        state.clock += 1;
        let now = state.clock;
        let mut session_labels = match session {
            Some(id) => {
                let live = state.sessions.get_mut(id).filter(|s| s.owner == owner);
                let Some(live) = live else {
                    return Ok(None);
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
        Ok(Some(CallLabels {
            session: session_labels.into_iter().collect(),
            principal: principal_labels,
            usage: Usage {
                tenant_calls,
                principal_calls: record.calls,
            },
        }))
    }

    pub(super) fn session_labels(
        &self,
        owner: &Owner,
        session: Option<&str>,
    ) -> Result<Vec<String>, CallError> {
        let state = self.lock()?;
        let mut labels = session
            .and_then(|id| state.sessions.get(id))
            .filter(|s| &s.owner == owner)
            .map(|s| s.labels.clone())
            .unwrap_or_default();
        if let Some(record) = state.principals.get(owner) {
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

    /// `labels` are bounded already.
    pub(super) fn add_labels(
        &self,
        owner: Owner,
        session: Option<&str>,
        labels: Vec<String>,
        settings: &SessionSettings,
    ) -> Result<(), CallError> {
        let until = Instant::now() + settings.label_ttl;
        let mut state = self.lock()?;
        let mut to_principal = Vec::new();
        match session.and_then(|id| state.sessions.get_mut(id)) {
            Some(live) if live.owner == owner => {
                for label in labels {
                    if settings.is_sticky(&label) {
                        to_principal.push(label.clone());
                    }
                    insert_bounded(&mut live.labels, label, settings);
                }
            }
            _ => to_principal = labels,
        }
        let record = state.principals.entry(owner).or_default();
        for label in to_principal {
            if record.sticky.len() < LABELS_MAX || settings.is_sticky(&label) {
                record.sticky.insert(label, until);
            } else {
                tracing::warn!(%label, "principal holds {LABELS_MAX} labels; label dropped");
            }
        }
        Ok(())
    }

    pub(super) fn sources(
        &self,
        owner: &Owner,
        session: Option<&str>,
    ) -> Result<Vec<Source>, CallError> {
        let state = self.lock()?;
        Ok(session
            .and_then(|id| state.sessions.get(id))
            .filter(|s| &s.owner == owner)
            .map(|s| s.sources.iter().cloned().collect())
            .unwrap_or_default())
    }

    /// `source` carries content only when it fits `budget` alone.
    pub(super) fn add_source(
        &self,
        owner: &Owner,
        session: Option<&str>,
        source: Source,
        budget: usize,
    ) -> Result<(), CallError> {
        let mut state = self.lock()?;
        let Some(live) = session
            .and_then(|id| state.sessions.get_mut(id))
            .filter(|s| &s.owner == owner)
        else {
            return Ok(());
        };
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

    #[cfg(test)]
    pub(super) fn poison(&self) {
        let _ = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let _guard = self.state.lock();
                    panic!("a host fault while the session state is locked");
                })
                .join()
        });
        assert!(self.state.is_poisoned());
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
            super::log_eviction(owner, &oldest, &labels);
            for label in labels {
                principal.sticky.insert(label, until);
            }
        }
    }
}
