//! Budgets, end to end: reservations hold a budget as a hard limit across
//! concurrent requests and two `warden serve` processes sharing one
//! PostgreSQL; settlement charges what the provider reported; a host killed
//! mid-stream leaves a reservation that is reclaimed; policy sees budgets.

use std::time::Duration;

use serde_json::{Value, json};
use warden::audit::{AuditStore, Durability};
use warden::budget::{Amounts, Budget, Ledger, Period, Refusal, Scope, Settlement, Unit, Who};

use crate::harness::{ALLOW_ALL, Host, Server, Store, TestDb, http, token};
use crate::llm_gateway::{FakeProvider, gateway};

/// A principal that may set budgets (`budget-admin`), in tenant `acme`.
const BUDGET_ADMIN: &str = "[[principals]]\nid = \"treasurer\"\ntoken = \"treasurer-test-token\"\n\
     roles = [\"budget-admin\"]\ntenant = \"acme\"\n";

/// A chat request to `fast` with `max_tokens` 100, answered with 20 words.
fn request(extra: &str) -> String {
    json!({
        "model": "fast",
        "messages": [{"role": "user", "content": format!("hello [words:20] {extra}")}],
        "max_tokens": 100,
    })
    .to_string()
}

/// `POST /v1/chat/completions` as `principal`.
async fn complete(server: &str, principal: &str, body: &str) -> (u16, Value) {
    http(
        server,
        "POST",
        "/v1/chat/completions",
        Some(&token(principal)),
        body,
    )
    .await
    .expect("warden answers")
}

/// The budget `name` as `GET /v1/budgets` shows it.
async fn budget(server: &str, name: &str) -> Value {
    let (status, body) = http(server, "GET", "/v1/budgets", Some(&token("audra")), "")
        .await
        .expect("warden answers");
    assert_eq!(status, 200, "{body}");
    body["budgets"]
        .as_array()
        .and_then(|all| all.iter().find(|b| b["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no budget `{name}` in {body}"))
}

/// What the audit trail says the ledger charged, in millionths of a dollar.
async fn charged_in_the_trail(host: &Host) -> u64 {
    host.records()
        .await
        .iter()
        .filter_map(|r| r.record.spend.as_deref())
        .map(|c| serde_json::from_str::<Value>(c).unwrap())
        .filter_map(|c| c.pointer("/charged/micro_usd").and_then(Value::as_u64))
        .sum()
}

#[tokio::test]
async fn a_budget_is_a_hard_limit_across_500_concurrent_requests_on_two_hosts() {
    let provider = FakeProvider::start();
    let host = gateway(&provider, Store::Postgres)
        .policy(ALLOW_ALL)
        .extra_config(&format!(
            "{BUDGET_ADMIN}\n[budgets.acme-daily]\ntenant = \"acme\"\nlimit_usd = 1000\nperiod = \"daily\"\n"
        ))
        .start()
        .await;
    let (one, two) = (Server::start(&host).await, Server::start(&host).await);

    // One request shows the worst case a request reserves and what it costs.
    let slow = request("[slow:100]");
    let (status, answer) = complete(&one.addr, "alice", &slow).await;
    assert_eq!(status, 200, "{answer}");
    let call_id = answer["id"]
        .as_str()
        .unwrap()
        .strip_prefix("chatcmpl-")
        .unwrap();
    let record = host.record(call_id).await.record;
    let completion: Value = serde_json::from_str(record.completion.as_deref().unwrap()).unwrap();
    let spend: Value = serde_json::from_str(record.spend.as_deref().unwrap()).unwrap();
    let worst = spend["reserved"]["micro_usd"].as_u64().unwrap();
    let cost = spend["charged"]["micro_usd"].as_u64().unwrap();
    assert_eq!(cost, completion["cost_micro_usd"].as_u64().unwrap());
    assert!(
        cost > 0 && cost < worst,
        "charged {cost} of {worst} reserved"
    );
    // The provider was asked for no more than was reserved.
    let sent = provider.requests().await;
    assert_eq!(sent.last().unwrap()["body"]["max_tokens"], 100);

    // The budget, set at run time, now has room for 50 more worst cases.
    let limit = cost + 50 * worst;
    let (status, body) = http(
        &two.addr,
        "PUT",
        "/v1/budgets/acme-daily",
        Some("treasurer-test-token"),
        &json!({ "limit_usd": limit as f64 / 1e6 }).to_string(),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["budget"]["limit"], limit);
    // Only a budget-admin may set it.
    let (status, _) = http(
        &two.addr,
        "PUT",
        "/v1/budgets/acme-daily",
        Some(&token("audra")),
        r#"{"limit_usd": 1000}"#,
    )
    .await
    .unwrap();
    assert_eq!(status, 403);

    // 500 requests at once, half on each host, each slowed so they overlap.
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let server = if i % 2 == 0 {
                one.addr.clone()
            } else {
                two.addr.clone()
            };
            let body = slow.clone();
            tokio::spawn(async move { complete(&server, "alice", &body).await })
        })
        .collect();
    let (mut served, mut refused) = (0, 0);
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            200 => served += 1,
            429 => {
                assert_eq!(body["error"]["code"], "budget-exceeded", "{body}");
                assert_eq!(body["error"]["type"], "insufficient_quota");
                refused += 1;
            }
            other => panic!("neither served nor refused for its budget: {other} {body}"),
        }
    }
    assert_eq!(served + refused, 500);
    assert!(
        served >= 50,
        "the budget had room for 50 worst cases; served {served}"
    );
    assert!(refused > 0, "the budget cannot hold 500 requests");

    // Overshoot exactly 0; nothing left reserved; the ledger is the trail's sum.
    let status = budget(&one.addr, "acme-daily").await;
    let spent = status["spent"].as_u64().unwrap();
    assert!(spent <= limit, "spent {spent} of a {limit} budget");
    assert_eq!(status["reserved"], 0, "{status}");
    assert_eq!(spent, charged_in_the_trail(&host).await);
    assert_eq!(
        spent,
        (served + 1) * cost,
        "every served request costs the same"
    );
}

