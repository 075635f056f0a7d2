"""An OpenAI-compatible client for Warden's end-to-end tests, written with the
official Python SDK (`openai` on PyPI). It runs one scenario against
BASE_URL and prints what it saw as one JSON report:

- chat: one completion of --prompt; {id, model, content, finish_reason,
  usage: {prompt_tokens, completion_tokens, total_tokens, cached_tokens}};
- stream: the same streamed with `stream_options.include_usage`; {id, model,
  chunks (every chunk received, the usage-only one included), pieces (the
  non-empty content deltas, in order), content (them joined), finish_reason,
  usage}, and `error` if the stream broke off, with what had arrived before;
- tools: offers `get_weather(city)` and asks --prompt (default
  "[tool:get_weather] weather in Paris?"); {content, tool_calls: [{id, name,
  arguments}], finish_reason, usage}; with --stream the same from a stream,
  plus chunks (and `error` as for stream);
- json: response_format json_schema "answer" ({"answer": string}, required)
  with --prompt (default "[json]"); {content, parsed, finish_reason};
- models: {models: [ids]};
- embeddings: embeds ["a", "b"] (--input may be given several times
  instead); {count, dims, model, usage}.

    python openai_client.py SCENARIO --base-url URL --key KEY [--model M]
        [--prompt TEXT] [--system TEXT] [--max-tokens N] [--stream]
        [--input TEXT ...] [--max-retries N] [--timeout SECONDS]

The client makes no retries (--max-retries) and waits 10 s (--timeout). It
exits 0 even when the scenario met an error: the report is then
{"error": {status, type, code, message, exception, retry_after, request_id}}
(for stream, tools --stream: beside the partial report), from the SDK's
exception: status is the HTTP status (null for a stream that broke off, a
timeout, a connection failure or a body that is not JSON), type and code the
provider's error body's, message the provider's own message when its body
had one (else the SDK's), exception the SDK's exception class.
"""

import argparse
import json
import sys

import openai

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ANSWER_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer",
        "schema": {
            "type": "object",
            "properties": {"answer": {"type": "string"}},
            "required": ["answer"],
        },
    },
}


def error_report(error):
    """What an exception says, in the report's shape."""
    body = getattr(error, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    return {
        "status": getattr(error, "status_code", None),
        "type": getattr(error, "type", None),
        "code": getattr(error, "code", None),
        "message": message if isinstance(message, str) else getattr(error, "message", str(error)),
        "exception": type(error).__name__,
        "retry_after": headers.get("retry-after"),
        "request_id": getattr(error, "request_id", None),
    }


def usage_report(usage):
    if usage is None:
        return None
    details = getattr(usage, "prompt_tokens_details", None)
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cached_tokens": getattr(details, "cached_tokens", None) if details else None,
    }


def messages(args, prompt):
    sent = [{"role": "system", "content": args.system}] if args.system else []
    return sent + [{"role": "user", "content": prompt}]


def extra(args):
    return {"max_tokens": args.max_tokens} if args.max_tokens is not None else {}


def chat(client, args):
    completion = client.chat.completions.create(
        model=args.model, messages=messages(args, args.prompt or "hello"), **extra(args)
    )
    choice = completion.choices[0]
    return {
        "id": completion.id,
        "model": completion.model,
        "content": choice.message.content,
        "finish_reason": choice.finish_reason,
        "usage": usage_report(completion.usage),
    }


def consume(stream, report):
    """Reads a chat completion stream into REPORT; tool-call deltas are
    assembled by index."""
    pieces, calls = [], {}
    report.update({"chunks": 0, "finish_reason": None, "usage": None})
    try:
        for chunk in stream:
            report["chunks"] += 1
            report.setdefault("id", chunk.id)
            report.setdefault("model", chunk.model)
            if chunk.usage is not None:
                report["usage"] = usage_report(chunk.usage)
            for choice in chunk.choices:
                if choice.delta.content:
                    pieces.append(choice.delta.content)
                for call in choice.delta.tool_calls or []:
                    slot = calls.setdefault(call.index, {"id": None, "name": None, "arguments": ""})
                    if call.id:
                        slot["id"] = call.id
                    if call.function and call.function.name:
                        slot["name"] = call.function.name
                    if call.function and call.function.arguments:
                        slot["arguments"] += call.function.arguments
                if choice.finish_reason:
                    report["finish_reason"] = choice.finish_reason
    except Exception as error:  # the stream broke off: keep what came before
        report["error"] = error_report(error)
    report["pieces"] = pieces
    report["content"] = "".join(pieces)
    return [calls[i] for i in sorted(calls)]


