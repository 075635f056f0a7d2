#![allow(
    clippy::indexing_slicing,
    reason = "indexing past the end fails the test, as it should"
)]

use super::{Anthropic, DEFAULT_MAX_TOKENS};
use serde_json::{Value, json};
use warden_plugin_sdk::provider::{
    AdapterError, ChatRequest, ChatResponse, Chunk, ContentPart, Credential, FinishReason, Framing,
    FunctionTool, Guest, HttpRequest, HttpResponse, JsonSchemaFormat, Message, ResponseFormat,
    Role, StreamEvent, ToolCall, ToolCallDelta, ToolChoice, UpstreamError, Usage,
};

fn request(messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        model: "claude-sonnet-4-5".to_string(),
        messages,
        tools: Vec::new(),
        tool_choice: None,
        parallel_tool_calls: None,
        response_format: None,
        temperature: None,
        top_p: None,
        max_tokens: None,
        stop: Vec::new(),
        seed: None,
        presence_penalty: None,
        frequency_penalty: None,
        user: None,
        stream: false,
    }
}

fn message(role: Role, content: Vec<ContentPart>) -> Message {
    Message {
        role,
        content,
        name: None,
        tool_calls: Vec::new(),
        tool_call_id: None,
    }
}

fn text(role: Role, text: &str) -> Message {
    message(role, vec![ContentPart::Text(text.to_string())])
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.to_string(),
        name: name.to_string(),
        arguments: arguments.to_string(),
    }
}

fn tool_answer(id: &str, content: Vec<ContentPart>) -> Message {
    Message {
        tool_call_id: Some(id.to_string()),
        ..message(Role::Tool, content)
    }
}

fn tool(name: &str, parameters: Option<&str>) -> FunctionTool {
    FunctionTool {
        name: name.to_string(),
        description: None,
        parameters: parameters.map(str::to_string),
        strict: None,
    }
}

fn encode(request: ChatRequest) -> HttpRequest {
    Anthropic::encode_request(request).unwrap()
}

fn body(request: ChatRequest) -> Value {
    serde_json::from_slice(&encode(request).body).unwrap()
}

fn unsupported(result: Result<HttpRequest, AdapterError>) -> String {
    match result {
        Err(AdapterError::Unsupported(message)) => message,
        other => panic!("expected unsupported, got {other:?}"),
    }
}

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

fn upstream<T: std::fmt::Debug>(result: Result<T, AdapterError>) -> UpstreamError {
    match result {
        Err(AdapterError::Upstream(error)) => error,
        other => panic!("expected an upstream error, got {other:?}"),
    }
}

fn malformed<T: std::fmt::Debug>(result: Result<T, AdapterError>) -> String {
    match result {
        Err(AdapterError::Malformed(message)) => message,
        other => panic!("expected malformed, got {other:?}"),
    }
}

fn decode(body: &str) -> Result<ChatResponse, AdapterError> {
    Anthropic::decode_response(response(200, &[], body))
}

/// One SSE event, as the host frames it: the `event:` name and the data.
fn event(data: Value) -> Result<Vec<Chunk>, AdapterError> {
    Anthropic::decode_event(StreamEvent {
        event: data.get("type").and_then(Value::as_str).map(str::to_string),
        data: data.to_string(),
    })
}

fn chunk() -> Chunk {
    Chunk {
        index: 0,
        role: None,
        content: String::new(),
        tool_calls: Vec::new(),
        finish_reason: None,
        usage: None,
    }
}

fn content(text: &str) -> Chunk {
    Chunk {
        content: text.to_string(),
        ..chunk()
    }
}

fn tool_delta(index: u32, id: Option<&str>, name: Option<&str>, arguments: &str) -> Chunk {
    Chunk {
        tool_calls: vec![ToolCallDelta {
            index,
            id: id.map(str::to_string),
            name: name.map(str::to_string),
            arguments: arguments.to_string(),
        }],
        ..chunk()
    }
}

// ------------------------------------------------------------------ info

#[test]
fn info_is_sse_with_an_api_key_header() {
    let info = Anthropic::info();
    assert_eq!(info.framing, Framing::Sse);
    assert_eq!(info.credential, Credential::Header("x-api-key".to_string()));
}

// -------------------------------------------------------------- encoding