#[tokio::test]
async fn a_host_killed_mid_stream_leaves_a_reservation_that_is_reclaimed() {
    let provider = FakeProvider::start();
    let host = gateway(&provider, Store::Postgres)
        .policy(ALLOW_ALL)
        .extra_config(&format!(
            "[models.brief]\nadapter = \"openai\"\nupstream_model = \"x\"\norigin = \"{}\"\nsecret = \"provider_key\"\n\
             time_limit_ms = 6000\n\n\
             [budgets.tokens]\nprincipal = \"bob\"\nlimit_tokens = 100000\nperiod = \"monthly\"\n",
            provider.origin
        ))
        .start()
        .await;
    let mut doomed = Server::start(&host).await;
    // A stream of 20 words, half a second apart: the host dies in the middle.
    let body = json!({
        "model": "brief",
        "stream": true,
        "messages": [{"role": "user", "content": "[words:20] [slow:500]"}],
    })
    .to_string();
    let addr = doomed.addr.clone();
    let streaming = tokio::spawn(async move { complete(&addr, "bob", &body).await });
    let survivor = Server::start(&host).await;
    let mut held = Value::Null;
    for _ in 0..400 {
        held = budget(&survivor.addr, "tokens").await;
        if held["reserved"].as_u64() > Some(0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(held["reserved"].as_u64() > Some(0), "{held}");
    doomed.child.kill().unwrap();
    doomed.child.wait().unwrap();
    let _ = streaming.await;

    // The survivor reclaims it once it expires (the model's 6 s time limit
    // plus a grace period), and the ledger balances.
    let mut status = Value::Null;
    for _ in 0..400 {
        status = budget(&survivor.addr, "tokens").await;
        if status["reserved"] == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status["reserved"], 0, "never reclaimed: {status}");
    assert_eq!(status["spent"], 0, "{status}");
    let (code, history) = http(
        &survivor.addr,
        "GET",
        "/v1/budgets/tokens/history",
        Some(&token("audra")),
        "",
    )
    .await
    .unwrap();
    assert_eq!(code, 200, "{history}");
    assert_eq!(history["entries"][0]["state"], "reclaimed", "{history}");
}

#[tokio::test]
async fn policy_sees_budgets_and_the_cli_sets_them() {
    let provider = FakeProvider::start();
    // Deny when less than 1000 tokens are left; otherwise allow.
    let policy = r#"package warden.authz

default decision := {"allow": true, "reasons": []}

decision := {"allow": false, "reasons": [sprintf("budget %s is nearly spent", [b.name])]} if {
	some b in input.budget
	b.unit == "tokens"
	b.remaining < 1000
}
"#;
    let host = gateway(&provider, Store::Sqlite)
        .policy(policy)
        .extra_config(&format!(
            "[models.unpriced]\nadapter = \"openai\"\nupstream_model = \"x\"\norigin = \"{}\"\n\n\
             [budgets.bob-tokens]\nprincipal = \"bob\"\nlimit_tokens = 4000\nperiod = \"total\"\n\n\
             [budgets.money]\nprincipal = \"bob\"\nmodel = \"unpriced\"\nlimit_usd = 5\nperiod = \"daily\"\n",
            provider.origin
        ))
        .start()
        .await;
    let server = Server::start(&host).await;
    let (status, body) = complete(&server.addr, "bob", &request("")).await;
    assert_eq!(status, 200, "{body}");
    // With no `max_tokens`, the model's `max_output_tokens` (4096) is
    // reserved and sent, and it does not fit what is left.
    let (status, body) = complete(
        &server.addr,
        "bob",
        r#"{"model": "fast", "messages": [{"role": "user", "content": "hi"}]}"#,
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("budget `bob-tokens`"),
        "{body}"
    );
    // A money budget on a model without prices refuses it.
    let (status, body) = complete(
        &server.addr,
        "bob",
        r#"{"model": "unpriced", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}"#,
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "budget-unavailable");

    // The CLI lowers the limit; policy now sees less than 1000 left.
    let out = host.cli(&[
        "budgets",
        "set",
        "bob-tokens",
        "--tokens",
        "1000",
        "--by",
        "ops",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, body) = complete(&server.addr, "bob", &request("")).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nearly spent")
    );
    // Other principals are not in its scope.
    let (status, body) = complete(&server.addr, "alice", &request("")).await;
    assert_eq!(status, 200, "{body}");

    let out = host.cli(&["budgets", "show", "bob-tokens"]);
    assert!(out.status.success());
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["limit"], 1000);
    assert_eq!(shown["reserved"], 0);
    let out = host.cli(&["budgets", "history", "bob-tokens"]);
    let history: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(history["changes"][0]["by"], "ops");
    assert_eq!(history["changes"][0]["previous"], 4000);
    let states: Vec<_> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["settled"], "refused requests reserve nothing");
    let out = host.cli(&["budgets", "show", "nothing"]);
    assert_eq!(out.status.code(), Some(4));
}

