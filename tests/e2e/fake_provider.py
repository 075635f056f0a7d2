"""A fake LLM provider for Warden's end-to-end tests: it speaks the OpenAI
wire format, the Anthropic Messages wire format and Ollama's native API,
checks the credential the way the real services do, and records every
request so a test can see what Warden actually sent upstream. Standard
library only.

    python fake_provider.py [--key KEY] [--port PORT] [--anthropic-bearer]

It binds 127.0.0.1 (on a free port unless --port is given), prints one line
`{"port": N}` on stdout and serves until killed.

Endpoints:

- OpenAI (`authorization: Bearer KEY`): `POST /v1/chat/completions` (JSON, or
  SSE with `stream: true`, ending in `data: [DONE]`, with a last usage-only
  chunk when `stream_options.include_usage` is true), `POST /v1/embeddings`
  (float or base64 vectors, `dimensions` honoured, 1536 otherwise),
  `GET /v1/models`.
- Anthropic (`x-api-key: KEY`, or with --anthropic-bearer also
  `authorization: Bearer KEY` as recent SDKs send it, and an
  `anthropic-version` header, required like the real API; so is
  `max_tokens` in the body):
  `POST /v1/messages` (JSON, or SSE with `stream: true`: message_start, ping,
  then per block content_block_start / content_block_delta (text_delta or
  input_json_delta) / content_block_stop, message_delta (stop_reason,
  usage.output_tokens), message_stop). `GET /v1/models` answers in Anthropic's
  shape (and checks Anthropic's credential) when the request carries an
  `anthropic-version` header.
- Ollama's native API (no credential, as Ollama has none; but when an
  `authorization` header is present it must be `Bearer KEY`, else 401, so a
  test can check what the host injected, as a proxy in front of Ollama
  would): `POST /api/chat` (one JSON object with `stream: false`; otherwise,
  as Ollama streams by default, `application/x-ndjson`: one line
  `{model, created_at, message: {role, content}, done: false}` per word, then
  `{..., message: {role, content: ""}, done: true, done_reason,
  prompt_eval_count, eval_count, ...durations}`; a tool call is one line
  whose message has `tool_calls: [{function: {index, name, arguments
  (an object)}}]` and no `id`, as before Ollama 0.12, and done_reason is
  `stop` as Ollama says then), `POST /api/embed` (`{model, input: string or
  [strings], dimensions?}` -> `{model, embeddings: [[...]], total_duration,
  load_duration, prompt_eval_count}`, the same vectors as /v1/embeddings).
  `options.num_predict` is the token limit; zero counts are left out, as
  Ollama's `omitempty` does. Errors are `{"error": "text"}` with the status.
- `GET /_requests`: every request received so far (the control endpoints
  excepted), as [{method, path, query, headers (lower-case names), body
  (parsed JSON or null)}]; `DELETE /_requests` clears the list.

What it answers is chosen by markers in the text of the LAST user message
(for embeddings: in any input); markers combine, e.g. `[words:40] [slow:50]`:

- none: echo, the answer is `echo: <last user text>`;
- `[status:N]`: status N (400-599) with the provider's error body; 429 also
  carries `retry-after: 1`;
- `[malformed]`: streamed, one good chunk then an event (for Ollama: a line)
  whose data is not JSON; otherwise a 200 `application/json` whose body is
  not JSON;
- `[stream-error]`: streamed, one good chunk then the provider's in-stream
  error (OpenAI `data: {"error": ...}`, Anthropic `event: error`, Ollama a
  line `{"error": "..."}`);
- `[tool:NAME]`: one call of function NAME with arguments {"city": "Paris"}
  (finish_reason tool_calls / stop_reason tool_use / Ollama done_reason
  stop with message.tool_calls);
- `[json]`: the text `{"answer": "42"}` (whatever response_format asked for:
  a test must give a schema that accepts it);
- `[leak]`: sentences with a made-up AWS key (AKIA6KD7T652I2UBJGG5; the
  documentation example AKIAIOSFODNN7EXAMPLE would not be flagged) in the
  middle (after the words of `[words:N]` when both are given); streamed, the
  key is cut in two chunks (`AKIA6KD7`, `T652I2UBJGG5`);
- `[words:N]`: the answer is `word1 word2 ... wordN`;
- `[slow:MS]`: streamed, MS milliseconds between events; otherwise MS before
  the answer;
- `[cached:N]`: N of the prompt tokens are reported as cached (OpenAI
  prompt_tokens_details.cached_tokens; Anthropic cache_read_input_tokens,
  with input_tokens the uncached rest, as Anthropic counts them; Ollama
  reports no cached count and ignores it).

Usage: prompt tokens are the whitespace-separated words of the text of all
messages (system included; for Anthropic the top-level `system` too), and
completion tokens the words of the answer (of the arguments JSON for a tool
call). A text answer longer than `max_tokens` / `max_completion_tokens` /
Ollama's `options.num_predict` words is cut there, with finish_reason length /
stop_reason max_tokens / done_reason length. Streamed, each word (with its
following space) is one chunk.
"""

