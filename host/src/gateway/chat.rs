//! The OpenAI chat completions format, both ways: a client's request (JSON,
//! already checked against `docs/schemas/chat-request.v1.json`) into the
//! adapter interface's [`ChatRequest`], and an adapter's [`ChatResponse`]
//! into the answer a client gets.

use serde_json::{Map, Value, json};

use crate::sandbox::chat::{
    ChatRequest, ChatResponse, ContentPart, EmbeddingsRequest, EmbeddingsResponse, FinishReason,
    FunctionTool, JsonSchemaFormat, Message, ResponseFormat, Role, ToolCall, ToolChoice, Usage,
};

/// The adapter's request for `request`, addressed to `upstream_model`.
/// `Err` names the field that cannot be translated.
pub(crate) fn request(request: &Value, upstream_model: &str) -> Result<ChatRequest, String> {
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("`messages` must be an array")?
        .iter()
        .enumerate()
        .map(|(i, m)| message(m).map_err(|e| format!("`messages[{i}]`: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let tools = match request.get("tools") {
        None | Some(Value::Null) => Vec::new(),
        Some(tools) => tools
            .as_array()
            .ok_or("`tools` must be an array")?
            .iter()
            .enumerate()
            .map(|(i, t)| function_tool(t).map_err(|e| format!("`tools[{i}]`: {e}")))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let stop = match request.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or("`stop` must be a string or an array of strings")?,
        Some(_) => return Err("`stop` must be a string or an array of strings".into()),
    };
    let number = |key: &str| request.get(key).and_then(Value::as_f64);
    let max_tokens = request
        .get("max_completion_tokens")
        .or_else(|| request.get("max_tokens"))
        .and_then(Value::as_u64)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    Ok(ChatRequest {
        model: upstream_model.to_string(),
        messages,
        tools,
        tool_choice: request.get("tool_choice").map(tool_choice).transpose()?,
        parallel_tool_calls: request.get("parallel_tool_calls").and_then(Value::as_bool),
        response_format: request
            .get("response_format")
            .filter(|f| !f.is_null())
            .map(response_format)
            .transpose()?,
        temperature: number("temperature"),
        top_p: number("top_p"),
        max_tokens,
        stop,
        seed: request.get("seed").and_then(Value::as_i64),
        presence_penalty: number("presence_penalty"),
        frequency_penalty: number("frequency_penalty"),
        user: text(request, "user"),
        stream: request
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// The adapter's request for the embeddings request `request` (checked
/// against `docs/schemas/embeddings-request.v1.json`), addressed to `upstream_model`.
pub(crate) fn embeddings_request(
    request: &Value,
    upstream_model: &str,
) -> Result<EmbeddingsRequest, String> {
    let inputs = match request.get("input") {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or(
                "`input` must be a string or an array of strings (token arrays are not served)",
            )?,
        _ => return Err("`input` must be a string or an array of strings".into()),
    };
    Ok(EmbeddingsRequest {
        model: upstream_model.to_string(),
        inputs,
        dimensions: request
            .get("dimensions")
            .and_then(Value::as_u64)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        user: text(request, "user"),
    })
}

/// The embeddings as the gateway's output: `{"model", "data": [{"index",
/// "embedding"}], "usage"}` (the face adds `object` and, when asked, base64).
pub(crate) fn embeddings_response(response: &EmbeddingsResponse) -> Value {
    let data: Vec<Value> = response
        .vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| json!({ "index": index, "embedding": vector }))
        .collect();
    let mut answer = json!({ "model": response.model, "data": data });
    if let Some(u) = &response.usage {
        answer["usage"] = json!({
            "prompt_tokens": u.prompt_tokens,
            "total_tokens": u.prompt_tokens,
        });
    }
    answer
}

fn text(object: &Value, key: &str) -> Option<String> {
    object.get(key).and_then(Value::as_str).map(str::to_string)
}

fn message(m: &Value) -> Result<Message, String> {
    let role = match m.get("role").and_then(Value::as_str) {
        Some("system") => Role::System,
        Some("developer") => Role::Developer,
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some("tool") => Role::Tool,
        _ => return Err("`role` must be system, developer, user, assistant or tool".into()),
    };
    let content = match m.get("content") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![ContentPart::Text(s.clone())],
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(i, p)| content_part(p).map_err(|e| format!("`content[{i}]`: {e}")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err("`content` must be a string or an array of parts".into()),
    };
    let tool_calls = match m.get("tool_calls") {
        None | Some(Value::Null) => Vec::new(),
        Some(calls) => calls
            .as_array()
            .ok_or("`tool_calls` must be an array")?
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let function = c.get("function").unwrap_or(&Value::Null);
                Ok(ToolCall {
                    id: text(c, "id").unwrap_or_default(),
                    name: text(function, "name")
                        .ok_or(format!("`tool_calls[{i}].function.name` is missing"))?,
                    arguments: text(function, "arguments").unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?,
    };
    Ok(Message {
        role,
        content,
        name: text(m, "name"),
        tool_calls,
        tool_call_id: text(m, "tool_call_id"),
    })
}

fn content_part(part: &Value) -> Result<ContentPart, String> {
    match part.get("type").and_then(Value::as_str) {
        Some("text") => Ok(ContentPart::Text(
            text(part, "text").ok_or("a text part needs `text`")?,
        )),
        Some("image_url") => {
            let url = part
                .get("image_url")
                .and_then(|i| i.get("url").or(Some(i)))
                .and_then(Value::as_str)
                .ok_or("an image part needs `image_url.url`")?;
            Ok(ContentPart::ImageUrl(url.to_string()))
        }
        other => Err(format!(
            "parts of type {} are not supported (text, image_url)",
            other.map_or_else(|| "(none)".to_string(), |t| format!("`{t}`"))
        )),
    }
}

fn function_tool(tool: &Value) -> Result<FunctionTool, String> {
    if tool.get("type").and_then(Value::as_str) != Some("function") {
        return Err("only tools of type `function` are supported".into());
    }
    let function = tool.get("function").ok_or("`function` is missing")?;
    Ok(FunctionTool {
        name: text(function, "name").ok_or("`function.name` is missing")?,
        description: text(function, "description"),
        parameters: function
            .get("parameters")
            .filter(|p| !p.is_null())
            .map(Value::to_string),
        strict: function.get("strict").and_then(Value::as_bool),
    })
}

fn tool_choice(choice: &Value) -> Result<ToolChoice, String> {
    match choice {
        Value::String(s) if s == "auto" => Ok(ToolChoice::Auto),
        Value::String(s) if s == "none" => Ok(ToolChoice::None),
        Value::String(s) if s == "required" => Ok(ToolChoice::Required),
        Value::Object(_) => choice
            .get("function")
            .and_then(|f| text(f, "name"))
            .map(ToolChoice::Function)
            .ok_or_else(|| "`tool_choice.function.name` is missing".to_string()),
        _ => Err("`tool_choice` must be auto, none, required or a function".into()),
    }
}

fn response_format(format: &Value) -> Result<ResponseFormat, String> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let schema = format
                .get("json_schema")
                .ok_or("`response_format.json_schema` is missing")?;
            Ok(ResponseFormat::JsonSchema(JsonSchemaFormat {
                name: text(schema, "name")
                    .ok_or("`response_format.json_schema.name` is missing")?,
                description: text(schema, "description"),
                schema: schema
                    .get("schema")
                    .filter(|s| !s.is_null())
                    .map(Value::to_string),
                strict: schema.get("strict").and_then(Value::as_bool),
            }))
        }
        _ => Err("`response_format.type` must be text, json_object or json_schema".into()),
    }
}

/// `reason` as the OpenAI API spells it.
pub(crate) fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::Other => "other",
    }
}

pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::Developer => "developer",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

/// `usage` as the OpenAI API spells it.
pub(crate) fn usage(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": u64::from(usage.prompt_tokens) + u64::from(usage.completion_tokens),
        "prompt_tokens_details": { "cached_tokens": usage.cached_prompt_tokens },
    })
}

