//! Bad configs, manifests and components are refused with messages that name
//! the file, field or plugin at fault.

use crate::fixtures;
use std::path::Path;

use crate::harness::{Harness, Store, manifest, repo, toml_path};

async fn load_error(harness: Harness) -> String {
    match harness.try_start().await {
        Ok(_) => panic!("expected the host to refuse this setup"),
        Err((e, _dir)) => e.to_string(),
    }
}

fn config_error(text: &str) -> String {
    let path = Path::new("/etc/warden/bad.toml");
    match warden::config::Config::parse(text, path) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn config_errors_name_the_file_and_the_field() {
    let base = "[policy]\ndir = \"p\"\n[audit]\nurl = \"sqlite://a.db\"\n";
    let cases = [
        ("[policy]\ndir = \"p\"\n", "missing field `audit`"),
        (&format!("{base}[server]\nlisten = 1\n") as &str, "listen"),
        (&format!("{base}[surprise]\n"), "unknown field `surprise`"),
        (
            "[policy]\ndir = \"p\"\n[audit]\nurl = \"sqlite://a.db\"\ndurability = \"fsync\"\n",
            "unknown variant `fsync`, expected `flush` or `commit`",
        ),
        (
            "[policy]\ndir = \"p\"\n[audit]\nurl = \"mysql://x\"\n",
            "field `audit.url`",
        ),
        (
            &format!("{base}[[principals]]\nid = \"a\"\ntoken = \"short\"\n"),
            "field `principals[0].token`",
        ),
        (
            &format!(
                "{base}[[principals]]\nid = \"a\"\ntoken = \"long-enough-1\"\n[[principals]]\nid = \"a\"\ntoken = \"long-enough-2\"\n"
            ),
            "field `principals[1].id`: `a` is defined twice",
        ),
        (
            &format!("{base}[plugins.Bad]\nmanifest = \"m.toml\"\n"),
            "plugins.Bad",
        ),
        (
            &format!(
                "{base}[plugins.x]\nmanifest = \"m.toml\"\ngrants.outbound_http = [\"https://x.com/path\"]\n"
            ),
            "field `plugins.x.grants.outbound_http[0]`",
        ),
        (
            &format!(
                "{base}[plugins.x]\nmanifest = \"m.toml\"\ngrants.directories = [{{ host = \"/nonexistent-dir\", guest = \"/d\", access = \"ro\" }}]\n"
            ),
            "field `plugins.x.grants.directories[0].host`",
        ),
        (
            &format!(
                "{base}[plugins.x]\nmanifest = \"m.toml\"\ngrants.directories = [{{ host = \"/tmp\", guest = \"/d\", access = \"rwx\" }}]\n"
            ),
            "unknown variant `rwx`",
        ),
        (
            &format!(
                "{base}[plugins.x]\nmanifest = \"m.toml\"\ngrants.kv = {{ max_key_bytes = 5000 }}\n"
            ),
            "field `plugins.x.grants.kv.max_key_bytes`: must be 1 to 1024",
        ),
        (
            &format!("{base}[plugins.x]\nmanifest = \"m.toml\"\ngrants.kv = {{ max_keys = 0 }}\n"),
            "field `plugins.x.grants.kv.max_keys`: must be at least 1",
        ),
        (
            &format!(
                "{base}[plugins.x]\nmanifest = \"m.toml\"\ngrants.kv = {{ max_value_bytes = 1048577 }}\n"
            ),
            "field `plugins.x.grants.kv.max_value_bytes`: must be 1 to 1048576",
        ),
        (
            &format!("{base}[plugins.x]\nmanifest = \"m.toml\"\ngrants.kv = {{ quota = 1 }}\n"),
            "unknown field `quota`",
        ),
    ];
    for (text, expected) in cases {
        let message = config_error(text);
        assert!(message.starts_with("/etc/warden/bad.toml"), "{message}");
        assert!(
            message.contains(expected),
            "expected `{expected}` in: {message}"
        );
    }
}

#[tokio::test]
async fn malformed_components_are_refused_naming_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let text_wasm =
        std::fs::read(repo().join("plugins/target/wasm32-wasip2/release/warden_text.wasm"))
            .unwrap_or_else(|_| {
                manifest(fixtures::TEXT);
                unreachable!()
            });
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "random",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
            "not a valid WebAssembly component",
        ),
        (
            "truncated",
            text_wasm[..text_wasm.len() / 2].to_vec(),
            "not a valid WebAssembly component",
        ),
        (
            "core-module",
            b"\0asm\x01\0\0\0".to_vec(),
            "not a valid WebAssembly component",
        ),
        ("empty", Vec::new(), "not a valid WebAssembly component"),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&path, bytes).unwrap();
        let harness = Harness::new(Store::Sqlite).plugin_entry(
            "bad",
            &format!(
                "manifest = {}\ncomponent = {}",
                toml_path(&manifest(fixtures::TEXT)),
                toml_path(&path)
            ),
        );
        let message = load_error(harness).await;
        assert!(message.starts_with("plugin `bad`"), "{name}: {message}");
        assert!(message.contains(expected), "{name}: {message}");
    }
}

