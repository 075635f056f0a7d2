//! Prometheus metrics, served at `GET /metrics` (docs/deploy.md lists them).
//!
//! Every label value comes from config or from a fixed set (stages,
//! decisions, error codes); a target a caller named but that does not exist
//! is counted as `(unknown)`, so no caller can grow the label space. Timers
//! on the hot path are histograms fetched once at start: recording is a few
//! atomic adds.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// A stage of the pipeline whose latency is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum Stage {
    /// The session's labels and usage (`CallContext::begin_call`).
    Context,
    /// Verifiers, input and output.
    Verify,
    /// Policy decisions, call and output.
    Decide,
    /// The backend: a sandboxed plugin, an upstream MCP server, a model.
    Run,
    /// Waiting for an audit record (intent or final) to be committed.
    Record,
}

impl Stage {
    const ALL: [Stage; 5] = [
        Stage::Context,
        Stage::Verify,
        Stage::Decide,
        Stage::Run,
        Stage::Record,
    ];

    fn name(self) -> &'static str {
        match self {
            Stage::Context => "context",
            Stage::Verify => "verify",
            Stage::Decide => "decide",
            Stage::Run => "run",
            Stage::Record => "record",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    target: String,
    decision: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReloadLabels {
    bundle: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BundleLabels {
    bundle: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latencies from 10 µs to about 80 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.000_01, 2.0, 24))
}

/// Audit batches of 1 to 512 records.
fn batch_sizes() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 10))
}

/// What the audit writer measures as it commits; clones share the counts.
#[derive(Debug, Clone)]
pub struct AuditMetrics {
    /// Records per committed (or spooled) batch.
    pub batch_size: Histogram,
    /// How long a batch took to commit.
    pub commit_seconds: Histogram,
    /// Records that went to the spool instead of the store.
    pub spooled: Counter,
}

impl Default for AuditMetrics {
    fn default() -> Self {
        AuditMetrics {
            batch_size: batch_sizes(),
            commit_seconds: latency(),
            spooled: Counter::default(),
        }
    }
}

/// What a scrape reads from the kernel at that moment.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    /// Calls between admission and record.
    pub in_flight: usize,
    /// Audit records handed to the writer and not yet answered.
    pub audit_outstanding: usize,
}

/// The kernel's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    call_seconds: Histogram,
    /// One histogram per stage, in `Stage::ALL`'s order.
    stages: [Histogram; 5],
    reloads: Family<ReloadLabels, Counter>,
    reload_failing: Family<BundleLabels, Gauge>,
    in_flight: Gauge,
    audit_outstanding: Gauge,
}

impl Metrics {
    /// Registers every metric, the audit writer's included.
    pub fn new(audit: &AuditMetrics) -> Metrics {
        let mut registry = Registry::with_prefix("warden");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "calls",
            "Calls recorded, by target, decision and outcome (ok or an error code)",
            calls.clone(),
        );
        let call_seconds = latency();
        registry.register_with_unit(
            "call_duration",
            "Whole calls, from request to committed record",
            Unit::Seconds,
            call_seconds.clone(),
        );
        let stage_family: Histograms<StageLabels> = Family::new_with_constructor(latency);
        let stages = Stage::ALL.map(|stage| {
            stage_family.get_or_create_owned(&StageLabels {
                stage: stage.name(),
            })
        });
        registry.register_with_unit(
            "stage_duration",
            "Time in each pipeline stage, per call",
            Unit::Seconds,
            stage_family,
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "policy_reloads",
            "Policy bundle reloads that took effect (applied) or were refused",
            reloads.clone(),
        );
        let reload_failing = Family::<BundleLabels, Gauge>::default();
        registry.register(
            "policy_reload_failing",
            "1 while the bundle on disk is refused and the previous one stays active",
            reload_failing.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "calls_in_flight",
            "Calls between admission and record",
            in_flight.clone(),
        );
        let audit_outstanding = Gauge::default();
        registry.register(
            "audit_queue_depth",
            "Audit records handed to the writer and not yet committed, spooled or refused",
            audit_outstanding.clone(),
        );
        registry.register(
            "audit_batch_size",
            "Records per audit batch",
            audit.batch_size.clone(),
        );
        registry.register_with_unit(
            "audit_commit",
            "Time to commit one audit batch",
            Unit::Seconds,
            audit.commit_seconds.clone(),
        );
        registry.register(
            "audit_spooled_records",
            "Audit records written to the local spool while the store was away",
            audit.spooled.clone(),
        );
        Metrics {
            registry,
            calls,
            call_seconds,
            stages,
            reloads,
            reload_failing,
            in_flight,
            audit_outstanding,
        }
    }

    /// Counts a recorded call. `target` is `None` when the caller named
    /// nothing that exists.
    pub fn call_recorded(
        &self,
        target: Option<&str>,
        decision: &'static str,
        outcome: &'static str,
        started: Instant,
    ) {
        let labels = CallLabels {
            target: target.unwrap_or("(unknown)").to_string(),
            decision,
            outcome,
        };
        self.calls.get_or_create(&labels).inc();
        self.call_seconds.observe(started.elapsed().as_secs_f64());
    }

    /// Starts timing `stage`; the time is recorded when the timer is dropped.
    pub fn time(&self, stage: Stage) -> StageTimer<'_> {
        StageTimer {
            histogram: &self.stages[stage as usize],
            started: Instant::now(),
            span: tracing::debug_span!("stage", otel.name = stage.name()),
        }
    }

    /// Counts a reload attempt of `bundle` (`policy` or `shadow`): `Ok(true)`
    /// when a new bundle took effect, `Ok(false)` when nothing changed.
    pub fn policy_reload(&self, bundle: &'static str, result: Result<bool, ()>) {
        let failing = match result {
            Ok(false) => false,
            Ok(true) => {
                let labels = ReloadLabels {
                    bundle,
                    result: "applied",
                };
                self.reloads.get_or_create(&labels).inc();
                false
            }
            Err(()) => {
                let labels = ReloadLabels {
                    bundle,
                    result: "refused",
                };
                self.reloads.get_or_create(&labels).inc();
                true
            }
        };
        self.reload_failing
            .get_or_create(&BundleLabels { bundle })
            .set(i64::from(failing));
    }

    /// The metrics in Prometheus' text format, with the gauges read now.
    pub fn encode(&self, now: Snapshot) -> String {
        self.in_flight
            .set(i64::try_from(now.in_flight).unwrap_or(i64::MAX));
        self.audit_outstanding
            .set(i64::try_from(now.audit_outstanding).unwrap_or(i64::MAX));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Records a stage's time when dropped, so early returns are counted too;
/// its span closes then.
#[derive(Debug)]
pub struct StageTimer<'a> {
    histogram: &'a Histogram,
    started: Instant,
    /// The stage's span (exported as a trace span when traces are on).
    span: tracing::Span,
}

impl StageTimer<'_> {
    /// The stage's span.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }
}

impl Drop for StageTimer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.started.elapsed().as_secs_f64());
    }
}
