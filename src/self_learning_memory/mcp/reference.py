"""Render the tools' argument reference (docs/mcp.md) from their input schemas.

``python -m self_learning_memory.mcp.reference`` prints it; a test checks that docs/mcp.md holds
exactly what the running server's ``tools/list`` gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["render_reference", "tool_schemas"]

BEGIN = "<!-- tool-reference:begin (generated: python -m self_learning_memory.mcp.reference) -->"
END = "<!-- tool-reference:end -->"


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return dict(defs.get(ref.rsplit("/", 1)[-1], {}))
    return schema


def _variants(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    schema = _resolve(schema, defs)
    if "anyOf" in schema:
        return [_resolve(s, defs) for s in schema["anyOf"] if s.get("type") != "null"]
    return [schema]


def _type(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> str:
    names = []
    for s in _variants(schema, defs):
        if "enum" in s:
            names.append(" \\| ".join(f"`{v}`" for v in s["enum"]))
        elif s.get("type") == "array":
            names.append(f"array of {_type(s.get('items', {}), defs)}")
        elif "properties" in s:
            names.append("object {" + ", ".join(s["properties"]) + "}")
        else:
            names.append(str(s.get("type", "any")))
    return " or ".join(names)


def _limits(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> str:
    parts = []
    for s in _variants(schema, defs):
        lo, hi = s.get("minimum"), s.get("maximum")
        if lo is not None or hi is not None:
            parts.append(f"{'' if lo is None else lo}..{'' if hi is None else hi}")
        if "minLength" in s or "maxLength" in s:
            parts.append(f"{s.get('minLength', 0)}..{s.get('maxLength', '')} chars")
        if "maxItems" in s:
            item = _variants(s.get("items", {}), defs)[0]
            each = f", each {item['maxLength']} chars" if "maxLength" in item else ""
            parts.append(f"<= {s['maxItems']} items{each}")
        if "maxProperties" in s:
            parts.append(f"<= {s['maxProperties']} keys")
        if "properties" in s:
            for name, prop in s["properties"].items():
                inner = _limits(prop, defs)
                if inner:
                    parts.append(f"{name}: {inner}")
    return "; ".join(parts)


def render_reference(tools: Iterable[Mapping[str, Any]]) -> str:
    """Markdown: one section per tool (sorted by name) with its description and arguments."""
    out = [BEGIN, ""]
    for tool in sorted(tools, key=lambda t: str(t["name"])):
        schema = tool["inputSchema"]
        defs = schema.get("$defs", {})
        required = set(schema.get("required", []))
        out += [f"### `{tool['name']}`", "", str(tool.get("description", "")).strip(), ""]
        props: Mapping[str, Any] = schema.get("properties", {})
        if not props:
            out += ["No arguments.", ""]
            continue
        out += ["| argument | type | required | default | limits |", "|---|---|---|---|---|"]
        for name, prop in props.items():
            default = "" if name in required else f"`{_json(prop.get('default'))}`"
            out.append(
                f"| `{name}` | {_type(prop, defs)} | {'yes' if name in required else 'no'} "
                f"| {default} | {_limits(prop, defs)} |"
            )
        out.append("")
    out.append(END)
    return "\n".join(out)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


async def tool_schemas() -> list[dict[str, Any]]:
    """The tools as ``tools/list`` gives them (name, description, inputSchema)."""
    from .server import build_server

    server, _ = build_server()
    return [
        {"name": t.name, "description": t.description, "inputSchema": t.input_schema}
        for t in await server.list_tools()
    ]


if __name__ == "__main__":  # pragma: no cover
    print(render_reference(asyncio.run(tool_schemas())))
