"""A reverse proxy for tests: forwards every request to UPSTREAM with
`Authorization: Bearer TOKEN` added, streaming responses (SSE included),
for clients that cannot send a token, such as the MCP conformance suite.
`Host` and `Origin` naming the proxy's own loopback port are rewritten to
the upstream's, so the upstream judges them as if the client had connected
to it directly; any other value passes unchanged.

    python bearer_proxy.py PORT UPSTREAM_PORT TOKEN
"""

import sys

import httpx2
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

PORT, UPSTREAM_PORT, TOKEN = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "authorization"}
client = httpx2.AsyncClient(base_url=f"http://127.0.0.1:{UPSTREAM_PORT}", timeout=None)


def rewrite(value):
    for host in ("localhost", "127.0.0.1", "[::1]"):
        value = value.replace(f"{host}:{PORT}", f"{host}:{UPSTREAM_PORT}")
    return value


async def forward(request: Request):
    headers = [
        (name, rewrite(value) if name in ("host", "origin") else value)
        for name, value in request.headers.items()
        if name not in HOP_BY_HOP
    ]
    headers.append(("authorization", f"Bearer {TOKEN}"))
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    upstream = await client.send(
        client.build_request(request.method, target, headers=headers, content=await request.body()),
        stream=True,
    )

    async def body():
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()

    response_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
    return StreamingResponse(body(), status_code=upstream.status_code, headers=response_headers)


app = Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST", "DELETE"])])
uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning")
