//! `ollama`: the provider adapter for Ollama's native API (`POST /api/chat`,
//! `POST /api/embed`), not its OpenAI-compatible `/v1` (the `openai`
//! adapter speaks that). A pure translator (`world provider` in
//! `wit/plugin.wit`): it encodes Warden's chat request as Ollama's JSON, and
//! decodes its answer, its error bodies and its NDJSON stream lines back.
//! See README.md for what it passes on, ignores and refuses.

#![deny(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use warden_plugin_sdk::provider::{
    AdapterError, AdapterInfo, ChatRequest, ChatResponse, Choice, Chunk, ContentPart, Credential,
    EmbeddingsRequest, EmbeddingsResponse, FinishReason, Framing, FunctionTool, Guest, HttpRequest,
    HttpResponse, MESSAGE_BYTES, Message, ResponseFormat, Role, StreamEvent, ToolCall,
    ToolCallDelta, ToolChoice, Usage, clip, count, malformed, retry_after_ms, snippet, upstream,
};

#[cfg(test)]
mod tests;

/// The status reported for an error Ollama sent inside an answer whose HTTP
/// status was a success (a stream line `{"error": "..."}`).
const STREAM_ERROR_STATUS: u16 = 502;
/// The kind of every error Ollama reports: its error bodies are a bare
/// message, `{"error": "text"}`, with no type or code.
const ERROR_KIND: &str = "ollama_error";
/// What joins the text parts of one message into Ollama's single
/// `content` string.
const PART_SEPARATOR: &str = "\n";
/// The parameters of a tool that declares none: Ollama reads `parameters`
/// as an object schema.
const NO_PARAMETERS: &str = r#"{"type":"object","properties":{}}"#;

/// The adapter. The component exports it; native builds (the tests) call
/// its [`Guest`] functions directly.
pub struct Ollama;

// Only on wasm: the export's symbol names do not link into a native shared
// library, and native builds serve the tests.
#[cfg(target_arch = "wasm32")]
warden_plugin_sdk::provider::export_provider!(Ollama);

impl Guest for Ollama {
    fn info() -> AdapterInfo {
        AdapterInfo {
            framing: Framing::Ndjson,
            credential: Credential::Bearer,
        }
    }

    fn encode_request(request: ChatRequest) -> Result<HttpRequest, AdapterError> {
        STREAM.with_borrow_mut(|stream| *stream = Stream::default());
        encode(&request)
    }

    fn decode_response(response: HttpResponse) -> Result<ChatResponse, AdapterError> {
        decode(&response)
    }

    fn decode_event(event: StreamEvent) -> Result<Vec<Chunk>, AdapterError> {
        decode_line(&event)
    }

    fn encode_embeddings(request: EmbeddingsRequest) -> Result<HttpRequest, AdapterError> {
        encode_embeddings(&request)
    }

    fn decode_embeddings(response: HttpResponse) -> Result<EmbeddingsResponse, AdapterError> {
        decode_embeddings(&response)
    }
}

fn unsupported(message: &str) -> AdapterError {
    AdapterError::Unsupported(clip(message, MESSAGE_BYTES))
}

fn json_request(path: &str, body: Vec<u8>, stream: bool) -> HttpRequest {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if stream {
        headers.push(("accept".to_string(), "application/x-ndjson".to_string()));
    }
    HttpRequest {
        method: "POST".to_string(),
        path: path.to_string(),
        headers,
        body,
    }
}

// ---------------------------------------------------------------- embeddings

#[derive(Serialize)]
struct EmbeddingsBody<'a> {
    model: &'a str,
    input: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
}

fn encode_embeddings(request: &EmbeddingsRequest) -> Result<HttpRequest, AdapterError> {
    let body = EmbeddingsBody {
        model: &request.model,
        input: &request.inputs,
        dimensions: request.dimensions,
    };
    let body = serde_json::to_vec(&body).map_err(|e| unsupported(&format!("encoding: {e}")))?;
    Ok(json_request("/api/embed", body, false))
}

