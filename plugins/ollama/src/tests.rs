#![allow(
    clippy::indexing_slicing,
    reason = "indexing past the end fails the test, as it should"
)]

use super::Ollama;
use serde_json::{Value, json};
use warden_plugin_sdk::provider::{
    AdapterError, ChatRequest, ChatResponse, Chunk, ContentPart, Credential, EmbeddingsRequest,
    FinishReason, Framing, FunctionTool, Guest, HttpRequest, HttpResponse, JsonSchemaFormat,
    Message, ResponseFormat, Role, StreamEvent, ToolCall, ToolCallDelta, ToolChoice, UpstreamError,
    Usage,
};

fn request(messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        model: "llama3.2".to_string(),
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

fn tool(name: &str, parameters: Option<&str>) -> FunctionTool {
    FunctionTool {
        name: name.to_string(),
        description: None,
        parameters: parameters.map(str::to_string),
        strict: None,
    }
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.to_string(),
        name: name.to_string(),
        arguments: arguments.to_string(),
    }
}

fn encode(request: ChatRequest) -> HttpRequest {
    Ollama::encode_request(request).unwrap()
}

fn body_of(request: &HttpRequest) -> Value {
    serde_json::from_slice(&request.body).unwrap()
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

fn decode(body: &str) -> ChatResponse {
    Ollama::decode_response(response(200, &[], body)).unwrap()
}

fn event(data: &str) -> Result<Vec<Chunk>, AdapterError> {
    Ollama::decode_event(StreamEvent {
        event: None,
        data: data.to_string(),
    })
}

/// Starts a stream the way the host does: `encode-request` first.
fn start_stream() {
    let mut req = request(vec![text(Role::User, "hi")]);
    req.stream = true;
    encode(req);
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

fn usage(prompt: u32, completion: u32) -> Usage {
    Usage {
        prompt_tokens: prompt,
        cached_prompt_tokens: 0,
        completion_tokens: completion,
    }
}

// ------------------------------------------------------------------ info

#[test]
fn info_is_ndjson_with_a_bearer_token() {
    let info = Ollama::info();
    assert_eq!(info.framing, Framing::Ndjson);
    assert_eq!(info.credential, Credential::Bearer);
}

// -------------------------------------------------------------- encoding

#[test]
fn a_minimal_request_omits_every_absent_field() {
    let http = encode(request(vec![text(Role::User, "hi")]));
    assert_eq!(http.method, "POST");
    assert_eq!(http.path, "/api/chat");
    assert_eq!(
        http.headers,
        [("content-type".to_string(), "application/json".to_string())]
    );
    assert_eq!(
        body_of(&http),
        json!({
            "model": "llama3.2",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": false,
        })
    );
}

#[test]
fn messages_join_text_inline_images_and_carry_tool_calls() {
    let user = message(
        Role::User,
        vec![
            ContentPart::Text("what is".to_string()),
            ContentPart::ImageUrl("data:image/png;base64,iVBORw0KGgo=".to_string()),
            ContentPart::Text("this?".to_string()),
            ContentPart::ImageUrl("DATA:image/jpeg;charset=x;BASE64,/9j/4AAQ".to_string()),
        ],
    );
    let mut calls = message(Role::Assistant, Vec::new());
    calls.tool_calls = vec![
        call("call_0", "lookup", r#"{"zeta":1,"alpha":"cat"}"#),
        call("", "ping", ""),
    ];
    let mut first = text(Role::Tool, "a cat");
    first.tool_call_id = Some("call_0".to_string());
    let mut named = text(Role::Tool, "pong");
    named.name = Some("ping".to_string());
    let mut unknown = text(Role::Tool, "?");
    unknown.tool_call_id = Some("call_9".to_string());
    let mut alice = text(Role::User, "thanks");
    alice.name = Some("alice".to_string());
    let http = encode(request(vec![
        text(Role::System, "be brief"),
        text(Role::Developer, "no emoji"),
        user,
        calls,
        first,
        named,
        unknown,
        alice,
        message(Role::User, Vec::new()),
    ]));
    assert_eq!(
        body_of(&http)["messages"],
        json!([
            {"role": "system", "content": "be brief"},
            {"role": "system", "content": "no emoji"},
            {"role": "user", "content": "what is\nthis?",
             "images": ["iVBORw0KGgo=", "/9j/4AAQ"]},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_0", "function": {"name": "lookup", "arguments": {"zeta": 1, "alpha": "cat"}}},
                {"function": {"name": "ping", "arguments": {}}},
            ]},
            {"role": "tool", "content": "a cat", "tool_name": "lookup", "tool_call_id": "call_0"},
            {"role": "tool", "content": "pong", "tool_name": "ping"},
            {"role": "tool", "content": "?", "tool_call_id": "call_9"},
            {"role": "user", "content": "thanks"},
            {"role": "user", "content": ""},
        ])
    );
    // Arguments go out verbatim: their keys keep their order.
    let raw = String::from_utf8(http.body).unwrap();
    assert!(
        raw.contains(r#""arguments":{"zeta":1,"alpha":"cat"}"#),
        "{raw}"
    );
}

#[test]
fn a_tool_result_names_the_latest_call_with_its_id() {
    // Ollama numbers calls per answer, so `call_0` comes back every turn.
    let mut turn1 = message(Role::Assistant, Vec::new());
    turn1.tool_calls = vec![call("call_0", "weather", "{}")];
    let mut result1 = text(Role::Tool, "sunny");
    result1.tool_call_id = Some("call_0".to_string());
    let mut turn2 = message(Role::Assistant, Vec::new());
    turn2.tool_calls = vec![call("call_0", "time", "{}")];
    let mut result2 = text(Role::Tool, "noon");
    result2.tool_call_id = Some("call_0".to_string());
    let body = body_of(&encode(request(vec![
        text(Role::User, "go"),
        turn1,
        result1,
        turn2,
        result2,
    ])));
    assert_eq!(body["messages"][2]["tool_name"], "weather");
    assert_eq!(body["messages"][4]["tool_name"], "time");
}

#[test]
fn tools_options_and_formats_are_passed_on() {
    let mut req = request(vec![text(Role::User, "hi")]);
    req.tools = vec![
        FunctionTool {
            name: "lookup".to_string(),
            description: Some("Looks things up.".to_string()),
            parameters: Some(
                r#"{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"integer"}}}"#
                    .to_string(),
            ),
            strict: Some(true),
        },
        tool("ping", None),
    ];
    req.tool_choice = Some(ToolChoice::Auto);
    req.parallel_tool_calls = Some(false);
    req.temperature = Some(0.5);
    req.top_p = Some(0.9);
    req.max_tokens = Some(300);
    req.stop = vec!["END".to_string(), "\n\n".to_string()];
    req.seed = Some(-7);
    req.presence_penalty = Some(0.25);
    req.frequency_penalty = Some(-0.5);
    req.user = Some("user-42".to_string());
    req.stream = true;
    let http = encode(req);
    assert!(
        http.headers
            .contains(&("accept".to_string(), "application/x-ndjson".to_string()))
    );
    let raw = String::from_utf8(http.body.clone()).unwrap();
    assert!(
        raw.contains(r#""properties":{"zeta":{"type":"string"},"alpha":{"type":"integer"}}"#),
        "{raw}"
    );
    assert_eq!(
        body_of(&http),
        json!({
            "model": "llama3.2",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [
                {"type": "function", "function": {
                    "name": "lookup", "description": "Looks things up.",
                    "parameters": {"type": "object", "properties": {
                        "zeta": {"type": "string"}, "alpha": {"type": "integer"}}},
                }},
                {"type": "function", "function": {
                    "name": "ping", "parameters": {"type": "object", "properties": {}}}},
            ],
            "options": {
                "temperature": 0.5, "top_p": 0.9, "num_predict": 300,
                "stop": ["END", "\n\n"], "seed": -7,
                "presence_penalty": 0.25, "frequency_penalty": -0.5,
            },
            "stream": true,
        })
    );
}

#[test]
fn tool_choice_none_strips_tools_and_forcing_one_is_refused() {
    let mut req = request(vec![text(Role::User, "hi")]);
    req.tools = vec![tool("ping", Some("not json"))];
    req.tool_choice = Some(ToolChoice::None);
    assert!(body_of(&encode(req)).get("tools").is_none());

    for choice in [
        ToolChoice::Required,
        ToolChoice::Function("ping".to_string()),
    ] {
        let mut req = request(vec![text(Role::User, "hi")]);
        req.tools = vec![tool("ping", None)];
        req.tool_choice = Some(choice);
        let message = unsupported(Ollama::encode_request(req));
        assert!(message.contains("cannot force a tool call"), "{message}");
    }
}

#[test]
fn every_response_format_has_its_form() {
    let schema = JsonSchemaFormat {
        name: "answer".to_string(),
        description: Some("The answer.".to_string()),
        schema: Some(r#"{"type":"object","required":["x"]}"#.to_string()),
        strict: Some(true),
    };
    let bare = JsonSchemaFormat {
        name: "bare".to_string(),
        description: None,
        schema: None,
        strict: None,
    };
    let cases = [
        (ResponseFormat::Text, None),
        (ResponseFormat::JsonObject, Some(json!("json"))),
        (
            ResponseFormat::JsonSchema(schema),
            Some(json!({"type": "object", "required": ["x"]})),
        ),
        (ResponseFormat::JsonSchema(bare), Some(json!("json"))),
    ];
    for (format, expected) in cases {
        let mut req = request(vec![text(Role::User, "hi")]);
        req.response_format = Some(format);
        assert_eq!(body_of(&encode(req)).get("format").cloned(), expected);
    }
}

#[test]
fn what_ollama_cannot_take_is_refused() {
    let refuse = |message: Message| unsupported(Ollama::encode_request(request(vec![message])));
    let by_url = refuse(message(
        Role::User,
        vec![ContentPart::ImageUrl(
            "https://example.com/cat.png".to_string(),
        )],
    ));
    assert!(by_url.contains("only inline"), "{by_url}");
    let plain = refuse(message(
        Role::User,
        vec![ContentPart::ImageUrl("data:text/plain,hello".to_string())],
    ));
    assert!(plain.contains("base64"), "{plain}");
    // `base64` must be a parameter, not the media type.
    refuse(message(
        Role::User,
        vec![ContentPart::ImageUrl("data:base64,AAAA".to_string())],
    ));
    refuse(message(
        Role::User,
        vec![ContentPart::ImageUrl("data:image/png;base64".to_string())],
    ));
    refuse(message(
        Role::User,
        vec![ContentPart::ImageUrl("dat".to_string())],
    ));

    for arguments in ["[1]", "\"x\"", "{", "7"] {
        let mut calls = message(Role::Assistant, Vec::new());
        calls.tool_calls = vec![call("call_0", "f", arguments)];
        let message = refuse(calls);
        assert!(message.contains("tool call `call_0`"), "{message}");
    }

    let mut req = request(vec![text(Role::User, "hi")]);
    req.tools = vec![tool("lookup", Some("{\"type\": "))];
    assert!(unsupported(Ollama::encode_request(req)).contains("tool `lookup`"));
    let mut req = request(vec![text(Role::User, "hi")]);
    req.response_format = Some(ResponseFormat::JsonSchema(JsonSchemaFormat {
        name: "answer".to_string(),
        description: None,
        schema: Some("{} trailing".to_string()),
        strict: None,
    }));
    assert!(unsupported(Ollama::encode_request(req)).contains("response format `answer`"));

    let mut req = request(vec![text(Role::User, "hi")]);
    req.temperature = Some(f64::NAN);
    assert!(unsupported(Ollama::encode_request(req)).contains("temperature"));
    let mut req = request(vec![text(Role::User, "hi")]);
    req.presence_penalty = Some(f64::NEG_INFINITY);
    assert!(unsupported(Ollama::encode_request(req)).contains("presence-penalty"));

    // A hostile name does not make the message unbounded.
    let mut req = request(vec![text(Role::User, "hi")]);
    req.tools = vec![tool(&"x".repeat(100_000), Some("nope"))];
    assert!(unsupported(Ollama::encode_request(req)).len() <= 1024);
    let mut req = request(vec![text(Role::User, "hi")]);
    req.tool_choice = Some(ToolChoice::Function("y".repeat(100_000)));
    assert!(unsupported(Ollama::encode_request(req)).len() <= 1024);
}

#[test]
fn deeply_nested_parameters_do_not_overflow() {
    let depth = 50_000;
    let mut req = request(vec![text(Role::User, "hi")]);
    req.tools = vec![tool(
        "deep",
        Some(&format!("{}{}", "[".repeat(depth), "]".repeat(depth))),
    )];
    // Valid JSON: passed on verbatim, never parsed into a tree.
    let http = encode(req);
    assert!(http.body.len() > 2 * depth);
}

// --------------------------------------------------------------- decoding

const ANSWER: &str = r#"{
  "model": "llama3.2", "created_at": "2025-01-01T00:00:00Z",
  "message": {"role": "assistant", "content": "Hello!"},
  "done": true, "done_reason": "stop",
  "total_duration": 5000, "load_duration": 10, "prompt_eval_count": 26,
  "prompt_eval_duration": 100, "eval_count": 298, "eval_duration": 4000
}"#;

#[test]
fn an_answer_decodes_with_usage() {
    let decoded = decode(ANSWER);
    assert_eq!(decoded.model, "llama3.2");
    assert_eq!(decoded.usage, Some(usage(26, 298)));
    assert_eq!(decoded.choices.len(), 1);
    let choice = &decoded.choices[0];
    assert_eq!(choice.index, 0);
    assert_eq!(choice.message, text(Role::Assistant, "Hello!"));
    assert_eq!(choice.finish_reason, Some(FinishReason::Stop));
}

#[test]
fn tool_calls_get_ids_and_their_arguments_as_text() {
    let body = r#"{"model":"qwen3","message":{"role":"assistant","content":"",
        "tool_calls":[
          {"function":{"index":0,"name":"lookup","arguments":{"zeta":1,"alpha":[true,null]}}},
          {"id":"call_x1","function":{"name":"ping","arguments":{}}},
          {"function":{"name":"bare"}},
          {"function":{"name":"texty","arguments":"{\"a\":1}"}}
        ]},"done":true,"done_reason":"stop","eval_count":12}"#;
    let decoded = decode(body);
    let choice = &decoded.choices[0];
    assert!(choice.message.content.is_empty());
    assert_eq!(
        choice.message.tool_calls,
        [
            call("call_0", "lookup", r#"{"zeta":1,"alpha":[true,null]}"#),
            call("call_x1", "ping", "{}"),
            call("call_2", "bare", "{}"),
            call("call_3", "texty", r#"{"a":1}"#),
        ]
    );
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    // Ollama leaves out counts that are 0.
    assert_eq!(decoded.usage, Some(usage(0, 12)));
}

#[test]
fn done_reasons_map() {
    let cases = [
        (r#""stop""#, FinishReason::Stop),
        (r#""length""#, FinishReason::Length),
        (r#""load""#, FinishReason::Other),
        (r#""connection_closed""#, FinishReason::Other),
        ("null", FinishReason::Other),
        ("7", FinishReason::Other),
    ];
    for (reason, expected) in cases {
        let body = format!(
            r#"{{"model":"m","message":{{"role":"assistant","content":"x"}},"done":true,"done_reason":{reason}}}"#
        );
        assert_eq!(decode(&body).choices[0].finish_reason, Some(expected));
        start_stream();
        let chunks = event(&format!(r#"{{"done":true,"done_reason":{reason}}}"#)).unwrap();
        assert_eq!(chunks[0].finish_reason, Some(expected), "{reason}");
    }
    // Not done (never so from Ollama when not streaming): no reason, no usage.
    let open = decode(r#"{"message":{"content":"x"},"done":false}"#);
    assert_eq!(open.choices[0].finish_reason, None);
    assert_eq!(open.usage, None);
    assert_eq!(open.model, "");
}

#[test]
fn errors_map_to_upstream_with_retry_hints() {
    let error = upstream(Ollama::decode_response(response(
        404,
        &[("content-type", "application/json")],
        r#"{"error":"model 'llama9' not found"}"#,
    )));
    assert_eq!(
        error,
        UpstreamError {
            status: 404,
            kind: "ollama_error".to_string(),
            message: "model 'llama9' not found".to_string(),
            retry_after_ms: None,
        }
    );
    let error = upstream(Ollama::decode_response(response(
        503,
        &[("retry-after", "1.5")],
        r#"{"error":"server busy, please try again.  maximum pending requests exceeded"}"#,
    )));
    assert_eq!((error.status, error.retry_after_ms), (503, Some(1500)));
    assert_eq!(error.kind, "ollama_error");

    // A proxy in front of Ollama, in OpenAI's shape.
    let error = upstream(Ollama::decode_response(response(
        401,
        &[],
        r#"{"error":{"message":"bad token","type":"auth_error"}}"#,
    )));
    assert_eq!(
        (error.kind.as_str(), error.message.as_str()),
        ("auth_error", "bad token")
    );

    // No error document: the status names the kind.
    let error = upstream(Ollama::decode_response(response(502, &[], "")));
    assert_eq!(error.kind, "http_502");
    assert_eq!(error.message, "the provider answered HTTP 502");
    let page = format!("<html>{}</html>", "Bad gateway ".repeat(10_000));
    let error = upstream(Ollama::decode_response(response(401, &[], &page)));
    assert_eq!(error.kind, "http_401");
    assert!(
        error
            .message
            .starts_with("the provider answered HTTP 401: <html>Bad gateway")
    );
    assert!(error.message.len() <= 300, "{}", error.message.len());
    let error = upstream(Ollama::decode_response(response(
        500,
        &[],
        r#"{"detail":"x"}"#,
    )));
    assert_eq!(error.kind, "http_500");

    let long = format!(r#"{{"error":"{}"}}"#, "m".repeat(50_000));
    let error = upstream(Ollama::decode_response(response(500, &[], &long)));
    assert!(error.message.len() <= 1024);
    assert!(error.message.starts_with("mmmm"));
}

#[test]
fn a_success_carrying_an_error_is_an_upstream_error() {
    let error = upstream(Ollama::decode_response(response(
        200,
        &[],
        r#"{"error":"an error was encountered while running the model"}"#,
    )));
    assert_eq!((error.status, error.kind.as_str()), (502, "ollama_error"));
    // `"error": null` is no error.
    let decoded = decode(r#"{"error":null,"message":{"content":"ok"},"done":true}"#);
    assert_eq!(
        decoded.choices[0].message.content,
        [ContentPart::Text("ok".to_string())]
    );
}

#[test]
fn a_success_that_is_not_an_answer_is_malformed() {
    let garbage = "\u{1}not json at all ".repeat(10_000);
    let message = malformed(Ollama::decode_response(response(200, &[], &garbage)));
    assert!(message.len() <= 1024);
    assert!(message.matches("not json").count() <= 200 / "not json".len() + 1);

    for body in [
        "[]",
        "\"text\"",
        "{}",
        r#"{"message":"hi"}"#,
        r#"{"message":null}"#,
        r#"{"message":{"content":5}}"#,
        r#"{"message":{"tool_calls":{}}}"#,
        r#"{"message":{"tool_calls":["x"]}}"#,
    ] {
        malformed(Ollama::decode_response(response(200, &[], body)));
    }
    let bytes = HttpResponse {
        status: 200,
        headers: Vec::new(),
        body: vec![0xff, 0xfe, b'{'],
    };
    malformed(Ollama::decode_response(bytes));
}

#[test]
fn odd_numbers_saturate_or_count_as_zero() {
    let decoded = decode(
        r#"{"message":{"content":"x"},"done":true,"prompt_eval_count":99999999999,"eval_count":-4}"#,
    );
    assert_eq!(decoded.usage, Some(usage(u32::MAX, 0)));
    let decoded = decode(r#"{"message":{"content":"x"},"done":true,"eval_count":"7"}"#);
    assert_eq!(decoded.usage, Some(usage(0, 0)));
}

// ----------------------------------------------------------------- stream

#[test]
fn a_stream_decodes_role_content_and_the_final_line() {
    start_stream();
    let first = event(
        r#"{"model":"llama3.2","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"Hel"},"done":false}"#,
    )
    .unwrap();
    assert_eq!(
        first,
        [Chunk {
            role: Some(Role::Assistant),
            content: "Hel".to_string(),
            ..chunk()
        }]
    );
    let more = event(r#"{"message":{"role":"assistant","content":"lo"},"done":false}"#).unwrap();
    assert_eq!(
        more,
        [Chunk {
            content: "lo".to_string(),
            ..chunk()
        }]
    );
    // Lines that carry nothing (a thinking model's thoughts, blank lines).
    assert_eq!(
        event(r#"{"message":{"role":"assistant","content":"","thinking":"hmm"},"done":false}"#)
            .unwrap(),
        []
    );
    assert_eq!(event("").unwrap(), []);
    assert_eq!(event("  \r").unwrap(), []);
    let last = event(
        r#"{"model":"llama3.2","message":{"role":"assistant","content":""},"done":true,"done_reason":"length","total_duration":1,"prompt_eval_count":26,"eval_count":2}"#,
    )
    .unwrap();
    assert_eq!(
        last,
        [Chunk {
            finish_reason: Some(FinishReason::Length),
            usage: Some(usage(26, 2)),
            ..chunk()
        }]
    );
}

#[test]
fn the_first_line_carries_the_role_even_when_empty() {
    start_stream();
    assert_eq!(
        event(r#"{"message":{"role":"assistant","content":""},"done":false}"#).unwrap(),
        [Chunk {
            role: Some(Role::Assistant),
            ..chunk()
        }]
    );
    assert_eq!(
        event(r#"{"message":{"role":"assistant","content":""},"done":false}"#).unwrap(),
        []
    );
}

#[test]
fn streamed_tool_calls_are_whole_deltas_numbered_across_lines() {
    start_stream();
    let first = event(r#"{"message":{"role":"assistant","content":"","tool_calls":[{"function":{"index":0,"name":"lookup","arguments":{"q":"cat","k":2}}}]},"done":false}"#).unwrap();
    assert_eq!(
        first,
        [Chunk {
            role: Some(Role::Assistant),
            tool_calls: vec![ToolCallDelta {
                index: 0,
                id: Some("call_0".to_string()),
                name: Some("lookup".to_string()),
                // As written: Ollama keeps the model's key order, and so does Warden.
                arguments: r#"{"q":"cat","k":2}"#.to_string(),
            }],
            ..chunk()
        }]
    );
    // Ollama restarts its own `index` per line; Warden's keeps counting.
    let second = event(r#"{"message":{"role":"assistant","content":"","tool_calls":[{"id":"call_abc","function":{"index":0,"name":"ping","arguments":{}}},{"function":{"index":1,"name":"pong","arguments":{}}}]},"done":false}"#).unwrap();
    assert_eq!(
        second[0].tool_calls,
        [
            ToolCallDelta {
                index: 1,
                id: Some("call_abc".to_string()),
                name: Some("ping".to_string()),
                arguments: "{}".to_string(),
            },
            ToolCallDelta {
                index: 2,
                id: Some("call_2".to_string()),
                name: Some("pong".to_string()),
                arguments: "{}".to_string(),
            },
        ]
    );
    // Ollama ends with `stop` after tool calls: the reason is `tool-calls`.
    let last = event(r#"{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":9,"eval_count":20}"#).unwrap();
    assert_eq!(
        last,
        [Chunk {
            finish_reason: Some(FinishReason::ToolCalls),
            usage: Some(usage(9, 20)),
            ..chunk()
        }]
    );

    // encode-request starts the next stream afresh.
    start_stream();
    let again =
        event(r#"{"message":{"tool_calls":[{"function":{"name":"x"}}]},"done":false}"#).unwrap();
    assert_eq!(again[0].role, Some(Role::Assistant));
    assert_eq!(again[0].tool_calls[0].index, 0);
    assert_eq!(again[0].tool_calls[0].id.as_deref(), Some("call_0"));
    let done = event(r#"{"done":true,"done_reason":"stop"}"#).unwrap();
    assert_eq!(done[0].finish_reason, Some(FinishReason::ToolCalls));
    start_stream();
    let done = event(r#"{"done":true,"done_reason":"stop"}"#).unwrap();
    assert_eq!(
        done,
        [Chunk {
            role: Some(Role::Assistant),
            finish_reason: Some(FinishReason::Stop),
            usage: Some(usage(0, 0)),
            ..chunk()
        }]
    );
}

#[test]
fn a_stream_error_line_is_an_upstream_error() {
    start_stream();
    let error = upstream(event(
        r#"{"error":"an error was encountered while running the model: unexpected EOF"}"#,
    ));
    assert_eq!(
        error,
        UpstreamError {
            status: 502,
            kind: "ollama_error".to_string(),
            message: "an error was encountered while running the model: unexpected EOF".to_string(),
            retry_after_ms: None,
        }
    );
    let error = upstream(event(r#"{"error":{"message":"x","type":"server_error"}}"#));
    assert_eq!((error.status, error.kind.as_str()), (502, "server_error"));
    let error = upstream(event(r#"{"error":["odd"]}"#));
    assert_eq!(error.message, r#"["odd"]"#);
}

#[test]
fn malformed_lines_are_malformed() {
    start_stream();
    for data in [
        "{",
        "not json",
        "data: {\"done\":true}",
        "[1,2]",
        "42",
        r#"{"message":"x"}"#,
        r#"{"message":{"content":{"a":1}}}"#,
        r#"{"message":{"tool_calls":"x"}}"#,
        r#"{"message":{"tool_calls":[null]}}"#,
        "{\"done\":false}\n{\"done\":true}",
    ] {
        let message = malformed(event(data));
        assert!(message.len() <= 1024, "{data}");
    }
}

#[test]
fn hostile_inputs_never_panic_and_stay_bounded() {
    let deep_array = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    let deep_in_place = format!(
        r#"{{"message":{{"content":"x","tool_calls":[{{"function":{{"arguments":{}}}}}]}}}}"#,
        "[".repeat(10_000)
    );
    let deep_error = format!(r#"{{"error":{}1{}}}"#, "[".repeat(120), "]".repeat(120));
    let huge_string = format!(
        r#"{{"message":{{"content":"{}"}},"done":false}}"#,
        "x".repeat(1 << 20)
    );
    let wrong_types = r#"{"model":7,"message":{"role":5,"content":null,"tool_calls":[{"id":1,"function":"f"},{"function":{"name":[],"arguments":5}}]},"done":"yes","done_reason":{},"prompt_eval_count":[],"embeddings":[[1,"x"]]}"#;
    let inputs = [
        deep_array.as_str(),
        deep_object.as_str(),
        deep_in_place.as_str(),
        deep_error.as_str(),
        huge_string.as_str(),
        wrong_types,
        "\u{0}\u{ffff}",
        "{\"message\":{\"content\":\"\\ud800\"}}",
        "1e999999",
        "-0",
        "null",
    ];
    let bounded = |result: Result<(), AdapterError>| match result {
        Ok(()) => {}
        Err(AdapterError::Upstream(e)) => {
            assert!(e.message.len() <= 1024 && e.kind.len() <= 128);
        }
        Err(AdapterError::Malformed(m) | AdapterError::Unsupported(m)) => {
            assert!(m.len() <= 1024);
        }
    };
    for input in inputs {
        for status in [200, 400, 429, 500, 0, 999] {
            let answer = response(status, &[("retry-after", input)], input);
            bounded(Ollama::decode_response(answer.clone()).map(drop));
            bounded(Ollama::decode_embeddings(answer).map(drop));
        }
        start_stream();
        bounded(event(input).map(drop));
        bounded(event(input).map(drop));
    }
    // The wrong types decode leniently where the field is optional.
    let decoded = decode(wrong_types);
    assert_eq!(decoded.model, "");
    assert_eq!(decoded.usage, Some(usage(0, 0)));
    let choice = &decoded.choices[0];
    assert_eq!(choice.message.role, Role::Assistant);
    assert!(choice.message.content.is_empty());
    assert_eq!(
        choice.message.tool_calls,
        [call("call_0", "", "{}"), call("call_1", "", "5")]
    );
}

// ------------------------------------------------------------- embeddings

#[test]
fn embeddings_round_trip() {
    let request = EmbeddingsRequest {
        model: "nomic-embed-text".to_string(),
        inputs: vec!["a".to_string(), "b".to_string()],
        dimensions: Some(3),
        user: Some("u".to_string()),
    };
    let sent = Ollama::encode_embeddings(request).unwrap();
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/api/embed")
    );
    assert_eq!(
        body_of(&sent),
        json!({"model": "nomic-embed-text", "input": ["a", "b"], "dimensions": 3})
    );
    let plain = EmbeddingsRequest {
        model: "m".to_string(),
        inputs: vec!["only".to_string()],
        dimensions: None,
        user: None,
    };
    assert_eq!(
        body_of(&Ollama::encode_embeddings(plain).unwrap()),
        json!({"model": "m", "input": ["only"]})
    );

    let answer = response(
        200,
        &[],
        r#"{"model": "nomic-embed-text", "embeddings": [[-1, 0, 0.25], [0.5, 1, 2]],
            "total_duration": 14143917, "load_duration": 1019500, "prompt_eval_count": 8}"#,
    );
    let decoded = Ollama::decode_embeddings(answer).unwrap();
    assert_eq!(decoded.model, "nomic-embed-text");
    assert_eq!(
        decoded.vectors,
        vec![vec![-1.0, 0.0, 0.25], vec![0.5, 1.0, 2.0]]
    );
    assert_eq!(decoded.usage, Some(usage(8, 0)));
    let uncounted = Ollama::decode_embeddings(response(200, &[], r#"{"embeddings": []}"#)).unwrap();
    assert_eq!((uncounted.vectors.len(), uncounted.usage), (0, None));

    for body in [
        "{}",
        r#"{"embeddings": "x"}"#,
        r#"{"embeddings": [[1, "x"]]}"#,
        r#"{"embeddings": [7]}"#,
        "not json",
    ] {
        malformed(Ollama::decode_embeddings(response(200, &[], body)));
    }
    let error = upstream(Ollama::decode_embeddings(response(
        400,
        &[("retry-after", "2")],
        r#"{"error": "this model does not support embeddings"}"#,
    )));
    assert_eq!(
        (error.status, error.kind.as_str(), error.retry_after_ms),
        (400, "ollama_error", Some(2000))
    );
    assert_eq!(error.message, "this model does not support embeddings");
    let error = upstream(Ollama::decode_embeddings(response(
        200,
        &[],
        r#"{"error": "boom"}"#,
    )));
    assert_eq!(error.status, 502);
}
