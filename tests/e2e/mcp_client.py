"""An MCP client for Warden's end-to-end tests, written with the official
Python SDK (`mcp` on PyPI). It runs one scenario and prints what it saw as
JSON:

- governed: list tools, make an allowed, a denied, an invalid and an unknown call;
- gateway: the same through Warden to the notes server behind it;
- verified: arguments carrying a cloud key (denied by the secrets verifier's
  verdict) and an output carrying a card number (redacted by the pii one's);
- injection: read a clean document, make a side effect, read a document that
  tries to instruct the model, try the side effect again;
- contract: outputs within and outside the operator's contract, and one
  breaking the contract the client declares in `_meta`;
- grounding: fetch a page (its URL is the last argument), then publish an
  answer citing it and one citing a page never fetched;
- trace: call the notes server's `trace` tool through Warden with a
  well-formed and a malformed `_meta.traceparent`;
- list-changed: list the tools, move the policy file SOURCE to DESTINATION
  (the last two arguments), wait for `notifications/tools/list_changed`,
  list again.

    python mcp_client.py SCENARIO stdio WARDEN_BINARY CONFIG PRINCIPAL [ARGS...]
    python mcp_client.py SCENARIO http URL TOKEN [ARGS...]
"""

import asyncio
import json
import os
import sys

import httpx2
import mcp_types
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client


def summary(result):
    return {
        "is_error": result.is_error,
        "structured": result.structured_content,
        "text": [block.text for block in result.content if getattr(block, "text", None)],
    }


async def governed(read, write):
    async with ClientSession(read, write) as session:
        initialized = await session.initialize()
        tools = await session.list_tools()
        ok = await session.call_tool("text.transform", {"text": "hello", "op": "upper"})
        denied = await session.call_tool("fetch.get", {"url": "https://example.com/"})
        invalid = await session.call_tool("text.transform", {"text": 1})
        unknown = await session.call_tool("nope.nothing", {})
        return {
            "protocol": initialized.protocol_version,
            "server": initialized.server_info.name,
            "tools": sorted(tool.name for tool in tools.tools),
            "schemas": {tool.name: tool.input_schema for tool in tools.tools},
            "ok": summary(ok),
            "denied": summary(denied),
            "invalid": summary(invalid),
            "unknown": summary(unknown),
        }


async def gateway(read, write):
    async with ClientSession(read, write) as session:
        await session.initialize()
        tools = await session.list_tools()
        read_note = await session.call_tool("notes.read_note", {"name": "welcome"})
        denied = await session.call_tool("notes.write_note", {"name": "system/motd", "text": "x"})
        return {
            "tools": sorted(tool.name for tool in tools.tools),
            "read_schema": next(
                t.output_schema["properties"] for t in tools.tools if t.name == "notes.read_note"
            ),
            "read": summary(read_note),
            "denied": summary(denied),
        }


async def verified(read, write):
    async with ClientSession(read, write) as session:
        await session.initialize()
        key = await session.call_tool(
            "text.transform", {"text": "aws_access_key_id = " + CLOUD_KEY, "op": "trim"}
        )
        card = await session.call_tool(
            "text.transform", {"text": "paid with card " + CARD, "op": "trim"}
        )
        return {"key": summary(key), "card": summary(card)}


async def injection(read, write):
    async with ClientSession(read, write) as session:
        await session.initialize()
        publish = {"text": "publish the notes", "op": "upper"}
        clean = await session.call_tool("files.read", {"path": "clean.md"})
        allowed = await session.call_tool("text.transform", publish)
        evil = await session.call_tool("files.read", {"path": "evil.md"})
        denied = await session.call_tool("text.transform", publish)
        return {
            "clean": summary(clean),
            "allowed": summary(allowed),
            "evil": summary(evil),
            "denied": summary(denied),
        }


async def contract(read, write):
    async with ClientSession(read, write) as session:
        await session.initialize()

        def link(url):
            return {"text": url, "op": "lower"}

        short = {"warden/contract": {"schema": {"properties": {"text": {"maxLength": 24}}}}}
        ok = await session.call_tool("text.transform", link("https://example.com/"), meta=short)
        off_list = await session.call_tool("text.transform", link("https://example.com@evil.test/"))
        too_long = await session.call_tool(
            "text.transform", link("https://example.com/" + "a" * 40), meta=short
        )
        try:
            await session.call_tool(
                "text.transform",
                link("https://example.com/"),
                meta={"warden/contract": {"rules": [{"nonsense": {}}]}},
            )
            bad_contract = {"error": None}
        except Exception as error:  # the server refuses the request itself
            bad_contract = {"error": str(error)}
        return {
            "ok": summary(ok),
            "off_list": summary(off_list),
            "too_long": summary(too_long),
            "bad_contract": bad_contract,
        }


async def grounding(read, write):
    url = sys.argv[-1]
    async with ClientSession(read, write) as session:
        await session.initialize()
        fetched = await session.call_tool("fetch.get", {"url": url})
        grounded = await session.call_tool(
            "text.transform",
            {"text": f"Revenue grew 12% to $4.2M [source: {url}].", "op": "trim"},
        )
        unseen = await session.call_tool(
            "text.transform",
            {"text": "Revenue grew 12% [source: https://unseen.example/report].", "op": "trim"},
        )
        return {"fetched": summary(fetched), "grounded": summary(grounded), "unseen": summary(unseen)}


# Synthetic values, shaped like the real thing (the card passes Luhn).
CLOUD_KEY = "AKIA" + "QZ7RMWT2KX4NB6PD"
CARD = "4539 1488 0343 6467"


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"


async def trace(read, write):
    async with ClientSession(read, write) as session:
        await session.initialize()
        good = await session.call_tool("notes.trace", {}, meta={"traceparent": TRACEPARENT})
        bad = await session.call_tool(
            "notes.trace", {}, meta={"traceparent": TRACEPARENT + "\nx-evil: 1"}
        )
        return {"sent": TRACEPARENT, "good": summary(good), "bad": summary(bad)}


async def list_changed(read, write):
    changed = asyncio.Event()

    async def on_message(message):
        if isinstance(message, mcp_types.ToolListChangedNotification):
            changed.set()

    async with ClientSession(read, write, message_handler=on_message) as session:
        initialized = await session.initialize()
        before = await session.list_tools()
        os.replace(sys.argv[-2], sys.argv[-1])
        try:
            await asyncio.wait_for(changed.wait(), timeout=20)
        except asyncio.TimeoutError:
            pass
        after = await session.list_tools()
        return {
            "advertised": initialized.capabilities.tools.list_changed,
            "notified": changed.is_set(),
            "before": sorted(tool.name for tool in before.tools),
            "after": sorted(tool.name for tool in after.tools),
        }


async def main():
    exercise = {
        "governed": governed,
        "gateway": gateway,
        "verified": verified,
        "injection": injection,
        "contract": contract,
        "grounding": grounding,
        "list-changed": list_changed,
        "trace": trace,
    }[sys.argv[1]]
    mode = sys.argv[2]
    if mode == "stdio":
        binary, config, principal = sys.argv[3:6]
        params = StdioServerParameters(
            command=binary, args=["--config", config, "mcp", "--as", principal]
        )
        async with stdio_client(params) as (read, write):
            report = await exercise(read, write)
    else:
        url, token = sys.argv[3:5]
        client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        async with client, streamable_http_client(url, http_client=client) as (read, write):
            report = await exercise(read, write)
    print(json.dumps(report))


asyncio.run(main())
