#![allow(
    clippy::indexing_slicing,
    reason = "indexing past the end fails the test, as it should"
)]

use super::OpenAi;
use serde_json::{Value, json};
use warden_plugin_sdk::provider::{
    AdapterError, ChatRequest, ChatResponse, Chunk, ContentPart, Credential, FinishReason, Framing,
    FunctionTool, Guest, HttpRequest, HttpResponse, JsonSchemaFormat, Message, ResponseFormat,
    Role, StreamEvent, ToolCall, ToolCallDelta, ToolChoice, UpstreamError, Usage,
};

fn request(messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        model: "gpt-4o-mini".to_string(),
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

fn encode(request: ChatRequest) -> HttpRequest {
    OpenAi::encode_request(request).unwrap()
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

fn upstream(result: Result<ChatResponse, AdapterError>) -> UpstreamError {
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

fn event(data: &str) -> Result<Vec<Chunk>, AdapterError> {
    OpenAi::decode_event(StreamEvent {
        event: None,
        data: data.to_string(),
    })
}

fn chunk(index: u32) -> Chunk {
    Chunk {
        index,
        role: None,
        content: String::new(),
        tool_calls: Vec::new(),
        finish_reason: None,
        usage: None,
    }
}

// ------------------------------------------------------------------ info

#[test]
fn info_is_sse_with_a_bearer_token() {
    let info = OpenAi::info();
    assert_eq!(info.framing, Framing::Sse);
    assert_eq!(info.credential, Credential::Bearer);
}

// -------------------------------------------------------------- encoding

#[test]
fn a_minimal_request_omits_every_absent_field() {
    let http = encode(request(vec![text(Role::User, "hi")]));
    assert_eq!(http.method, "POST");
    assert_eq!(http.path, "/v1/chat/completions");
    assert_eq!(
        http.headers,
        [("content-type".to_string(), "application/json".to_string())]
    );
    assert_eq!(
        body_of(&http),
        json!({
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": false,
        })
    );
}

#[test]
fn messages_keep_roles_parts_names_and_tool_calls() {
    let mut user = message(
        Role::User,
        vec![
            ContentPart::Text("what is this?".to_string()),
            ContentPart::ImageUrl("https://example.com/cat.png".to_string()),
        ],
    );
    user.name = Some("alice".to_string());
    let mut call = message(Role::Assistant, Vec::new());
    call.tool_calls = vec![ToolCall {
        id: "call_1".to_string(),
        name: "lookup".to_string(),
        arguments: "{\"q\":\"cat\"}".to_string(),
    }];
    let mut answer = text(Role::Tool, "a cat");
    answer.tool_call_id = Some("call_1".to_string());
    let http = encode(request(vec![
        text(Role::System, "be brief"),
        text(Role::Developer, "no emoji"),
        user,
        call,
        answer,
        message(Role::User, Vec::new()),
    ]));
    assert_eq!(
        body_of(&http)["messages"],
        json!([
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": "no emoji"},
            {"role": "user", "name": "alice", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "lookup", "arguments": "{\"q\":\"cat\"}"}},
            ]},
            {"role": "tool", "content": "a cat", "tool_call_id": "call_1"},
            {"role": "user", "content": ""},
        ])
    );
}

#[test]
fn tools_and_sampling_options_are_passed_on() {
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
        FunctionTool {
            name: "ping".to_string(),
            description: None,
            parameters: None,
            strict: None,
        },
    ];
    req.tool_choice = Some(ToolChoice::Required);
    req.parallel_tool_calls = Some(false);
    req.temperature = Some(0.5);
    req.top_p = Some(0.9);
    req.max_tokens = Some(300);
    req.stop = vec!["END".to_string(), "\n\n".to_string()];
    req.seed = Some(-7);
    req.presence_penalty = Some(0.25);
    req.frequency_penalty = Some(-0.5);
    req.user = Some("user-42".to_string());
    let http = encode(req);
    let body = body_of(&http);
    assert_eq!(
        body["tools"],
        json!([
            {"type": "function", "function": {
                "name": "lookup", "description": "Looks things up.", "strict": true,
                "parameters": {"type": "object", "properties": {
                    "zeta": {"type": "string"}, "alpha": {"type": "integer"}}},
            }},
            {"type": "function", "function": {"name": "ping"}},
        ])
    );
    // The schema goes out verbatim: its properties keep their order.
    let raw = String::from_utf8(http.body.clone()).unwrap();
    assert!(
        raw.contains(r#""properties":{"zeta":{"type":"string"},"alpha":{"type":"integer"}}"#),
        "{raw}"
    );
    assert_eq!(body["tool_choice"], "required");
    assert_eq!(body["parallel_tool_calls"], false);
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["top_p"], 0.9);
    assert_eq!(body["max_tokens"], 300);
    assert_eq!(body["stop"], json!(["END", "\n\n"]));
    assert_eq!(body["seed"], -7);
    assert_eq!(body["presence_penalty"], 0.25);
    assert_eq!(body["frequency_penalty"], -0.5);
    assert_eq!(body["user"], "user-42");
    assert!(body.get("max_completion_tokens").is_none());
    assert!(body.get("stream_options").is_none());
}

