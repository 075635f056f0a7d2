//! Prompt tokens, bounded from above, for the reservation a completion
//! makes before it goes out ([`crate::kernel`]'s spend stage).
//!
//! Where Warden has the model's own tokenizer — OpenAI's BPE encodings, from
//! `tiktoken-rs` (embedded, nothing fetched) — the text of each message is
//! counted exactly, and only what the provider renders in a format of its
//! own (tool definitions, tool calls, response formats) is bounded by its
//! JSON bytes. Otherwise the whole prompt is bounded by its JSON bytes: a
//! byte-level BPE (every OpenAI, Anthropic and Llama tokenizer) makes at
//! most one token per UTF-8 byte.

use serde::Deserialize;
use serde_json::Value;
use tiktoken_rs::CoreBPE;

/// Tokens a prompt is counted beyond its messages: the chat format's own
/// (reply priming, the tools preamble).
const PROMPT_OVERHEAD_TOKENS: u64 = 64;
/// Tokens counted per message beyond its role, name and content: OpenAI's
/// chat format frames each message with 3 (one more here, to spare).
const MESSAGE_OVERHEAD_TOKENS: u64 = 4;
/// Tokens counted per image in a prompt: more than any provider counts for
/// one image (OpenAI's largest tiling is about 1,100).
const IMAGE_TOKENS: u64 = 2_000;

/// How a model's prompt tokens are counted (`[models.NAME] tokenizer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tokenizer {
    /// No tokenizer: one token per UTF-8 byte of the request's JSON.
    Bytes,
    /// OpenAI's `cl100k_base` (GPT-4, GPT-3.5, `text-embedding-3-*`).
    Cl100kBase,
    /// OpenAI's `o200k_base` (GPT-4o, GPT-4.1, GPT-5, the o-series).
    O200kBase,
}

impl Tokenizer {
    /// The tokenizer of the provider's model `upstream_model` when Warden
    /// has it (tiktoken's table of OpenAI's model names), else [`Tokenizer::Bytes`].
    pub fn for_model(upstream_model: &str) -> Tokenizer {
        use tiktoken_rs::tokenizer::{Tokenizer as Known, get_tokenizer};
        match get_tokenizer(upstream_model) {
            Some(Known::O200kBase) => Tokenizer::O200kBase,
            Some(Known::Cl100kBase) => Tokenizer::Cl100kBase,
            _ => Tokenizer::Bytes,
        }
    }

    /// Its name in config and in the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Tokenizer::Bytes => "bytes",
            Tokenizer::Cl100kBase => "cl100k_base",
            Tokenizer::O200kBase => "o200k_base",
        }
    }

    /// The encoding, loaded on first use (a tenth of a second or so: call
    /// [`Tokenizer::load`] at start to pay it there).
    fn bpe(self) -> Option<&'static CoreBPE> {
        match self {
            Tokenizer::Bytes => None,
            Tokenizer::Cl100kBase => Some(tiktoken_rs::cl100k_base_singleton()),
            Tokenizer::O200kBase => Some(tiktoken_rs::o200k_base_singleton()),
        }
    }

    /// Loads the encoding now, if it has one.
    pub fn load(self) {
        self.bpe();
    }

    /// At least as many tokens as the provider counts for the prompt of a
    /// chat request `args` (its messages, tools, tool choice and response
    /// format).
    pub fn chat_prompt_bound(self, args: &Value) -> u64 {
        let messages = args.get("messages").and_then(Value::as_array);
        let counted = match (self.bpe(), messages) {
            (Some(bpe), Some(messages)) => messages.iter().map(|m| message_tokens(bpe, m)).sum(),
            _ => {
                json_bytes(args.get("messages"))
                    + images(messages.into_iter().flatten()) * IMAGE_TOKENS
            }
        };
        counted
            + json_bytes(args.get("tools"))
            + json_bytes(args.get("tool_choice"))
            + json_bytes(args.get("response_format"))
            + PROMPT_OVERHEAD_TOKENS
    }

    /// At least as many tokens as the provider counts for the `input` of an
    /// embeddings request `args`.
    pub fn embeddings_input_bound(self, args: &Value) -> u64 {
        let input = match self.bpe() {
            Some(bpe) => input_tokens(bpe, args.get("input")),
            None => json_bytes(args.get("input")),
        };
        input + PROMPT_OVERHEAD_TOKENS
    }
}

/// One chat message: its framing, role, name and text counted exactly;
/// images at [`IMAGE_TOKENS`]; anything else (tool calls, audio, files) by
/// its JSON bytes.
fn message_tokens(bpe: &CoreBPE, message: &Value) -> u64 {
    let Some(fields) = message.as_object() else {
        return json_bytes(Some(message));
    };
    let count = |text: &str| bpe.count_ordinary(text) as u64;
    let mut tokens = MESSAGE_OVERHEAD_TOKENS;
    for (key, value) in fields {
        tokens += match (key.as_str(), value) {
            ("role" | "name", Value::String(text)) => count(text) + 1,
            ("content", Value::String(text)) => count(text),
            ("content", Value::Array(parts)) => parts
                .iter()
                .map(|part| match part.get("type").and_then(Value::as_str) {
                    Some("text") => match part.get("text") {
                        Some(Value::String(text)) => count(text),
                        other => json_bytes(other),
                    },
                    Some("image_url") => IMAGE_TOKENS,
                    _ => json_bytes(Some(part)),
                })
                .sum(),
            ("content", Value::Null) => 0,
            _ => json_bytes(Some(value)),
        };
    }
    tokens
}