#[tokio::test]
async fn a_ledger_that_cannot_be_reached_denies_the_completion() {
    let provider = FakeProvider::start();
    let spool = tempfile::tempdir().unwrap();
    let host = gateway(&provider, Store::Postgres)
        .policy(ALLOW_ALL)
        .audit_settings(&format!(
            "spool = {}",
            crate::harness::toml_path(&spool.path().join("audit.spool"))
        ))
        .extra_config("[budgets.daily]\ntenant = \"acme\"\nlimit_usd = 100\nperiod = \"daily\"\n")
        .start()
        .await;
    let server = Server::start(&host).await;
    let (status, body) = complete(&server.addr, "alice", &request("")).await;
    assert_eq!(status, 200, "{body}");
    let before = provider.requests().await.len();

    // The database goes away: the audit record can be spooled, the spend
    // cannot be reserved, so nothing is sent and the caller is refused.
    host.db.as_ref().unwrap().drop_database().await;
    let (status, body) = complete(&server.addr, "alice", &request("")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "budget-unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("postgres"),
        "the store's own error leaked: {message}"
    );
    assert_eq!(
        provider.requests().await.len(),
        before,
        "nothing went upstream"
    );
}

/// A ledger whose database stops answering (packets dropped, not refused)
/// denies completions at once rather than each waiting out the connection
/// time-out, and serves again once the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_that_stops_answering_denies_fast_and_recovers() {
    let provider = FakeProvider::start();
    let spool = tempfile::tempdir().unwrap();
    let mut relay = crate::harness::Relay::new().await;
    relay.up().await;
    let mut db = crate::harness::TestDb::create().await;
    db.url = relay.url(&db.url);
    let host = gateway(&provider, Store::Postgres)
        .database(db)
        .policy(ALLOW_ALL)
        .audit_settings(&format!(
            "spool = {}\ncommit_timeout_ms = 2000",
            crate::harness::toml_path(&spool.path().join("audit.spool"))
        ))
        .extra_config(
            "[sessions]\nstore = \"memory\"\n\
             [budgets.daily]\ntenant = \"acme\"\nlimit_usd = 100\nperiod = \"daily\"\n",
        )
        .start()
        .await;
    let principal = host.kernel.principals().by_id("alice").unwrap();
    let ask = || warden::CallRequest {
        principal: principal.clone(),
        tool: "fast".into(),
        args: serde_json::from_str(&request("")).unwrap(),
        session: None,
        contract: None,
        trace: None,
    };
    crate::harness::output(&host.kernel.complete(ask()).await);

    relay.stall();
    let mut denials = Vec::new();
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(5) {
        let t = std::time::Instant::now();
        let response = host.kernel.complete(ask()).await;
        crate::harness::error(&response, warden::ErrorCode::BudgetUnavailable);
        denials.push(t.elapsed());
    }
    denials.sort();
    let median = denials[denials.len() / 2];
    assert!(
        denials.len() >= 20,
        "only {} denials in 5 s: {denials:?}",
        denials.len()
    );
    assert!(
        median < std::time::Duration::from_millis(100),
        "median denial {median:?}"
    );

    relay.up().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let response = host.kernel.complete(ask()).await;
        if response.result.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            response.result
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The ledger's own rules, on `store`: all or nothing across budgets,
/// settling once, releasing, reclaiming, and refusing a model without prices.
async fn ledger_rules(store: AuditStore) {
    let tokens = |name: &str, scope: Scope, limit| Budget {
        name: name.into(),
        scope,
        unit: Unit::Tokens,
        period: Period::Daily,
        limit,
    };
    let ledger = Ledger::new(
        store,
        vec![
            tokens(
                "a-tenant",
                Scope {
                    tenant: Some("acme".into()),
                    ..Scope::default()
                },
                100,
            ),
            tokens(
                "b-alice",
                Scope {
                    principal: Some("alice".into()),
                    ..Scope::default()
                },
                50,
            ),
            Budget {
                unit: Unit::Usd,
                ..tokens(
                    "c-money",
                    Scope {
                        model: Some("unpriced".into()),
                        ..Scope::default()
                    },
                    1_000_000,
                )
            },
        ],
    );
    let who = |principal| Who {
        principal,
        tenant: "acme",
        team: None,
        model: Some("fast"),
    };
    let worst = |tokens| Amounts {
        micro_usd: 0,
        tokens,
        requests: 1,
    };
    let hour = Duration::from_secs(3600);
    let counts = |ledger: &Ledger| {
        let ledger = ledger.clone();
        async move {
            ledger
                .list()
                .await
                .unwrap()
                .into_iter()
                .map(|s| (s.budget.name, s.spent, s.reserved))
                .collect::<Vec<_>>()
        }
    };
    let held = ledger
        .reserve("c1", who("alice"), worst(40), true, hour)
        .await;
    assert_eq!(held.unwrap().unwrap().budgets, ["a-tenant", "b-alice"]);
    // `b-alice` refuses: `a-tenant` keeps nothing of it.
    let refused = ledger
        .reserve("c2", who("alice"), worst(20), true, hour)
        .await;
    assert!(
        matches!(&refused, Err(Refusal::Exceeded { budget, used: 40, asked: 20, limit: 50, .. }) if budget == "b-alice"),
        "{refused:?}"
    );
    let held = ledger
        .reserve("c3", who("bob"), worst(60), true, hour)
        .await;
    assert_eq!(held.unwrap().unwrap().budgets, ["a-tenant"]);
    let refused = ledger.reserve("c4", who("bob"), worst(1), true, hour).await;
    assert!(
        matches!(refused, Err(Refusal::Exceeded { used: 100, .. })),
        "{refused:?}"
    );
    ledger
        .settle("c1", 2, Settlement::Charged(worst(10)))
        .await
        .unwrap();
    ledger
        .settle("c1", 2, Settlement::Charged(worst(10)))
        .await
        .unwrap();
    ledger.settle("c3", 1, Settlement::Released).await.unwrap();
    assert_eq!(
        counts(&ledger).await,
        [
            ("a-tenant".into(), 10, 0),
            ("b-alice".into(), 10, 0),
            ("c-money".into(), 0, 0)
        ]
    );
    // Expired, reclaimed, then settled late: still charged.
    let held = ledger
        .reserve("c5", who("alice"), worst(30), true, Duration::ZERO)
        .await;
    assert_eq!(held.unwrap().unwrap().budgets.len(), 2);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(ledger.reclaim().await.unwrap(), 2);
    assert_eq!(counts(&ledger).await[0], ("a-tenant".into(), 10, 0));
    ledger
        .settle("c5", 2, Settlement::Charged(worst(5)))
        .await
        .unwrap();
    assert_eq!(
        counts(&ledger).await,
        [
            ("a-tenant".into(), 15, 0),
            ("b-alice".into(), 15, 0),
            ("c-money".into(), 0, 0)
        ]
    );
    // A money budget refuses a model without prices, before reserving anything.
    let unpriced = Who {
        model: Some("unpriced"),
        ..who("bob")
    };
    let refused = ledger.reserve("c6", unpriced, worst(1), false, hour).await;
    assert_eq!(
        refused,
        Err(Refusal::Unpriced {
            budget: "c-money".into()
        })
    );
    assert_eq!(counts(&ledger).await[0], ("a-tenant".into(), 15, 0));
}

