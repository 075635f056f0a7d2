//! Streamed completions: the provider's body split into events by the
//! framing its adapter declared (server-sent events or NDJSON), each event
//! translated by the same adapter instance that encoded the request, and the
//! chunks assembled into the completion the audit record describes.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::chat;
use crate::error::{CallError, ErrorCode};
use crate::sandbox::AdapterInstance;
use crate::sandbox::chat::{
    ChatResponse, Choice, Chunk, ContentPart, Framing, Message, Role, StreamEvent, ToolCall, Usage,
};

/// Longest event the host frames; a provider sending more is broken.
const EVENT_MAX: usize = 1 << 20;

/// Splits a byte stream into events.
#[derive(Debug)]
pub(crate) struct Framer {
    framing: Framing,
    buffer: Vec<u8>,
}

impl Framer {
    pub(crate) fn new(framing: Framing) -> Framer {
        Framer {
            framing,
            buffer: Vec::new(),
        }
    }

    /// Adds `bytes` and returns the events they complete.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Vec<StreamEvent>, String> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        loop {
            let boundary = match self.framing {
                Framing::Sse => sse_boundary(&self.buffer),
                Framing::Ndjson => self.buffer.iter().position(|&b| b == b'\n').map(|i| (i, 1)),
            };
            let Some((end, separator)) = boundary else {
                break;
            };
            let raw: Vec<u8> = self.buffer.drain(..end + separator).take(end).collect();
            let text = String::from_utf8(raw).map_err(|_| "an event is not UTF-8".to_string())?;
            let event = match self.framing {
                Framing::Sse => sse_event(&text),
                Framing::Ndjson => {
                    let line = text.trim();
                    (!line.is_empty()).then(|| StreamEvent {
                        event: None,
                        data: line.to_string(),
                    })
                }
            };
            events.extend(event);
        }
        if self.buffer.len() > EVENT_MAX {
            return Err(format!("an event is longer than {EVENT_MAX} bytes"));
        }
        Ok(events)
    }

    /// The event left unterminated when the body ended, if any.
    pub(crate) fn finish(&mut self) -> Option<StreamEvent> {
        let text = String::from_utf8(std::mem::take(&mut self.buffer)).ok()?;
        match self.framing {
            Framing::Sse => sse_event(&text),
            Framing::Ndjson => {
                let line = text.trim();
                (!line.is_empty()).then(|| StreamEvent {
                    event: None,
                    data: line.to_string(),
                })
            }
        }
    }
}

/// Where the first SSE event ends: its length and the separator's.
fn sse_boundary(buffer: &[u8]) -> Option<(usize, usize)> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// One SSE event's `event` and `data` fields (comments, `id` and `retry`
/// are dropped); none for an event without data.
fn sse_event(text: &str) -> Option<StreamEvent> {
    let mut event = None;
    let mut data: Option<String> = None;
    for line in text.lines() {
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => event = Some(value.to_string()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_string()),
            },
            _ => {}
        }
    }
    data.map(|data| StreamEvent { event, data })
}

/// The provider's streamed answer, being read.
pub(crate) struct CompletionStream {
    pub(super) instance: AdapterInstance,
    pub(super) response: reqwest::Response,
    pub(super) framer: Framer,
    pub(super) deadline: tokio::time::Instant,
    pub(super) origin: String,
    pub(super) max_bytes: usize,
    pub(super) read: usize,
    pub(super) ended: bool,
    /// The adapter's name, for errors.
    pub(super) adapter: String,
    /// Its share of the model's concurrency, held until the stream is dropped.
    pub(super) _permit: tokio::sync::OwnedSemaphorePermit,
}

impl std::fmt::Debug for CompletionStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompletionStream")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl CompletionStream {
    /// The next chunks, `None` once the provider's body ended.
    pub(crate) async fn next(&mut self) -> Option<Result<Vec<Chunk>, CallError>> {
        loop {
            if self.ended {
                return None;
            }
            let read = tokio::time::timeout_at(self.deadline, self.response.chunk()).await;
            let events = match read {
                Err(_) => {
                    self.ended = true;
                    return Some(Err(CallError::new(
                        ErrorCode::Timeout,
                        format!(
                            "the provider at {} did not finish its answer within the model's \
                             time limit",
                            self.origin
                        ),
                    )));
                }
                Ok(Err(e)) => {
                    self.ended = true;
                    return Some(Err(CallError::new(
                        ErrorCode::ProviderUnavailable,
                        format!("the provider at {} broke off its answer: {e}", self.origin),
                    )));
                }
                Ok(Ok(Some(bytes))) => {
                    self.read += bytes.len();
                    if self.read > self.max_bytes {
                        self.ended = true;
                        return Some(Err(CallError::new(
                            ErrorCode::ProviderError,
                            format!(
                                "the provider at {} streamed more than {} bytes",
                                self.origin, self.max_bytes
                            ),
                        )));
                    }
                    match self.framer.push(&bytes) {
                        Ok(events) => events,
                        Err(m) => {
                            self.ended = true;
                            return Some(Err(CallError::new(
                                ErrorCode::ProviderError,
                                format!("the stream of the provider at {}: {m}", self.origin),
                            )));
                        }
                    }
                }
                Ok(Ok(None)) => {
                    self.ended = true;
                    self.framer.finish().into_iter().collect()
                }
            };
            let mut chunks = Vec::new();
            for event in events {
                match self.instance.decode_event(&event).await {
                    Ok(Ok(more)) => chunks.extend(more),
                    Ok(Err(e)) => {
                        self.ended = true;
                        return Some(Err(super::adapter_error(&self.adapter, &self.origin, e)));
                    }
                    Err(e) => {
                        self.ended = true;
                        return Some(Err(e));
                    }
                }
            }
            if !chunks.is_empty() {
                return Some(Ok(chunks));
            }
        }
    }
}