fn decode_embeddings(response: &HttpResponse) -> Result<EmbeddingsResponse, AdapterError> {
    let object = success_object(response)?;
    let Some(embeddings) = object.get("embeddings").and_then(Value::as_array) else {
        return Err(malformed("the answer has no `embeddings` list"));
    };
    let mut vectors = Vec::with_capacity(embeddings.len());
    for (position, vector) in embeddings.iter().enumerate() {
        let numbers = vector
            .as_array()
            .and_then(|numbers| {
                numbers
                    .iter()
                    .map(|n| n.as_f64().map(|f| f as f32))
                    .collect::<Option<Vec<f32>>>()
            })
            .ok_or_else(|| malformed(&format!("embedding {position} is not a list of numbers")))?;
        vectors.push(numbers);
    }
    Ok(EmbeddingsResponse {
        model: text_of(object.get("model")).unwrap_or_default().to_string(),
        vectors,
        usage: object.get("prompt_eval_count").map(|tokens| Usage {
            prompt_tokens: count(Some(tokens)),
            cached_prompt_tokens: 0,
            completion_tokens: 0,
        }),
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
    format: Option<WireFormat<'a>>,
    #[serde(skip_serializing_if = "Options::is_empty")]
    options: Options<'a>,
    stream: bool,
}

/// Ollama's sampling options (`options` in the body).
#[derive(Serialize)]
struct Options<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_predict: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
}

impl Options<'_> {
    fn is_empty(&self) -> bool {
        self.temperature.is_none()
            && self.top_p.is_none()
            && self.num_predict.is_none()
            && self.stop.is_empty()
            && self.seed.is_none()
            && self.presence_penalty.is_none()
            && self.frequency_penalty.is_none()
    }
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    /// Always present: Ollama's `content` is a plain string.
    content: String,
    /// Base64 images, without a `data:` prefix.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    id: &'a str,
    function: WireCall<'a>,
}

#[derive(Serialize)]
struct WireCall<'a> {
    name: &'a str,
    /// A JSON object, not JSON text as in OpenAI's API.
    arguments: &'a RawValue,
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
    parameters: &'a RawValue,
}

/// `format`: the string `"json"`, or a JSON Schema object.
#[derive(Serialize)]
#[serde(untagged)]
enum WireFormat<'a> {
    Json(&'static str),
    Schema(&'a RawValue),
}

fn role_name(role: Role) -> &'static str {
    match role {
        // Ollama's chat templates know `system`; most drop a `developer`
        // message without a word.
        Role::System | Role::Developer => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// `text` as JSON, verbatim, or `unsupported` naming `what`.
fn raw_json<'a>(text: &'a str, what: &str) -> Result<&'a RawValue, AdapterError> {
    serde_json::from_str(text).map_err(|e| unsupported(&format!("{what} is not valid JSON: {e}")))
}

/// `value` when it is a finite number, else `unsupported`.
fn finite(value: Option<f64>, name: &str) -> Result<Option<f64>, AdapterError> {
    match value {
        Some(v) if !v.is_finite() => Err(unsupported(&format!("{name} must be a finite number"))),
        other => Ok(other),
    }
}

/// The base64 data of an image part: only a base64 `data:` URL, since
/// Ollama takes images inline and fetches nothing.
fn image(url: &str) -> Result<&str, AdapterError> {
    let scheme = url.get(..5);
    if !scheme.is_some_and(|s| s.eq_ignore_ascii_case("data:")) {
        return Err(unsupported(
            "an image by URL: Ollama takes images only inline (a base64 data: URL)",
        ));
    }
    let rest = url.get(5..).unwrap_or_default();
    let Some((meta, data)) = rest.split_once(',') else {
        return Err(unsupported("an image data: URL has no `,`"));
    };
    if !meta
        .split(';')
        .skip(1)
        .any(|p| p.eq_ignore_ascii_case("base64"))
    {
        return Err(unsupported(
            "an image data: URL must be base64-encoded for Ollama",
        ));
    }
    Ok(data)
}

