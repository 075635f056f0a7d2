//! `openai`: the provider adapter for the OpenAI Chat Completions API
//! (`POST /v1/chat/completions`), which vLLM, the llama.cpp server and
//! Ollama's `/v1` endpoint speak too. A pure translator (`world provider` in
//! `wit/plugin.wit`): it encodes Warden's chat request as the provider's
//! JSON, and decodes its answer, its error bodies and its SSE stream events
//! back. See README.md for what it passes on, ignores and refuses.

#![deny(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use warden_plugin_sdk::provider::{
    AdapterError, AdapterInfo, ChatRequest, ChatResponse, Choice, Chunk, ContentPart, Credential,
    EmbeddingsRequest, EmbeddingsResponse, FinishReason, Framing, FunctionTool, Guest, HttpRequest,
    HttpResponse, MESSAGE_BYTES, Message, ResponseFormat, Role, StreamEvent, ToolCall,
    ToolCallDelta, ToolChoice, Usage, clip, count, malformed, retry_after_ms, snippet, upstream,
};

#[cfg(test)]
mod tests;

/// The status reported for an error the provider sent inside a stream whose
/// HTTP status was a success, unless the error carries an HTTP status code.
const STREAM_ERROR_STATUS: u16 = 502;

/// The adapter. The component exports it; native builds (the tests) call
/// its [`Guest`] functions directly.
pub struct OpenAi;

// Only on wasm: the export's symbol names do not link into a native shared
// library, and native builds serve the tests.
#[cfg(target_arch = "wasm32")]
warden_plugin_sdk::provider::export_provider!(OpenAi);

impl Guest for OpenAi {
    fn info() -> AdapterInfo {
        AdapterInfo {
            framing: Framing::Sse,
            credential: Credential::Bearer,
        }
    }

    fn encode_request(request: ChatRequest) -> Result<HttpRequest, AdapterError> {
        encode(&request)
    }

    fn decode_response(response: HttpResponse) -> Result<ChatResponse, AdapterError> {
        decode(&response)
    }

    fn decode_event(event: StreamEvent) -> Result<Vec<Chunk>, AdapterError> {
        decode_chunk(&event)
    }

    fn encode_embeddings(request: EmbeddingsRequest) -> Result<HttpRequest, AdapterError> {
        encode_embeddings(&request)
    }

    fn decode_embeddings(response: HttpResponse) -> Result<EmbeddingsResponse, AdapterError> {
        decode_embeddings(&response)
    }
}

// ---------------------------------------------------------------- embeddings

#[derive(Serialize)]
struct EmbeddingsBody<'a> {
    model: &'a str,
    input: &'a [String],
    /// Floats: the host takes vectors as numbers (a client asking for
    /// base64 gets it from the host).
    encoding_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
}

fn encode_embeddings(request: &EmbeddingsRequest) -> Result<HttpRequest, AdapterError> {
    let body = EmbeddingsBody {
        model: &request.model,
        input: &request.inputs,
        encoding_format: "float",
        dimensions: request.dimensions,
        user: request.user.as_deref(),
    };
    let body = serde_json::to_vec(&body)
        .map_err(|e| AdapterError::Unsupported(clip(&format!("encoding: {e}"), MESSAGE_BYTES)))?;
    Ok(HttpRequest {
        method: "POST".to_string(),
        path: "/v1/embeddings".to_string(),
        headers: vec![("content-type".to_string(), "application/json".to_string())],
        body,
    })
}

fn decode_embeddings(response: &HttpResponse) -> Result<EmbeddingsResponse, AdapterError> {
    if !(200..300).contains(&response.status) {
        return Err(upstream_error(response));
    }
    let document: Value = serde_json::from_slice(&response.body).map_err(|e| {
        malformed(&format!(
            "the answer is not JSON ({e}): {}",
            snippet(&response.body)
        ))
    })?;
    let Some(data) = document.get("data").and_then(Value::as_array) else {
        if let Some(error) = embedded_error(&document) {
            return Err(error);
        }
        return Err(malformed("the answer has no `data` list"));
    };
    // Vectors in input order: by each item's `index`, else by position.
    let mut indexed = Vec::with_capacity(data.len());
    for (position, item) in data.iter().enumerate() {
        let Some(numbers) = item.get("embedding").and_then(Value::as_array) else {
            return Err(malformed(&format!(
                "embedding {position} is not a list of numbers (was float encoding ignored?)"
            )));
        };
        let vector = numbers
            .iter()
            .map(|n| n.as_f64().map(|f| f as f32))
            .collect::<Option<Vec<f32>>>()
            .ok_or_else(|| malformed(&format!("embedding {position} holds a non-number")))?;
        indexed.push((index_of(item, position), vector));
    }
    indexed.sort_by_key(|(index, _)| *index);
    Ok(EmbeddingsResponse {
        model: text_of(document.get("model"))
            .unwrap_or_default()
            .to_string(),
        vectors: indexed.into_iter().map(|(_, vector)| vector).collect(),
        usage: usage_from(document.get("usage")),
    })
}

