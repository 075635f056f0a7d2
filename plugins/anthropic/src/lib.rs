//! `anthropic`: the provider adapter for the Anthropic Messages API
//! (`POST /v1/messages`, `anthropic-version: 2023-06-01`). A pure translator
//! (`world provider` in `wit/plugin.wit`): it encodes Warden's chat request
//! as a Messages request, and decodes the answer, its error bodies and its
//! SSE stream events back. See README.md for what it passes on, ignores and
//! refuses.

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
use serde_json::Value;
use serde_json::value::RawValue;
use warden_plugin_sdk::provider::{
    AdapterError, AdapterInfo, ChatRequest, ChatResponse, Choice, Chunk, ContentPart, Credential,
    EmbeddingsRequest, EmbeddingsResponse, FinishReason, Framing, Guest, HttpRequest, HttpResponse,
    MESSAGE_BYTES, Message, ResponseFormat, Role, StreamEvent, ToolCall, ToolCallDelta, ToolChoice,
    Usage, clip, count, malformed, retry_after_ms, snippet, upstream,
};

#[cfg(test)]
mod tests;

/// The API version this adapter speaks.
const API_VERSION: &str = "2023-06-01";
/// `max_tokens` when the request sets none: Anthropic requires one.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
/// The status reported for an error inside an answer whose HTTP status was
/// a success (a stream's `error` event), unless it is `overloaded_error`.
const EMBEDDED_ERROR_STATUS: u16 = 502;
/// The status Anthropic itself uses for `overloaded_error`.
const OVERLOADED_STATUS: u16 = 529;
/// The input schema of a tool that declares none.
const EMPTY_SCHEMA: &str = r#"{"type":"object","properties":{}}"#;

/// The adapter. The component exports it; native builds (the tests) call
/// its [`Guest`] functions directly.
pub struct Anthropic;

// Only on wasm: the export's symbol names do not link into a native shared
// library, and native builds serve the tests.
#[cfg(target_arch = "wasm32")]
warden_plugin_sdk::provider::export_provider!(Anthropic);

impl Guest for Anthropic {
    fn info() -> AdapterInfo {
        AdapterInfo {
            framing: Framing::Sse,
            credential: Credential::Header("x-api-key".to_string()),
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
        decode_stream_event(&event)
    }

    /// Anthropic offers no embeddings API.
    fn encode_embeddings(_request: EmbeddingsRequest) -> Result<HttpRequest, AdapterError> {
        Err(AdapterError::Unsupported(
            "Anthropic's API has no embeddings; configure an embeddings model on another adapter"
                .to_string(),
        ))
    }

    fn decode_embeddings(_response: HttpResponse) -> Result<EmbeddingsResponse, AdapterError> {
        Err(AdapterError::Unsupported(
            "Anthropic's API has no embeddings".to_string(),
        ))
    }
}

// ---------------------------------------------------------------- encoding

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop_sequences: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    stream: bool,
}

#[derive(Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

/// One message of the conversation: Anthropic wants `user` and `assistant`
/// to alternate.
#[derive(Serialize)]
struct Turn<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    Image {
        source: ImageSource<'a>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a RawValue,
    },
    ToolResult {
        tool_use_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<ResultContent<'a>>,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ImageSource<'a> {
    Url { url: &'a str },
    Base64 { media_type: &'a str, data: &'a str },
}

#[derive(Serialize)]
#[serde(untagged)]
enum ResultContent<'a> {
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

#[derive(Serialize)]
struct WireTool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: &'a RawValue,
}

#[derive(Serialize)]
struct WireToolChoice<'a> {
    r#type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disable_parallel_tool_use: Option<bool>,
}

fn unsupported(message: &str) -> AdapterError {
    AdapterError::Unsupported(clip(message, MESSAGE_BYTES))
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

/// An image part as a block: a `data:` URL (base64 only) as the image
/// itself, any other URL by reference.
fn image(url: &str) -> Result<Block<'_>, AdapterError> {
    let scheme = url.get(..5);
    if !scheme.is_some_and(|s| s.eq_ignore_ascii_case("data:")) {
        return Ok(Block::Image {
            source: ImageSource::Url { url },
        });
    }
    let rest = url.get(5..).unwrap_or_default();
    let Some((meta, data)) = rest.split_once(',') else {
        return Err(unsupported("an image data: URL has no `,`"));
    };
    let mut params = meta.split(';');
    let media_type = params.next().unwrap_or_default();
    if !params.any(|p| p.eq_ignore_ascii_case("base64")) {
        return Err(unsupported(
            "an image data: URL must be base64-encoded for Anthropic",
        ));
    }
    if media_type.is_empty() {
        return Err(unsupported("an image data: URL names no media type"));
    }
    Ok(Block::Image {
        source: ImageSource::Base64 { media_type, data },
    })
}