import argparse
import base64
import hashlib
import json
import math
import re
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = "test-key"
ACCEPT_BEARER = False
LEAKED_KEY = "AKIA6KD7T652I2UBJGG5"
LEAK_TEXT = (
    "Here is the deployment note you asked for. "
    f"The access key is {LEAKED_KEY} and it belongs to the staging account. "
    "Rotate it after the test run. Nothing else has changed."
)
JSON_ANSWER = '{"answer": "42"}'
TOOL_ARGUMENTS = {"city": "Paris"}
MODELS = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]
ANTHROPIC_MODELS = ["claude-sonnet-4-5", "claude-haiku-4-5"]
EMBEDDING_DIMS = 1536

requests_log = []
log_lock = threading.Lock()


# ---- what to answer --------------------------------------------------------


def markers(text):
    """The behaviour markers in TEXT, as {name: argument or True}."""
    found = {}
    for name, arg in re.findall(r"\[(status|slow|words|cached|tool):([^\]\s]+)\]", text):
        found[name] = arg
    for name in ("malformed", "stream-error", "json", "leak"):
        if f"[{name}]" in text:
            found[name] = True
    return found


def int_marker(found, name, default=0):
    try:
        return int(found.get(name, default))
    except ValueError:
        return default


def words(text):
    return len(text.split())