// ---------------------------------------------------------------- encoding

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<WireFormat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    /// `null` only for an assistant message without content.
    content: Option<WireContent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireContent<'a> {
    Text(&'a str),
    Parts(Vec<WirePart<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WirePart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: WireImage<'a> },
}

#[derive(Serialize)]
struct WireImage<'a> {
    url: &'a str,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    r#type: &'static str,
    function: WireFunctionCall<'a>,
}

#[derive(Serialize)]
struct WireFunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    r#type: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireToolChoice<'a> {
    Mode(&'static str),
    Function {
        r#type: &'static str,
        function: WireName<'a>,
    },
}

#[derive(Serialize)]
struct WireName<'a> {
    name: &'a str,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireFormat<'a> {
    Text,
    JsonObject,
    JsonSchema { json_schema: WireSchema<'a> },
}

#[derive(Serialize)]
struct WireSchema<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::Developer => "developer",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// `text` as JSON, verbatim, or `unsupported` naming `what`.
fn raw_json<'a>(text: &'a str, what: &str) -> Result<&'a RawValue, AdapterError> {
    serde_json::from_str(text).map_err(|e| {
        AdapterError::Unsupported(clip(
            &format!("{what} is not valid JSON: {e}"),
            MESSAGE_BYTES,
        ))
    })
}

/// `value` when it is a finite number, else `unsupported`.
fn finite(value: Option<f64>, name: &str) -> Result<Option<f64>, AdapterError> {
    match value {
        Some(v) if !v.is_finite() => Err(AdapterError::Unsupported(format!(
            "{name} must be a finite number"
        ))),
        other => Ok(other),
    }
}

fn encode_message(message: &Message) -> WireMessage<'_> {
    let content = match message.content.as_slice() {
        [] if message.role == Role::Assistant => None,
        [] => Some(WireContent::Text("")),
        [ContentPart::Text(text)] => Some(WireContent::Text(text)),
        parts => Some(WireContent::Parts(
            parts
                .iter()
                .map(|part| match part {
                    ContentPart::Text(text) => WirePart::Text { text },
                    ContentPart::ImageUrl(url) => WirePart::ImageUrl {
                        image_url: WireImage { url },
                    },
                })
                .collect(),
        )),
    };
    WireMessage {
        role: role_name(message.role),
        content,
        name: message.name.as_deref(),
        tool_calls: message
            .tool_calls
            .iter()
            .map(|call| WireToolCall {
                id: &call.id,
                r#type: "function",
                function: WireFunctionCall {
                    name: &call.name,
                    arguments: &call.arguments,
                },
            })
            .collect(),
        tool_call_id: message.tool_call_id.as_deref(),
    }
}

fn encode_tool(tool: &FunctionTool) -> Result<WireTool<'_>, AdapterError> {
    let parameters = match &tool.parameters {
        Some(text) => Some(raw_json(
            text,
            &format!("the parameters of tool `{}`", clip(&tool.name, 64)),
        )?),
        None => None,
    };
    Ok(WireTool {
        r#type: "function",
        function: WireFunction {
            name: &tool.name,
            description: tool.description.as_deref(),
            parameters,
            strict: tool.strict,
        },
    })
}

fn encode_format(format: &ResponseFormat) -> Result<WireFormat<'_>, AdapterError> {
    Ok(match format {
        ResponseFormat::Text => WireFormat::Text,
        ResponseFormat::JsonObject => WireFormat::JsonObject,
        ResponseFormat::JsonSchema(format) => {
            let schema = match &format.schema {
                Some(text) => Some(raw_json(
                    text,
                    &format!("the schema of response format `{}`", clip(&format.name, 64)),
                )?),
                None => None,
            };
            WireFormat::JsonSchema {
                json_schema: WireSchema {
                    name: &format.name,
                    description: format.description.as_deref(),
                    schema,
                    strict: format.strict,
                },
            }
        }
    })
}

