//! Key-value state (`warden:plugin/kv`) through the `kv` fixture plugin, on
//! SQLite and PostgreSQL: roundtrip, persistence across a restart, scoping by
//! tenant and by plugin, quotas, bounded keys and values, and refusal without
//! the grant or for a tool that claims no side effects.

use serde_json::{Value, json};
use warden::ErrorCode;

use crate::fixtures;
use crate::harness::{ALLOW_ALL, Harness, Host, Store, error, manifest, output, toml_path};

/// A principal of another tenant than the harness's (`acme`).
const OTHER_TENANT: &str = "[[principals]]\nid = \"zed\"\ntoken = \"zed-test-token\"\n\
                            roles = [\"analyst\"]\ntenant = \"globex\"\n\n";

/// The `kv` plugin under `name`, with `grants`.
fn kv_plugin(harness: Harness, name: &str, grants: &str) -> Harness {
    harness.plugin_entry(
        name,
        &format!(
            "manifest = {}\ngrants = {grants}",
            toml_path(&manifest(fixtures::KV))
        ),
    )
}

fn host(store: Store, grants: &str) -> Harness {
    let harness = Harness::new(store)
        .policy(ALLOW_ALL)
        .extra_config(OTHER_TENANT);
    kv_plugin(harness, "kv", grants)
}

async fn call(host: &Host, principal: &str, tool: &str, args: Value) -> Value {
    output(&host.call(principal, tool, args).await).clone()
}

async fn set(host: &Host, principal: &str, key: &str, value: &str) {
    let stored = call(
        host,
        principal,
        "kv.set",
        json!({"key": key, "value": value}),
    )
    .await;
    assert_eq!(stored, json!({"stored": true}));
}

async fn get(host: &Host, principal: &str, tool: &str, key: &str) -> Value {
    call(host, principal, tool, json!({"key": key})).await["value"].clone()
}

async fn list(host: &Host, principal: &str, tool: &str, prefix: &str) -> Value {
    call(host, principal, tool, json!({"prefix": prefix})).await["keys"].clone()
}

/// Stops the kernel and starts a new one from the same config and database.
async fn restart(host: Host) -> Host {
    let Host {
        kernel,
        config_path,
        dir,
        db,
    } = host;
    drop(kernel);
    let config = warden::config::Config::load(&config_path).unwrap();
    let kernel = warden::Kernel::start(&config).await.unwrap();
    Host {
        kernel,
        config_path,
        dir,
        db,
    }
}

async fn roundtrip_scopes_and_restart(store: Store) {
    let grant = "{ kv = { max_bytes = 4096, max_keys = 16 } }";
    let host = kv_plugin(host(store, grant), "kv_other", grant)
        .start()
        .await;

    set(&host, "alice", "a", "1").await;
    set(&host, "alice", "ab", "2").await;
    set(&host, "alice", "b", "3").await;
    set(&host, "alice", "a", "one").await; // replaces
    assert_eq!(get(&host, "alice", "kv.get", "a").await, json!("one"));
    assert_eq!(get(&host, "alice", "kv.get", "missing").await, Value::Null);
    assert_eq!(
        list(&host, "alice", "kv.list", "a").await,
        json!(["a", "ab"])
    );
    assert_eq!(
        list(&host, "alice", "kv.list", "").await,
        json!(["a", "ab", "b"])
    );
    // `%` and `_` are not patterns.
    assert_eq!(list(&host, "alice", "kv.list", "%").await, json!([]));
    assert_eq!(list(&host, "alice", "kv.list", "_").await, json!([]));
    let deleted = call(&host, "alice", "kv.delete", json!({"key": "ab"})).await;
    assert_eq!(deleted, json!({"deleted": true}));
    let again = call(&host, "alice", "kv.delete", json!({"key": "ab"})).await;
    assert_eq!(again, json!({"deleted": false}));
    assert_eq!(list(&host, "alice", "kv.list", "").await, json!(["a", "b"]));

    // Another principal of the same tenant shares the state.
    assert_eq!(get(&host, "bob", "kv.get", "a").await, json!("one"));
    // Another tenant sees none of it, and its own writes stay its own.
    assert_eq!(get(&host, "zed", "kv.get", "a").await, Value::Null);
    assert_eq!(list(&host, "zed", "kv.list", "").await, json!([]));
    set(&host, "zed", "a", "zed's").await;
    assert_eq!(get(&host, "alice", "kv.get", "a").await, json!("one"));
    // The same component loaded as another plugin sees none of it either.
    assert_eq!(get(&host, "alice", "kv_other.get", "a").await, Value::Null);
    assert_eq!(list(&host, "alice", "kv_other.list", "").await, json!([]));

    let host = restart(host).await;
    assert_eq!(get(&host, "alice", "kv.get", "a").await, json!("one"));
    assert_eq!(list(&host, "alice", "kv.list", "").await, json!(["a", "b"]));
    assert_eq!(get(&host, "zed", "kv.get", "a").await, json!("zed's"));
    assert_eq!(list(&host, "alice", "kv_other.list", "").await, json!([]));
}