#[test]
fn every_tool_choice_has_its_form() {
    let cases = [
        (ToolChoice::Auto, json!("auto")),
        (ToolChoice::None, json!("none")),
        (ToolChoice::Required, json!("required")),
        (
            ToolChoice::Function("lookup".to_string()),
            json!({"type": "function", "function": {"name": "lookup"}}),
        ),
    ];
    for (choice, expected) in cases {
        let mut req = request(vec![text(Role::User, "hi")]);
        req.tool_choice = Some(choice);
        assert_eq!(body_of(&encode(req))["tool_choice"], expected);
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
        (ResponseFormat::Text, json!({"type": "text"})),
        (ResponseFormat::JsonObject, json!({"type": "json_object"})),
        (
            ResponseFormat::JsonSchema(schema),
            json!({"type": "json_schema", "json_schema": {
                "name": "answer", "description": "The answer.", "strict": true,
                "schema": {"type": "object", "required": ["x"]}}}),
        ),
        (
            ResponseFormat::JsonSchema(bare),
            json!({"type": "json_schema", "json_schema": {"name": "bare"}}),
        ),
    ];
    for (format, expected) in cases {
        let mut req = request(vec![text(Role::User, "hi")]);
        req.response_format = Some(format);
        assert_eq!(body_of(&encode(req))["response_format"], expected);
    }
}

#[test]
fn a_stream_asks_for_events_and_usage() {
    let mut req = request(vec![text(Role::User, "hi")]);
    req.stream = true;
    let http = encode(req);
    assert!(
        http.headers
            .contains(&("accept".to_string(), "text/event-stream".to_string()))
    );
    let body = body_of(&http);
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
}

#[test]
fn invalid_schemas_are_refused_by_name() {
    let mut req = request(vec![text(Role::User, "hi")]);
    req.tools = vec![FunctionTool {
        name: "lookup".to_string(),
        description: None,
        parameters: Some("{\"type\": ".to_string()),
        strict: None,
    }];
    let message = unsupported(OpenAi::encode_request(req));
    assert!(message.contains("tool `lookup`"), "{message}");

    let mut req = request(vec![text(Role::User, "hi")]);
    req.response_format = Some(ResponseFormat::JsonSchema(JsonSchemaFormat {
        name: "answer".to_string(),
        description: None,
        schema: Some("{} trailing".to_string()),
        strict: None,
    }));
    let message = unsupported(OpenAi::encode_request(req));
    assert!(message.contains("response format `answer`"), "{message}");

    // A hostile tool name does not make the message unbounded.
    let mut req = request(vec![text(Role::User, "hi")]);
    req.tools = vec![FunctionTool {
        name: "x".repeat(100_000),
        description: None,
        parameters: Some("nope".to_string()),
        strict: None,
    }];
    assert!(unsupported(OpenAi::encode_request(req)).len() <= 1024);
}

#[test]
fn non_finite_numbers_are_refused() {
    let mut req = request(vec![text(Role::User, "hi")]);
    req.temperature = Some(f64::NAN);
    assert!(unsupported(OpenAi::encode_request(req)).contains("temperature"));
    let mut req = request(vec![text(Role::User, "hi")]);
    req.frequency_penalty = Some(f64::INFINITY);
    assert!(unsupported(OpenAi::encode_request(req)).contains("frequency-penalty"));
}

#[test]
fn deeply_nested_parameters_do_not_overflow() {
    let depth = 50_000;
    let mut req = request(vec![text(Role::User, "hi")]);
    req.tools = vec![FunctionTool {
        name: "deep".to_string(),
        description: None,
        parameters: Some(format!("{}{}", "[".repeat(depth), "]".repeat(depth))),
        strict: None,
    }];
    // Valid JSON: passed on verbatim, never parsed into a tree.
    let http = encode(req);
    assert!(http.body.len() > 2 * depth);
}