/// An embeddings `input`: text, texts, or token ids.
fn input_tokens(bpe: &CoreBPE, input: Option<&Value>) -> u64 {
    match input {
        Some(Value::String(text)) => bpe.count_ordinary(text) as u64,
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::Number(_) => 1,
                Value::Array(ids) => ids.len() as u64,
                other => input_tokens(bpe, Some(other)),
            })
            .sum(),
        other => json_bytes(other),
    }
}

/// Images among the content parts of `messages`.
fn images<'a>(messages: impl Iterator<Item = &'a Value>) -> u64 {
    messages
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten()
        .filter(|part| part.get("type").and_then(Value::as_str) == Some("image_url"))
        .count() as u64
}

/// The UTF-8 bytes of `value` as JSON; nothing when it is absent or null.
fn json_bytes(value: Option<&Value>) -> u64 {
    value
        .filter(|v| !v.is_null())
        .map_or(0, |v| v.to_string().len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openai_models_get_their_encodings_and_others_the_byte_bound() {
        assert_eq!(Tokenizer::for_model("gpt-4o-mini"), Tokenizer::O200kBase);
        assert_eq!(Tokenizer::for_model("gpt-5"), Tokenizer::O200kBase);
        assert_eq!(Tokenizer::for_model("gpt-4"), Tokenizer::Cl100kBase);
        assert_eq!(
            Tokenizer::for_model("text-embedding-3-small"),
            Tokenizer::Cl100kBase
        );
        assert_eq!(Tokenizer::for_model("claude-sonnet-4"), Tokenizer::Bytes);
        assert_eq!(Tokenizer::for_model("llama3.2"), Tokenizer::Bytes);
    }

    #[test]
    fn an_exact_count_bounds_openai_s_own_and_is_far_below_the_byte_bound() {
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(50);
        let args = json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "name": "alice", "content": text},
                {"role": "user", "content": [{"type": "text", "text": "and?"}]},
            ],
        });
        let exact = Tokenizer::O200kBase.chat_prompt_bound(&args);
        let bytes = Tokenizer::Bytes.chat_prompt_bound(&args);
        // OpenAI's cookbook count (what the API bills for these messages).
        let messages: Vec<tiktoken_rs::ChatCompletionRequestMessage> = [
            ("system", None, "You are terse."),
            ("user", Some("alice"), text.as_str()),
            ("user", None, "and?"),
        ]
        .into_iter()
        .map(
            |(role, name, content)| tiktoken_rs::ChatCompletionRequestMessage {
                role: role.into(),
                content: Some(content.into()),
                name: name.map(str::to_string),
                ..Default::default()
            },
        )
        .collect();
        let billed = tiktoken_rs::num_tokens_from_messages("gpt-4o", &messages).unwrap() as u64;
        assert!(exact >= billed, "{exact} < {billed}");
        assert!(exact <= billed + PROMPT_OVERHEAD_TOKENS + 16, "{exact}");
        assert!(exact * 4 < bytes, "{exact} vs {bytes}");
    }

    #[test]
    fn what_has_no_exact_count_is_bounded_by_its_bytes() {
        let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
        let image =
            json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}});
        let call =
            json!([{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]);
        let args = json!({
            "messages": [
                {"role": "user", "content": [image]},
                {"role": "assistant", "content": null, "tool_calls": call},
            ],
            "tools": tools,
        });
        let bound = Tokenizer::O200kBase.chat_prompt_bound(&args);
        let floor = IMAGE_TOKENS
            + call.to_string().len() as u64
            + tools.to_string().len() as u64
            + PROMPT_OVERHEAD_TOKENS;
        assert!(bound >= floor, "{bound} < {floor}");
        // Bytes: the image counts as an image, not as its base64.
        let bytes = Tokenizer::Bytes.chat_prompt_bound(&args);
        assert!(bytes >= IMAGE_TOKENS + tools.to_string().len() as u64);
    }

    #[test]
    fn embeddings_inputs_are_counted_as_texts_or_token_ids() {
        let count = |input: Value| {
            Tokenizer::Cl100kBase.embeddings_input_bound(&json!({"input": input}))
                - PROMPT_OVERHEAD_TOKENS
        };
        assert_eq!(count(json!("hello world")), 2);
        assert_eq!(count(json!(["hello world", "hello"])), 3);
        assert_eq!(count(json!([[1, 2, 3], [4]])), 4);
        assert_eq!(count(json!([5, 6])), 2);
    }
}