/// A tool call's arguments as the object Ollama wants: empty arguments
/// are `{}`; anything but a JSON object is refused.
fn tool_arguments(call: &ToolCall) -> Result<&RawValue, AdapterError> {
    let what = format!(
        "the arguments of tool call `{}` (`{}`)",
        clip(&call.id, 64),
        clip(&call.name, 64)
    );
    let text = if call.arguments.trim().is_empty() {
        "{}"
    } else {
        call.arguments.as_str()
    };
    let arguments = raw_json(text, &what)?;
    if !arguments.get().trim_start().starts_with('{') {
        return Err(unsupported(&format!(
            "{what} are not a JSON object, which Ollama requires"
        )));
    }
    Ok(arguments)
}

/// The messages in Ollama's form. A `tool` message is sent with the name of
/// the tool it answers (`tool_name`): its own `name` if it has one, else the
/// name of the latest earlier call with its `tool-call-id`.
fn encode_messages(messages: &[Message]) -> Result<Vec<WireMessage<'_>>, AdapterError> {
    let mut calls: Vec<(&str, &str)> = Vec::new();
    let mut out = Vec::with_capacity(messages.len());
    for message in messages {
        let mut texts = Vec::new();
        let mut images = Vec::new();
        for part in &message.content {
            match part {
                ContentPart::Text(text) => texts.push(text.as_str()),
                ContentPart::ImageUrl(url) => images.push(image(url)?),
            }
        }
        let tool_calls = message
            .tool_calls
            .iter()
            .map(|call| {
                Ok(WireToolCall {
                    id: &call.id,
                    function: WireCall {
                        name: &call.name,
                        arguments: tool_arguments(call)?,
                    },
                })
            })
            .collect::<Result<Vec<_>, AdapterError>>()?;
        let tool_call_id = message.tool_call_id.as_deref();
        let tool_name = if message.role == Role::Tool {
            message.name.as_deref().or_else(|| {
                let id = tool_call_id?;
                calls
                    .iter()
                    .rev()
                    .find(|(call, _)| *call == id)
                    .map(|(_, name)| *name)
            })
        } else {
            None
        };
        calls.extend(
            message
                .tool_calls
                .iter()
                .map(|call| (call.id.as_str(), call.name.as_str())),
        );
        out.push(WireMessage {
            role: role_name(message.role),
            content: texts.join(PART_SEPARATOR),
            images,
            tool_calls,
            tool_name,
            tool_call_id: tool_call_id.filter(|_| message.role == Role::Tool),
        });
    }
    Ok(out)
}

fn encode_tool(tool: &FunctionTool) -> Result<WireTool<'_>, AdapterError> {
    let parameters = raw_json(
        tool.parameters.as_deref().unwrap_or(NO_PARAMETERS),
        &format!("the parameters of tool `{}`", clip(&tool.name, 64)),
    )?;
    Ok(WireTool {
        r#type: "function",
        function: WireFunction {
            name: &tool.name,
            description: tool.description.as_deref(),
            parameters,
        },
    })
}

fn encode_format(format: &ResponseFormat) -> Result<Option<WireFormat<'_>>, AdapterError> {
    Ok(match format {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(WireFormat::Json("json")),
        ResponseFormat::JsonSchema(format) => Some(match &format.schema {
            Some(text) => WireFormat::Schema(raw_json(
                text,
                &format!("the schema of response format `{}`", clip(&format.name, 64)),
            )?),
            None => WireFormat::Json("json"),
        }),
    })
}

