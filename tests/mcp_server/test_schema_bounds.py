"""Every bound of the tools' arguments is in the input schema a client reads in tools/list
(issue 12, item 2): integers have a ``maximum``, strings a ``maxLength``, arrays ``maxItems``,
objects ``maxProperties``; step values never exceed what the stores hold. Read through the
SDK's client from a real ``memory-mcp`` process over stdio."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from self_learning_memory.model import validation as v

from .tools import stdio_client

pytestmark = pytest.mark.integration

# free-form JSON objects whose size the tool checks itself (the sandbox's input, the analysis
# config and series): their size bound is a byte count, not a number of properties
FREE_OBJECTS = {
    ("execute_agent_code", ".context.input"),
    ("advanced_pattern_analysis", ".time_series_data"),
    ("advanced_pattern_analysis", ".config"),
}


def unbounded(tool: str, schema: dict[str, Any], defs: dict[str, Any], path: str) -> list[str]:
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    found: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            found += unbounded(tool, sub, defs, path)
    kind = schema.get("type")
    bounded = {"string": "maxLength", "integer": "maximum", "array": "maxItems"}.get(kind or "")
    if bounded and bounded not in schema and "enum" not in schema and "const" not in schema:
        found.append(f"{tool}{path}: {kind} without {bounded}")
    free = "properties" not in schema and (tool, path) not in FREE_OBJECTS
    if kind == "object" and free and "maxProperties" not in schema:
        found.append(f"{tool}{path}: object without maxProperties")
    for name, sub in schema.get("properties", {}).items():
        found += unbounded(tool, sub, defs, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        found += unbounded(tool, schema["items"], defs, f"{path}[]")
    return found


def integer_maximum(schema: dict[str, Any]) -> int:
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "integer":
            return int(option["maximum"])
    raise AssertionError(f"no integer in {schema}")


async def test_tools_list_declares_every_bound(tmp_path: Path) -> None:
    async with stdio_client(tmp_path) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    problems: list[str] = []
    for name, tool in tools.items():
        schema = tool.input_schema
        problems += unbounded(name, schema, schema.get("$defs", {}), "")
    assert problems == []
    step = tools["add_episode_step"].input_schema["properties"]
    assert 1 <= integer_maximum(step["step_number"]) <= v.MAX_STEP_NUMBER
    assert 1 <= integer_maximum(step["latency_ms"]) <= v.MAX_LATENCY_MS
    assert 1 <= integer_maximum(step["tokens_used"]) <= v.MAX_TOKENS_USED
    assert step["tool"]["maxLength"] == 256
    assert step["action"]["maxLength"] == 10_000
    assert "8,999,900 bytes" in (tools["add_episode_step"].description or "")
    assert "1,000,000 bytes" in (tools["complete_episode"].description or "")
