//! Test harness: builds a real host (config file, plugins, policy bundle,
//! SQLite or PostgreSQL audit store) in a temporary directory.
//!
//! ```ignore
//! let host = Harness::new(Store::Sqlite).plugin(fixtures::TEXT, "{}").start().await;
//! let response = host.call("alice", "text.transform", json!({...})).await;
//! ```

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support, shared by the tests and the benchmark"
)]

use crate::fixtures::Fixture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use warden::audit::StoredRecord;
use warden::config::Config;
use warden::{CallError, CallRequest, CallResponse, ErrorCode, Kernel};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Which audit store a test host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// Principals every test host knows: id, roles.
pub const PRINCIPALS: &[(&str, &[&str])] = &[
    ("alice", &["analyst"]),
    ("bob", &["researcher"]),
    ("root", &["admin"]),
    ("audra", &["auditor"]),
    ("prom", &["metrics"]),
    ("nobody", &[]),
];

/// The bearer token of a test principal.
pub fn token(principal: &str) -> String {
    format!("{principal}-test-token")
}

/// A policy bundle that allows every call, to show the sandbox alone contains a plugin.
pub const ALLOW_ALL: &str =
    "package warden.authz\n\ndecision := {\"allow\": true, \"reasons\": []}\n";

pub struct Harness {
    store: Store,
    plugins: Vec<String>,
    policy: PolicySource,
    limits: String,
    policy_settings: String,
    audit_settings: String,
    database: Option<TestDb>,
    extra_config: String,
    secrets: Vec<(String, String)>,
    attributes: Vec<(String, String)>,
}

enum PolicySource {
    Dir(PathBuf),
    Text(String),
}

/// A started host and what it needs to stay alive.
pub struct Host {
    pub kernel: Kernel,
    pub config_path: PathBuf,
    pub dir: tempfile::TempDir,
    pub db: Option<TestDb>,
}

/// Path of a first-party plugin's manifest; fails with a fix if its
/// component was not built.
pub fn manifest(plugin: Fixture) -> PathBuf {
    let path = PathBuf::from(plugin.manifest);
    let loaded = warden::manifest::Manifest::load(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        loaded.component.exists(),
        "{} is missing: build the plugins first with `cargo xtask plugins` \
         (or run the suite with `cargo xtask test`)",
        loaded.component.display()
    );
    path
}

impl Harness {
    pub fn new(store: Store) -> Harness {
        Harness {
            store,
            plugins: Vec::new(),
            policy: PolicySource::Dir(repo().join("policies")),
            limits: String::new(),
            policy_settings: String::new(),
            audit_settings: String::new(),
            database: None,
            extra_config: String::new(),
            secrets: Vec::new(),
            attributes: Vec::new(),
        }
    }

    /// Appends raw tables to the config (e.g. `[cache]`).
    pub fn extra_config(mut self, text: &str) -> Harness {
        self.extra_config.push_str(text);
        self.extra_config.push('\n');
        self
    }

    /// Uses this PostgreSQL database (for tests that control the server).
    pub fn database(mut self, db: TestDb) -> Harness {
        self.database = Some(db);
        self
    }

    /// Adds lines to the `[audit]` table, e.g. `store_policy_input = true`.
    pub fn audit_settings(mut self, lines: &str) -> Harness {
        self.audit_settings = lines.to_string();
        self
    }

    /// Gives a test principal attributes (a TOML inline table).
    pub fn principal_attributes(mut self, principal: &str, table: &str) -> Harness {
        self.attributes
            .push((principal.to_string(), table.to_string()));
        self
    }

    /// Uses the policy bundle in `dir`.
    pub fn policy_dir(mut self, dir: &Path) -> Harness {
        self.policy = PolicySource::Dir(dir.to_path_buf());
        self
    }

    /// Adds lines to the `[policy]` table, e.g. `timeout_ms = 10`.
    pub fn policy_settings(mut self, lines: &str) -> Harness {
        self.policy_settings = lines.to_string();
        self
    }

    /// Defines `[secrets.NAME]` with this value.
    pub fn secret(mut self, name: &str, value: &str) -> Harness {
        self.secrets.push((name.to_string(), value.to_string()));
        self
    }