#[test]
fn a_minimal_request_gets_the_default_max_tokens() {
    let http = encode(request(vec![text(Role::User, "hi")]));
    assert_eq!(http.method, "POST");
    assert_eq!(http.path, "/v1/messages");
    assert_eq!(
        http.headers,
        [
            ("content-type".to_string(), "application/json".to_string()),
            ("anthropic-version".to_string(), "2023-06-01".to_string()),
        ]
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&http.body).unwrap(),
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": DEFAULT_MAX_TOKENS,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "stream": false,
        })
    );
    assert_eq!(DEFAULT_MAX_TOKENS, 4096);
}

#[test]
fn system_and_developer_text_goes_to_system() {
    let mut req = request(vec![
        text(Role::System, "be brief"),
        text(Role::User, "hi"),
        message(
            Role::Developer,
            vec![
                ContentPart::Text("no emoji".to_string()),
                ContentPart::Text(String::new()),
            ],
        ),
        text(Role::User, "again"),
    ]);
    req.max_tokens = Some(100);
    let body = body(req);
    assert_eq!(body["system"], "be brief\n\nno emoji");
    assert_eq!(body["max_tokens"], 100);
    // The two user messages, no longer apart, are one turn.
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [
            {"type": "text", "text": "hi"}, {"type": "text", "text": "again"}]}])
    );
}

#[test]
fn images_go_by_url_or_inline() {
    let body = body(request(vec![message(
        Role::User,
        vec![
            ContentPart::ImageUrl("https://example.com/cat.png".to_string()),
            ContentPart::ImageUrl("data:image/png;base64,iVBORw0K".to_string()),
            ContentPart::ImageUrl("DATA:image/jpeg;charset=x;BASE64,/9j/".to_string()),
        ],
    )]));
    assert_eq!(
        body["messages"][0]["content"],
        json!([
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}},
        ])
    );
    for (url, expected) in [
        ("data:image/svg+xml,%3Csvg%3E", "base64"),
        ("data:;base64,AAAA", "media type"),
        ("data:image/png;base64", "`,`"),
    ] {
        let req = request(vec![message(
            Role::User,
            vec![ContentPart::ImageUrl(url.to_string())],
        )]);
        let message = unsupported(Anthropic::encode_request(req));
        assert!(message.contains(expected), "{url}: {message}");
    }
    for role in [Role::System, Role::Assistant] {
        let req = request(vec![message(
            role,
            vec![ContentPart::ImageUrl(
                "https://example.com/a.png".to_string(),
            )],
        )]);
        assert!(unsupported(Anthropic::encode_request(req)).contains("no images"));
    }
}

#[test]
fn tool_calls_and_results_become_blocks() {
    let mut assistant = text(Role::Assistant, "Let me look.");
    assistant.tool_calls = vec![
        call("toolu_1", "lookup", r#"{"q": "cat", "n": 2}"#),
        call("toolu_2", "ping", ""),
    ];
    let body = body(request(vec![
        text(Role::User, "find a cat"),
        assistant,
        tool_answer("toolu_1", vec![ContentPart::Text("a cat".to_string())]),
        tool_answer(
            "toolu_2",
            vec![
                ContentPart::Text("pong".to_string()),
                ContentPart::ImageUrl("https://example.com/p.png".to_string()),
            ],
        ),
        text(Role::User, "thanks"),
        tool_answer("toolu_3", vec![ContentPart::Text(String::new())]),
    ]));
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "find a cat"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "cat", "n": 2}},
                {"type": "tool_use", "id": "toolu_2", "name": "ping", "input": {}},
            ]},
            // Tool results merged into one user turn, ahead of its text.
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a cat"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": [
                    {"type": "text", "text": "pong"},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/p.png"}},
                ]},
                {"type": "tool_result", "tool_use_id": "toolu_3"},
                {"type": "text", "text": "thanks"},
            ]},
        ])
    );
    // The arguments go out verbatim.
    let raw = String::from_utf8(
        encode(request(vec![Message {
            tool_calls: vec![call("t", "f", r#"{"z":1,"a":2}"#)],
            ..message(Role::Assistant, Vec::new())
        }]))
        .body,
    )
    .unwrap();
    assert!(raw.contains(r#""input":{"z":1,"a":2}"#), "{raw}");
}

#[test]
fn empty_messages_vanish_and_turns_alternate() {
    let body = body(request(vec![
        text(Role::User, "a"),
        text(Role::Assistant, ""),
        text(Role::User, "b"),
        text(Role::Assistant, "c"),
        text(Role::Assistant, "d"),
    ]));
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}]},
        ])
    );
}