/// A tool call's arguments as the `input` object Anthropic requires: empty
/// arguments are `{}`; anything but a JSON object is refused.
fn tool_input(call: &ToolCall) -> Result<&RawValue, AdapterError> {
    let what = format!("the arguments of tool call `{}`", clip(&call.id, 64));
    let text = if call.arguments.trim().is_empty() {
        "{}"
    } else {
        call.arguments.as_str()
    };
    let input = raw_json(text, &what)?;
    if !input.get().trim_start().starts_with('{') {
        return Err(unsupported(&format!(
            "{what} are not a JSON object, which Anthropic requires"
        )));
    }
    Ok(input)
}

/// The content of a `tool` message as a tool result's content: one text
/// as a string, anything else as blocks; nothing when empty.
fn tool_result(parts: &[ContentPart]) -> Result<Option<ResultContent<'_>>, AdapterError> {
    let parts: Vec<&ContentPart> = parts
        .iter()
        .filter(|part| !matches!(part, ContentPart::Text(text) if text.is_empty()))
        .collect();
    Ok(match parts.as_slice() {
        [] => None,
        [ContentPart::Text(text)] => Some(ResultContent::Text(text)),
        parts => Some(ResultContent::Blocks(
            parts
                .iter()
                .map(|part| match part {
                    ContentPart::Text(text) => Ok(Block::Text { text }),
                    ContentPart::ImageUrl(url) => image(url),
                })
                .collect::<Result<_, _>>()?,
        )),
    })
}

/// The blocks of one message; system and developer text goes to `system`.
fn blocks<'a>(
    message: &'a Message,
    system: &mut Vec<&'a str>,
) -> Result<Vec<Block<'a>>, AdapterError> {
    let mut out = Vec::new();
    match message.role {
        Role::System | Role::Developer => {
            for part in &message.content {
                match part {
                    ContentPart::Text(text) if text.is_empty() => {}
                    ContentPart::Text(text) => system.push(text),
                    ContentPart::ImageUrl(_) => {
                        return Err(unsupported(
                            "Anthropic takes no images in system or developer messages",
                        ));
                    }
                }
            }
        }
        Role::User | Role::Assistant => {
            for part in &message.content {
                match part {
                    // Anthropic refuses empty text blocks.
                    ContentPart::Text(text) if text.is_empty() => {}
                    ContentPart::Text(text) => out.push(Block::Text { text }),
                    ContentPart::ImageUrl(_) if message.role == Role::Assistant => {
                        return Err(unsupported(
                            "Anthropic takes no images in assistant messages",
                        ));
                    }
                    ContentPart::ImageUrl(url) => out.push(image(url)?),
                }
            }
            if message.role == Role::Assistant {
                for call in &message.tool_calls {
                    out.push(Block::ToolUse {
                        id: &call.id,
                        name: &call.name,
                        input: tool_input(call)?,
                    });
                }
            }
        }
        Role::Tool => {
            let Some(id) = message.tool_call_id.as_deref() else {
                return Err(unsupported("a tool message names no tool-call-id"));
            };
            out.push(Block::ToolResult {
                tool_use_id: id,
                content: tool_result(&message.content)?,
            });
        }
    }
    Ok(out)
}

/// The conversation as alternating turns, and the system text.
fn turns(messages: &[Message]) -> Result<(Vec<Turn<'_>>, Option<String>), AdapterError> {
    let mut system = Vec::new();
    let mut turns: Vec<Turn<'_>> = Vec::new();
    for message in messages {
        let content = blocks(message, &mut system)?;
        if content.is_empty() {
            continue;
        }
        let role = match message.role {
            Role::Assistant => "assistant",
            _ => "user",
        };
        match turns.last_mut() {
            Some(last) if last.role == role => last.content.extend(content),
            _ => turns.push(Turn { role, content }),
        }
    }
    // Tool results must open the user turn that carries them.
    for turn in &mut turns {
        turn.content
            .sort_by_key(|block| !matches!(block, Block::ToolResult { .. }));
    }
    let system = (!system.is_empty()).then(|| system.join("\n\n"));
    Ok((turns, system))
}