    /// Adds a first-party plugin with `grants`, a TOML inline table such as
    /// `{ outbound_http = ["http://127.0.0.1:8080"] }`.
    pub fn plugin(self, plugin: Fixture, grants: &str) -> Harness {
        let manifest = manifest(plugin);
        self.plugin_entry(
            plugin.name,
            &format!("manifest = {}\ngrants = {grants}", toml_path(&manifest)),
        )
    }

    /// Adds a raw `[plugins.NAME]` table body.
    pub fn plugin_entry(mut self, name: &str, body: &str) -> Harness {
        self.plugins.push(format!("[plugins.{name}]\n{body}\n"));
        self
    }

    /// Uses a policy bundle made of one file with this text.
    pub fn policy(mut self, rego: &str) -> Harness {
        self.policy = PolicySource::Text(rego.to_string());
        self
    }

    /// Sets the `[limits]` table body.
    pub fn limits(mut self, body: &str) -> Harness {
        self.limits = body.to_string();
        self
    }

    /// Writes the config and starts the kernel; panics with the load error.
    pub async fn start(self) -> Host {
        match self.try_start().await {
            Ok(host) => host,
            Err((e, _)) => panic!("host failed to start: {e}"),
        }
    }

    /// Writes the config and starts the kernel, returning the load error if any.
    pub async fn try_start(self) -> Result<Host, (warden::Error, tempfile::TempDir)> {
        let dir = tempfile::tempdir().expect("temp dir");
        let policy_dir = match &self.policy {
            PolicySource::Dir(d) => d.clone(),
            PolicySource::Text(text) => {
                let d = dir.path().join("policy");
                std::fs::create_dir(&d).expect("policy dir");
                std::fs::write(d.join("policy.rego"), text).expect("policy file");
                d
            }
        };
        let db = match (self.store, self.database) {
            (Store::Postgres, Some(db)) => Some(db),
            (Store::Postgres, None) => Some(TestDb::create().await),
            (Store::Sqlite, _) => None,
        };
        let audit_url = match &db {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", dir.path().join("audit.db").display()),
        };
        let mut config = format!(
            "[policy]\ndir = {}\n{}\n\n[audit]\nurl = \"{audit_url}\"\n{}\n\n[limits]\n{}\n\n",
            toml_path(&policy_dir),
            self.policy_settings,
            self.audit_settings,
            self.limits
        );
        for (id, roles) in PRINCIPALS {
            let attributes = self
                .attributes
                .iter()
                .find(|(p, _)| p == id)
                .map(|(_, table)| format!("attributes = {table}\n"))
                .unwrap_or_default();
            config.push_str(&format!(
                "[[principals]]\nid = \"{id}\"\ntoken = \"{}\"\nroles = {roles:?}\ntenant = \"acme\"\n{attributes}\n",
                token(id)
            ));
        }
        for (name, value) in &self.secrets {
            config.push_str(&format!("[secrets.{name}]\nvalue = \"{value}\"\n\n"));
        }
        config.push_str(&self.extra_config);
        config.push('\n');
        for plugin in &self.plugins {
            config.push_str(plugin);
        }
        let config_path = dir.path().join("warden.toml");
        std::fs::write(&config_path, &config).expect("config file");
        let loaded = match Config::load(&config_path) {
            Ok(c) => c,
            Err(e) => return Err((e, dir)),
        };
        match Kernel::start(&loaded).await {
            Ok(kernel) => Ok(Host {
                kernel,
                config_path,
                dir,
                db,
            }),
            Err(e) => Err((e, dir)),
        }
    }
}

/// Grants for the hostile fixture: its two directories, its environment
/// variable (plus one it did not request), and `extra` (e.g. `time_limit_ms = 500`).
pub fn hostile_grants(rw: &Path, ro: &Path, extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    format!(
        "{{ directories = [{{ host = {}, guest = \"/data/rw\", access = \"rw\" }}, \
         {{ host = {}, guest = \"/data/ro\", access = \"ro\" }}], \
         env = {{ GRANTED_VAR = \"visible\", UNREQUESTED_VAR = \"hidden\" }}{extra} }}",
        toml_path(rw),
        toml_path(ro)
    )
}

