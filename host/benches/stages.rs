//! Per-stage cost of a governed call, in process (criterion): each stage of
//! `Kernel::call` on its own, on the same kernel, tool and arguments.
//!
//! Run with `cargo xtask bench` (builds the plugins first), or this suite
//! alone with `cargo bench -p warden --bench stages`. The end-to-end figures
//! (HTTP, MCP, concurrency, cold start) are in the `call` bench.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark stops at the first failure"
)]

#[path = "../../tests/e2e/harness.rs"]
mod harness;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use harness::{Harness, Store, sample_record};
use serde_json::json;
use warden::audit::chain_hash;
use warden::kernel::{CallRequest, canonical_json, check_output, policy_input};
use warden::policy::Stage;
use warden::principal::sha256_hex;
use warden::session::{CallLabels, Usage};

/// The tool every stage works on.
const TOOL: &str = "text.transform";

fn stages(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let host = runtime.block_on(Harness::new(Store::Sqlite).plugin("text", "{}").start());
    let kernel = &host.kernel;
    let request = CallRequest {
        principal: kernel.principals().by_id("alice").expect("alice"),
        tool: TOOL.into(),
        args: json!({"text": "benchmark", "op": "upper"}),
        session: None,
    };
    let tool = kernel
        .registry()
        .tool(TOOL)
        .expect("text.transform")
        .clone();
    let plugin = kernel
        .registry()
        .plugins()
        .find(|p| p.name == "text")
        .expect("the text plugin")
        .clone();
    let context = CallLabels {
        session: Vec::new(),
        principal: Vec::new(),
        usage: Usage {
            tenant_calls: 1,
            principal_calls: 1,
        },
    };
    let policy = kernel.policy();
    let input = policy_input(&request, &tool, context.clone());
    let args = request.args.to_string();
    let output = r#"{"text":"BENCHMARK"}"#;

    let mut group = c.benchmark_group("stage");
    group.bench_function("resolve", |b| {
        b.iter(|| kernel.registry().tool(black_box(TOOL)).is_some())
    });
    group.bench_function("schema check (args)", |b| {
        b.iter(|| tool.input.check(black_box(&request.args)))
    });
    group.bench_function("policy input", |b| {
        b.iter(|| policy_input(black_box(&request), &tool, context.clone()))
    });
    group.bench_function("policy decision (default bundle, RVM)", |b| {
        b.iter(|| {
            let decision = policy.decide(Stage::Call, black_box(&input));
            assert!(decision.expect("decision").allow);
        })
    });
    group.bench_function("sandbox: fresh instance + call", |b| {
        b.to_async(&runtime).iter(|| async {
            kernel
                .sandbox()
                .invoke(
                    &plugin.name,
                    &plugin.prepared,
                    &plugin.capabilities,
                    &tool.local_name,
                    black_box(&args),
                )
                .await
                .expect("invoke")
        })
    });
    group.bench_function("output checks (size, JSON, schema)", |b| {
        b.to_async(&runtime).iter(|| async {
            check_output(&tool, tool.capabilities(), black_box(output))
                .await
                .expect("output")
        })
    });
    group.bench_function("audit digests (args, output) + chain hash", |b| {
        let mut record = sample_record(uuid::Uuid::new_v4().to_string());
        b.iter(|| {
            record.args_digest = sha256_hex(canonical_json(black_box(&request.args)).as_bytes());
            record.output_digest = Some(sha256_hex(black_box(output).as_bytes()));
            chain_hash("chain", 1, &record.args_digest, &record)
        })
    });
    group.bench_function("audit enqueue", |b| {
        // Only the hand-over to the writer is timed; commits are awaited
        // between batches so the queue never fills.
        let audit = kernel.audit().clone();
        b.to_async(&runtime).iter_custom(|iters| {
            let audit = audit.clone();
            async move {
                let mut elapsed = std::time::Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let batch = left.min(256);
                    let mut commits = Vec::with_capacity(batch as usize);
                    let started = std::time::Instant::now();
                    for _ in 0..batch {
                        commits.push(
                            audit
                                .enqueue(sample_record(uuid::Uuid::new_v4().to_string()))
                                .await
                                .expect("enqueue"),
                        );
                    }
                    elapsed += started.elapsed();
                    for commit in commits {
                        commit.committed().await.expect("commit");
                    }
                    left -= batch;
                }
                elapsed
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("call");
    group.bench_function("governed call, audit committed (SQLite), sequential", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = kernel.call(request.clone()).await;
            response.result.expect("call")
        })
    });
    group.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);