// --------------------------------------------------------------- decoding

const COMPLETION: &str = r#"{
  "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024-07-18",
  "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop", "logprobs": null},
    {"index": 1, "message": {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call_a", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":1}"}},
      {"id": "call_b", "type": "function", "function": {"name": "ping", "arguments": ""}}
    ]}, "finish_reason": "tool_calls"}
  ],
  "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
            "prompt_tokens_details": {"cached_tokens": 64}}
}"#;

#[test]
fn a_completion_decodes_with_tool_calls_and_usage() {
    let decoded = OpenAi::decode_response(response(200, &[], COMPLETION)).unwrap();
    assert_eq!(decoded.model, "gpt-4o-mini-2024-07-18");
    assert_eq!(
        decoded.usage,
        Some(Usage {
            prompt_tokens: 120,
            cached_prompt_tokens: 64,
            completion_tokens: 30,
        })
    );
    assert_eq!(decoded.choices.len(), 2);
    let first = &decoded.choices[0];
    assert_eq!(first.index, 0);
    assert_eq!(first.message, text(Role::Assistant, "Hello!"));
    assert_eq!(first.finish_reason, Some(FinishReason::Stop));
    let second = &decoded.choices[1];
    assert_eq!(second.index, 1);
    assert!(second.message.content.is_empty());
    assert_eq!(
        second.message.tool_calls,
        [
            ToolCall {
                id: "call_a".to_string(),
                name: "lookup".to_string(),
                arguments: "{\"q\":1}".to_string(),
            },
            ToolCall {
                id: "call_b".to_string(),
                name: "ping".to_string(),
                arguments: String::new(),
            },
        ]
    );
    assert_eq!(second.finish_reason, Some(FinishReason::ToolCalls));
}

#[test]
fn finish_reasons_map() {
    let cases = [
        ("\"stop\"", Some(FinishReason::Stop)),
        ("\"length\"", Some(FinishReason::Length)),
        ("\"tool_calls\"", Some(FinishReason::ToolCalls)),
        ("\"function_call\"", Some(FinishReason::ToolCalls)),
        ("\"content_filter\"", Some(FinishReason::ContentFilter)),
        ("\"eos\"", Some(FinishReason::Other)),
        ("null", None),
        ("7", None),
    ];
    for (reason, expected) in cases {
        let body = format!(
            r#"{{"model":"m","choices":[{{"index":0,"message":{{"role":"assistant","content":"x"}},"finish_reason":{reason}}}]}}"#
        );
        let decoded = OpenAi::decode_response(response(200, &[], &body)).unwrap();
        assert_eq!(decoded.choices[0].finish_reason, expected, "{reason}");
        let chunks = event(&format!(
            r#"{{"choices":[{{"index":0,"delta":{{}},"finish_reason":{reason}}}]}}"#
        ))
        .unwrap();
        assert_eq!(chunks[0].finish_reason, expected, "{reason}");
    }
}

#[test]
fn lenient_servers_decode_too() {
    // No usage, no index, content as parts, arguments as an object, a
    // refusal in place of content: all seen from OpenAI-compatible servers.
    let body = r#"{"choices":[
        {"message":{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}},
        {"message":{"role":"assistant","content":"","tool_calls":[{"id":"c","function":{"name":"f","arguments":{"x":1}}}]}},
        {"message":{"role":"assistant","content":null,"refusal":"I can't help with that."}}
    ]}"#;
    let decoded = OpenAi::decode_response(response(200, &[], body)).unwrap();
    assert_eq!(decoded.model, "");
    assert_eq!(decoded.usage, None);
    assert_eq!(decoded.choices[0].index, 0);
    assert_eq!(
        decoded.choices[0].message.content,
        [
            ContentPart::Text("a".to_string()),
            ContentPart::Text("b".to_string())
        ]
    );
    assert_eq!(decoded.choices[1].index, 1);
    assert_eq!(
        decoded.choices[1].message.tool_calls[0].arguments,
        "{\"x\":1}"
    );
    assert_eq!(
        decoded.choices[2].message,
        text(Role::Assistant, "I can't help with that.")
    );
}