/// A path as a TOML string.
pub fn toml_path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

impl Host {
    /// Calls `tool` as the principal `principal`, without a session.
    pub async fn call(&self, principal: &str, tool: &str, args: Value) -> CallResponse {
        self.call_in(principal, None, tool, args).await
    }

    /// Calls `tool` as `principal` in `session` (from [`Host::open_session`]).
    pub async fn call_in(
        &self,
        principal: &str,
        session: Option<&str>,
        tool: &str,
        args: Value,
    ) -> CallResponse {
        let principal = self
            .kernel
            .principals()
            .by_id(principal)
            .expect("known principal");
        self.kernel
            .call(CallRequest {
                principal,
                tool: tool.to_string(),
                args,
                session: session.map(str::to_string),
                contract: None,
                trace: None,
            })
            .await
    }

    /// Opens a session for `principal`.
    pub async fn open_session(&self, principal: &str) -> String {
        let principal = self
            .kernel
            .principals()
            .by_id(principal)
            .expect("known principal");
        self.kernel
            .sessions()
            .open(&principal)
            .await
            .expect("open a session")
    }

    /// Runs the `warden` binary with this host's config.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .output()
            .expect("run warden")
    }

    /// Calls `text.transform` as `principal`.
    pub async fn transform(&self, principal: &str, text: &str, op: &str) -> CallResponse {
        self.call(
            principal,
            "text.transform",
            serde_json::json!({"text": text, "op": op}),
        )
        .await
    }

    /// A connection pool to this host's PostgreSQL test database.
    pub async fn postgres(&self) -> sqlx::PgPool {
        let db = self.db.as_ref().expect("a PostgreSQL host");
        sqlx::PgPool::connect(&db.url)
            .await
            .expect("connect to the test database")
    }

    /// Every audit record, oldest first.
    pub async fn records(&self) -> Vec<warden::audit::StoredRecord> {
        self.kernel
            .audit()
            .store()
            .query(&warden::audit::AuditFilter::default())
            .await
            .expect("audit query")
    }

    /// The audit record of a call.
    pub async fn record(&self, call_id: &str) -> StoredRecord {
        self.kernel
            .audit()
            .store()
            .by_call_id(call_id)
            .await
            .expect("audit query")
            .unwrap_or_else(|| panic!("no audit record for call {call_id}"))
    }
}

/// `harness` with the built-in `secrets`, `pii` (masking) and `injection`
/// verifiers on `stages` (a TOML list).
pub fn with_builtin_verifiers(harness: Harness, stages: &str) -> Harness {
    harness.extra_config(&format!(
        "[verifiers.secrets]\nmanifest = {}\nstages = {stages}\n\n\
         [verifiers.pii]\nmanifest = {}\nstages = {stages}\n\
         grants = {{ env = {{ WARDEN_PII_REDACTION = \"mask\" }} }}\n\n\
         [verifiers.injection]\nmanifest = {}\nstages = {stages}\n",
        toml_path(&manifest(crate::fixtures::SECRETS)),
        toml_path(&manifest(crate::fixtures::PII)),
        toml_path(&manifest(crate::fixtures::INJECTION)),
    ))
}

/// Mixed text of about `bytes` bytes: prose with numbers, dates, versions
/// and ticket ids, the kind of text a verifier must read through without a
/// finding.
pub fn mixed_text(bytes: usize) -> String {
    let line = "Order 4471 shipped to the Berlin office on 2026-11-30; contact ops at \
                the usual alias, ticket INC-20931, build 1.24.7, retries=3, region eu-west-1. ";
    line.repeat(bytes / line.len() + 1)[..bytes].to_string()
}

/// A plausible audit record of an allowed `text.transform` call, for
/// measuring the audit path alone.
pub fn sample_record(call_id: String) -> warden::audit::AuditRecord {
    warden::audit::AuditRecord {
        call_id,
        recorded_at: warden::audit::AuditRecord::now(),
        principal: "alice".into(),
        tenant: "acme".into(),
        session: None,
        tool: "text.transform".into(),
        plugin: Some("text".into()),
        plugin_sha256: Some("0".repeat(64)),
        upstream: None,
        policy_hash: "0".repeat(64),
        decision: "allow".into(),
        reasons: Vec::new(),
        decisions: vec![warden::audit::StageDecision {
            stage: "call".into(),
            decision: "allow".into(),
            reasons: Vec::new(),
        }],
        args_digest: "0".repeat(64),
        outcome: "ok".into(),
        output_digest: None,
        error: None,
        duration_us: 10,
        intent: false,
        shadow: None,
        policy_input: None,
        refusals: Vec::new(),
        verdicts: Vec::new(),
        completion: None,
        sealed_text: None,
        spend: None,
    }
}