#[test]
fn bad_tool_arguments_and_results_are_refused() {
    for (arguments, expected) in [
        ("{\"q\": ", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ("\"text\"", "not a JSON object"),
    ] {
        let req = request(vec![Message {
            tool_calls: vec![call("toolu_9", "lookup", arguments)],
            ..message(Role::Assistant, Vec::new())
        }]);
        let message = unsupported(Anthropic::encode_request(req));
        assert!(message.contains("toolu_9"), "{message}");
        assert!(message.contains(expected), "{message}");
    }
    let req = request(vec![message(
        Role::Tool,
        vec![ContentPart::Text("x".to_string())],
    )]);
    assert!(unsupported(Anthropic::encode_request(req)).contains("tool-call-id"));
    let mut req = request(vec![text(Role::User, "hi")]);
    req.tools = vec![tool("lookup", Some("{nope"))];
    assert!(unsupported(Anthropic::encode_request(req)).contains("tool `lookup`"));
}

#[test]
fn tools_and_options_are_passed_on() {
    let mut req = request(vec![text(Role::User, "hi")]);
    req.tools = vec![
        FunctionTool {
            description: Some("Looks things up.".to_string()),
            strict: Some(true),
            ..tool(
                "lookup",
                Some(r#"{"type":"object","properties":{"q":{"type":"string"}}}"#),
            )
        },
        tool("ping", None),
    ];
    req.stop = vec!["END".to_string()];
    req.temperature = Some(0.2);
    req.top_p = Some(0.8);
    req.user = Some("user-42".to_string());
    req.stream = true;
    // Ignored: Anthropic has no seed or penalties.
    req.seed = Some(3);
    req.presence_penalty = Some(0.5);
    req.frequency_penalty = Some(0.5);
    let body = body(req);
    assert_eq!(
        body,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": DEFAULT_MAX_TOKENS,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "tools": [
                {"name": "lookup", "description": "Looks things up.",
                 "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}},
                {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
            ],
            "stop_sequences": ["END"],
            "temperature": 0.2,
            "top_p": 0.8,
            "metadata": {"user_id": "user-42"},
            "stream": true,
        })
    );
}

#[test]
fn tool_choice_maps_with_parallel_calls() {
    let cases = [
        (None, None, None),
        (None, Some(true), None),
        (
            None,
            Some(false),
            Some(json!({"type": "auto", "disable_parallel_tool_use": true})),
        ),
        (Some(ToolChoice::Auto), None, Some(json!({"type": "auto"}))),
        (
            Some(ToolChoice::Required),
            None,
            Some(json!({"type": "any"})),
        ),
        (
            Some(ToolChoice::Required),
            Some(false),
            Some(json!({"type": "any", "disable_parallel_tool_use": true})),
        ),
        (
            Some(ToolChoice::Function("lookup".to_string())),
            Some(false),
            Some(json!({"type": "tool", "name": "lookup", "disable_parallel_tool_use": true})),
        ),
        (
            Some(ToolChoice::None),
            Some(false),
            Some(json!({"type": "none"})),
        ),
    ];
    for (choice, parallel, expected) in cases {
        let mut req = request(vec![text(Role::User, "hi")]);
        req.tools = vec![tool("lookup", None)];
        req.tool_choice = choice.clone();
        req.parallel_tool_calls = parallel;
        assert_eq!(
            body(req).get("tool_choice").cloned(),
            expected,
            "{choice:?} {parallel:?}"
        );
    }
    // Without tools there is no tool choice.
    let mut req = request(vec![text(Role::User, "hi")]);
    req.tool_choice = Some(ToolChoice::Required);
    assert!(body(req).get("tool_choice").is_none());
}

#[test]
fn json_response_formats_are_refused_text_is_fine() {
    let mut req = request(vec![text(Role::User, "hi")]);
    req.response_format = Some(ResponseFormat::Text);
    assert!(body(req).get("response_format").is_none());
    for format in [
        ResponseFormat::JsonObject,
        ResponseFormat::JsonSchema(JsonSchemaFormat {
            name: "a".to_string(),
            description: None,
            schema: Some("{}".to_string()),
            strict: None,
        }),
    ] {
        let mut req = request(vec![text(Role::User, "hi")]);
        req.response_format = Some(format);
        let message = unsupported(Anthropic::encode_request(req));
        assert!(message.contains("no response format"), "{message}");
    }
}

#[test]
fn non_finite_numbers_are_refused() {
    let mut req = request(vec![text(Role::User, "hi")]);
    req.top_p = Some(f64::NEG_INFINITY);
    assert!(unsupported(Anthropic::encode_request(req)).contains("top-p"));
}

// --------------------------------------------------------------- decoding

#[test]
fn a_message_decodes_with_tool_calls_and_usage() {
    let decoded = decode(
        r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
        "content":[
          {"type":"thinking","thinking":"hmm","signature":"s"},
          {"type":"text","text":"Let me "},
          {"type":"text","text":"look."},
          {"type":"tool_use","id":"toolu_1","name":"lookup","input":{"q":"cat"}},
          {"type":"tool_use","id":"toolu_2","name":"ping","input":{}}
        ],
        "stop_reason":"tool_use","stop_sequence":null,
        "usage":{"input_tokens":100,"output_tokens":20,"cache_read_input_tokens":50,"cache_creation_input_tokens":7}}"#,
    )
    .unwrap();
    assert_eq!(decoded.model, "claude-sonnet-4-5-20250929");
    assert_eq!(
        decoded.usage,
        Some(Usage {
            prompt_tokens: 157,
            cached_prompt_tokens: 50,
            completion_tokens: 20,
        })
    );
    assert_eq!(decoded.choices.len(), 1);
    let choice = &decoded.choices[0];
    assert_eq!(choice.index, 0);
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(
        choice.message,
        Message {
            tool_calls: vec![
                call("toolu_1", "lookup", r#"{"q":"cat"}"#),
                call("toolu_2", "ping", "{}"),
            ],
            ..text(Role::Assistant, "Let me look.")
        }
    );
}

#[test]
fn stop_reasons_map() {
    let cases = [
        ("\"end_turn\"", Some(FinishReason::Stop)),
        ("\"stop_sequence\"", Some(FinishReason::Stop)),
        ("\"max_tokens\"", Some(FinishReason::Length)),
        ("\"tool_use\"", Some(FinishReason::ToolCalls)),
        ("\"refusal\"", Some(FinishReason::ContentFilter)),
        ("\"pause_turn\"", Some(FinishReason::Other)),
        ("null", None),
    ];
    for (reason, expected) in cases {
        let decoded = decode(&format!(
            r#"{{"model":"m","content":[],"stop_reason":{reason}}}"#
        ))
        .unwrap();
        assert_eq!(decoded.choices[0].finish_reason, expected, "{reason}");
        assert!(decoded.choices[0].message.content.is_empty());
        let chunks = event(json!({"type": "message_delta", "delta": {"stop_reason": serde_json::from_str::<Value>(reason).unwrap()}, "usage": {"output_tokens": 1}})).unwrap();
        assert_eq!(chunks[0].finish_reason, expected, "{reason}");
    }
}

#[test]
fn errors_map_to_upstream_with_retry_hints() {
    let error = upstream(Anthropic::decode_response(response(
        429,
        &[("retry-after", "12"), ("request-id", "req_1")],
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"},"request_id":"req_1"}"#,
    )));
    assert_eq!(
        error,
        UpstreamError {
            status: 429,
            kind: "rate_limit_error".to_string(),
            message: "Number of request tokens has exceeded your per-minute rate limit".to_string(),
            retry_after_ms: Some(12_000),
        }
    );
    let error = upstream(Anthropic::decode_response(response(
        529,
        &[("retry-after-ms", "1500.5")],
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    )));
    assert_eq!(
        (error.status, error.kind.as_str()),
        (529, "overloaded_error")
    );
    assert_eq!(error.retry_after_ms, Some(1501));

    let error = upstream(Anthropic::decode_response(response(
        503,
        &[],
        "upstream connect error",
    )));
    assert_eq!(error.kind, "http_503");
    assert_eq!(
        error.message,
        "the provider answered HTTP 503: upstream connect error"
    );
    let long = format!(
        r#"{{"type":"error","error":{{"type":"{}","message":"{}"}}}}"#,
        "k".repeat(10_000),
        "m\n".repeat(10_000)
    );
    let error = upstream(Anthropic::decode_response(response(400, &[], &long)));
    assert!(error.kind.len() <= 128 && error.message.len() <= 1024);
    assert!(!error.message.contains('\n'));

    // An error in a success.
    let error = upstream(decode(
        r#"{"type":"error","error":{"type":"api_error","message":"x"}}"#,
    ));
    assert_eq!((error.status, error.kind.as_str()), (502, "api_error"));
}

#[test]
fn a_success_that_is_not_a_message_is_malformed() {
    let garbage = "<html>".repeat(50_000);
    let message = malformed(decode(&garbage));
    assert!(message.len() <= 1024);
    assert!(message.matches("<html>").count() <= 200 / 6 + 1);
    for body in [
        "[]",
        "{}",
        r#"{"content":"hi"}"#,
        r#"{"content":[1]}"#,
        "null",
    ] {
        malformed(decode(body));
    }
}

// ----------------------------------------------------------------- stream

#[test]
fn a_stream_decodes_text_tool_calls_finish_and_usage() {
    let _ = encode(request(vec![text(Role::User, "hi")]));
    let events = [
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-sonnet-4-5", "stop_reason": null, "usage": {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 10}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"q\": "}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"cat\"}"}}),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_2", "name": "ping", "input": {}}}),
        json!({"type": "content_block_stop", "index": 2}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 42}}),
        json!({"type": "message_stop"}),
    ];
    let chunks: Vec<Chunk> = events.into_iter().flat_map(|e| event(e).unwrap()).collect();
    assert_eq!(
        chunks,
        [
            Chunk {
                role: Some(Role::Assistant),
                ..chunk()
            },
            content("Hello"),
            tool_delta(0, Some("toolu_1"), Some("lookup"), ""),
            tool_delta(0, None, None, "{\"q\": "),
            tool_delta(0, None, None, "\"cat\"}"),
            tool_delta(1, Some("toolu_2"), Some("ping"), ""),
            // No arguments came for it: `{}`, as in a whole answer.
            tool_delta(1, None, None, "{}"),
            Chunk {
                finish_reason: Some(FinishReason::ToolCalls),
                usage: Some(Usage {
                    prompt_tokens: 35,
                    cached_prompt_tokens: 10,
                    completion_tokens: 42,
                }),
                ..chunk()
            },
        ]
    );
}