fn tool_choice<'a>(request: &'a ChatRequest) -> Option<WireToolChoice<'a>> {
    if request.tools.is_empty() {
        // Anthropic refuses a tool choice without tools.
        return None;
    }
    let disable = (request.parallel_tool_calls == Some(false)).then_some(true);
    let choice = |kind, name| WireToolChoice {
        r#type: kind,
        name,
        disable_parallel_tool_use: disable,
    };
    match &request.tool_choice {
        None => disable.map(|_| choice("auto", None)),
        Some(ToolChoice::Auto) => Some(choice("auto", None)),
        Some(ToolChoice::Required) => Some(choice("any", None)),
        Some(ToolChoice::Function(name)) => Some(choice("tool", Some(name.as_str()))),
        Some(ToolChoice::None) => Some(WireToolChoice {
            r#type: "none",
            name: None,
            disable_parallel_tool_use: None,
        }),
    }
}

fn encode(request: &ChatRequest) -> Result<HttpRequest, AdapterError> {
    match &request.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            return Err(unsupported(
                "response-format json-object: the Anthropic Messages API has no response format",
            ));
        }
        Some(ResponseFormat::JsonSchema(_)) => {
            return Err(unsupported(
                "response-format json-schema: the Anthropic Messages API has no response format",
            ));
        }
    }
    let (messages, system) = turns(&request.messages)?;
    let tools = request
        .tools
        .iter()
        .map(|tool| {
            let schema = tool.parameters.as_deref().unwrap_or(EMPTY_SCHEMA);
            let what = format!("the parameters of tool `{}`", clip(&tool.name, 64));
            Ok(WireTool {
                name: &tool.name,
                description: tool.description.as_deref(),
                input_schema: raw_json(schema, &what)?,
            })
        })
        .collect::<Result<Vec<_>, AdapterError>>()?;
    let body = Body {
        model: &request.model,
        max_tokens: request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        system,
        messages,
        tools,
        tool_choice: tool_choice(request),
        stop_sequences: request.stop.iter().map(String::as_str).collect(),
        temperature: finite(request.temperature, "temperature")?,
        top_p: finite(request.top_p, "top-p")?,
        metadata: request.user.as_deref().map(|user_id| Metadata { user_id }),
        stream: request.stream,
    };
    let body = serde_json::to_vec(&body).map_err(|e| unsupported(&format!("encoding: {e}")))?;
    Ok(HttpRequest {
        method: "POST".to_string(),
        path: "/v1/messages".to_string(),
        headers: vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("anthropic-version".to_string(), API_VERSION.to_string()),
        ],
        body,
    })
}

// ---------------------------------------------------------------- decoding

fn text_of(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str)
}

fn finish_from(value: Option<&Value>) -> Option<FinishReason> {
    let reason = value?.as_str()?;
    Some(match reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    })
}

/// Prompt-side token counts: `(input, cache read, cache creation)`.
#[derive(Clone, Copy, Default)]
struct PromptTokens {
    input: u32,
    cache_read: u32,
    cache_creation: u32,
}

impl PromptTokens {
    /// The counts in `usage`, each falling back to `base` when absent.
    fn read(usage: &serde_json::Map<String, Value>, base: PromptTokens) -> PromptTokens {
        let field = |name: &str, fallback: u32| match usage.get(name) {
            Some(value @ Value::Number(_)) => count(Some(value)),
            _ => fallback,
        };
        PromptTokens {
            input: field("input_tokens", base.input),
            cache_read: field("cache_read_input_tokens", base.cache_read),
            cache_creation: field("cache_creation_input_tokens", base.cache_creation),
        }
    }

    /// Warden's usage: every prompt token, cached or not, counts as a
    /// prompt token.
    fn usage(self, completion_tokens: u32) -> Usage {
        Usage {
            prompt_tokens: self
                .input
                .saturating_add(self.cache_read)
                .saturating_add(self.cache_creation),
            cached_prompt_tokens: self.cache_read,
            completion_tokens,
        }
    }
}