def stream(client, args):
    report = {}
    chunks = client.chat.completions.create(
        model=args.model,
        messages=messages(args, args.prompt or "hello"),
        stream=True,
        stream_options={"include_usage": True},
        **extra(args),
    )
    consume(chunks, report)
    return report


def tools(client, args):
    prompt = args.prompt or "[tool:get_weather] What is the weather in Paris?"
    if args.stream:
        report = {}
        chunks = client.chat.completions.create(
            model=args.model,
            messages=messages(args, prompt),
            tools=[WEATHER_TOOL],
            stream=True,
            stream_options={"include_usage": True},
            **extra(args),
        )
        report["tool_calls"] = consume(chunks, report)
        return report
    completion = client.chat.completions.create(
        model=args.model, messages=messages(args, prompt), tools=[WEATHER_TOOL], **extra(args)
    )
    choice = completion.choices[0]
    return {
        "content": choice.message.content,
        "tool_calls": [
            {"id": call.id, "name": call.function.name, "arguments": call.function.arguments}
            for call in choice.message.tool_calls or []
        ],
        "finish_reason": choice.finish_reason,
        "usage": usage_report(completion.usage),
    }


def json_answer(client, args):
    completion = client.chat.completions.create(
        model=args.model,
        messages=messages(args, args.prompt or "[json]"),
        response_format=ANSWER_FORMAT,
        **extra(args),
    )
    choice = completion.choices[0]
    try:
        parsed = json.loads(choice.message.content or "")
    except ValueError:
        parsed = None
    return {
        "content": choice.message.content,
        "parsed": parsed,
        "finish_reason": choice.finish_reason,
    }


def models(client, args):
    return {"models": [model.id for model in client.models.list()]}


def embeddings(client, args):
    result = client.embeddings.create(
        model=args.model or "text-embedding-3-small", input=args.input or ["a", "b"]
    )
    return {
        "count": len(result.data),
        "dims": len(result.data[0].embedding) if result.data else 0,
        "first": [round(x, 6) for x in result.data[0].embedding[:3]] if result.data else [],
        "model": result.model,
        "usage": {
            "prompt_tokens": result.usage.prompt_tokens,
            "total_tokens": result.usage.total_tokens,
        },
    }


SCENARIOS = {
    "chat": chat,
    "stream": stream,
    "tools": tools,
    "json": json_answer,
    "models": models,
    "embeddings": embeddings,
}


def main():
    parser = argparse.ArgumentParser(
        description="Runs one OpenAI SDK scenario and reports it as JSON."
    )
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:PORT/v1")
    parser.add_argument("--key", required=True)
    parser.add_argument(
        "--model", default=None, help="default gpt-4o-mini (text-embedding-3-small)"
    )
    parser.add_argument("--prompt", default=None)
    parser.add_argument("--system", default=None, help="a system message before the prompt")
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--stream", action="store_true", help="tools: stream the answer")
    parser.add_argument("--input", action="append", help="embeddings: an input (repeatable)")
    parser.add_argument("--max-retries", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    if args.model is None and args.scenario != "embeddings":
        args.model = "gpt-4o-mini"

    client = openai.OpenAI(
        base_url=args.base_url,
        api_key=args.key,
        max_retries=args.max_retries,
        timeout=args.timeout,
    )
    try:
        report = SCENARIOS[args.scenario](client, args)
    except Exception as error:  # an API error (or any other): report it
        report = {"error": error_report(error)}
    print(json.dumps(report))
    sys.exit(0)


if __name__ == "__main__":
    main()