#[test]
fn tool_calls_are_counted_apart_from_other_blocks() {
    event(json!({"type": "message_start", "message": {"usage": {"input_tokens": 1}}})).unwrap();
    // Block 0 is thinking, 1 a server tool, 2 and 3 our tools.
    let thinking = json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}});
    assert_eq!(event(thinking).unwrap(), []);
    let thought = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}});
    assert_eq!(event(thought).unwrap(), []);
    let server = json!({"type": "content_block_start", "index": 1, "content_block": {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}});
    assert_eq!(event(server).unwrap(), []);
    let server_input = json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"query\":"}});
    assert_eq!(event(server_input).unwrap(), []);
    let start = |index: u64, id: &str| json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": id, "name": "f", "input": {}}});
    let delta = |index: u64, json: &str| json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": json}});
    assert_eq!(
        event(start(2, "a")).unwrap(),
        [tool_delta(0, Some("a"), Some("f"), "")]
    );
    assert_eq!(
        event(start(3, "b")).unwrap(),
        [tool_delta(1, Some("b"), Some("f"), "")]
    );
    assert_eq!(
        event(delta(3, "{}")).unwrap(),
        [tool_delta(1, None, None, "{}")]
    );
    assert_eq!(
        event(delta(2, "{\"x\":1}")).unwrap(),
        [tool_delta(0, None, None, "{\"x\":1}")]
    );
    // Arguments went out for both: no `{}` at their end.
    assert_eq!(
        event(json!({"type": "content_block_stop", "index": 2})).unwrap(),
        []
    );
    assert_eq!(
        event(json!({"type": "content_block_stop", "index": 3})).unwrap(),
        []
    );
    // A new message starts counting again.
    event(json!({"type": "message_start", "message": {"usage": {"input_tokens": 1}}})).unwrap();
    assert_eq!(
        event(start(0, "c")).unwrap(),
        [tool_delta(0, Some("c"), Some("f"), "")]
    );
}