fn encode(request: &ChatRequest) -> Result<HttpRequest, AdapterError> {
    let tools = match &request.tool_choice {
        None | Some(ToolChoice::Auto) => request
            .tools
            .iter()
            .map(encode_tool)
            .collect::<Result<Vec<_>, _>>()?,
        // Ollama has no tool choice: `none` is the same request without tools.
        Some(ToolChoice::None) => Vec::new(),
        Some(ToolChoice::Required) => {
            return Err(unsupported(
                "tool-choice `required`: Ollama cannot force a tool call",
            ));
        }
        Some(ToolChoice::Function(name)) => {
            return Err(unsupported(&format!(
                "tool-choice function `{}`: Ollama cannot force a tool call",
                clip(name, 64)
            )));
        }
    };
    let format = match &request.response_format {
        Some(format) => encode_format(format)?,
        None => None,
    };
    let body = Body {
        model: &request.model,
        messages: encode_messages(&request.messages)?,
        tools,
        format,
        options: Options {
            temperature: finite(request.temperature, "temperature")?,
            top_p: finite(request.top_p, "top-p")?,
            num_predict: request.max_tokens,
            stop: request.stop.iter().map(String::as_str).collect(),
            seed: request.seed,
            presence_penalty: finite(request.presence_penalty, "presence-penalty")?,
            frequency_penalty: finite(request.frequency_penalty, "frequency-penalty")?,
        },
        stream: request.stream,
    };
    let body = serde_json::to_vec(&body).map_err(|e| unsupported(&format!("encoding: {e}")))?;
    Ok(json_request("/api/chat", body, request.stream))
}

// ---------------------------------------------------------------- decoding

fn text_of(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str)
}

fn role_from(name: &str) -> Option<Role> {
    Some(match name {
        "system" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" => Role::Tool,
        _ => return None,
    })
}

/// The finish reason of a finished answer: `done_reason` `stop` or
/// `length`, anything else (`load`, `unload`, none at all) is `other`.
fn finish_from(value: Option<&Value>) -> FinishReason {
    match text_of(value) {
        Some("stop") => FinishReason::Stop,
        Some("length") => FinishReason::Length,
        _ => FinishReason::Other,
    }
}

/// The usage of a finished answer. Ollama leaves out counts that are 0.
fn usage_from(object: &Map<String, Value>) -> Usage {
    Usage {
        prompt_tokens: count(object.get("prompt_eval_count")),
        cached_prompt_tokens: 0,
        completion_tokens: count(object.get("eval_count")),
    }
}

fn is_done(object: &Map<String, Value>) -> bool {
    object.get("done").and_then(Value::as_bool) == Some(true)
}

/// Tool call arguments as JSON text: Ollama sends an object, passed on as
/// written (`raw`, when found) so its keys keep the model's order; a
/// string is taken as the text itself, and none at all is `{}`.
fn arguments_of(value: Option<&Value>, raw: Option<&RawValue>) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        None | Some(Value::Null) => "{}".to_string(),
        Some(Value::Object(_)) if raw.is_some_and(|raw| raw.get().starts_with('{')) => {
            raw.map(|raw| raw.get().to_string()).unwrap_or_default()
        }
        Some(other) => other.to_string(),
    }
}

/// The member `key` of the JSON object `raw`, as written; `None` when
/// `raw` is not an object or has no such member. Of duplicate keys the last
/// counts, as in a [`Value`].
fn member<'a>(raw: &'a RawValue, key: &str) -> Option<&'a RawValue> {
    let members: BTreeMap<String, &'a RawValue> = serde_json::from_str(raw.get()).ok()?;
    members.get(key).copied()
}

/// The arguments of each tool call in a document
/// (`message.tool_calls[n].function.arguments`), as written. A [`Value`]
/// sorts object keys; the arguments keep the order the model wrote them in
/// (Ollama keeps it too).
fn raw_arguments(text: &str) -> Vec<Option<&RawValue>> {
    let calls = serde_json::from_str::<&RawValue>(text)
        .ok()
        .and_then(|document| member(document, "message"))
        .and_then(|message| member(message, "tool_calls"))
        .and_then(|calls| serde_json::from_str::<Vec<&RawValue>>(calls.get()).ok())
        .unwrap_or_default();
    calls
        .into_iter()
        .map(|call| member(call, "function").and_then(|f| member(f, "arguments")))
        .collect()
}