#[tokio::test]
async fn the_ledger_keeps_its_rules_on_postgres_and_sqlite() {
    let db = TestDb::create().await;
    let connect = |url: String| async move {
        AuditStore::connect(&url, Duration::from_secs(5), Durability::Commit)
            .await
            .unwrap()
    };
    ledger_rules(connect(db.url.clone()).await).await;
    let dir = tempfile::tempdir().unwrap();
    ledger_rules(
        connect(format!(
            "sqlite://{}",
            dir.path().join("audit.db").display()
        ))
        .await,
    )
    .await;
}

#[tokio::test]
async fn rate_limits_refuse_past_their_minute_with_retry_after() {
    let provider = FakeProvider::start();
    let host = gateway(&provider, Store::Sqlite)
        .policy(ALLOW_ALL)
        .extra_config(
            "[rate_limits.bob-rpm]\nprincipal = \"bob\"\nrequests_per_minute = 3\n\n\
             [rate_limits.fast-tpm]\nmodel = \"fast\"\ntokens_per_minute = 100000\n",
        )
        .start()
        .await;
    let server = Server::start(&host).await;
    // The minute must not turn over between the requests and the check.
    let second = chrono::Utc::now().timestamp() % 60;
    if second > 50 {
        tokio::time::sleep(Duration::from_secs((61 - second) as u64)).await;
    }
    for _ in 0..3 {
        let (status, body) = complete(&server.addr, "bob", &request("")).await;
        assert_eq!(status, 200, "{body}");
    }
    let response = crate::harness::post_with_headers(
        &server.addr,
        "/v1/chat/completions",
        "bob",
        "",
        &request(""),
    )
    .await;
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 429"), "{response}");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"]["code"], "rate-limited", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bob-rpm")
    );
    let retry: u64 = head
        .lines()
        .find_map(|l| l.strip_prefix("retry-after: "))
        .expect("a Retry-After header")
        .trim()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "retry after {retry} s");
    // Others are not held to bob's limit; the tokens-per-minute limit counts
    // every request to `fast`, settled to the tokens used.
    let (status, _) = complete(&server.addr, "alice", &request("")).await;
    assert_eq!(status, 200);
    let (_, listed) = http(
        &server.addr,
        "GET",
        "/v1/budgets",
        Some(&token("audra")),
        "",
    )
    .await
    .unwrap();
    let limits: Vec<_> = listed["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap(),
                b["unit"].as_str().unwrap(),
                b["spent"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        limits,
        [("bob-rpm", "requests", 3), ("fast-tpm", "tokens", 4 * 22)]
    );
}