fn encode(request: &ChatRequest) -> Result<HttpRequest, AdapterError> {
    let tools = request
        .tools
        .iter()
        .map(encode_tool)
        .collect::<Result<Vec<_>, _>>()?;
    let tool_choice = request.tool_choice.as_ref().map(|choice| match choice {
        ToolChoice::Auto => WireToolChoice::Mode("auto"),
        ToolChoice::None => WireToolChoice::Mode("none"),
        ToolChoice::Required => WireToolChoice::Mode("required"),
        ToolChoice::Function(name) => WireToolChoice::Function {
            r#type: "function",
            function: WireName { name },
        },
    });
    let response_format = match &request.response_format {
        Some(format) => Some(encode_format(format)?),
        None => None,
    };
    let body = Body {
        model: &request.model,
        messages: request.messages.iter().map(encode_message).collect(),
        tools,
        tool_choice,
        parallel_tool_calls: request.parallel_tool_calls,
        response_format,
        temperature: finite(request.temperature, "temperature")?,
        top_p: finite(request.top_p, "top-p")?,
        max_tokens: request.max_tokens,
        stop: request.stop.iter().map(String::as_str).collect(),
        seed: request.seed,
        presence_penalty: finite(request.presence_penalty, "presence-penalty")?,
        frequency_penalty: finite(request.frequency_penalty, "frequency-penalty")?,
        user: request.user.as_deref(),
        stream: request.stream,
        stream_options: request.stream.then_some(StreamOptions {
            include_usage: true,
        }),
    };
    let body = serde_json::to_vec(&body)
        .map_err(|e| AdapterError::Unsupported(clip(&format!("encoding: {e}"), MESSAGE_BYTES)))?;
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if request.stream {
        headers.push(("accept".to_string(), "text/event-stream".to_string()));
    }
    Ok(HttpRequest {
        method: "POST".to_string(),
        path: "/v1/chat/completions".to_string(),
        headers,
        body,
    })
}

// ---------------------------------------------------------------- decoding

/// The index a list item carries, or its position.
fn index_of(item: &Value, position: usize) -> u32 {
    match item.get("index") {
        Some(Value::Number(_)) => count(item.get("index")),
        _ => u32::try_from(position).unwrap_or(u32::MAX),
    }
}

fn text_of(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str)
}

fn role_from(name: &str) -> Option<Role> {
    Some(match name {
        "system" => Role::System,
        "developer" => Role::Developer,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        _ => return None,
    })
}

fn finish_from(value: Option<&Value>) -> Option<FinishReason> {
    let reason = value?.as_str()?;
    Some(match reason {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    })
}

fn usage_from(value: Option<&Value>) -> Option<Usage> {
    let usage = value?.as_object()?;
    Some(Usage {
        prompt_tokens: count(usage.get("prompt_tokens")),
        cached_prompt_tokens: count(
            usage
                .get("prompt_tokens_details")
                .and_then(|details| details.get("cached_tokens")),
        ),
        completion_tokens: count(usage.get("completion_tokens")),
    })
}

/// Tool call arguments: JSON text as sent; a server that sends an object
/// instead gets it written out.
fn arguments_of(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The text parts of a message's `content`: a string, `null`, or a list
/// of parts.
fn content_of(value: Option<&Value>, at: &str) -> Result<Vec<ContentPart>, AdapterError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![ContentPart::Text(text.clone())]),
        Some(Value::Array(parts)) => Ok(parts
            .iter()
            .filter_map(|part| match text_of(part.get("type")) {
                Some("text") => text_of(part.get("text")).map(|t| ContentPart::Text(t.into())),
                Some("image_url") => text_of(part.get("image_url").and_then(|i| i.get("url")))
                    .map(|url| ContentPart::ImageUrl(url.into())),
                _ => None,
            })
            .collect()),
        Some(_) => Err(malformed(&format!("{at}: content is not text"))),
    }
}

