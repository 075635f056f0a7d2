//! The OpenAI-compatible gateway, end to end: the official `openai` Python
//! SDK talks to `warden serve`, which serves completions through the real
//! `openai` and `anthropic` adapter components from a fake provider
//! (`fake_provider.py`, both wire formats) that the test starts on 127.0.0.1.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::fixtures;
use crate::harness::{
    Harness, Host, Server, Store, http, manifest, repo, token, toml_path, with_builtin_verifiers,
};
use crate::mcp::python;

/// The key the fake provider accepts, held by Warden as a secret.
const PROVIDER_KEY: &str = "provider-secret-key";

/// The fake provider, killed when dropped.
pub(crate) struct FakeProvider {
    child: Child,
    pub(crate) origin: String,
    pub(crate) addr: String,
}

impl FakeProvider {
    pub(crate) fn start() -> FakeProvider {
        let mut child = Command::new("python3")
            .arg(repo().join("tests/e2e/fake_provider.py"))
            .args(["--key", PROVIDER_KEY])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start fake_provider.py with python3");
        let stdout = child.stdout.take().expect("its stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("its port line");
        let port = serde_json::from_str::<Value>(&line).expect("{\"port\": N}")["port"]
            .as_u64()
            .expect("a port");
        FakeProvider {
            child,
            origin: format!("http://127.0.0.1:{port}"),
            addr: format!("127.0.0.1:{port}"),
        }
    }

    /// What the provider received, oldest first.
    pub(crate) async fn requests(&self) -> Vec<Value> {
        let (status, body) = http(&self.addr, "GET", "/_requests", None, "")
            .await
            .expect("the fake provider answers");
        assert_eq!(status, 200);
        body.as_array().cloned().unwrap_or_default()
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A host serving `fast` (OpenAI format) and `claude` (Anthropic format),
/// both from `provider`.
pub(crate) fn gateway(provider: &FakeProvider, store: Store) -> Harness {
    let origin = &provider.origin;
    Harness::new(store)
        .secret("provider_key", PROVIDER_KEY)
        .extra_config(&format!(
            "[adapters.openai]\nmanifest = {openai}\n\n\
             [adapters.anthropic]\nmanifest = {anthropic}\n\n\
             [models.fast]\nadapter = \"openai\"\nupstream_model = \"gpt-4o-mini\"\n\
             origin = \"{origin}\"\nsecret = \"provider_key\"\ncontext_window = 4096\n\
             prices = {{ input = 0.15, cached_input = 0.075, output = 0.6 }}\n\n\
             [models.\"claude-3.5\"]\nadapter = \"anthropic\"\nupstream_model = \"claude-x\"\n\
             origin = \"{origin}\"\nsecret = \"provider_key\"\n\
             prices = {{ input = 3, output = 15 }}\n",
            openai = toml_path(&manifest(fixtures::OPENAI)),
            anthropic = toml_path(&manifest(fixtures::ANTHROPIC)),
        ))
}

/// Runs one scenario of the OpenAI SDK client against `server` as
/// `principal` and returns its report.
pub(crate) fn sdk(server: &Server, principal: &str, scenario: &str, args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(repo().join("tests/e2e/openai_client.py"))
        .arg(scenario)
        .args(["--base-url", &format!("http://{}/v1", server.addr)])
        .args(["--key", &token(principal)])
        .args(args)
        .output()
        .expect("run the OpenAI SDK client");
    assert!(
        out.status.success(),
        "OpenAI client failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client report")
}

/// The call id of the completion an SDK report describes.
fn completion_call_id(report: &Value) -> &str {
    report["id"]
        .as_str()
        .and_then(|id| id.strip_prefix("chatcmpl-"))
        .expect("a Warden completion id")
}

/// The audit record of the completion `call_id` (the SDK sees `chatcmpl-<call_id>`).
async fn completion_record(host: &Host, id: &str) -> Value {
    let call_id = id
        .strip_prefix("chatcmpl-")
        .expect("a Warden completion id");
    let record = host.record(call_id).await;
    serde_json::from_str(record.record.completion.as_deref().expect("a completion")).unwrap()
}

#[tokio::test]
async fn an_openai_sdk_client_gets_completions_from_both_adapters() {
    let provider = FakeProvider::start();
    let host = gateway(&provider, Store::Postgres).start().await;
    let server = Server::start(&host).await;

    for (model, upstream) in [("fast", "gpt-4o-mini"), ("claude-3.5", "claude-x")] {
        let report = sdk(
            &server,
            "bob",
            "chat",
            &["--model", model, "--prompt", "hello there"],
        );
        assert_eq!(report["content"], "echo: hello there", "{model}: {report}");
        assert_eq!(report["finish_reason"], "stop", "{model}");
        assert_eq!(report["usage"]["prompt_tokens"], 2, "{model}");
        assert_eq!(report["usage"]["completion_tokens"], 3, "{model}");
        let completion = completion_record(&host, report["id"].as_str().unwrap()).await;
        assert_eq!(completion["model"], model);
        assert_eq!(completion["upstream_model"], upstream);
        assert_eq!(completion["prompt_tokens"], 2);
        assert_eq!(completion["completion_tokens"], 3);
        assert_eq!(completion["finish_reason"], "stop");
    }

    // What reached the provider: the upstream model id, the host's
    // credential where each API wants it, and nothing of the caller's.
    let requests = provider.requests().await;
    let openai = requests
        .iter()
        .find(|r| r["path"] == "/v1/chat/completions")
        .expect("an OpenAI request");
    assert_eq!(openai["body"]["model"], "gpt-4o-mini");
    assert_eq!(
        openai["headers"]["authorization"],
        format!("Bearer {PROVIDER_KEY}")
    );
    let anthropic = requests
        .iter()
        .find(|r| r["path"] == "/v1/messages")
        .expect("an Anthropic request");
    assert_eq!(anthropic["body"]["model"], "claude-x");
    assert_eq!(anthropic["headers"]["x-api-key"], PROVIDER_KEY);
    assert!(anthropic["headers"].get("authorization").is_none());
    let sent = serde_json::to_string(&requests).unwrap();
    assert!(
        !sent.contains(&token("bob")),
        "the caller's key went upstream"
    );

    // Cost at the configured prices, rounded up: 2 × 0.15 + 3 × 0.6 = 2.1
    // micro-dollars for `fast`; 2 × 3 + 3 × 15 for `claude-3.5`.
    let records = host.records().await;
    let costs: Vec<u64> = records
        .iter()
        .filter_map(|r| r.record.completion.as_deref())
        .map(|c| {
            serde_json::from_str::<Value>(c).unwrap()["cost_micro_usd"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(costs, vec![3, 51]);
    let verified = host.cli(&["audit", "verify"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[tokio::test]
async fn tool_calls_and_json_schema_answers_pass_through() {
    let provider = FakeProvider::start();
    let host = gateway(&provider, Store::Sqlite).start().await;
    let server = Server::start(&host).await;

    for model in ["fast", "claude-3.5"] {
        let report = sdk(&server, "bob", "tools", &["--model", model]);
        assert_eq!(report["finish_reason"], "tool_calls", "{model}: {report}");
        let call = &report["tool_calls"][0];
        assert_eq!(call["name"], "get_weather", "{model}");
        let arguments: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(arguments, json!({"city": "Paris"}), "{model}");
    }
    let report = sdk(&server, "bob", "json", &["--model", "fast"]);
    assert_eq!(report["parsed"], json!({"answer": "42"}), "{report}");
    // The tools offered and the schema asked for reached the provider.
    let requests = provider.requests().await;
    let sent = &requests.last().unwrap()["body"];
    assert_eq!(sent["response_format"]["type"], "json_schema");
    assert_eq!(sent["response_format"]["json_schema"]["name"], "answer");
    let tools = &requests[0]["body"]["tools"][0]["function"];
    assert_eq!(tools["name"], "get_weather");
    // Anthropic cannot be asked for a JSON schema: refused, and said so.
    let report = sdk(&server, "bob", "json", &["--model", "claude-3.5"]);
    assert_eq!(report["error"]["status"], 400, "{report}");
    assert_eq!(report["error"]["code"], "unsupported-request");
}

#[tokio::test]
async fn policy_decides_which_models_a_principal_sees_and_uses() {
    let provider = FakeProvider::start();
    let host = gateway(&provider, Store::Sqlite).start().await;
    let server = Server::start(&host).await;

    let report = sdk(&server, "bob", "models", &[]);
    assert_eq!(report["models"], json!(["claude-3.5", "fast"]));
    // alice (analyst) is granted tools but no model.
    assert_eq!(sdk(&server, "alice", "models", &[])["models"], json!([]));
    let (status, one) = http(
        &server.addr,
        "GET",
        "/v1/models/fast",
        Some(&token("bob")),
        "",
    )
    .await
    .unwrap();
    assert_eq!((status, &one["id"]), (200, &json!("fast")), "{one}");
    let (status, hidden) = http(
        &server.addr,
        "GET",
        "/v1/models/fast",
        Some(&token("alice")),
        "",
    )
    .await
    .unwrap();
    assert_eq!(status, 404, "{hidden}");
    assert_eq!(hidden["error"]["code"], "model_not_found");
    let denied = sdk(&server, "alice", "chat", &["--model", "fast"]);
    assert_eq!(denied["error"]["status"], 403, "{denied}");
    assert_eq!(denied["error"]["type"], "permission_error");
    assert_eq!(denied["error"]["code"], "policy-denied");
    assert!(
        denied["error"]["message"]
            .as_str()
            .unwrap()
            .contains("policy denied `fast`"),
        "{denied}"
    );
    let unknown = sdk(&server, "bob", "chat", &["--model", "gpt-5"]);
    assert_eq!(unknown["error"]["status"], 404, "{unknown}");
    assert_eq!(unknown["error"]["code"], "model_not_found");
    // The same from the command line.
    let asked = host.cli(&["chat", "fast", "from the shell", "--as", "bob"]);
    assert!(asked.status.success(), "{asked:?}");
    assert_eq!(
        String::from_utf8_lossy(&asked.stdout),
        "echo: from the shell\n"
    );
    let refused = host.cli(&["chat", "fast", "hi", "--as", "alice"]);
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    let stranger = sdk(&server, "mallory", "chat", &["--model", "fast"]);
    assert_eq!(stranger["error"]["status"], 401, "{stranger}");
    // A prompt past the context window (4096 tokens, estimated) never
    // reaches the provider.
    let before = provider.requests().await.len();
    let long = "word ".repeat(4000);
    let refused = sdk(
        &server,
        "bob",
        "chat",
        &["--model", "fast", "--prompt", &long],
    );
    assert_eq!(refused["error"]["status"], 403, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("context window"),
        "{refused}"
    );
    assert_eq!(provider.requests().await.len(), before);
    // Every refusal is in the trail, with the model it asked for.
    let records = host.records().await;
    let outcomes: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.record.tool.as_str(), r.record.outcome.as_str()))
        .collect();
    assert!(
        outcomes.contains(&("fast", "policy-denied")),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&("gpt-5", "unknown-model")),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn provider_failures_are_openai_errors_with_the_right_status() {
    let provider = FakeProvider::start();
    let host = gateway(&provider, Store::Sqlite).start().await;
    let server = Server::start(&host).await;

    for model in ["fast", "claude-3.5"] {
        for (marker, status, code) in [
            ("[status:429]", 429, "provider-rate-limited"),
            ("[status:500]", 503, "provider-unavailable"),
            ("[status:400]", 400, "provider-rejected"),
            ("[malformed]", 502, "provider-error"),
        ] {
            let report = sdk(
                &server,
                "bob",
                "chat",
                &["--model", model, "--prompt", marker],
            );
            let error = &report["error"];
            assert_eq!(error["status"], status, "{model} {marker}: {report}");
            assert_eq!(error["code"], code, "{model} {marker}");
            if status == 429 {
                assert_eq!(error["retry_after"], "1", "{model}: {report}");
            }
        }
    }
    // A stream the provider refuses at once is an ordinary error; one that
    // breaks off is stopped with an error event, and nothing unchecked leaks.
    for model in ["fast", "claude-3.5"] {
        let refused = sdk(
            &server,
            "bob",
            "stream",
            &["--model", model, "--prompt", "[status:429]"],
        );
        assert_eq!(refused["error"]["status"], 429, "{model}: {refused}");
        let broken = sdk(
            &server,
            "bob",
            "stream",
            &["--model", model, "--prompt", "[malformed]"],
        );
        assert_eq!(
            broken["error"]["code"], "provider-error",
            "{model}: {broken}"
        );
        assert_eq!(broken["content"], "", "{model}: {broken}");
    }
}

#[tokio::test]
async fn streams_from_both_adapters_arrive_whole_and_are_recorded() {
    let provider = FakeProvider::start();
    let host = gateway(&provider, Store::Sqlite).start().await;
    let server = Server::start(&host).await;

    let expected: Vec<String> = (1..=120).map(|i| format!("word{i}")).collect();
    let expected = expected.join(" ");
    for model in ["fast", "claude-3.5"] {
        let report = sdk(
            &server,
            "bob",
            "stream",
            &["--model", model, "--prompt", "[words:120]"],
        );
        assert!(report.get("error").is_none(), "{model}: {report}");
        assert_eq!(report["content"], expected, "{model}");
        assert_eq!(report["finish_reason"], "stop", "{model}");
        assert_eq!(report["usage"]["completion_tokens"], 120, "{model}");
        // Released as it came, held back by at most the check window: many chunks.
        assert!(
            report["pieces"].as_array().unwrap().len() > 10,
            "{model}: {report}"
        );
        let completion = completion_record(&host, report["id"].as_str().unwrap()).await;
        assert_eq!(completion["released_bytes"], expected.len(), "{model}");
        assert_eq!(completion["completion_tokens"], 120, "{model}");
        let first = completion["first_chunk_us"]
            .as_u64()
            .expect("a first chunk");
        let record = host.record(completion_call_id(&report)).await.record;
        assert!(
            first > 0 && first <= record.duration_us as u64,
            "{completion}"
        );
    }
    // Tool calls stream too.
    for model in ["fast", "claude-3.5"] {
        let report = sdk(&server, "bob", "tools", &["--model", model, "--stream"]);
        assert_eq!(
            report["tool_calls"][0]["name"], "get_weather",
            "{model}: {report}"
        );
        let arguments: Value =
            serde_json::from_str(report["tool_calls"][0]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(arguments, json!({"city": "Paris"}), "{model}");
    }
}

#[tokio::test]
async fn a_secret_in_a_streamed_completion_stops_the_stream_before_it_leaks() {
    let provider = FakeProvider::start();
    let harness = with_builtin_verifiers(gateway(&provider, Store::Sqlite), "[\"output\"]");
    let host = harness.start().await;
    let server = Server::start(&host).await;

    for model in ["fast", "claude-3.5"] {
        // 100 words (~690 bytes) go out; the key that follows them never does.
        let report = sdk(
            &server,
            "bob",
            "stream",
            &["--model", model, "--prompt", "[words:100] [leak]"],
        );
        let error = &report["error"];
        assert_eq!(error["code"], "policy-denied", "{model}: {report}");
        assert!(
            error["message"].as_str().unwrap().contains("secrets"),
            "{model}: {report}"
        );
        let content = report["content"].as_str().unwrap();
        assert!(content.starts_with("word1 word2"), "{model}: {report}");
        assert!(
            !content.contains("AKIA"),
            "{model}: the key leaked: {content}"
        );
        let call_id = report["id"]
            .as_str()
            .unwrap()
            .strip_prefix("chatcmpl-")
            .unwrap();
        let record = host.record(call_id).await.record;
        assert_eq!(record.outcome, "policy-denied", "{model}");
        assert!(
            record
                .verdicts
                .iter()
                .any(|v| v.verifier == "secrets" && v.findings.iter().any(|f| f.label == "secret")),
            "{model}: {:?}",
            record.verdicts
        );
        let completion: Value =
            serde_json::from_str(record.completion.as_deref().unwrap()).unwrap();
        assert_eq!(completion["released_bytes"], content.len(), "{model}");
    }
    // Not streamed, the same answer reaches the caller with the key redacted.
    let report = sdk(
        &server,
        "bob",
        "chat",
        &["--model", "fast", "--prompt", "[leak]"],
    );
    let content = report["content"].as_str().unwrap();
    assert!(content.contains("The access key is"), "{report}");
    assert!(!content.contains("AKIA6KD7T652I2UBJGG5"), "{report}");
    // A clean stream under the same verifiers goes through.
    let report = sdk(
        &server,
        "bob",
        "stream",
        &["--model", "fast", "--prompt", "[words:80]"],
    );
    assert!(report.get("error").is_none(), "{report}");
    assert!(report["content"].as_str().unwrap().ends_with("word80"));
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_the_stream_and_the_record_says_so() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let provider = FakeProvider::start();
    let host = gateway(&provider, Store::Sqlite).start().await;
    let server = Server::start(&host).await;

    let body = json!({
        "model": "fast", "stream": true,
        "messages": [{"role": "user", "content": "[words:400] [slow:20]"}],
    })
    .to_string();
    let mut stream = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        server.addr,
        token("bob"),
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut first = vec![0; 4096];
    let read = stream.read(&mut first).await.unwrap();
    let head = String::from_utf8_lossy(&first[..read]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    drop(stream);
    // The record is written once the host notices; 400 words at 20 ms
    // each would take 8 s, so a record before then means the stream stopped.
    let mut outcome = None;
    for _ in 0..60 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let records = host.records().await;
        if let Some(record) = records.iter().find(|r| r.record.tool == "fast") {
            outcome = Some(record.record.outcome.clone());
            break;
        }
    }
    assert_eq!(outcome.as_deref(), Some("cancelled"));
}

#[tokio::test]
async fn a_model_whose_adapter_or_origin_is_wrong_is_refused_at_load() {
    let provider = FakeProvider::start();
    let bad_origin = gateway(&provider, Store::Sqlite).extra_config(
        "[models.bad]\nadapter = \"openai\"\nupstream_model = \"m\"\n\
         origin = \"https://api.example.com/v1\"\n",
    );
    let (error, _) = bad_origin.try_start().await.err().expect("refused");
    let message = error.to_string();
    assert!(message.contains("models.\"bad\".origin"), "{message}");
    let no_adapter = Harness::new(Store::Sqlite).extra_config(
        "[models.bad]\nadapter = \"nope\"\nupstream_model = \"m\"\n\
         origin = \"https://api.example.com\"\n",
    );
    let (error, _) = no_adapter.try_start().await.err().expect("refused");
    assert!(
        error.to_string().contains("no `[adapters.nope]`"),
        "{error}"
    );
    // A tool plugin configured as an adapter does not implement the world.
    let wrong_kind = Harness::new(Store::Sqlite).extra_config(&format!(
        "[adapters.text]\nmanifest = {}\n",
        toml_path(&manifest(fixtures::TEXT))
    ));
    let (error, _) = wrong_kind.try_start().await.err().expect("refused");
    assert!(
        error
            .to_string()
            .contains("`kind` is \"tool\", but it is configured as a provider"),
        "{error}"
    );
}

#[tokio::test]
async fn a_hostile_adapter_is_contained_and_the_host_keeps_serving() {
    let provider = FakeProvider::start();
    let origin = provider.origin.clone();
    let host = gateway(&provider, Store::Sqlite)
        .extra_config(&format!(
            "[adapters.hostile]\nmanifest = {}\n\n\
             [models.hostile]\nadapter = \"hostile\"\nupstream_model = \"gpt-4o-mini\"\n\
             origin = \"{origin}\"\nsecret = \"provider_key\"\n",
            toml_path(&manifest(fixtures::HOSTILE_ADAPTER))
        ))
        .start()
        .await;
    let server = Server::start(&host).await;
    let chat = |prompt: &str| {
        sdk(
            &server,
            "bob",
            "chat",
            &["--model", "hostile", "--prompt", prompt],
        )
    };

    // Requests that would leave the origin, or that the host will not
    // send, never reach any server.
    let before = provider.requests().await.len();
    for marker in [
        "[escape-absolute]",
        "[escape-authority]",
        "[escape-backslash]",
        "[escape-at]",
        "[bad-header]",
        "[bad-method]",
    ] {
        let report = chat(marker);
        assert_eq!(
            report["error"]["code"], "provider-error",
            "{marker}: {report}"
        );
        assert_eq!(report["error"]["status"], 502, "{marker}");
    }
    assert_eq!(provider.requests().await.len(), before);

    // Headers that could carry a credential are the host's alone.
    let report = chat("[steal-credential] hi");
    assert_eq!(report["content"], "echo: [steal-credential] hi", "{report}");
    let requests = provider.requests().await;
    let headers = &requests.last().unwrap()["headers"];
    assert_eq!(headers["authorization"], format!("Bearer {PROVIDER_KEY}"));
    assert_eq!(headers["x-harmless"], "kept");
    for dropped in ["cookie", "proxy-authorization", "x-api-key"] {
        assert!(
            headers.get(dropped).is_none(),
            "{dropped} went through: {headers}"
        );
    }
    assert_eq!(headers["host"], provider.addr);

    // Traps, loops and greed in every function are typed failures.
    for (marker, codes) in [
        ("[trap]", &["trap"][..]),
        ("[loop]", &["timeout"][..]),
        ("[memory]", &["memory-limit", "trap"][..]),
        ("[decode-trap]", &["trap"][..]),
        ("[decode-loop]", &["timeout"][..]),
        ("[garbage-role]", &["invalid-output"][..]),
        (
            "[huge-answer]",
            &["output-too-large", "memory-limit", "trap"][..],
        ),
        (
            "[huge-body]",
            &["provider-rejected", "memory-limit", "trap"][..],
        ),
    ] {
        let report = chat(marker);
        let code = report["error"]["code"].as_str().unwrap_or("ok");
        assert!(codes.contains(&code), "{marker}: {report}");
    }
    for (marker, codes) in [
        ("[event-trap] one two three", &["trap"][..]),
        (
            "[event-garbage]",
            &["ok", "output-too-large", "invalid-output"][..],
        ),
    ] {
        let report = sdk(
            &server,
            "bob",
            "stream",
            &["--model", "hostile", "--prompt", marker],
        );
        let code = report["error"]["code"].as_str().unwrap_or("ok");
        assert!(codes.contains(&code), "{marker}: {report}");
    }

    // The host still serves, and the trail holds every attempt.
    let report = sdk(
        &server,
        "bob",
        "chat",
        &["--model", "fast", "--prompt", "still here"],
    );
    assert_eq!(report["content"], "echo: still here", "{report}");
    let verified = host.cli(&["audit", "verify"]);
    assert!(verified.status.success());
    let records = host.records().await;
    assert!(
        records
            .iter()
            .filter(|r| r.record.tool == "hostile")
            .count()
            >= 17
    );
}

#[tokio::test]
async fn policy_can_route_a_completion_cap_its_tokens_and_strip_its_tools() {
    let provider = FakeProvider::start();
    let policy = r#"package warden.authz

decision := {"allow": true, "reasons": [], "obligations": {"completion": {"max_tokens": 3, "strip_tools": true}}} if {
	input.target.name == "fast"
}

decision := {"allow": true, "reasons": [], "obligations": {"completion": {"route_to": "fast"}}} if {
	input.target.name == "claude-3.5"
}

decision := {"allow": true, "reasons": [], "obligations": {"completion": {"route_to": "nowhere"}}} if {
	input.target.name == "lost"
}
"#;
    let host = gateway(&provider, Store::Sqlite)
        .policy(policy)
        .extra_config(&format!(
            "[models.lost]\nadapter = \"openai\"\nupstream_model = \"x\"\norigin = \"{}\"\n",
            provider.origin
        ))
        .start()
        .await;
    let server = Server::start(&host).await;

    // Capped at 3 tokens, and the tools the client offered never left.
    let report = sdk(
        &server,
        "bob",
        "tools",
        &["--model", "fast", "--prompt", "[words:10]"],
    );
    assert_eq!(report["content"], "word1 word2 word3", "{report}");
    assert_eq!(report["finish_reason"], "length");
    let requests = provider.requests().await;
    let sent = &requests.last().unwrap()["body"];
    assert_eq!(sent["max_tokens"], 3);
    assert!(sent.get("tools").is_none(), "{sent}");
    // Asked for claude-3.5, served by fast (OpenAI's format, gpt-4o-mini),
    // and the record says both.
    let report = sdk(
        &server,
        "bob",
        "chat",
        &["--model", "claude-3.5", "--prompt", "hi"],
    );
    assert_eq!(report["content"], "echo: hi", "{report}");
    let requests = provider.requests().await;
    let sent = requests.last().unwrap();
    assert_eq!(sent["path"], "/v1/chat/completions");
    assert_eq!(sent["body"]["model"], "gpt-4o-mini");
    let call_id = report["id"]
        .as_str()
        .unwrap()
        .strip_prefix("chatcmpl-")
        .unwrap();
    let record = host.record(call_id).await.record;
    assert_eq!(record.tool, "claude-3.5");
    assert_eq!(record.plugin.as_deref(), Some("openai"));
    let completion: Value = serde_json::from_str(record.completion.as_deref().unwrap()).unwrap();
    assert_eq!(completion["model"], "fast");
    // A route to nowhere is the policy's error, and nothing is sent.
    let before = provider.requests().await.len();
    let report = sdk(&server, "bob", "chat", &["--model", "lost"]);
    assert_eq!(report["error"]["code"], "policy-error", "{report}");
    assert_eq!(provider.requests().await.len(), before);
}

#[tokio::test]
async fn a_prompt_carrying_a_credential_is_refused_before_the_provider_sees_it() {
    let provider = FakeProvider::start();
    let harness = with_builtin_verifiers(gateway(&provider, Store::Sqlite), "[\"input\"]");
    let host = harness.start().await;
    let server = Server::start(&host).await;

    let prompt = "deploy with aws_access_key_id = AKIAJ4VBXWWUGBCIJ5DN please";
    let report = sdk(
        &server,
        "bob",
        "chat",
        &["--model", "claude-3.5", "--prompt", prompt],
    );
    assert_eq!(report["error"]["code"], "policy-denied", "{report}");
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("found a credential in the arguments"),
        "{report}"
    );
    assert!(provider.requests().await.is_empty());
    let report = sdk(
        &server,
        "bob",
        "chat",
        &["--model", "claude-3.5", "--prompt", "fine"],
    );
    assert_eq!(report["content"], "echo: fine", "{report}");
}

#[tokio::test]
async fn embeddings_are_served_by_embeddings_models_only() {
    let provider = FakeProvider::start();
    let origin = provider.origin.clone();
    let host = gateway(&provider, Store::Sqlite)
        .extra_config(&format!(
            "[models.embed]\nkind = \"embeddings\"\nadapter = \"openai\"\n\
             upstream_model = \"text-embedding-3-small\"\norigin = \"{origin}\"\n\
             secret = \"provider_key\"\nprices = {{ input = 0.02 }}\n\n\
             [models.claude-embed]\nkind = \"embeddings\"\nadapter = \"anthropic\"\n\
             upstream_model = \"x\"\norigin = \"{origin}\"\nsecret = \"provider_key\"\n"
        ))
        .start()
        .await;
    let server = Server::start(&host).await;

    // The SDK asks for base64 by default; the host encodes the provider's floats.
    let report = sdk(&server, "bob", "embeddings", &["--model", "embed"]);
    assert_eq!(report["count"], 2, "{report}");
    assert_eq!(report["dims"], 1536, "{report}");
    let direct = Command::new(python())
        .arg(repo().join("tests/e2e/openai_client.py"))
        .args([
            "embeddings",
            "--base-url",
            &format!("{origin}/v1"),
            "--key",
            PROVIDER_KEY,
        ])
        .output()
        .expect("run the OpenAI SDK client");
    let direct: Value = serde_json::from_slice(&direct.stdout).expect("report");
    assert_eq!(report["first"], direct["first"], "{report} vs {direct}");
    let requests = provider.requests().await;
    let sent = requests
        .iter()
        .find(|r| r["path"] == "/v1/embeddings")
        .unwrap();
    assert_eq!(sent["body"]["model"], "text-embedding-3-small");
    assert_eq!(sent["body"]["encoding_format"], "float");
    let records = host.records().await;
    let completion: Value = serde_json::from_str(
        records
            .iter()
            .find(|r| r.record.tool == "embed")
            .and_then(|r| r.record.completion.as_deref())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        completion["prompt_tokens"],
        report["usage"]["prompt_tokens"]
    );

    // A chat model is not an embeddings model, nor the other way round.
    let report = sdk(&server, "bob", "embeddings", &["--model", "fast"]);
    assert_eq!(report["error"]["code"], "unsupported-request", "{report}");
    let report = sdk(&server, "bob", "chat", &["--model", "embed"]);
    assert_eq!(report["error"]["code"], "unsupported-request", "{report}");
    // An adapter without embeddings says so.
    let report = sdk(&server, "bob", "embeddings", &["--model", "claude-embed"]);
    assert_eq!(report["error"]["code"], "unsupported-request", "{report}");
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no embeddings"),
        "{report}"
    );
}

#[tokio::test]
async fn digests_are_keyed_per_tenant_and_kept_text_is_erased_with_its_key() {
    let provider = FakeProvider::start();
    // Everything allowed; bob's completions keep their text, sealed.
    let policy = r#"package warden.authz

decision := {"allow": true, "reasons": [], "obligations": {"completion": {"keep_text": true}}} if {
	input.principal.id == "bob"
}

decision := {"allow": true, "reasons": []} if {
	input.principal.id != "bob"
}
"#;
    let host = gateway(&provider, Store::Postgres)
        .policy(policy)
        .extra_config(
            "[[principals]]\nid = \"zoe\"\ntoken = \"zoe-test-token\"\nroles = []\n\
             tenant = \"globex\"\n",
        )
        .start()
        .await;
    let principal = |id: &str| host.kernel.principals().by_id(id).unwrap();
    let ask = |id: &str| warden::CallRequest {
        principal: principal(id),
        tool: "fast".into(),
        args: json!({"model": "fast", "messages": [{"role": "user", "content": "same prompt"}]}),
        session: None,
        contract: None,
        trace: None,
    };
    // Equal prompts: equal digests within a tenant (bob and root are of
    // `acme`), different across tenants (zoe is of `globex`).
    let bob = host.kernel.complete(ask("bob")).await;
    let root = host.kernel.complete(ask("root")).await;
    let zoe = host.kernel.complete(ask("zoe")).await;
    assert!(bob.result.is_ok() && root.result.is_ok() && zoe.result.is_ok());
    let bob_record = host.record(&bob.call_id).await.record;
    let root_record = host.record(&root.call_id).await.record;
    let zoe_record = host.record(&zoe.call_id).await.record;
    assert_eq!(bob_record.args_digest, root_record.args_digest);
    assert_eq!(bob_record.output_digest, root_record.output_digest);
    assert_ne!(bob_record.args_digest, zoe_record.args_digest);
    assert_ne!(bob_record.output_digest, zoe_record.output_digest);
    // Not a plain SHA-256 of the request: it is keyed.
    let plain =
        warden::digest::sha256_hex(warden::kernel::canonical_json(&ask("bob").args).as_bytes());
    assert_ne!(bob_record.args_digest, plain);
    assert!(root_record.sealed_text.is_none(), "only bob's text is kept");

    // The kept text opens with the tenant's key, and not once it is erased.
    let sealed = bob_record.sealed_text.as_deref().expect("kept text");
    assert!(!sealed.contains("same prompt"));
    let opened = host.cli(&["audit", "unseal", &bob.call_id]);
    assert!(opened.status.success(), "{opened:?}");
    let text: Value = serde_json::from_slice(&opened.stdout).unwrap();
    assert_eq!(text["request"]["messages"][0]["content"], "same prompt");
    assert_eq!(
        text["completion"]["choices"][0]["message"]["content"],
        "echo: same prompt"
    );
    let erased = host.cli(&["audit", "erase-tenant", "acme"]);
    assert!(erased.status.success(), "{erased:?}");
    let gone = host.cli(&["audit", "unseal", &bob.call_id]);
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
    assert!(String::from_utf8_lossy(&gone.stderr).contains("erased"));
    // The records stay, and the chains still verify.
    let verified = host.cli(&["audit", "verify"]);
    assert!(verified.status.success(), "{verified:?}");
}

#[tokio::test]
async fn ollama_s_native_api_streams_as_ndjson_through_the_third_adapter() {
    let provider = FakeProvider::start();
    let origin = provider.origin.clone();
    let host = gateway(&provider, Store::Sqlite)
        .extra_config(&format!(
            "[adapters.ollama]\nmanifest = {}\n\n\
             [models.llama]\nadapter = \"ollama\"\nupstream_model = \"llama3.2\"\n\
             origin = \"{origin}\"\nsecret = \"provider_key\"\n\n\
             [models.llama-embed]\nkind = \"embeddings\"\nadapter = \"ollama\"\n\
             upstream_model = \"nomic-embed-text\"\norigin = \"{origin}\"\n",
            toml_path(&manifest(fixtures::OLLAMA))
        ))
        .start()
        .await;
    let server = Server::start(&host).await;

    let report = sdk(
        &server,
        "bob",
        "chat",
        &["--model", "llama", "--prompt", "hello there"],
    );
    assert_eq!(report["content"], "echo: hello there", "{report}");
    assert_eq!(report["usage"]["completion_tokens"], 3, "{report}");
    // Streamed: NDJSON framed by the host, one word per line.
    let report = sdk(
        &server,
        "bob",
        "stream",
        &["--model", "llama", "--prompt", "[words:90]"],
    );
    assert!(report.get("error").is_none(), "{report}");
    assert!(
        report["content"]
            .as_str()
            .unwrap()
            .ends_with("word89 word90"),
        "{report}"
    );
    assert_eq!(report["finish_reason"], "stop");
    let report = sdk(&server, "bob", "tools", &["--model", "llama"]);
    assert_eq!(report["tool_calls"][0]["name"], "get_weather", "{report}");
    let report = sdk(&server, "bob", "embeddings", &["--model", "llama-embed"]);
    assert_eq!(report["count"], 2, "{report}");
    let report = sdk(
        &server,
        "bob",
        "stream",
        &["--model", "llama", "--prompt", "[malformed]"],
    );
    assert_eq!(report["error"]["code"], "provider-error", "{report}");
    let report = sdk(
        &server,
        "bob",
        "chat",
        &["--model", "llama", "--prompt", "[status:503]"],
    );
    assert_eq!(report["error"]["code"], "provider-unavailable", "{report}");

    let requests = provider.requests().await;
    let chat = requests.iter().find(|r| r["path"] == "/api/chat").unwrap();
    assert_eq!(chat["body"]["model"], "llama3.2");
    assert_eq!(
        chat["headers"]["authorization"],
        format!("Bearer {PROVIDER_KEY}")
    );
    // No secret configured for the embeddings model: no credential sent.
    let embed = requests.iter().find(|r| r["path"] == "/api/embed").unwrap();
    assert!(embed["headers"].get("authorization").is_none(), "{embed}");
}

#[tokio::test]
async fn a_stored_policy_input_never_holds_a_prompt() {
    let provider = FakeProvider::start();
    let host = gateway(&provider, Store::Sqlite)
        .audit_settings("store_policy_input = true")
        .start()
        .await;
    let response = host
        .kernel
        .complete(warden::CallRequest {
            principal: host.kernel.principals().by_id("bob").unwrap(),
            tool: "fast".into(),
            args: json!({"model": "fast", "messages": [{"role": "user", "content": "private words"}]}),
            session: None,
            contract: None,
            trace: None,
        })
        .await;
    assert!(response.result.is_ok(), "{:?}", response.result);
    let record = host.record(&response.call_id).await.record;
    let stored = record.policy_input.expect("stored policy input");
    assert!(!stored.contains("private words"), "{stored}");
    assert!(stored.contains("\"completion\""), "{stored}");
}

/// A completion passes the caller's W3C `traceparent` on to the provider
/// (with traces off, unchanged), for a plain and a streamed answer; without
/// one, the provider gets none.
#[tokio::test]
async fn the_callers_trace_context_reaches_the_provider() {
    const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01";
    let provider = FakeProvider::start();
    let host = gateway(&provider, Store::Sqlite).start().await;
    let principal = host.kernel.principals().by_id("bob").unwrap();
    let ask = |trace: Option<&str>, stream: bool| warden::CallRequest {
        principal: principal.clone(),
        tool: "fast".into(),
        args: json!({"model": "fast", "stream": stream,
                     "messages": [{"role": "user", "content": "hello"}]}),
        session: None,
        contract: None,
        trace: trace.and_then(warden::trace::TraceParent::parse),
    };
    crate::harness::output(&host.kernel.complete(ask(Some(TRACEPARENT), false)).await);
    let mut stream = host
        .kernel
        .stream(ask(Some(TRACEPARENT), true))
        .await
        .unwrap();
    while host.kernel.stream_chunks(&mut stream).await.is_some() {}
    crate::harness::output(&host.kernel.end_stream(stream).await.response);
    crate::harness::output(&host.kernel.complete(ask(None, false)).await);
    let received: Vec<Option<String>> = provider
        .requests()
        .await
        .iter()
        .map(|r| r["headers"]["traceparent"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        received,
        [
            Some(TRACEPARENT.to_string()),
            Some(TRACEPARENT.to_string()),
            None
        ]
    );
}