/// The output of a successful call, or a panic showing the error.
pub fn output(response: &CallResponse) -> &Value {
    match &response.result {
        Ok(v) => v,
        Err(e) => panic!("call {} failed: {e}", response.call_id),
    }
}

/// The error of a failed call, checked against the expected code.
pub fn error(response: &CallResponse, code: ErrorCode) -> &CallError {
    match &response.result {
        Ok(v) => panic!("expected {code}, got output {v}"),
        Err(e) => {
            assert_eq!(e.code, code, "unexpected error: {e}");
            e
        }
    }
}

/// Tests that restart PostgreSQL take this lock exclusively; every other test
/// database holds it shared, so a restart never hits an unrelated test.
static POSTGRES_LOCK: std::sync::LazyLock<Arc<tokio::sync::RwLock<()>>> =
    std::sync::LazyLock::new(Arc::default);

/// Exclusive use of the PostgreSQL server, for tests that stop and start it.
pub async fn postgres_exclusive() -> tokio::sync::OwnedRwLockWriteGuard<()> {
    POSTGRES_LOCK.clone().write_owned().await
}

/// Starts PostgreSQL when dropped, so a failing restart test never leaves it down.
pub struct StartPostgresOnDrop;

impl Drop for StartPostgresOnDrop {
    fn drop(&mut self) {
        pg_ctl_status("start");
    }
}

/// Runs `pg_ctlcluster <version> main <action>` (override the command with
/// `WARDEN_TEST_PG_CTL`, which gets the action appended).
pub fn pg_ctl(action: &str) {
    assert!(
        pg_ctl_status(action),
        "`pg_ctl {action}` failed: restarting PostgreSQL needs its owner or root \
         (or WARDEN_TEST_PG_CTL set to a command that can)"
    );
}

fn pg_ctl_status(action: &str) -> bool {
    let command = match std::env::var("WARDEN_TEST_PG_CTL") {
        Ok(command) => command,
        Err(_) => {
            let Some(version) = std::fs::read_dir("/etc/postgresql").ok().and_then(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .max()
            }) else {
                return false;
            };
            format!("pg_ctlcluster --skip-systemctl-redirect {version} main")
        }
    };
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{command} {action}"))
        .status()
        .is_ok_and(|s| s.success())
}

/// A PostgreSQL database created for one test and dropped after it.
pub struct TestDb {
    pub url: String,
    admin_url: String,
    name: String,
    _shared: Option<tokio::sync::OwnedRwLockReadGuard<()>>,
}

impl TestDb {
    /// Creates a fresh database on the server named by `WARDEN_TEST_POSTGRES_URL`
    /// (default `postgres://postgres@127.0.0.1:5432/postgres`).
    pub async fn create() -> TestDb {
        let shared = POSTGRES_LOCK.clone().read_owned().await;
        let mut db = TestDb::create_unlocked().await;
        db._shared = Some(shared);
        db
    }

    /// Creates a database without taking the shared lock (the caller holds it exclusively).
    pub async fn create_unlocked() -> TestDb {
        let admin_url = std::env::var("WARDEN_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let admin = sqlx::PgPool::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {admin_url}: {e}\n\
                 These tests need a real PostgreSQL. Start it (`pg_ctlcluster 15 main start`; \
                 `.ci/run` does this) or set WARDEN_TEST_POSTGRES_URL to a server where the \
                 user may CREATE DATABASE."
            )
        });
        let name = format!("warden_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&admin_url);
        TestDb {
            url: format!("{base}/{name}"),
            admin_url,
            name,
            _shared: None,
        }
    }

    /// Drops the database now, cutting every open connection.
    pub async fn drop_database(&self) {
        let admin = sqlx::PgPool::connect(&self.admin_url)
            .await
            .expect("admin connection");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&admin)
        .await
        .expect("drop test database");
        admin.close().await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Dropping needs async I/O; do it on a private runtime so it works
        // whether or not the test's runtime is still alive.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(admin) = sqlx::PgPool::connect(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

