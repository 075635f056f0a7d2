"""A third-party MCP server, written with the official Python SDK and knowing
nothing of Warden, that the gateway tests put behind Warden.

    notes_server.py stdio
    notes_server.py http PORT

Notes live in memory. Every call is appended to the file named by
NOTES_CALL_LOG (when set), so a test can prove a denied call never reached
this server.
"""

import os
import sys

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

server = MCPServer("notes-server", version="1.4.2")
notes = {"welcome": "hello from the notes server", "system/motd": "maintenance at noon"}


def log_call(tool, **args):
    path = os.environ.get("NOTES_CALL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{tool} {sorted(args.items())}\n")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def read_note(name: str) -> str:
    """Returns the text of a note."""
    log_call("read_note", name=name)
    if name not in notes:
        raise ToolError(f"no note named {name!r}")
    return notes[name]


@server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True))
def write_note(name: str, text: str) -> str:
    """Creates or replaces a note."""
    log_call("write_note", name=name, text=text)
    notes[name] = text
    return f"saved {name}"


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def stats() -> dict[str, int]:
    """How many notes there are and their total length."""
    log_call("stats")
    return {"count": len(notes), "chars": sum(len(t) for t in notes.values())}


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def trace(ctx: Context) -> str:
    """The W3C traceparent this call arrived with in `_meta` ("" if none)."""
    meta = ctx.request_context.meta or {}
    return meta.get("traceparent", "")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def crash() -> str:
    """Exits the server process at once (for tests of a dying upstream)."""
    log_call("crash")
    os._exit(3)


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
async def sleep(seconds: float) -> str:
    """Sleeps, then answers."""
    import anyio

    log_call("sleep", seconds=seconds)
    await anyio.sleep(seconds)
    return "awake"


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