#[tokio::test]
async fn kv_roundtrip_scopes_and_restart_sqlite() {
    roundtrip_scopes_and_restart(Store::Sqlite).await;
}

#[tokio::test]
async fn kv_roundtrip_scopes_and_restart_postgres() {
    roundtrip_scopes_and_restart(Store::Postgres).await;
}

/// Sets `key` and expects the host's refusal, naming `expected`, to fail the
/// call with `capability-denied` and to be kept in the audit record.
async fn refused_set(host: &Host, key: &str, value: &str, expected: &str) {
    let response = host
        .call("alice", "kv.set", json!({"key": key, "value": value}))
        .await;
    let message = &error(&response, ErrorCode::CapabilityDenied).message;
    assert!(message.contains(expected), "{message}");
    let record = host.record(&response.call_id).await.record;
    assert!(
        record.refusals.iter().any(|r| r.contains(expected)),
        "{:?}",
        record.refusals
    );
}

async fn quotas_and_bounds(store: Store) {
    let host = host(
        store,
        "{ kv = { max_bytes = 20, max_keys = 2, max_key_bytes = 8, max_value_bytes = 10 } }",
    )
    .start()
    .await;
    set(&host, "alice", "k1", "aaaaaaaaa").await; // 2 + 9 = 11 bytes
    refused_set(&host, "k2", "bbbbbbbbb", "past its max_bytes of 20").await;
    // Replacing a value counts the new one only.
    set(&host, "alice", "k1", "a").await;
    set(&host, "alice", "k2", "b").await;
    refused_set(&host, "k3", "c", "past its max_keys of 2").await;
    refused_set(
        &host,
        "123456789",
        "c",
        "more than the grant's max_key_bytes of 8",
    )
    .await;
    refused_set(
        &host,
        "k1",
        "01234567890",
        "more than the grant's max_value_bytes of 10",
    )
    .await;
    refused_set(&host, "", "c", "a key may not be empty").await;
    refused_set(&host, "k\n1", "c", "contains control characters").await;
    // Nothing refused was stored; another tenant has its own quota.
    assert_eq!(
        list(&host, "alice", "kv.list", "").await,
        json!(["k1", "k2"])
    );
    assert_eq!(get(&host, "alice", "kv.get", "k1").await, json!("a"));
    set(&host, "zed", "k3", "c").await;

    // Concurrent writes, each of which fits alone, never pass the quota together.
    let writes = ["w1", "w2", "w3", "w4", "w5", "w6"]
        .map(|key| host.call("zed", "kv.set", json!({"key": key, "value": "v"})));
    let [a, b, c, d, e, f] = writes;
    let (a, b, c, d, e, f) = tokio::join!(a, b, c, d, e, f);
    let stored = [a, b, c, d, e, f]
        .iter()
        .filter(|response| response.result.is_ok())
        .count();
    assert_eq!(stored, 1, "zed held one key of two");
    assert_eq!(
        list(&host, "zed", "kv.list", "")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn kv_quotas_and_bounds_refuse_clearly_sqlite() {
    quotas_and_bounds(Store::Sqlite).await;
}

#[tokio::test]
async fn kv_quotas_and_bounds_refuse_clearly_postgres() {
    quotas_and_bounds(Store::Postgres).await;
}

#[tokio::test]
async fn kv_without_the_grant_is_refused() {
    // Requested but not granted: refused at load, naming what is missing.
    let refused = match host(Store::Sqlite, "{}").try_start().await {
        Ok(_) => panic!("a plugin requesting kv without the grant must not load"),
        Err((e, _)) => e.to_string(),
    };
    assert!(refused.contains("kv is not granted"), "{refused}");

    // Loaded anyway with the reduced set: every function is denied and recorded.
    let harness = Harness::new(Store::Sqlite).policy(ALLOW_ALL).plugin_entry(
        "kv",
        &format!(
            "manifest = {}\nallow_reduced = true",
            toml_path(&manifest(fixtures::KV))
        ),
    );
    let host = harness.start().await;
    for (tool, args) in [
        ("kv.set", json!({"key": "a", "value": "1"})),
        ("kv.get", json!({"key": "a"})),
        ("kv.list", json!({})),
        ("kv.delete", json!({"key": "a"})),
    ] {
        let response = host.call("alice", tool, args).await;
        let message = &error(&response, ErrorCode::CapabilityDenied).message;
        assert!(
            message.contains("plugin `kv` has no kv grant"),
            "{tool}: {message}"
        );
        let record = host.record(&response.call_id).await.record;
        assert_eq!(record.refusals.len(), 1, "{tool}: {:?}", record.refusals);
    }
}

#[tokio::test]
async fn kv_is_read_only_for_a_tool_that_claims_no_side_effects() {
    let host = host(Store::Sqlite, "{ kv = {} }").start().await;
    set(&host, "alice", "a", "1").await;
    let response = host
        .call("alice", "kv.set_quietly", json!({"key": "a", "value": "2"}))
        .await;
    let message = &error(&response, ErrorCode::CapabilityDenied).message;
    assert!(message.contains("may only read here"), "{message}");
    // `get` claims none too, and reads.
    assert_eq!(get(&host, "alice", "kv.get", "a").await, json!("1"));
}