/// A local HTTP server on 127.0.0.1 that records the requests it receives.
///
/// `/redirect?to=URL` answers 302 to URL; `/big` answers a 10 MiB body;
/// `/unavailable` answers 503; every
/// other path answers the body given to [`TestServer::start`].
pub struct TestServer {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    headers: Arc<std::sync::Mutex<Vec<axum::http::HeaderMap>>>,
}

impl TestServer {
    pub async fn start(body: &'static str) -> TestServer {
        let hits = Arc::new(AtomicUsize::new(0));
        let headers = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (counter, seen) = (hits.clone(), headers.clone());
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (counter, seen) = (counter.clone(), seen.clone());
            async move {
                use axum::response::IntoResponse;
                counter.fetch_add(1, Ordering::SeqCst);
                seen.lock().unwrap().push(request.headers().clone());
                let query = request.uri().query().unwrap_or_default().to_string();
                match request.uri().path() {
                    "/redirect" => {
                        let to = query.strip_prefix("to=").unwrap_or_default().to_string();
                        (axum::http::StatusCode::FOUND, [("location", to)]).into_response()
                    }
                    "/big" => "x".repeat(10 << 20).into_response(),
                    "/unavailable" => {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "try later").into_response()
                    }
                    _ => body.into_response(),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind test server");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestServer {
            addr,
            hits,
            headers,
        }
    }

    /// The headers of every request received, in order.
    pub fn received_headers(&self) -> Vec<axum::http::HeaderMap> {
        self.headers.lock().unwrap().clone()
    }