#[test]
fn message_delta_usage_prefers_its_own_prompt_counts() {
    event(json!({"type": "message_start", "message": {"usage": {"input_tokens": 10, "cache_creation_input_tokens": 5}}})).unwrap();
    let chunks = event(json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"input_tokens": 12, "output_tokens": 3}})).unwrap();
    assert_eq!(
        chunks[0].usage,
        Some(Usage {
            prompt_tokens: 17,
            cached_prompt_tokens: 0,
            completion_tokens: 3,
        })
    );
    // Neither a reason nor usage: nothing.
    assert_eq!(
        event(json!({"type": "message_delta", "delta": {}})).unwrap(),
        []
    );
}

#[test]
fn stream_errors_are_upstream_errors() {
    let error = upstream(event(
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ));
    assert_eq!(
        error,
        UpstreamError {
            status: 529,
            kind: "overloaded_error".to_string(),
            message: "Overloaded".to_string(),
            retry_after_ms: None,
        }
    );
    let error = upstream(event(
        json!({"type": "error", "error": {"type": "api_error", "message": "Internal"}}),
    ));
    assert_eq!((error.status, error.kind.as_str()), (502, "api_error"));
    let error = upstream(event(json!({"type": "error"})));
    assert_eq!((error.status, error.kind.as_str()), (502, "http_502"));
    let plain = Anthropic::decode_event(StreamEvent {
        event: Some("error".to_string()),
        data: "boom".to_string(),
    });
    assert_eq!(upstream(plain).message, "boom");
}