#[tokio::test]
async fn a_cached_answer_costs_nothing_and_never_crosses_tenants() {
    let provider = FakeProvider::start();
    let host = gateway(&provider, Store::Postgres)
        .policy(ALLOW_ALL)
        .extra_config(
            "[[principals]]\nid = \"gus\"\ntoken = \"gus-test-token\"\nroles = []\n\
             tenant = \"globex\"\n\n\
             [response_cache]\nttl_s = 60\n\n\
             [budgets.acme]\ntenant = \"acme\"\nlimit_usd = 10\nperiod = \"daily\"\n",
        )
        .start()
        .await;
    let server = Server::start(&host).await;
    let deterministic = json!({
        "model": "fast",
        "temperature": 0,
        "messages": [{"role": "user", "content": "hello [words:5]"}],
        "max_tokens": 50,
    })
    .to_string();
    let record = |answer: &Value| {
        let call_id = answer["id"]
            .as_str()
            .unwrap()
            .strip_prefix("chatcmpl-")
            .unwrap()
            .to_string();
        let host = &host;
        async move {
            let record = host.record(&call_id).await.record;
            serde_json::from_str::<Value>(record.completion.as_deref().unwrap()).unwrap()
        }
    };

    let (status, first) = complete(&server.addr, "alice", &deterministic).await;
    assert_eq!(status, 200, "{first}");
    let stored = record(&first).await;
    assert_eq!(stored["cache"], "stored", "{stored}");
    assert_eq!(provider.requests().await.len(), 1);

    // The same request again, by another principal of the tenant: one
    // upstream call in all, two records, one charge.
    let (status, second) = complete(&server.addr, "bob", &deterministic).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["choices"], first["choices"]);
    assert_ne!(second["id"], first["id"]);
    assert_eq!(
        provider.requests().await.len(),
        1,
        "answered from the cache"
    );
    let hit = record(&second).await;
    assert_eq!(hit["cache"], "hit", "{hit}");
    assert_eq!(hit["cost_micro_usd"], 0);
    assert!(
        hit.get("budget").is_none(),
        "nothing reserved for a hit: {hit}"
    );
    let spent = budget(&server.addr, "acme").await["spent"]
        .as_u64()
        .unwrap();
    assert_eq!(spent, stored["cost_micro_usd"].as_u64().unwrap());

    // Another tenant's identical request misses; a request that is not
    // deterministic is never answered from the cache.
    let (status, _) = complete(&server.addr, "gus", &deterministic).await;
    assert_eq!(status, 200);
    assert_eq!(
        provider.requests().await.len(),
        2,
        "tenants never share entries"
    );
    let warm = deterministic.replace("\"temperature\":0", "\"temperature\":0.7");
    for _ in 0..2 {
        let (status, answer) = complete(&server.addr, "alice", &warm).await;
        assert_eq!(status, 200, "{answer}");
        assert!(record(&answer).await.get("cache").is_none());
    }
    assert_eq!(provider.requests().await.len(), 4);
}

