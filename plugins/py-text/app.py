"""`pytext`: a Warden tool plugin written in Python.

Built into a WebAssembly component by componentize-py against the `tool` world
of wit/plugin.wit (`cargo xtask plugins` does it). The module exports one class
per exported interface: `Tools` implements `warden:plugin/tools`; raising
`Err(ToolError_...)` returns the `tool-error`.

The build stubs out WASI (`--stub-wasi`), so the component imports nothing but
`warden:plugin/log` and `types`: code here must not use files, clocks, random
numbers or stdout at call time (a stub traps). Imports run at build time.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import ToolDescriptor, ToolError_InvalidInput

WORD_COUNT_INPUT = {
    "type": "object",
    "properties": {"text": {"type": "string", "maxLength": 1048576}},
    "required": ["text"],
    "additionalProperties": False,
}

WORD_COUNT_OUTPUT = {
    "type": "object",
    "properties": {
        "words": {"type": "integer", "minimum": 0},
        "chars": {"type": "integer", "minimum": 0},
    },
    "required": ["words", "chars"],
    "additionalProperties": False,
}


def invalid(message: str) -> Err:
    return Err(ToolError_InvalidInput(message))


def text_argument(args: str) -> str:
    """The `text` argument; the host validated the schema, but a plugin does not rely on it."""
    try:
        parsed = json.loads(args)
    except ValueError as e:
        raise invalid(f"arguments: {e}")
    if not isinstance(parsed, dict) or set(parsed) != {"text"}:
        raise invalid("arguments: expected an object with exactly the field `text`")
    text = parsed["text"]
    if not isinstance(text, str):
        raise invalid("arguments: `text` must be a string")
    return text


class Tools(exports.Tools):
    def describe(self) -> list[ToolDescriptor]:
        return [
            ToolDescriptor(
                name="word_count",
                description="Counts the words (runs of non-whitespace) and characters "
                "(Unicode code points) in a text.",
                input_schema=json.dumps(WORD_COUNT_INPUT),
                output_schema=json.dumps(WORD_COUNT_OUTPUT),
                side_effects=False,
                labels=[],
            )
        ]

    def invoke(self, name: str, args: str) -> str:
        if name != "word_count":
            raise invalid(f"unknown tool `{name}`")
        text = text_argument(args)
        return json.dumps({"words": len(text.split()), "chars": len(text)})