/// One tool call as Ollama sends it: `{id?, function: {index?, name,
/// arguments}}`. Older servers send no `id`.
struct WireCallIn {
    id: Option<String>,
    name: String,
    arguments: String,
}

/// A message's text and tool calls, from its `value` and the `text` of the
/// whole document (for the arguments as written). `None` (or `null`) is no
/// message.
fn read_message(
    value: Option<&Value>,
    text: &str,
) -> Result<(String, Vec<WireCallIn>), AdapterError> {
    let message = match value {
        None | Some(Value::Null) => return Ok((String::new(), Vec::new())),
        Some(Value::Object(message)) => message,
        Some(_) => return Err(malformed("`message` is not an object")),
    };
    let content = match message.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(_) => return Err(malformed("the message's content is not text")),
    };
    let calls = match message.get("tool_calls") {
        None | Some(Value::Null) => &Vec::new(),
        Some(Value::Array(calls)) => calls,
        Some(_) => return Err(malformed("the message's tool_calls is not a list")),
    };
    let raw = if calls.is_empty() {
        Vec::new()
    } else {
        raw_arguments(text)
    };
    let mut out = Vec::with_capacity(calls.len());
    for (position, call) in calls.iter().enumerate() {
        if !call.is_object() {
            return Err(malformed("a tool call is not an object"));
        }
        let function = call.get("function");
        out.push(WireCallIn {
            id: text_of(call.get("id"))
                .filter(|id| !id.is_empty())
                .map(str::to_string),
            name: text_of(function.and_then(|f| f.get("name")))
                .unwrap_or_default()
                .to_string(),
            arguments: arguments_of(
                function.and_then(|f| f.get("arguments")),
                raw.get(position).copied().flatten(),
            ),
        });
    }
    Ok((content, out))
}

/// The kind and message of an error document: Ollama's `{"error": "text"}`,
/// or the `{"error": {"message", "type"}}` of a proxy in front of it.
/// `None` when the document carries no error.
fn error_fields(document: &Value) -> Option<(String, String)> {
    let kind = || ERROR_KIND.to_string();
    match document.as_object()?.get("error")? {
        Value::Null => None,
        Value::String(message) => Some((kind(), message.clone())),
        Value::Object(error) => {
            let kind = text_of(error.get("type"))
                .or_else(|| text_of(error.get("code")))
                .filter(|kind| !kind.is_empty())
                .map_or_else(kind, str::to_string);
            let message = text_of(error.get("message"))
                .unwrap_or("the provider reported an error")
                .to_string();
            Some((kind, message))
        }
        other => Some((kind(), other.to_string())),
    }
}

/// The error a non-success answer reports.
fn upstream_error(response: &HttpResponse) -> AdapterError {
    let status = response.status;
    let retry = retry_after_ms(&response.headers);
    let document: Option<Value> = serde_json::from_slice(&response.body).ok();
    if let Some((kind, message)) = document.as_ref().and_then(error_fields) {
        return upstream(status, Some(&kind), &message, retry);
    }
    let message = if response.body.is_empty() {
        format!("the provider answered HTTP {status}")
    } else {
        format!(
            "the provider answered HTTP {status}: {}",
            snippet(&response.body)
        )
    };
    upstream(status, None, &message, retry)
}

/// An error reported inside an answer whose HTTP status was a success.
fn embedded_error(document: &Value) -> Option<AdapterError> {
    let (kind, message) = error_fields(document)?;
    Some(upstream(STREAM_ERROR_STATUS, Some(&kind), &message, None))
}

/// The JSON object of a success, or the error the answer reports.
fn success_object(response: &HttpResponse) -> Result<Map<String, Value>, AdapterError> {
    if !(200..300).contains(&response.status) {
        return Err(upstream_error(response));
    }
    let document: Value = serde_json::from_slice(&response.body).map_err(|e| {
        malformed(&format!(
            "the answer is not JSON ({e}): {}",
            snippet(&response.body)
        ))
    })?;
    if let Some(error) = embedded_error(&document) {
        return Err(error);
    }
    match document {
        Value::Object(object) => Ok(object),
        _ => Err(malformed("the answer is not a JSON object")),
    }
}