#[tokio::test]
async fn a_failing_model_falls_back_cools_down_and_is_priced_at_its_dearest_fallback() {
    let provider = FakeProvider::start();
    // Nothing listens on port 9 here: `down` cannot be reached.
    let host = gateway(&provider, Store::Sqlite)
        .policy(ALLOW_ALL)
        .extra_config(&format!(
            "[models.down]\nadapter = \"openai\"\nupstream_model = \"cheap\"\n\
             tokenizer = \"o200k_base\"\n\
             origin = \"http://127.0.0.1:9\"\nsecret = \"provider_key\"\n\
             prices = {{ input = 0.01, output = 0.01 }}\nfallbacks = [\"fast\"]\ncooldown_s = 1\n\n\
             [models.sluggish]\nadapter = \"openai\"\nupstream_model = \"slow\"\n\
             origin = \"{0}\"\nsecret = \"provider_key\"\nprices = {{ input = 0.01, output = 0.01 }}\n\
             time_limit_ms = 300\nfallbacks = [\"fast\"]\n\n\
             [models.pricey]\nadapter = \"openai\"\nupstream_model = \"big\"\n\
             origin = \"{0}\"\nsecret = \"provider_key\"\nprices = {{ input = 10, output = 10 }}\n\
             fallbacks = [\"fast\"]\nchoose = \"cheapest\"\n\n\
             [budgets.acme]\ntenant = \"acme\"\nlimit_usd = 10\nperiod = \"daily\"\n",
            provider.origin
        ))
        .start()
        .await;
    let server = Server::start(&host).await;
    let ask = |model: &str, prompt: &str| {
        json!({
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 100,
        })
        .to_string()
    };
    let completion = |answer: Value| {
        let host = &host;
        async move {
            let call_id = answer["id"]
                .as_str()
                .expect("an answer")
                .strip_prefix("chatcmpl-")
                .unwrap()
                .to_string();
            let record = host.record(&call_id).await.record;
            let mut completion =
                serde_json::from_str::<Value>(record.completion.as_deref().unwrap()).unwrap();
            // What the ledger reserved and charged, beside the completion.
            completion["spend"] = serde_json::from_str(record.spend.as_deref().unwrap()).unwrap();
            (record.tool, completion)
        }
    };

    // `down` cannot be reached: `fast` serves, and the record says both.
    let (status, answer) = complete(&server.addr, "alice", &ask("down", "hi")).await;
    assert_eq!(status, 200, "{answer}");
    let (asked, served) = completion(answer).await;
    assert_eq!(asked, "down");
    assert_eq!(served["model"], "fast");
    assert_eq!(
        served["hops"],
        json!([{"model": "down", "error": "provider-unavailable"}])
    );
    // Reserved at `fast`'s prices, the dearer: as much as asking `fast` itself.
    let (_, direct) = complete(&server.addr, "alice", &ask("fast", "hi")).await;
    let (_, direct) = completion(direct).await;
    assert_eq!(served["spend"]["reserved"], direct["spend"]["reserved"]);
    assert_eq!(served["cost_micro_usd"], direct["cost_micro_usd"]);

    // Cooling down, `down` is passed over; once its second is over, it is
    // tried again.
    let (_, answer) = complete(&server.addr, "alice", &ask("down", "hi")).await;
    let (_, served) = completion(answer).await;
    assert_eq!(
        served["hops"],
        json!([{"model": "down", "error": "cooling-down"}])
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, answer) = complete(&server.addr, "alice", &ask("down", "hi")).await;
    let (_, served) = completion(answer).await;
    assert_eq!(
        served["hops"],
        json!([{"model": "down", "error": "provider-unavailable"}])
    );

    // Too slow for its 300 ms: `fast` (with its own time limit) answers.
    let (status, answer) = complete(&server.addr, "alice", &ask("sluggish", "[slow:600] hi")).await;
    assert_eq!(status, 200, "{answer}");
    let (_, served) = completion(answer).await;
    assert_eq!(served["model"], "fast");
    assert_eq!(
        served["hops"],
        json!([{"model": "sluggish", "error": "timeout"}])
    );

    // `choose = "cheapest"`: `fast` first, though `pricey` was asked for.
    let (status, answer) = complete(&server.addr, "alice", &ask("pricey", "hi")).await;
    assert_eq!(status, 200, "{answer}");
    let (asked, served) = completion(answer).await;
    assert_eq!(
        (asked.as_str(), &served["model"]),
        ("pricey", &json!("fast"))
    );
    assert!(served.get("hops").is_none(), "{served}");
}