#[test]
fn unknown_and_empty_events_carry_nothing_malformed_ones_are_malformed() {
    assert_eq!(
        event(json!({"type": "brand_new_event", "x": 1})).unwrap(),
        []
    );
    assert_eq!(event(json!({"type": "message_stop"})).unwrap(), []);
    let empty = Anthropic::decode_event(StreamEvent {
        event: Some("ping".to_string()),
        data: String::new(),
    });
    assert_eq!(empty.unwrap(), []);
    // The event name stands in for a missing `type`.
    let named = Anthropic::decode_event(StreamEvent {
        event: Some("content_block_delta".to_string()),
        data: r#"{"index":0,"delta":{"type":"text_delta","text":"x"}}"#.to_string(),
    });
    assert_eq!(named.unwrap(), [content("x")]);
    for data in ["{", "[1]", "\"s\"", "nope"] {
        let result = Anthropic::decode_event(StreamEvent {
            event: Some("content_block_delta".to_string()),
            data: data.to_string(),
        });
        assert!(malformed(result).len() <= 1024);
    }
}

#[test]
fn hostile_inputs_never_panic_and_stay_bounded() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    let wrong_types = r#"{"type":7,"model":[],"content":[{"type":"text","text":5},{"type":"tool_use","id":{},"name":null,"input":"s"}],"stop_reason":1,"usage":{"input_tokens":"9","output_tokens":-1,"cache_read_input_tokens":1e40}}"#;
    let huge_index = r#"{"type":"content_block_start","index":18446744073709551615,"content_block":{"type":"tool_use","id":"x","name":"y"}}"#;
    let inputs = [
        deep.as_str(),
        deep_object.as_str(),
        wrong_types,
        huge_index,
        r#"{"type":"content_block_delta","index":-1,"delta":{"type":"input_json_delta","partial_json":7}}"#,
        r#"{"type":"message_delta","delta":"x","usage":"y"}"#,
        r#"{"type":"message_start","message":7}"#,
        r#"{"type":"content_block_start","content_block":[]}"#,
        r#"{"type":"error","error":"x"}"#,
        "\u{0}",
    ];
    for input in inputs {
        for status in [200, 400, 529, 0] {
            match Anthropic::decode_response(response(status, &[("retry-after", input)], input)) {
                Ok(_) => {}
                Err(AdapterError::Upstream(e)) => {
                    assert!(e.message.len() <= 1024 && e.kind.len() <= 128);
                }
                Err(AdapterError::Malformed(m) | AdapterError::Unsupported(m)) => {
                    assert!(m.len() <= 1024);
                }
            }
        }
        for name in [None, Some("error"), Some("message_delta")] {
            let result = Anthropic::decode_event(StreamEvent {
                event: name.map(str::to_string),
                data: input.to_string(),
            });
            match result {
                Ok(_) => {}
                Err(AdapterError::Upstream(e)) => {
                    assert!(e.message.len() <= 1024 && e.kind.len() <= 128);
                }
                Err(AdapterError::Malformed(m) | AdapterError::Unsupported(m)) => {
                    assert!(m.len() <= 1024);
                }
            }
        }
    }
    // Wrong types where a field is optional decode leniently.
    let decoded = decode(wrong_types).unwrap();
    assert_eq!(decoded.model, "");
    assert_eq!(decoded.choices[0].finish_reason, None);
    assert_eq!(
        decoded.choices[0].message.content,
        [ContentPart::Text(String::new())]
    );
    assert_eq!(
        decoded.choices[0].message.tool_calls,
        [call("", "", "\"s\"")]
    );
    assert_eq!(
        decoded.usage,
        Some(Usage {
            prompt_tokens: u32::MAX,
            cached_prompt_tokens: u32::MAX,
            completion_tokens: 0,
        })
    );
}