fn decode(response: &HttpResponse) -> Result<ChatResponse, AdapterError> {
    let object = success_object(response)?;
    let message = match object.get("message") {
        Some(message @ Value::Object(_)) => message,
        _ => return Err(malformed("the answer has no `message` object")),
    };
    let text = std::str::from_utf8(&response.body).unwrap_or_default();
    let (content, calls) = read_message(Some(message), text)?;
    let done = is_done(&object);
    let finish_reason = if !calls.is_empty() {
        Some(FinishReason::ToolCalls)
    } else if done {
        Some(finish_from(object.get("done_reason")))
    } else {
        None
    };
    let has_counts = object.contains_key("prompt_eval_count") || object.contains_key("eval_count");
    let tool_calls = calls
        .into_iter()
        .enumerate()
        .map(|(position, call)| ToolCall {
            id: call.id.unwrap_or_else(|| format!("call_{position}")),
            name: call.name,
            arguments: call.arguments,
        })
        .collect();
    Ok(ChatResponse {
        model: text_of(object.get("model")).unwrap_or_default().to_string(),
        choices: vec![Choice {
            index: 0,
            message: Message {
                role: text_of(message.get("role"))
                    .and_then(role_from)
                    .unwrap_or(Role::Assistant),
                content: if content.is_empty() {
                    Vec::new()
                } else {
                    vec![ContentPart::Text(content)]
                },
                name: None,
                tool_calls,
                tool_call_id: None,
            },
            finish_reason,
        }],
        usage: (done || has_counts).then(|| usage_from(&object)),
    })
}

// ------------------------------------------------------------------ stream

/// What a stream's later lines need from its earlier ones. One instance
/// serves one completion, so one stream: `encode-request` resets it.
#[derive(Default)]
struct Stream {
    /// Whether a chunk (the one that carries the role) has gone out.
    started: bool,
    /// How many tool calls have gone out: the next one's index.
    tool_calls: u32,
}

thread_local! {
    static STREAM: RefCell<Stream> = RefCell::default();
}

fn decode_line(event: &StreamEvent) -> Result<Vec<Chunk>, AdapterError> {
    let data = event.data.trim();
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let document: Value = serde_json::from_str(data).map_err(|e| {
        malformed(&format!(
            "a stream line is not JSON ({e}): {}",
            snippet(data.as_bytes())
        ))
    })?;
    if let Some(error) = embedded_error(&document) {
        return Err(error);
    }
    let Some(object) = document.as_object() else {
        return Err(malformed("a stream line is not a JSON object"));
    };
    let (content, calls) = read_message(object.get("message"), data)?;
    let done = is_done(object);
    STREAM.with_borrow_mut(|stream| {
        let role = (!stream.started).then_some(Role::Assistant);
        stream.started = true;
        let tool_calls: Vec<ToolCallDelta> = calls
            .into_iter()
            .map(|call| {
                let index = stream.tool_calls;
                stream.tool_calls = stream.tool_calls.saturating_add(1);
                ToolCallDelta {
                    index,
                    id: Some(call.id.unwrap_or_else(|| format!("call_{index}"))),
                    name: Some(call.name),
                    arguments: call.arguments,
                }
            })
            .collect();
        let (finish_reason, usage) = if done {
            let finish = if stream.tool_calls > 0 {
                FinishReason::ToolCalls
            } else {
                finish_from(object.get("done_reason"))
            };
            (Some(finish), Some(usage_from(object)))
        } else {
            (None, None)
        };
        if role.is_none() && content.is_empty() && tool_calls.is_empty() && !done {
            return Ok(Vec::new());
        }
        Ok(vec![Chunk {
            index: 0,
            role,
            content,
            tool_calls,
            finish_reason,
            usage,
        }])
    })
}