/// A tool priced at a quarter of a dollar a call, a money budget of one
/// dollar and a token budget (which tool calls never hold), for tenant
/// `acme`. Policy withholds the output of `reverse` (the tool has run) and
/// denies `trim` while showing what `input.budget` holds.
fn priced_tools(store: Store) -> crate::harness::Harness {
    let policy = r#"package warden.authz

default decision := {"allow": true, "reasons": []}

decision := {"allow": false, "reasons": [sprintf("budgets %v", [[sprintf("%s:%s:%d", [b.name, b.unit, b.remaining]) | some b in input.budget]])]} if {
	input.args.op == "trim"
}

default output_decision := {"allow": true, "reasons": []}

output_decision := {"allow": false, "reasons": ["reversed text is withheld"]} if {
	input.args.op == "reverse"
}
"#;
    crate::harness::Harness::new(store)
        .plugin(crate::fixtures::TEXT, "{}")
        .policy(policy)
        .extra_config(
            "[tool_prices]\n\"text.*\" = 0.25\n\"text.stats\" = 0.5\n\n\
             [budgets.alice-tools]\nprincipal = \"alice\"\nlimit_usd = 1\nperiod = \"daily\"\n\n\
             [budgets.acme-tokens]\ntenant = \"acme\"\nlimit_tokens = 10\nperiod = \"daily\"\n",
        )
}

/// What the audit trail says the ledger charged for each call, by call id.
async fn spend_of(host: &Host, call_id: &str) -> Option<Value> {
    host.record(call_id)
        .await
        .record
        .spend
        .map(|s| serde_json::from_str(&s).unwrap())
}

async fn a_priced_tool_call_is_reserved_and_charged_through_the_ledger(store: Store) {
    use warden::ErrorCode;
    let host = priced_tools(store).start().await;
    let transform = |op: &str| json!({"text": "Hello", "op": op});

    // Policy sees the money budget only, before anything is reserved.
    let denied = host
        .call("alice", "text.transform", transform("trim"))
        .await;
    let error = crate::harness::error(&denied, ErrorCode::PolicyDenied);
    assert_eq!(error.reasons, ["budgets [\"alice-tools:usd:1000000\"]"]);
    assert_eq!(spend_of(&host, &denied.call_id).await, None);
    // Arguments the tool refuses are refused before a reservation.
    let invalid = host
        .call(
            "alice",
            "text.transform",
            json!({"text": "x", "op": "rot13"}),
        )
        .await;
    crate::harness::error(&invalid, ErrorCode::InvalidArgs);
    assert_eq!(spend_of(&host, &invalid.call_id).await, None);

    // Allowed: charged the price.
    let served = host
        .call("alice", "text.transform", transform("upper"))
        .await;
    crate::harness::output(&served);
    let spend = spend_of(&host, &served.call_id).await.unwrap();
    assert_eq!(spend["budgets"], json!(["alice-tools"]));
    assert_eq!(spend["reserved"]["micro_usd"], 250_000);
    assert_eq!(spend["charged"]["micro_usd"], 250_000);
    assert_eq!(spend["charged"]["tokens"], 0);
    // The tool ran and policy withheld its output: still charged.
    let withheld = host
        .call("alice", "text.transform", transform("reverse"))
        .await;
    crate::harness::error(&withheld, ErrorCode::PolicyDenied);
    let spend = spend_of(&host, &withheld.call_id).await.unwrap();
    assert_eq!(spend["charged"]["micro_usd"], 250_000);
    // The dearer glob prices `stats`: $0.50 of the $0.50 left.
    let stats = host
        .call("alice", "text.stats", json!({"text": "a b"}))
        .await;
    crate::harness::output(&stats);
    assert_eq!(
        spend_of(&host, &stats.call_id).await.unwrap()["charged"]["micro_usd"],
        500_000
    );

    // The dollar is spent: the next call is refused before it runs.
    let refused = host
        .call("alice", "text.transform", transform("upper"))
        .await;
    let error = crate::harness::error(&refused, ErrorCode::BudgetExceeded);
    assert!(
        error
            .message
            .contains("budget `alice-tools` has $0.000000 of $1.000000 left")
            && error.message.contains("its price per call"),
        "{}",
        error.message
    );
    assert_eq!(spend_of(&host, &refused.call_id).await, None);
    // Another principal's budget is not this one.
    crate::harness::output(&host.call("bob", "text.transform", transform("upper")).await);

    let statuses = host.kernel.ledger().list().await.unwrap();
    let tools = statuses
        .iter()
        .find(|s| s.budget.name == "alice-tools")
        .unwrap();
    assert_eq!((tools.spent, tools.reserved), (1_000_000, 0));
    let tokens = statuses
        .iter()
        .find(|s| s.budget.name == "acme-tokens")
        .unwrap();
    assert_eq!((tokens.spent, tokens.reserved), (0, 0));
    assert_eq!(charged_in_the_trail(&host).await, 1_000_000);
}