    /// `http://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A grant that lets a plugin reach this server: its origin, and the
    /// loopback address it lives on (refused unless granted explicitly).
    pub fn grant(&self) -> String {
        format!(
            "{{ outbound_http = [\"{}\"], private_ranges = [\"127.0.0.1/32\"] }}",
            self.origin()
        )
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// `127.0.0.1:PORT` with a port free now.
fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// A `warden serve` process on a free port.
pub struct Server {
    pub child: std::process::Child,
    pub addr: String,
}

impl Server {
    pub async fn start(host: &Host) -> Server {
        Server::spawn(host, &free_addr(), &[]).await
    }

    /// Starts `warden serve` on `addr` (a replica restarted where it was).
    pub async fn start_on(host: &Host, addr: &str) -> Server {
        Server::spawn(host, addr, &[]).await
    }

    /// Starts `warden serve` with these environment variables set.
    pub async fn start_with_env(host: &Host, env: &[(&str, &str)]) -> Server {
        Server::spawn(host, &free_addr(), env).await
    }

    #[expect(
        clippy::zombie_processes,
        reason = "Server::drop kills and waits for the child"
    )]
    async fn spawn(host: &Host, addr: &str, env: &[(&str, &str)]) -> Server {
        let addr = addr.to_string();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("--config")
            .arg(&host.config_path)
            .args(["serve", "--listen", &addr])
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..300 {
            if http(&addr, "GET", "/healthz", None, "").await.is_some() {
                return Server { child, addr };
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("warden serve did not come up on {addr}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON `POST` to `path` as `principal` with `extra_headers` (each line
/// ending in `\r\n`, sent as given): the whole raw response, status line
/// and headers included. For tests of headers [`http`] does not send.
pub async fn post_with_headers(
    addr: &str,
    path: &str,
    principal: &str,
    extra_headers: &str,
    body: &str,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n{extra_headers}\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        token(principal),
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// A minimal HTTP/1.1 client: returns (status, body) or None if the connection failed.
pub async fn http(
    addr: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> Option<(u16, Value)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// A raw MCP session over `warden mcp`'s stdio, one JSON-RPC message per line.
pub struct StdioSession {
    pub child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl StdioSession {
    pub async fn start(host: &Host) -> StdioSession {
        StdioSession::start_as(host, "alice").await
    }

    /// `warden mcp --as principal`, initialised.
    pub async fn start_as(host: &Host, principal: &str) -> StdioSession {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("--config")
            .arg(&host.config_path)
            .args(["mcp", "--as", principal])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        use tokio::io::AsyncBufReadExt;
        let mut session = StdioSession {
            child,
            stdin,
            stdout: tokio::io::BufReader::new(stdout).lines(),
        };
        session
            .send_line(
                &serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"}}})
                .to_string(),
            )
            .await;
        assert_eq!(session.response().await["id"], 0);
        session
            .send_line(r#"{"jsonrpc": "2.0", "method": "notifications/initialized"}"#)
            .await;
        session
    }

    pub async fn send_line(&mut self, line: &str) {
        use tokio::io::AsyncWriteExt;
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The next response (requests and notifications from the server are skipped).
    pub async fn response(&mut self) -> Value {
        loop {
            let line =
                tokio::time::timeout(std::time::Duration::from_secs(30), self.stdout.next_line())
                    .await
                    .expect("a response within 30 s")
                    .unwrap()
                    .expect("the server closed stdout");
            let message: Value = serde_json::from_str(&line).unwrap();
            if message.get("result").is_some() || message.get("error").is_some() {
                return message;
            }
        }
    }

    pub async fn call_transform(&mut self, id: u64) -> Value {
        self.send_line(
            &serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
                "name": "text.transform", "arguments": {"text": "ok", "op": "upper"}}})
            .to_string(),
        )
        .await;
        self.response().await
    }
}

/// A TCP relay to PostgreSQL that a test can cut (connections reset, port
/// closed) and restore on the same port, to stand for a server outage.
pub struct Relay {
    port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
    forward: Arc<std::sync::atomic::AtomicBool>,
    /// New connections are accepted and never answered (a network that
    /// drops packets, not one that refuses them).
    stalled: Arc<std::sync::atomic::AtomicBool>,
    cut: Arc<tokio::sync::Notify>,
}

impl Relay {
    pub async fn new() -> Relay {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Relay {
            port,
            task: None,
            forward: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            stalled: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            cut: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Relays again (binding the port if it was closed).
    pub async fn up(&mut self) {
        self.forward.store(true, Ordering::SeqCst);
        self.stalled.store(false, Ordering::SeqCst);
        if self.task.is_some() {
            return;
        }
        // The port is free again once the closed relay's sockets are gone.
        let mut attempts = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(e) if attempts < 100 => {
                    attempts += 1;
                    let _ = e;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => panic!("relay port {}: {e}", self.port),
            }
        };
        let (forward, cut) = (self.forward.clone(), self.cut.clone());
        let stalled = self.stalled.clone();
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            let mut held = Vec::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                if stalled.load(Ordering::SeqCst) {
                    held.push(inbound); // open, never answered
                    continue;
                }
                if !forward.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let cut = cut.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect("127.0.0.1:5432").await
                    {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            () = cut.notified() => {}
                        }
                    }
                });
            }
        }));
    }

    /// Cuts every relayed connection and then accepts and closes each new
    /// one at once: the store fails fast, as after a reset, instead of a
    /// refused port's connect retries.
    pub fn refuse(&mut self) {
        self.forward.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    /// Cuts every relayed connection; new ones connect and then hang, as
    /// when the database's network drops packets.
    pub fn stall(&mut self) {
        self.stalled.store(true, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    /// Closes the port and every relayed connection.
    pub fn down(&mut self) {
        self.cut.notify_waiters();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// `url` with its host and port replaced by the relay's.
    pub fn url(&self, url: &str) -> String {
        url.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", self.port))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.down();
    }
}

/// Every answered call has exactly one final record.
pub async fn assert_recorded(host: &Host, answered: &[String]) {
    let records = host.records().await;
    let mut recorded: Vec<_> = records
        .iter()
        .filter(|r| !r.record.intent)
        .map(|r| r.record.call_id.clone())
        .collect();
    let total = recorded.len();
    recorded.sort();
    recorded.dedup();
    assert_eq!(recorded.len(), total, "no duplicate records");
    let missing: Vec<_> = answered
        .iter()
        .filter(|id| recorded.binary_search(id).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "{} answered calls have no record: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}