/// The completion being streamed, assembled from its chunks.
#[derive(Debug, Default)]
pub(crate) struct Assembled {
    choices: BTreeMap<u32, AssembledChoice>,
    usage: Option<Usage>,
}

#[derive(Debug, Default)]
struct AssembledChoice {
    text: String,
    tool_calls: BTreeMap<u32, ToolCall>,
    finish_reason: Option<crate::sandbox::chat::FinishReason>,
}

impl Assembled {
    /// Adds one chunk.
    pub(crate) fn add(&mut self, chunk: &Chunk) {
        let choice = self.choices.entry(chunk.index).or_default();
        choice.text.push_str(&chunk.content);
        for delta in &chunk.tool_calls {
            let call = choice.tool_calls.entry(delta.index).or_insert(ToolCall {
                id: String::new(),
                name: String::new(),
                arguments: String::new(),
            });
            if let Some(id) = &delta.id {
                call.id.clone_from(id);
            }
            if let Some(name) = &delta.name {
                call.name.push_str(name);
            }
            call.arguments.push_str(&delta.arguments);
        }
        if chunk.finish_reason.is_some() {
            choice.finish_reason = chunk.finish_reason;
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
    }

    /// The usage the provider reported, if it has.
    pub(crate) fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// The completion as a whole answer would have been, for `model`.
    pub(crate) fn completion(&self, model: &str) -> Value {
        let response = ChatResponse {
            model: model.to_string(),
            choices: self
                .choices
                .iter()
                .map(|(index, c)| Choice {
                    index: *index,
                    message: Message {
                        role: Role::Assistant,
                        content: vec![ContentPart::Text(c.text.clone())],
                        name: None,
                        tool_calls: c.tool_calls.values().cloned().collect(),
                        tool_call_id: None,
                    },
                    finish_reason: c.finish_reason,
                })
                .collect(),
            usage: self.usage,
        };
        chat::response(&response)
    }
}

/// One chunk as OpenAI streams it (without `id`, `object`, `created` and
/// `model`, which the face adds).
pub(crate) fn chunk_json(chunk: &Chunk) -> Value {
    let mut delta = json!({});
    if let Some(role) = chunk.role {
        delta["role"] = json!(chat::role_name(role));
    }
    if !chunk.content.is_empty() {
        delta["content"] = json!(chunk.content);
    }
    if !chunk.tool_calls.is_empty() {
        let calls: Vec<Value> = chunk
            .tool_calls
            .iter()
            .map(|c| {
                let mut call =
                    json!({ "index": c.index, "function": { "arguments": c.arguments } });
                if let Some(id) = &c.id {
                    call["id"] = json!(id);
                    call["type"] = json!("function");
                }
                if let Some(name) = &c.name {
                    call["function"]["name"] = json!(name);
                }
                call
            })
            .collect();
        delta["tool_calls"] = Value::Array(calls);
    }
    json!({
        "choices": [{
            "index": chunk.index,
            "delta": delta,
            "finish_reason": chunk.finish_reason.map(chat::finish_reason),
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_are_framed_across_reads_and_line_endings() {
        let mut framer = Framer::new(Framing::Sse);
        assert!(framer.push(b"event: a\ndata: {\"x\"").unwrap().is_empty());
        let events = framer
            .push(b":1}\n\n: comment\r\n\r\ndata: one\ndata: two\r\n\r\ndata: [DONE]\n\n")
            .unwrap();
        let seen: Vec<(Option<&str>, &str)> = events
            .iter()
            .map(|e| (e.event.as_deref(), e.data.as_str()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (Some("a"), "{\"x\":1}"),
                (None, "one\ntwo"),
                (None, "[DONE]")
            ]
        );
        assert!(framer.push(b"data: tail").unwrap().is_empty());
        assert_eq!(framer.finish().map(|e| e.data), Some("tail".to_string()));
    }

    #[test]
    fn ndjson_is_one_event_per_line_and_events_are_bounded() {
        let mut framer = Framer::new(Framing::Ndjson);
        let events = framer.push(b"{\"a\":1}\n\n{\"b\":2}\n{\"c\"").unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(framer.finish().map(|e| e.data), Some("{\"c\"".to_string()));
        let mut framer = Framer::new(Framing::Sse);
        assert!(framer.push(&vec![b'x'; EVENT_MAX + 1]).is_err());
    }
}