/// The completion as a client sees it, without the `id`, `object` and
/// `created` the face adds.
pub(crate) fn response(response: &ChatResponse) -> Value {
    let choices: Vec<Value> = response
        .choices
        .iter()
        .map(|choice| {
            let message = &choice.message;
            let text: String = message
                .content
                .iter()
                .filter_map(|part| match part {
                    ContentPart::Text(t) => Some(t.as_str()),
                    ContentPart::ImageUrl(_) => None,
                })
                .collect();
            let mut out = Map::new();
            out.insert("role".into(), json!(role_name(message.role)));
            out.insert(
                "content".into(),
                if text.is_empty() && !message.tool_calls.is_empty() {
                    Value::Null
                } else {
                    Value::String(text)
                },
            );
            if !message.tool_calls.is_empty() {
                let calls: Vec<Value> = message
                    .tool_calls
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.id,
                            "type": "function",
                            "function": { "name": c.name, "arguments": c.arguments },
                        })
                    })
                    .collect();
                out.insert("tool_calls".into(), Value::Array(calls));
            }
            json!({
                "index": choice.index,
                "message": Value::Object(out),
                "finish_reason": choice.finish_reason.map(finish_reason),
            })
        })
        .collect();
    let mut answer = json!({ "model": response.model, "choices": choices });
    if let Some(u) = &response.usage {
        answer["usage"] = usage(u);
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_request_translates_field_by_field() {
        let body = json!({
            "model": "fast",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "42"}
            ],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}},
            "max_tokens": 5, "stop": "END", "temperature": 0.5, "seed": 7, "stream": true
        });
        let r = request(&body, "gpt-x").expect("translates");
        assert_eq!(r.model, "gpt-x");
        assert_eq!(r.messages.len(), 4);
        assert_eq!(r.messages[1].content.len(), 2);
        assert_eq!(r.messages[2].tool_calls[0].name, "f");
        assert_eq!(r.messages[3].tool_call_id.as_deref(), Some("c1"));
        assert_eq!(
            r.tools[0].parameters.as_deref(),
            Some(r#"{"type":"object"}"#)
        );
        assert!(matches!(r.tool_choice, Some(ToolChoice::Function(ref n)) if n == "f"));
        assert!(matches!(
            r.response_format,
            Some(ResponseFormat::JsonSchema(_))
        ));
        assert_eq!((r.max_tokens, r.seed, r.stream), (Some(5), Some(7), true));
        assert_eq!(r.stop, vec!["END".to_string()]);
    }

    #[test]
    fn untranslatable_fields_are_named() {
        let bad = json!({"messages": [{"role": "user", "content": [{"type": "audio"}]}]});
        let error = request(&bad, "m").expect_err("refused");
        assert!(
            error.contains("messages[0]") && error.contains("content[0]"),
            "{error}"
        );
        let bad = json!({"messages": [], "tools": [{"type": "retrieval"}]});
        assert!(
            request(&bad, "m")
                .expect_err("refused")
                .contains("tools[0]")
        );
    }
}