fn tool_calls_of(value: Option<&Value>, at: &str) -> Result<Vec<ToolCall>, AdapterError> {
    let calls = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(calls)) => calls,
        Some(_) => return Err(malformed(&format!("{at}: tool_calls is not a list"))),
    };
    let mut out = Vec::with_capacity(calls.len());
    for call in calls {
        if !call.is_object() {
            return Err(malformed(&format!("{at}: a tool call is not an object")));
        }
        // Only function calls: no other kind of tool is ever offered.
        if text_of(call.get("type")).is_some_and(|kind| kind != "function") {
            continue;
        }
        let function = call.get("function");
        out.push(ToolCall {
            id: text_of(call.get("id")).unwrap_or_default().to_string(),
            name: text_of(function.and_then(|f| f.get("name")))
                .unwrap_or_default()
                .to_string(),
            arguments: arguments_of(function.and_then(|f| f.get("arguments"))),
        });
    }
    Ok(out)
}

fn decode_message(value: Option<&Value>, at: &str) -> Result<Message, AdapterError> {
    let message = match value {
        Some(Value::Object(message)) => message,
        _ => return Err(malformed(&format!("{at}: no message object"))),
    };
    let mut content = content_of(message.get("content"), at)?;
    if content.is_empty()
        && let Some(refusal) = text_of(message.get("refusal"))
    {
        content.push(ContentPart::Text(refusal.to_string()));
    }
    Ok(Message {
        role: text_of(message.get("role"))
            .and_then(role_from)
            .unwrap_or(Role::Assistant),
        content,
        name: text_of(message.get("name")).map(str::to_string),
        tool_calls: tool_calls_of(message.get("tool_calls"), at)?,
        tool_call_id: None,
    })
}

/// The provider's error from a JSON error document: `{"error": {...}}`
/// (OpenAI, llama.cpp, Ollama, recent vLLM), `{"error": "text"}`,
/// `{"object": "error", "message", "type", "code"}` (older vLLM) or
/// `{"detail": "text"}` (FastAPI servers). `None` when it is none of these.
fn error_fields(document: &Value) -> Option<(Option<String>, Option<String>, Option<i64>)> {
    let object = document.as_object()?;
    let fields = match object.get("error") {
        Some(Value::Object(error)) => error,
        Some(Value::String(message)) => return Some((None, Some(message.clone()), None)),
        _ if object.contains_key("message") => object,
        _ => {
            let detail = text_of(object.get("detail"))?;
            return Some((None, Some(detail.to_string()), None));
        }
    };
    let code = fields.get("code");
    let kind = text_of(fields.get("type"))
        .filter(|kind| !kind.is_empty())
        .map(str::to_string)
        .or_else(|| match code {
            Some(Value::String(code)) if !code.is_empty() => Some(code.clone()),
            Some(Value::Number(code)) => Some(code.to_string()),
            _ => None,
        });
    let message = text_of(fields.get("message")).map(str::to_string);
    Some((kind, message, code.and_then(Value::as_i64)))
}

/// The error a non-success answer reports.
fn upstream_error(response: &HttpResponse) -> AdapterError {
    let status = response.status;
    let document: Option<Value> = serde_json::from_slice(&response.body).ok();
    let (kind, message, _) = document.as_ref().and_then(error_fields).unwrap_or_default();
    let message = message.unwrap_or_else(|| {
        if response.body.is_empty() {
            format!("the provider answered HTTP {status}")
        } else {
            format!(
                "the provider answered HTTP {status}: {}",
                snippet(&response.body)
            )
        }
    });
    upstream(
        status,
        kind.as_deref(),
        &message,
        retry_after_ms(&response.headers),
    )
}

/// An error reported inside an answer whose HTTP status was a success: it
/// has the status its `code` names when that is an HTTP error status, else
/// [`STREAM_ERROR_STATUS`].
fn embedded_error(document: &Value) -> Option<AdapterError> {
    let (kind, message, code) = error_fields(document)?;
    let status = code
        .and_then(|code| u16::try_from(code).ok())
        .filter(|code| (400..=599).contains(code))
        .unwrap_or(STREAM_ERROR_STATUS);
    let message = message.unwrap_or_else(|| "the provider reported an error".to_string());
    Some(upstream(status, kind.as_deref(), &message, None))
}