#[tokio::test]
async fn a_priced_tool_call_is_reserved_and_charged_through_the_ledger_sqlite() {
    a_priced_tool_call_is_reserved_and_charged_through_the_ledger(Store::Sqlite).await;
}

#[tokio::test]
async fn a_priced_tool_call_is_reserved_and_charged_through_the_ledger_postgres() {
    a_priced_tool_call_is_reserved_and_charged_through_the_ledger(Store::Postgres).await;
}

#[tokio::test]
async fn concurrent_priced_tool_calls_never_pass_their_budget() {
    let host = priced_tools(Store::Postgres).start().await;
    let calls = (0..40).map(|i| {
        host.call(
            "alice",
            "text.transform",
            json!({"text": format!("call {i}"), "op": "upper"}),
        )
    });
    let answers = crate::exhaustion::join_all(calls.collect()).await;
    let served = answers.iter().filter(|a| a.result.is_ok()).count();
    for answer in answers.iter().filter_map(|a| a.result.as_ref().err()) {
        assert_eq!(answer.code, warden::ErrorCode::BudgetExceeded, "{answer}");
    }
    assert_eq!(served, 4, "a dollar holds four calls at $0.25");
    assert_eq!(charged_in_the_trail(&host).await, 1_000_000);
}

#[tokio::test]
async fn an_openai_model_reserves_its_prompt_counted_by_its_own_tokenizer() {
    let provider = FakeProvider::start();
    // `fast` is `gpt-4o-mini` (o200k_base); `bytewise` the same model
    // counted one token per JSON byte.
    let host = gateway(&provider, Store::Sqlite)
        .policy(ALLOW_ALL)
        .extra_config(&format!(
            "[models.bytewise]\nadapter = \"openai\"\nupstream_model = \"gpt-4o-mini\"\n\
             origin = \"{}\"\nsecret = \"provider_key\"\ntokenizer = \"bytes\"\n\n\
             [budgets.bob-tokens]\nprincipal = \"bob\"\nlimit_tokens = 1000\nperiod = \"total\"\n",
            provider.origin
        ))
        .start()
        .await;
    let server = Server::start(&host).await;
    // 3,000 bytes of text, 501 tokens in o200k_base.
    let ask = |model: &str| {
        json!({
            "model": model,
            "messages": [{"role": "user", "content": "hello ".repeat(500)}],
            "max_tokens": 100,
        })
        .to_string()
    };
    let (status, body) = complete(&server.addr, "bob", &ask("bytewise")).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "budget-exceeded");

    let (status, answer) = complete(&server.addr, "bob", &ask("fast")).await;
    assert_eq!(status, 200, "{answer}");
    let call_id = answer["id"]
        .as_str()
        .unwrap()
        .strip_prefix("chatcmpl-")
        .unwrap();
    let spend: Value =
        serde_json::from_str(host.record(call_id).await.record.spend.as_deref().unwrap()).unwrap();
    let reserved = spend["reserved"]["tokens"].as_u64().unwrap();
    // 501 tokens of text, the message's framing and role, the format's
    // overhead, and `max_tokens`.
    assert!(
        (601..=700).contains(&reserved),
        "reserved {reserved} tokens for 501 of prompt and 100 of completion"
    );
}
