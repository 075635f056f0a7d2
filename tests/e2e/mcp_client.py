"""An MCP client for Warden's end-to-end tests, written with the official
Python SDK (`mcp` on PyPI): it lists tools, makes an allowed, a denied, an
invalid and an unknown call, and prints what it saw as JSON.

    python mcp_client.py stdio WARDEN_BINARY CONFIG PRINCIPAL
    python mcp_client.py http URL TOKEN
"""

import asyncio
import json
import sys

import httpx2
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client


def summary(result):
    return {
        "is_error": result.is_error,
        "structured": result.structured_content,
        "text": [block.text for block in result.content if getattr(block, "text", None)],
    }


async def exercise(read, write):
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


async def main():
    mode = sys.argv[1]
    if mode == "stdio":
        binary, config, principal = sys.argv[2:5]
        params = StdioServerParameters(
            command=binary, args=["--config", config, "mcp", "--as", principal]
        )
        async with stdio_client(params) as (read, write):
            report = await exercise(read, write)
    else:
        url, token = sys.argv[2:4]
        client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        async with client, streamable_http_client(url, http_client=client) as (read, write):
            report = await exercise(read, write)
    print(json.dumps(report))


asyncio.run(main())