#[test]
fn errors_map_to_upstream_with_retry_hints() {
    let body = r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
    let error = upstream(OpenAi::decode_response(response(
        429,
        &[("retry-after", "1.5"), ("x-request-id", "req_1")],
        body,
    )));
    assert_eq!(
        error,
        UpstreamError {
            status: 429,
            kind: "requests".to_string(),
            message: "Rate limit reached".to_string(),
            retry_after_ms: Some(1500),
        }
    );
    let error = upstream(OpenAi::decode_response(response(
        429,
        &[("retry-after-ms", "20"), ("retry-after", "1")],
        body,
    )));
    assert_eq!(error.retry_after_ms, Some(20));

    // No type: the code names the kind.
    let body = r#"{"error":{"message":"Incorrect API key provided","type":null,"code":"invalid_api_key"}}"#;
    let error = upstream(OpenAi::decode_response(response(401, &[], body)));
    assert_eq!(error.kind, "invalid_api_key");
    assert_eq!(error.retry_after_ms, None);

    // llama.cpp: a numeric code.
    let body = r#"{"error":{"code":503,"message":"Loading model"}}"#;
    let error = upstream(OpenAi::decode_response(response(503, &[], body)));
    assert_eq!(
        (error.kind.as_str(), error.message.as_str()),
        ("503", "Loading model")
    );

    // Older vLLM: the error at the top level.
    let body = r#"{"object":"error","message":"max_tokens is too large","type":"BadRequestError","param":null,"code":400}"#;
    let error = upstream(OpenAi::decode_response(response(400, &[], body)));
    assert_eq!(error.kind, "BadRequestError");
    assert_eq!(error.message, "max_tokens is too large");

    // Ollama and FastAPI: a bare message.
    let error = upstream(OpenAi::decode_response(response(
        404,
        &[],
        r#"{"error":"model \"x\" not found"}"#,
    )));
    assert_eq!(
        (error.kind.as_str(), error.message.as_str()),
        ("http_404", "model \"x\" not found")
    );
    let error = upstream(OpenAi::decode_response(response(
        422,
        &[],
        r#"{"detail":"bad"}"#,
    )));
    assert_eq!(error.message, "bad");
}

#[test]
fn errors_without_a_json_body_get_a_generic_bounded_message() {
    let error = upstream(OpenAi::decode_response(response(502, &[], "")));
    assert_eq!(error.kind, "http_502");
    assert_eq!(error.message, "the provider answered HTTP 502");

    let page = format!("<html>{}</html>", "Bad gateway ".repeat(10_000));
    let error = upstream(OpenAi::decode_response(response(502, &[], &page)));
    assert!(
        error
            .message
            .starts_with("the provider answered HTTP 502: <html>Bad gateway")
    );
    assert!(error.message.len() <= 300, "{}", error.message.len());

    let long = format!(
        r#"{{"error":{{"message":"{}","type":"{}"}}}}"#,
        "m".repeat(50_000),
        "t".repeat(50_000)
    );
    let error = upstream(OpenAi::decode_response(response(500, &[], &long)));
    assert!(error.message.len() <= 1024);
    assert!(error.kind.len() <= 128);
    assert!(error.message.starts_with("mmmm"));
}

#[test]
fn a_success_that_is_not_a_completion_is_malformed() {
    let garbage = "\u{1}not json at all ".repeat(10_000);
    let message = malformed(OpenAi::decode_response(response(200, &[], &garbage)));
    assert!(message.len() <= 1024);
    assert!(message.matches("not json").count() <= 200 / "not json".len() + 1);

    for body in [
        "[]",
        "\"text\"",
        "{}",
        r#"{"choices":{}}"#,
        r#"{"choices":[1]}"#,
        r#"{"choices":[{"message":"hi"}]}"#,
        r#"{"choices":[{"message":{"content":5}}]}"#,
        r#"{"choices":[{"message":{"tool_calls":{}}}]}"#,
        r#"{"choices":[{"message":{"tool_calls":["x"]}}]}"#,
    ] {
        malformed(OpenAi::decode_response(response(200, &[], body)));
    }
    // Non-UTF-8 bytes.
    let bytes = HttpResponse {
        status: 200,
        headers: Vec::new(),
        body: vec![0xff, 0xfe, b'{'],
    };
    malformed(OpenAi::decode_response(bytes));
}

#[test]
fn a_success_carrying_an_error_is_an_upstream_error() {
    let error = upstream(OpenAi::decode_response(response(
        200,
        &[],
        r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
    )));
    assert_eq!(error.status, 502);
    assert_eq!(error.kind, "server_error");
}