fn decode(response: &HttpResponse) -> Result<ChatResponse, AdapterError> {
    if !(200..300).contains(&response.status) {
        return Err(upstream_error(response));
    }
    let document: Value = serde_json::from_slice(&response.body).map_err(|e| {
        malformed(&format!(
            "the answer is not JSON ({e}): {}",
            snippet(&response.body)
        ))
    })?;
    let Some(object) = document.as_object() else {
        return Err(malformed("the answer is not a JSON object"));
    };
    let choices = match object.get("choices") {
        Some(Value::Array(choices)) => choices,
        _ => {
            if object.get("error").is_some_and(|e| !e.is_null())
                && let Some(error) = embedded_error(&document)
            {
                return Err(error);
            }
            return Err(malformed("the answer has no `choices` list"));
        }
    };
    let mut out = Vec::with_capacity(choices.len());
    for (position, choice) in choices.iter().enumerate() {
        let at = format!("choice {position}");
        if !choice.is_object() {
            return Err(malformed(&format!("{at} is not an object")));
        }
        out.push(Choice {
            index: index_of(choice, position),
            message: decode_message(choice.get("message"), &at)?,
            finish_reason: finish_from(choice.get("finish_reason")),
        });
    }
    Ok(ChatResponse {
        model: text_of(object.get("model")).unwrap_or_default().to_string(),
        choices: out,
        usage: usage_from(object.get("usage")),
    })
}

fn delta_tool_calls(value: Option<&Value>, at: &str) -> Result<Vec<ToolCallDelta>, AdapterError> {
    let calls = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(calls)) => calls,
        Some(_) => return Err(malformed(&format!("{at}: tool_calls is not a list"))),
    };
    let mut out = Vec::with_capacity(calls.len());
    for (position, call) in calls.iter().enumerate() {
        if !call.is_object() {
            return Err(malformed(&format!("{at}: a tool call is not an object")));
        }
        let function = call.get("function");
        out.push(ToolCallDelta {
            index: index_of(call, position),
            id: text_of(call.get("id")).map(str::to_string),
            name: text_of(function.and_then(|f| f.get("name"))).map(str::to_string),
            arguments: arguments_of(function.and_then(|f| f.get("arguments"))),
        });
    }
    Ok(out)
}

fn decode_delta(choice: &Value, position: usize) -> Result<Chunk, AdapterError> {
    let at = format!("choice {position}");
    if !choice.is_object() {
        return Err(malformed(&format!("{at} is not an object")));
    }
    let delta = match choice.get("delta") {
        None | Some(Value::Null) => None,
        Some(delta @ Value::Object(_)) => Some(delta),
        Some(_) => return Err(malformed(&format!("{at}: delta is not an object"))),
    };
    let field = |name: &str| delta.and_then(|delta| delta.get(name));
    let content = match field("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(_) => return Err(malformed(&format!("{at}: content is not text"))),
    };
    let mut content = content;
    if content.is_empty()
        && let Some(refusal) = text_of(field("refusal"))
    {
        content = refusal.to_string();
    }
    Ok(Chunk {
        index: index_of(choice, position),
        role: text_of(field("role")).and_then(role_from),
        content,
        tool_calls: delta_tool_calls(field("tool_calls"), &at)?,
        finish_reason: finish_from(choice.get("finish_reason")),
        usage: None,
    })
}

fn decode_chunk(event: &StreamEvent) -> Result<Vec<Chunk>, AdapterError> {
    let data = event.data.trim();
    if data.is_empty() || data == "[DONE]" {
        return Ok(Vec::new());
    }
    let document: Value = match serde_json::from_str(data) {
        Ok(document) => document,
        Err(_) if event.event.as_deref() == Some("error") => {
            return Err(upstream(STREAM_ERROR_STATUS, None, data, None));
        }
        Err(e) => {
            return Err(malformed(&format!(
                "a stream event is not JSON ({e}): {}",
                snippet(data.as_bytes())
            )));
        }
    };
    let Some(object) = document.as_object() else {
        return Err(malformed("a stream event is not a JSON object"));
    };
    if (object.get("error").is_some_and(|e| !e.is_null())
        || event.event.as_deref() == Some("error"))
        && let Some(error) = embedded_error(&document)
    {
        return Err(error);
    }
    let mut chunks = match object.get("choices") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(choices)) => choices
            .iter()
            .enumerate()
            .map(|(position, choice)| decode_delta(choice, position))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(malformed("a stream event's `choices` is not a list")),
    };
    if let Some(usage) = usage_from(object.get("usage")) {
        match chunks.first_mut() {
            Some(first) => first.usage = Some(usage),
            None => chunks.push(Chunk {
                index: 0,
                role: None,
                content: String::new(),
                tool_calls: Vec::new(),
                finish_reason: None,
                usage: Some(usage),
            }),
        }
    }
    Ok(chunks)
}