#[tokio::test]
async fn a_component_that_does_not_match_its_pin_is_refused() {
    let pin = "0".repeat(64);
    let harness = Harness::new(Store::Sqlite).plugin_entry(
        "text",
        &format!(
            "manifest = {}\nsha256 = \"{pin}\"",
            toml_path(&manifest(fixtures::TEXT))
        ),
    );
    let message = load_error(harness).await;
    assert!(message.contains("but the config pins"), "{message}");
}

#[tokio::test]
async fn manifests_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "name = \"x\"\nversion = \"1\"\nkind = \"provider\"\ncomponent = \"x.wasm\"\n",
            "`kind` is \"provider\", but it is configured as a tool",
        ),
        (
            "name = \"x\"\nversion = \"1\"\nkind = \"provider\"\ncomponent = \"x.wasm\"\ntools = [\"a\"]\n",
            "field `tools`: a provider offers no tools",
        ),
        (
            "name = \"x\"\nversion = \"1\"\nkind = \"verifier\"\ncomponent = \"x.wasm\"\n",
            "`kind` is \"verifier\", but it is configured as a tool",
        ),
        (
            "name = \"x\"\nversion = \"1\"\nkind = \"tool\"\n",
            "missing field `component`",
        ),
        (
            "name = \"x\"\nversion = \"1\"\nkind = \"tool\"\ncomponent = \"x.wasm\"\n[capabilities]\ndirectories = [{ guest = \"data\", access = \"ro\" }]\n",
            "field `capabilities.directories[0].guest`",
        ),
        (
            "name = \"x\"\nversion = \"1\"\nkind = \"tool\"\ncomponent = \"x.wasm\"\n[capabilities]\nsockets = true\n",
            "unknown field `sockets`",
        ),
    ];
    for (i, (text, expected)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("m{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let harness = Harness::new(Store::Sqlite)
            .plugin_entry("x", &format!("manifest = {}", toml_path(&path)));
        let message = load_error(harness).await;
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains(expected),
            "expected `{expected}` in: {message}"
        );
    }
}

#[tokio::test]
async fn a_broken_policy_bundle_is_refused_naming_the_file() {
    let harness = Harness::new(Store::Sqlite).policy("package warden.authz\n\ndecision := {\n");
    let message = load_error(harness).await;
    assert!(message.starts_with("policy bundle"), "{message}");
    assert!(message.contains("policy.rego"), "{message}");
}

#[tokio::test]
async fn precompiled_components_are_cached_and_a_bad_cache_file_is_ignored() {
    let cache = tempfile::tempdir().unwrap();
    let settings = format!("[cache]\ndir = {}\n", toml_path(cache.path()));
    let start = || async {
        Harness::new(Store::Sqlite)
            .plugin(fixtures::TEXT, "{}")
            .extra_config(&settings)
            .start()
            .await
    };
    let host = start().await;
    let cached: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let sha = &host.kernel.registry().plugins().next().unwrap().sha256;
    assert!(
        cached[0]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(sha.as_str())
    );
    drop(host);

    // A warm start loads the precompiled file and serves.
    let host = start().await;
    crate::harness::output(&host.transform("alice", "warm", "upper").await);
    drop(host);

    // A corrupted cache file is ignored: the component is compiled again and the file rewritten.
    std::fs::write(&cached[0], b"not a precompiled component").unwrap();
    let host = start().await;
    crate::harness::output(&host.transform("alice", "again", "upper").await);
    assert_ne!(
        std::fs::read(&cached[0]).unwrap(),
        b"not a precompiled component"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cache.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o022, 0, "the cache is not writable by others");
    }
}

/// Where the call context lives: in the PostgreSQL audit database unless a
/// spool (which keeps answering through an outage) or SQLite says memory;
/// the operator may choose, except the database with SQLite.
#[test]
fn the_session_store_follows_the_audit_store_unless_chosen() {
    use warden::config::{Config, SessionStore};
    let path = Path::new("/etc/warden/warden.toml");
    let store = |audit: &str, sessions: &str| {
        let text = format!("[policy]\ndir = \"p\"\n[audit]\n{audit}\n{sessions}");
        Config::parse(&text, path).map(|c| c.sessions.store)
    };
    let pg = "url = \"postgres://warden@db/warden\"";
    let spooled = format!("{pg}\nspool = \"audit.spool\"");
    let sqlite = "url = \"sqlite://a.db\"";
    assert_eq!(store(pg, "").unwrap(), SessionStore::Database);
    assert_eq!(store(&spooled, "").unwrap(), SessionStore::Memory);
    assert_eq!(store(sqlite, "").unwrap(), SessionStore::Memory);
    let database = "[sessions]\nstore = \"database\"\n";
    assert_eq!(store(&spooled, database).unwrap(), SessionStore::Database);
    let memory = "[sessions]\nstore = \"memory\"\n";
    assert_eq!(store(pg, memory).unwrap(), SessionStore::Memory);
    let refused = store(sqlite, database).unwrap_err().to_string();
    assert!(refused.contains("field `sessions.store`"), "{refused}");
    assert!(
        config_error(&format!(
            "[policy]\ndir = \"p\"\n[audit]\n{sqlite}\n[sessions]\nstore = \"redis\"\n"
        ))
        .contains("unknown variant `redis`")
    );
}