/// The error in an `{"type": "error", "error": {"type", "message"}}`
/// document: `(kind, message)`.
fn error_fields(document: &Value) -> Option<(Option<String>, Option<String>)> {
    let error = document.get("error")?.as_object()?;
    let kind = text_of(error.get("type"))
        .filter(|kind| !kind.is_empty())
        .map(str::to_string);
    Some((kind, text_of(error.get("message")).map(str::to_string)))
}

/// The error a non-success answer reports.
fn upstream_error(response: &HttpResponse) -> AdapterError {
    let status = response.status;
    let document: Option<Value> = serde_json::from_slice(&response.body).ok();
    let (kind, message) = document.as_ref().and_then(error_fields).unwrap_or_default();
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

/// An error inside an answer whose HTTP status was a success: 529 for
/// `overloaded_error` (Anthropic's own status for it), else 502.
fn embedded_error(document: &Value) -> AdapterError {
    let (kind, message) = error_fields(document).unwrap_or_default();
    let status = if kind.as_deref() == Some("overloaded_error") {
        OVERLOADED_STATUS
    } else {
        EMBEDDED_ERROR_STATUS
    };
    let message = message.unwrap_or_else(|| "the provider reported an error".to_string());
    upstream(status, kind.as_deref(), &message, None)
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
    if text_of(object.get("type")) == Some("error") {
        return Err(embedded_error(&document));
    }
    let Some(Value::Array(content)) = object.get("content") else {
        return Err(malformed("the answer has no `content` list"));
    };
    let mut text: Option<String> = None;
    let mut tool_calls = Vec::new();
    for block in content {
        if !block.is_object() {
            return Err(malformed("a content block is not an object"));
        }
        match text_of(block.get("type")) {
            Some("text") => text
                .get_or_insert_with(String::new)
                .push_str(text_of(block.get("text")).unwrap_or_default()),
            Some("tool_use") => tool_calls.push(ToolCall {
                id: text_of(block.get("id")).unwrap_or_default().to_string(),
                name: text_of(block.get("name")).unwrap_or_default().to_string(),
                arguments: match block.get("input") {
                    None | Some(Value::Null) => "{}".to_string(),
                    Some(input) => input.to_string(),
                },
            }),
            // Thinking, server tool use and blocks yet to come.
            _ => {}
        }
    }
    let usage = object.get("usage").and_then(Value::as_object).map(|usage| {
        PromptTokens::read(usage, PromptTokens::default()).usage(count(usage.get("output_tokens")))
    });
    Ok(ChatResponse {
        model: text_of(object.get("model")).unwrap_or_default().to_string(),
        choices: vec![Choice {
            index: 0,
            message: Message {
                role: Role::Assistant,
                content: text.map(ContentPart::Text).into_iter().collect(),
                name: None,
                tool_calls,
                tool_call_id: None,
            },
            finish_reason: finish_from(object.get("stop_reason")),
        }],
        usage,
    })
}

// ------------------------------------------------------------------ stream

/// What a stream's later events need from its earlier ones. One instance
/// serves one completion, so one stream: `encode-request` and
/// `message_start` reset it.
#[derive(Default)]
struct Stream {
    prompt: PromptTokens,
    /// How many `tool_use` blocks have started.
    tool_calls: u32,
    /// `tool_use` blocks by content block index.
    blocks: BTreeMap<u64, ToolBlock>,
}

struct ToolBlock {
    /// The tool call's index in Warden's chunks.
    call: u32,
    /// Whether any argument text has gone out for it.
    sent_arguments: bool,
}

thread_local! {
    static STREAM: RefCell<Stream> = RefCell::default();
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

fn content_chunk(text: &str) -> Vec<Chunk> {
    if text.is_empty() {
        return Vec::new();
    }
    vec![Chunk {
        content: text.to_string(),
        ..chunk()
    }]
}

fn tool_chunk(delta: ToolCallDelta) -> Vec<Chunk> {
    vec![Chunk {
        tool_calls: vec![delta],
        ..chunk()
    }]
}

fn decode_stream_event(event: &StreamEvent) -> Result<Vec<Chunk>, AdapterError> {
    let data = event.data.trim();
    let name = event.event.as_deref();
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let document: Value = match serde_json::from_str(data) {
        Ok(document) => document,
        Err(_) if name == Some("error") => {
            return Err(upstream(EMBEDDED_ERROR_STATUS, None, data, None));
        }
        Err(e) => {
            return Err(malformed(&format!(
                "a stream event is not JSON ({e}): {}",
                snippet(data.as_bytes())
            )));
        }
    };
    if !document.is_object() {
        return Err(malformed("a stream event is not a JSON object"));
    }
    let kind = text_of(document.get("type")).or(name).unwrap_or_default();
    STREAM.with_borrow_mut(|stream| stream_event(stream, kind, &document))
}

fn stream_event(
    stream: &mut Stream,
    kind: &str,
    event: &Value,
) -> Result<Vec<Chunk>, AdapterError> {
    let block_index = || event.get("index").and_then(Value::as_u64);
    Ok(match kind {
        "message_start" => {
            *stream = Stream::default();
            if let Some(usage) = event
                .get("message")
                .and_then(|m| m.get("usage"))
                .and_then(Value::as_object)
            {
                stream.prompt = PromptTokens::read(usage, PromptTokens::default());
            }
            vec![Chunk {
                role: Some(Role::Assistant),
                ..chunk()
            }]
        }
        "content_block_start" => {
            let block = event.get("content_block");
            match text_of(block.and_then(|b| b.get("type"))) {
                Some("text") => {
                    content_chunk(text_of(block.and_then(|b| b.get("text"))).unwrap_or_default())
                }
                Some("tool_use") => {
                    let call = stream.tool_calls;
                    stream.tool_calls = stream.tool_calls.saturating_add(1);
                    if let Some(index) = block_index() {
                        stream.blocks.insert(
                            index,
                            ToolBlock {
                                call,
                                sent_arguments: false,
                            },
                        );
                    }
                    tool_chunk(ToolCallDelta {
                        index: call,
                        id: text_of(block.and_then(|b| b.get("id"))).map(str::to_string),
                        name: text_of(block.and_then(|b| b.get("name"))).map(str::to_string),
                        arguments: String::new(),
                    })
                }
                _ => Vec::new(),
            }
        }
        "content_block_delta" => {
            let delta = event.get("delta");
            match text_of(delta.and_then(|d| d.get("type"))) {
                Some("text_delta") => {
                    content_chunk(text_of(delta.and_then(|d| d.get("text"))).unwrap_or_default())
                }
                Some("input_json_delta") => {
                    let partial =
                        text_of(delta.and_then(|d| d.get("partial_json"))).unwrap_or_default();
                    // A block that is not a tool_use of ours (a server
                    // tool's input, say) carries nothing for the caller.
                    match block_index().and_then(|index| stream.blocks.get_mut(&index)) {
                        Some(block) if !partial.is_empty() => {
                            block.sent_arguments = true;
                            tool_chunk(ToolCallDelta {
                                index: block.call,
                                id: None,
                                name: None,
                                arguments: partial.to_string(),
                            })
                        }
                        _ => Vec::new(),
                    }
                }
                // Thinking, signatures, citations and deltas yet to come.
                _ => Vec::new(),
            }
        }
        "content_block_stop" => {
            // A call without arguments gets `{}`, as a whole answer has it.
            match block_index().and_then(|index| stream.blocks.get_mut(&index)) {
                Some(block) if !block.sent_arguments => {
                    block.sent_arguments = true;
                    tool_chunk(ToolCallDelta {
                        index: block.call,
                        id: None,
                        name: None,
                        arguments: "{}".to_string(),
                    })
                }
                _ => Vec::new(),
            }
        }
        "message_delta" => {
            let finish_reason = finish_from(event.get("delta").and_then(|d| d.get("stop_reason")));
            let usage = event.get("usage").and_then(Value::as_object).map(|usage| {
                PromptTokens::read(usage, stream.prompt).usage(count(usage.get("output_tokens")))
            });
            if finish_reason.is_none() && usage.is_none() {
                Vec::new()
            } else {
                vec![Chunk {
                    finish_reason,
                    usage,
                    ..chunk()
                }]
            }
        }
        "error" => return Err(embedded_error(event)),
        // message_stop, ping, and event types yet to come.
        _ => Vec::new(),
    })
}