def part_text(content):
    """The text of an OpenAI or Anthropic message content (string or parts)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict):
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") == "tool_result":
                texts.append(part_text(part.get("content")))
    return " ".join(t for t in texts if t)


def last_user_text(messages):
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return part_text(message.get("content"))
    return ""


def prompt_words(messages, system=None):
    total = words(part_text(system)) if system else 0
    for message in messages or []:
        if isinstance(message, dict):
            total += words(part_text(message.get("content")))
    return total


class Answer:
    """A completion to give: text, or one tool call."""

    def __init__(self, body, messages, system=None):
        self.text_in = last_user_text(messages)
        self.found = markers(self.text_in)
        self.slow = int_marker(self.found, "slow") / 1000.0
        self.prompt_tokens = prompt_words(messages, system)
        self.cached = min(max(int_marker(self.found, "cached"), 0), self.prompt_tokens)
        self.tool = self.found.get("tool")
        self.truncated = False
        if self.tool:
            self.arguments = json.dumps(TOOL_ARGUMENTS)
            self.completion_tokens = words(self.arguments)
            self.pieces = []
            return
        if self.found.get("json"):
            text = JSON_ANSWER
        elif "words" in self.found:
            text = " ".join(
                f"word{i}" for i in range(1, max(int_marker(self.found, "words"), 0) + 1)
            )
            if self.found.get("leak"):
                text = f"{text} {LEAK_TEXT}"
        elif self.found.get("leak"):
            text = LEAK_TEXT
        else:
            text = f"echo: {self.text_in}"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if (
            isinstance(limit, int)
            and limit >= 0
            and words(text) > limit
            and not self.found.get("json")
        ):
            text = " ".join(text.split()[:limit])
            self.truncated = True
        self.text = text
        self.completion_tokens = words(text)
        self.pieces = stream_pieces(text)


def stream_pieces(text):
    """One piece per word (with its following space); the leaked key in two."""
    pieces = []
    for piece in re.findall(r"\S+\s*", text):
        if piece.startswith(LEAKED_KEY):
            pieces += [LEAKED_KEY[:8], piece[8:]]
        else:
            pieces.append(piece)
    return pieces or [""]


def new_id(prefix):
    return prefix + uuid.uuid4().hex[:24]


# ---- error bodies ----------------------------------------------------------

OPENAI_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again in 1s.",
    ),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
ANTHROPIC_ERRORS = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    503: ("api_error", "Service unavailable"),
    529: ("overloaded_error", "Overloaded"),
}


OLLAMA_ERRORS = {
    400: "invalid request",
    401: "unauthorized",
    404: "model 'fake' not found, try pulling it first",
    429: "server busy, please try again.  maximum pending requests exceeded",
    500: "an error was encountered while running the model: unexpected EOF",
    503: "server busy, please try again.  maximum pending requests exceeded",
}


def ollama_error(status):
    return {"error": OLLAMA_ERRORS.get(status, f"error {status}")}


def openai_error(status, message=None, code=None):
    kind, default_code, default_message = OPENAI_ERRORS.get(
        status,
        ("server_error" if status >= 500 else "invalid_request_error", None, f"Error {status}."),
    )
    return {
        "error": {
            "message": message or default_message,
            "type": kind,
            "param": None,
            "code": code if code is not None else default_code,
        }
    }


def anthropic_error(status, message=None):
    kind, default_message = ANTHROPIC_ERRORS.get(
        status, ("api_error" if status >= 500 else "invalid_request_error", f"Error {status}.")
    )
    return {
        "type": "error",
        "error": {"type": kind, "message": message or default_message},
        "request_id": new_id("req_"),
    }


# ---- the server ------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-provider/1.0"

    def log_message(self, format, *args):  # keep stderr quiet
        pass

    # -- plumbing

    def read_body(self):
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status, document, headers=None):
        payload = json.dumps(document).encode()
        self.send_raw(status, payload, "application/json", headers)

    def send_raw(self, status, payload, content_type, headers=None):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        self.send_header("x-request-id", new_id("req_"))
        self.send_header("request-id", new_id("req_"))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def start_stream(self, content_type="text/event-stream; charset=utf-8"):
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("x-request-id", new_id("req_"))
        self.send_header("request-id", new_id("req_"))
        self.end_headers()
        self.wfile.flush()

    def write_chunk(self, data):
        if isinstance(data, str):
            data = data.encode()
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def dispatch(self, method):
        path, _, query = self.path.partition("?")
        raw = self.read_body()
        if path == "/_requests":
            if method == "DELETE":
                with log_lock:
                    requests_log.clear()
                return self.send_json(200, {"cleared": True})
            with log_lock:
                snapshot = list(requests_log)
            return self.send_json(200, snapshot)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        with log_lock:
            requests_log.append(
                {"method": method, "path": path, "query": query, "headers": headers, "body": body}
            )
        try:
            self.route(method, path, headers, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PUT(self):
        self.dispatch("PUT")

    # -- routing and credentials

    def route(self, method, path, headers, body):
        anthropic_models = path == "/v1/models" and "anthropic-version" in headers
        if path == "/v1/messages" or anthropic_models:
            bearer = ACCEPT_BEARER and headers.get("authorization") == f"Bearer {KEY}"
            if headers.get("x-api-key") != KEY and not bearer:
                return self.send_json(401, anthropic_error(401))
            if not headers.get("anthropic-version"):
                return self.send_json(
                    400, anthropic_error(400, "anthropic-version: header is required")
                )
            if anthropic_models:
                return self.anthropic_models()
            if method != "POST":
                return self.send_json(405, anthropic_error(405, "Method not allowed"))
            return self.messages(body)
        if path in ("/v1/chat/completions", "/v1/embeddings", "/v1/models"):
            if headers.get("authorization") != f"Bearer {KEY}":
                return self.send_json(
                    401,
                    openai_error(
                        401,
                        "Incorrect API key provided."
                        if headers.get("authorization")
                        else "You didn't provide an API key.",
                        "invalid_api_key" if headers.get("authorization") else None,
                    ),
                )
            if path == "/v1/models":
                if method != "GET":
                    return self.send_json(405, openai_error(405, "Method not allowed."))
                return self.openai_models()
            if method != "POST":
                return self.send_json(405, openai_error(405, "Method not allowed."))
            if path == "/v1/embeddings":
                return self.embeddings(body)
            return self.chat_completions(body)
        if path in ("/api/chat", "/api/embed"):
            authorization = headers.get("authorization")
            if authorization is not None and authorization != f"Bearer {KEY}":
                return self.send_json(401, {"error": "unauthorized"})
            if method != "POST":
                return self.send_json(405, {"error": "method not allowed"})
            if path == "/api/embed":
                return self.ollama_embed(body)
            return self.ollama_chat(body)
        return self.send_json(404, openai_error(404, f"Unknown path {path}.", "unknown_url"))

    # -- OpenAI

    def openai_models(self):
        created = 1700000000
        self.send_json(
            200,
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": created, "owned_by": "fake-provider"}
                    for m in MODELS
                ],
            },
        )

    def chat_completions(self, body):
        if not isinstance(body, dict):
            return self.send_json(
                400, openai_error(400, "We could not parse the JSON body of your request.")
            )
        if (
            not body.get("model")
            or not isinstance(body.get("messages"), list)
            or not body["messages"]
        ):
            return self.send_json(
                400, openai_error(400, "'model' and a non-empty 'messages' are required.")
            )
        answer = Answer(body, body["messages"])
        found = answer.found
        if "status" in found:
            status = int_marker(found, "status", 500)
            if not 400 <= status <= 599:
                status = 500
            extra = {"retry-after": "1"} if status == 429 else None
            return self.send_json(status, openai_error(status), extra)
        stream = body.get("stream") is True
        if not stream and answer.slow:
            time.sleep(answer.slow)
        if not stream and found.get("malformed"):
            return self.send_raw(
                200, b'{"id": "chatcmpl-broken", "choices": [ this is not json', "application/json"
            )
        ident, created, model = new_id("chatcmpl-"), int(time.time()), body["model"]
        usage = {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": answer.cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        finish = "tool_calls" if answer.tool else ("length" if answer.truncated else "stop")
        call_id = new_id("call_")
        if not stream:
            message = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
            if answer.tool:
                message["tool_calls"] = [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": answer.tool, "arguments": answer.arguments},
                    }
                ]
            else:
                message["content"] = answer.text
            return self.send_json(
                200,
                {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
                    ],
                    "usage": usage,
                    "service_tier": "default",
                    "system_fingerprint": "fp_fake",
                },
            )

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta, finish_reason=None):
            document = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": "fp_fake",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if include_usage:
                document["usage"] = None
            return document

        events = []
        if answer.tool:
            events.append(
                chunk(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": call_id,
                                "type": "function",
                                "function": {"name": answer.tool, "arguments": ""},
                            }
                        ],
                        "refusal": None,
                    }
                )
            )
            for piece in split_json(answer.arguments):
                events.append(
                    chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                )
        else:
            events.append(chunk({"role": "assistant", "content": "", "refusal": None}))
            events += [chunk({"content": piece}) for piece in answer.pieces]
        events.append(chunk({}, finish))
        if include_usage:
            last = chunk({})
            last["choices"] = []
            last["usage"] = usage
            events.append(last)

        self.start_stream()
        for n, event in enumerate(events):
            if n and answer.slow:
                time.sleep(answer.slow)
            self.write_chunk(f"data: {json.dumps(event)}\n\n")
            if n == 1 and found.get("malformed"):
                self.write_chunk("data: {this is not json\n\n")
                return self.end_stream()
            if n == 1 and found.get("stream-error"):
                error = openai_error(500)
                self.write_chunk(f"data: {json.dumps(error)}\n\n")
                return self.end_stream()
        if answer.slow:
            time.sleep(answer.slow)
        self.write_chunk("data: [DONE]\n\n")
        self.end_stream()

    def embeddings(self, body):
        if not isinstance(body, dict) or not body.get("model") or "input" not in body:
            return self.send_json(400, openai_error(400, "'model' and 'input' are required."))
        inputs = body["input"]
        if isinstance(inputs, str) or (
            isinstance(inputs, list) and inputs and isinstance(inputs[0], int)
        ):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            return self.send_json(
                400, openai_error(400, "'input' must be a string or a non-empty array.")
            )
        texts = [i if isinstance(i, str) else " ".join(map(str, i)) for i in inputs]
        found = markers(" ".join(texts))
        if "status" in found:
            status = int_marker(found, "status", 500)
            if not 400 <= status <= 599:
                status = 500
            return self.send_json(
                status, openai_error(status), {"retry-after": "1"} if status == 429 else None
            )
        if found.get("slow"):
            time.sleep(int_marker(found, "slow") / 1000.0)
        if found.get("malformed"):
            return self.send_raw(200, b'{"object": "list", "data": [ not json', "application/json")
        dims = body.get("dimensions") if isinstance(body.get("dimensions"), int) else EMBEDDING_DIMS
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector = embed(text, dims)
            if as_base64:
                encoded = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append(
                {
                    "object": "embedding",
                    "index": index,
                    "embedding": encoded if as_base64 else vector,
                }
            )
        tokens = sum(max(words(t), 1) for t in texts)
        self.send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    # -- Anthropic

    def anthropic_models(self):
        data = [
            {
                "type": "model",
                "id": m,
                "display_name": m.replace("-", " ").title(),
                "created_at": "2025-01-01T00:00:00Z",
            }
            for m in ANTHROPIC_MODELS
        ]
        self.send_json(
            200,
            {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]},
        )

    def messages(self, body):
        if not isinstance(body, dict):
            return self.send_json(400, anthropic_error(400, "The request body is not valid JSON."))
        for field in ("model", "messages", "max_tokens"):
            if field not in body:
                return self.send_json(400, anthropic_error(400, f"{field}: Field required"))
        if not isinstance(body["messages"], list) or not body["messages"]:
            return self.send_json(
                400, anthropic_error(400, "messages: at least one message is required")
            )
        for message in body["messages"]:
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                return self.send_json(
                    400,
                    anthropic_error(
                        400, "messages: roles must be 'user' or 'assistant' (system is top-level)"
                    ),
                )
        answer = Answer(body, body["messages"], body.get("system"))
        found = answer.found
        if "status" in found:
            status = int_marker(found, "status", 500)
            if not 400 <= status <= 599:
                status = 500
            extra = {"retry-after": "1"} if status == 429 else None
            return self.send_json(status, anthropic_error(status), extra)
        stream = body.get("stream") is True
        if not stream and answer.slow:
            time.sleep(answer.slow)
        if not stream and found.get("malformed"):
            return self.send_raw(
                200, b'{"id": "msg_broken", "content": [ this is not json', "application/json"
            )
        ident, model = new_id("msg_"), body["model"]
        stop = "tool_use" if answer.tool else ("max_tokens" if answer.truncated else "end_turn")
        tool_id = new_id("toolu_")
        usage = {
            "input_tokens": answer.prompt_tokens - answer.cached,
            "output_tokens": answer.completion_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": answer.cached,
        }
        if answer.tool:
            block = {
                "type": "tool_use",
                "id": tool_id,
                "name": answer.tool,
                "input": dict(TOOL_ARGUMENTS),
            }
        else:
            block = {"type": "text", "text": answer.text}
        if not stream:
            return self.send_json(
                200,
                {
                    "id": ident,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [block],
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": usage,
                },
            )

        events = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": ident,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": dict(usage, output_tokens=1),
                    },
                },
            ),
            ("ping", {"type": "ping"}),
        ]
        if answer.tool:
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {
                            "type": "tool_use",
                            "id": tool_id,
                            "name": answer.tool,
                            "input": {},
                        },
                    },
                )
            )
            deltas = [
                {"type": "input_json_delta", "partial_json": p}
                for p in split_json(answer.arguments)
            ]
        else:
            events.append(
                (
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            deltas = [{"type": "text_delta", "text": p} for p in answer.pieces]
        events += [
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d})
            for d in deltas
        ]
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": answer.completion_tokens},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]

        first_delta = next(n for n, (name, _) in enumerate(events) if name == "content_block_delta")
        self.start_stream()
        for n, (name, data) in enumerate(events):
            if n and answer.slow:
                time.sleep(answer.slow)
            self.write_chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n")
            if n == first_delta and found.get("malformed"):
                self.write_chunk("event: content_block_delta\ndata: {this is not json\n\n")
                return self.end_stream()
            if n == first_delta and found.get("stream-error"):
                error = anthropic_error(529)
                error.pop("request_id")
                self.write_chunk(f"event: error\ndata: {json.dumps(error)}\n\n")
                return self.end_stream()
        self.end_stream()

    # -- Ollama (native API)

    def ollama_chat(self, body):
        if not isinstance(body, dict):
            return self.send_json(400, {"error": "invalid character in request body"})
        if not body.get("model"):
            return self.send_json(400, {"error": "model is required"})
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self.send_json(400, {"error": "messages are required"})
        for message in messages:
            if not isinstance(message, dict) or not isinstance(message.get("content", ""), str):
                return self.send_json(
                    400, {"error": "json: cannot unmarshal into Go struct field of type string"}
                )
        options = body.get("options") if isinstance(body.get("options"), dict) else {}
        answer = Answer({"max_tokens": options.get("num_predict")}, messages)
        found = answer.found
        if "status" in found:
            status = int_marker(found, "status", 500)
            if not 400 <= status <= 599:
                status = 500
            extra = {"retry-after": "1"} if status == 429 else None
            return self.send_json(status, ollama_error(status), extra)
        # Ollama streams unless told not to.
        stream = body.get("stream") is not False
        if not stream and answer.slow:
            time.sleep(answer.slow)
        if not stream and found.get("malformed"):
            return self.send_raw(
                200, b'{"model": "broken", "message": { this is not json', "application/json"
            )
        model = body["model"]

        def line(content, done=False, tool_calls=None):
            document = {
                "model": model,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "message": {"role": "assistant", "content": content},
                "done": done,
            }
            if tool_calls:
                document["message"]["tool_calls"] = tool_calls
            if done:
                document["done_reason"] = "length" if answer.truncated else "stop"
                metrics = {
                    "total_duration": 1200000,
                    "load_duration": 100000,
                    "prompt_eval_count": answer.prompt_tokens,
                    "prompt_eval_duration": 300000,
                    "eval_count": answer.completion_tokens,
                    "eval_duration": 800000,
                }
                # Ollama's `omitempty`: counts of 0 are left out.
                document.update({k: v for k, v in metrics.items() if v})
            return document

        calls = (
            [{"function": {"index": 0, "name": answer.tool, "arguments": dict(TOOL_ARGUMENTS)}}]
            if answer.tool
            else None
        )
        if not stream:
            return self.send_json(
                200, line("" if answer.tool else answer.text, done=True, tool_calls=calls)
            )

        if answer.tool:
            lines = [line("", tool_calls=calls)]
        else:
            lines = [line(piece) for piece in answer.pieces]
        lines.append(line("", done=True))
        self.start_stream("application/x-ndjson")
        for n, document in enumerate(lines):
            if n and answer.slow:
                time.sleep(answer.slow)
            self.write_chunk(json.dumps(document) + "\n")
            if n == 0 and found.get("malformed"):
                self.write_chunk('{"model": "broken", "message": {this is not json\n')
                return self.end_stream()
            if n == 0 and found.get("stream-error"):
                self.write_chunk(json.dumps(ollama_error(500)) + "\n")
                return self.end_stream()
        self.end_stream()

    def ollama_embed(self, body):
        if not isinstance(body, dict):
            return self.send_json(400, {"error": "invalid character in request body"})
        if not body.get("model"):
            return self.send_json(400, {"error": "model is required"})
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
            return self.send_json(400, {"error": "invalid input type"})
        found = markers(" ".join(inputs))
        if "status" in found:
            status = int_marker(found, "status", 500)
            if not 400 <= status <= 599:
                status = 500
            return self.send_json(
                status, ollama_error(status), {"retry-after": "1"} if status == 429 else None
            )
        if found.get("slow"):
            time.sleep(int_marker(found, "slow") / 1000.0)
        if found.get("malformed"):
            return self.send_raw(
                200, b'{"model": "m", "embeddings": [ not json', "application/json"
            )
        dims = body.get("dimensions") if isinstance(body.get("dimensions"), int) else 0
        dims = dims if dims > 0 else EMBEDDING_DIMS
        document = {
            "model": body["model"],
            "embeddings": [embed(text, dims) for text in inputs],
            "total_duration": 14143917,
            "load_duration": 1019500,
        }
        tokens = sum(max(words(t), 1) for t in inputs)
        if tokens:
            document["prompt_eval_count"] = tokens
        self.send_json(200, document)


def split_json(text):
    """Tool-call arguments in three pieces, as providers stream them."""
    if len(text) < 3:
        return [text]
    third = len(text) // 3
    return [text[:third], text[third : 2 * third], text[2 * third :]]


def embed(text, dims):
    """A deterministic unit vector for TEXT."""
    values = []
    counter = 0
    while len(values) < dims:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values += [(b - 127.5) / 127.5 for b in digest]
        counter += 1
    values = values[:dims]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global KEY, ACCEPT_BEARER
    parser = argparse.ArgumentParser(
        description="A fake OpenAI, Anthropic and Ollama provider for tests."
    )
    parser.add_argument("--key", default="test-key", help="the API key it accepts")
    parser.add_argument(
        "--port", type=int, default=0, help="the port to bind (default: a free one)"
    )
    parser.add_argument(
        "--anthropic-bearer",
        action="store_true",
        help="also accept `authorization: Bearer KEY` on the Anthropic paths",
    )
    args = parser.parse_args()
    KEY, ACCEPT_BEARER = args.key, args.anthropic_bearer
    server = Server(("127.0.0.1", args.port), Handler)
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