#[test]
fn odd_numbers_saturate_or_count_as_zero() {
    let body = r#"{"choices":[{"index":1e30,"message":{"content":"x"}}],
        "usage":{"prompt_tokens":99999999999,"completion_tokens":-4,"prompt_tokens_details":{"cached_tokens":"7"}}}"#;
    let decoded = OpenAi::decode_response(response(200, &[], body)).unwrap();
    assert_eq!(decoded.choices[0].index, u32::MAX);
    assert_eq!(
        decoded.usage,
        Some(Usage {
            prompt_tokens: u32::MAX,
            cached_prompt_tokens: 0,
            completion_tokens: 0,
        })
    );
}

// ----------------------------------------------------------------- stream

#[test]
fn the_end_marker_and_empty_events_carry_nothing() {
    assert_eq!(event("[DONE]").unwrap(), []);
    assert_eq!(event(" [DONE]\n").unwrap(), []);
    assert_eq!(event("").unwrap(), []);
    assert_eq!(event(r#"{"choices":[]}"#).unwrap(), []);
}

#[test]
fn a_stream_decodes_role_content_tool_calls_finish_and_usage() {
    let role = event(r#"{"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#).unwrap();
    assert_eq!(
        role,
        [Chunk {
            role: Some(Role::Assistant),
            ..chunk(0)
        }]
    );

    let content = event(r#"{"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#).unwrap();
    assert_eq!(
        content,
        [Chunk {
            content: "Hel".to_string(),
            ..chunk(0)
        }]
    );

    let start = event(r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"ping","arguments":""}}]}}]}"#).unwrap();
    assert_eq!(
        start[0].tool_calls,
        [ToolCallDelta {
            index: 1,
            id: Some("call_b".to_string()),
            name: Some("ping".to_string()),
            arguments: String::new(),
        }]
    );
    let more = event(r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"a\""}}]}}]}"#).unwrap();
    assert_eq!(
        more[0].tool_calls,
        [ToolCallDelta {
            index: 1,
            id: None,
            name: None,
            arguments: "{\"a\"".to_string(),
        }]
    );

    let finish = event(r#"{"choices":[{"index":2,"delta":{},"finish_reason":"length"}]}"#).unwrap();
    assert_eq!(
        finish,
        [Chunk {
            finish_reason: Some(FinishReason::Length),
            ..chunk(2)
        }]
    );

    let usage = Usage {
        prompt_tokens: 10,
        cached_prompt_tokens: 2,
        completion_tokens: 5,
    };
    let usage_only = event(r#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":2}}}"#).unwrap();
    assert_eq!(
        usage_only,
        [Chunk {
            usage: Some(usage),
            ..chunk(0)
        }]
    );
    // Usage next to choices rides on the first chunk only.
    let both = event(r#"{"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}],"usage":{"prompt_tokens":10,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":2}}}"#).unwrap();
    assert_eq!(both.len(), 2);
    assert_eq!(both[0].usage, Some(usage));
    assert_eq!(both[1].usage, None);
    // `"usage": null` (OpenAI sends it on every chunk with include_usage).
    assert_eq!(
        event(r#"{"choices":[{"index":0,"delta":{"content":"a"}}],"usage":null}"#).unwrap()[0]
            .usage,
        None
    );
}

#[test]
fn a_stream_error_is_an_upstream_error() {
    let error =
        match event(r#"{"error":{"message":"The server had an error","type":"server_error"}}"#) {
            Err(AdapterError::Upstream(error)) => error,
            other => panic!("{other:?}"),
        };
    assert_eq!(
        error,
        UpstreamError {
            status: 502,
            kind: "server_error".to_string(),
            message: "The server had an error".to_string(),
            retry_after_ms: None,
        }
    );
    // An error that names an HTTP status keeps it (vLLM, llama.cpp).
    match event(
        r#"{"error":{"object":"error","message":"too long","type":"BadRequestError","code":400}}"#,
    ) {
        Err(AdapterError::Upstream(error)) => assert_eq!(error.status, 400),
        other => panic!("{other:?}"),
    }
    match event(r#"{"error":{"message":"x","code":200}}"#) {
        Err(AdapterError::Upstream(error)) => assert_eq!(error.status, 502),
        other => panic!("{other:?}"),
    }
    // An `event: error` whose data is plain text.
    let plain = OpenAi::decode_event(StreamEvent {
        event: Some("error".to_string()),
        data: "upstream went away".to_string(),
    });
    match plain {
        Err(AdapterError::Upstream(error)) => {
            assert_eq!(
                (error.status, error.message.as_str()),
                (502, "upstream went away")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_events_are_malformed() {
    for data in [
        "{",
        "not json",
        "[1,2]",
        "42",
        r#"{"choices":"x"}"#,
        r#"{"choices":[7]}"#,
        r#"{"choices":[{"delta":"x"}]}"#,
        r#"{"choices":[{"delta":{"content":{"a":1}}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":"x"}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[null]}}]}"#,
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
        r#"{{"choices":[{{"message":{{"content":{}}}}}]}}"#,
        "[".repeat(10_000)
    );
    let huge_string = format!(
        r#"{{"choices":[{{"delta":{{"content":"{}"}}}}]}}"#,
        "x".repeat(1 << 20)
    );
    let wrong_types = r#"{"model":7,"choices":[{"index":"0","message":{"role":5,"name":[],"content":[{"type":"image_url","image_url":7},{"type":7},3],"tool_calls":[{"id":1,"type":"function","function":"f"}]},"finish_reason":{}}],"usage":[]}"#;
    let inputs = [
        deep_array.as_str(),
        deep_object.as_str(),
        deep_in_place.as_str(),
        huge_string.as_str(),
        wrong_types,
        "\u{0}\u{ffff}",
        "{\"choices\":[{\"message\":{\"content\":\"\\ud800\"}}]}",
        "1e999999",
        "-0",
        "null",
    ];
    for input in inputs {
        for status in [200, 400, 429, 500, 0, 999] {
            match OpenAi::decode_response(response(status, &[("retry-after", input)], input)) {
                Ok(_) => {}
                Err(AdapterError::Upstream(e)) => {
                    assert!(e.message.len() <= 1024 && e.kind.len() <= 128);
                }
                Err(AdapterError::Malformed(m) | AdapterError::Unsupported(m)) => {
                    assert!(m.len() <= 1024);
                }
            }
        }
        for name in [None, Some("error")] {
            let result = OpenAi::decode_event(StreamEvent {
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
    // The wrong types decode leniently where the field is optional.
    let decoded = OpenAi::decode_response(response(200, &[], wrong_types)).unwrap();
    assert_eq!(decoded.model, "");
    assert_eq!(decoded.usage, None);
    assert_eq!(decoded.choices[0].message.role, Role::Assistant);
    assert!(decoded.choices[0].message.content.is_empty());
    assert_eq!(decoded.choices[0].message.tool_calls[0].id, "");
}

#[test]
fn embeddings_are_asked_as_floats_and_come_back_in_input_order() {
    let request = warden_plugin_sdk::provider::EmbeddingsRequest {
        model: "text-embedding-3-small".to_string(),
        inputs: vec!["a".to_string(), "b".to_string()],
        dimensions: Some(3),
        user: None,
    };
    let sent = OpenAi::encode_embeddings(request).expect("encodes");
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(
        body_of(&sent),
        json!({"model": "text-embedding-3-small", "input": ["a", "b"],
               "encoding_format": "float", "dimensions": 3})
    );
    let answer = response(
        200,
        &[],
        r#"{"model": "m", "data": [
            {"index": 1, "embedding": [0.5, 1, 2]},
            {"index": 0, "embedding": [-1, 0, 0.25]}],
            "usage": {"prompt_tokens": 2, "total_tokens": 2}}"#,
    );
    let decoded = OpenAi::decode_embeddings(answer).expect("decodes");
    assert_eq!(
        decoded.vectors,
        vec![vec![-1.0, 0.0, 0.25], vec![0.5, 1.0, 2.0]]
    );
    assert_eq!(decoded.usage.map(|u| u.prompt_tokens), Some(2));
    let base64 = response(200, &[], r#"{"data": [{"index": 0, "embedding": "AAAA"}]}"#);
    assert!(malformed(OpenAi::decode_embeddings(base64)).contains("not a list of numbers"));
    let refused = response(
        429,
        &[("retry-after", "2")],
        r#"{"error": {"message": "slow"}}"#,
    );
    match OpenAi::decode_embeddings(refused) {
        Err(AdapterError::Upstream(e)) => {
            assert_eq!((e.status, e.retry_after_ms), (429, Some(2000)));
        }
        other => panic!("expected an upstream error, got {other:?}"),
    }
}
