//! Lifecycle: which calls are in flight, and whether the kernel is ready to
//! take calls (`/readyz`).
//!
//! A call counts as in flight from its admission until its record is
//! committed (or refused), so a server that stops accepting can wait for
//! every call it took to be answered and in the trail.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::Kernel;
use crate::audit::AuditHealth;

/// Calls between admission and record.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    calls: AtomicUsize,
}

/// Held by one open call; the call is no longer in flight once dropped.
#[derive(Debug)]
pub(super) struct InFlightCall(Arc<InFlight>);

impl InFlight {
    pub(super) fn enter(self: &Arc<Self>) -> InFlightCall {
        self.calls.fetch_add(1, Ordering::Relaxed);
        InFlightCall(self.clone())
    }
}

impl Drop for InFlightCall {
    fn drop(&mut self) {
        self.0.calls.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What `/readyz` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// Whether a load balancer should send calls here.
    pub ready: bool,
    /// Where audit records go now.
    pub audit: AuditHealth,
    /// The active policy bundle's hash.
    pub policy: String,
    /// Tools and models loaded.
    pub targets: usize,
    /// Calls between admission and record.
    pub in_flight: usize,
}

impl Kernel {
    /// Calls between admission and record, across every face.
    pub fn in_flight(&self) -> usize {
        self.in_flight.calls.load(Ordering::Relaxed)
    }

    /// The metrics in Prometheus' text format (`GET /metrics`).
    pub fn metrics_text(&self) -> String {
        self.metrics.encode(crate::metrics::Snapshot {
            in_flight: self.in_flight(),
            audit_outstanding: self.audit.outstanding(),
        })
    }

    /// Waits until no call is in flight, or `bound` has passed; returns how
    /// many still are.
    pub async fn settle_in_flight(&self, bound: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + bound;
        while self.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.in_flight()
    }

    /// Whether this kernel can take calls: plugins and policy are loaded
    /// (a kernel exists only once they are) and audit records reach the
    /// trail (the store answers, or the spool takes them).
    pub async fn readiness(&self) -> Readiness {
        let audit = self.audit.health().await;
        Readiness {
            ready: audit != AuditHealth::Unavailable,
            audit,
            policy: self.policy().hash().to_string(),
            targets: self.registry.tools().count(),
            in_flight: self.in_flight(),
        }
    }
}
