"""The server object in process (the SDK's in-memory client): a crash inside a tool is an error
result and the server keeps serving; the tool reference in docs/mcp.md is what tools/list says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mcp import Client

from self_learning_memory.mcp.reference import BEGIN, END, render_reference, tool_schemas
from self_learning_memory.mcp.server import ServerSettings, build_server

from .tools import call, ok

DOC = Path(__file__).resolve().parents[2] / "docs" / "mcp.md"


async def test_a_crash_inside_a_tool_is_an_error_result_and_the_server_lives_on(
    tmp_path: Path,
) -> None:
    server, service = build_server(ServerSettings(data_dir=tmp_path))

    async def explode() -> str:
        raise RuntimeError("secret internals")

    server.add_tool(explode, name="explode")
    try:
        async with Client(server) as c:
            is_error, text = await call(c, "explode", {})
            assert is_error
            assert text.startswith("internal_error: tool 'explode' failed unexpectedly")
            assert "RuntimeError" in text
            assert "secret internals" not in text  # the crash's text stays in the server log
            assert (await ok(c, "list_episodes", {}))["total"] == 0
            metrics = await ok(c, "get_metrics", {"metric_type": "performance"})
            assert metrics["performance"]["tools"]["explode"]["errors"] == 1
            assert metrics["performance"]["error_rate"] > 0
    finally:
        await service.close()


async def test_docs_reference_matches_tools_list() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert BEGIN in text
    assert END in text
    documented = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert documented == render_reference(await tool_schemas()), (
        "docs/mcp.md is out of date: regenerate the block with "
        "python -m self_learning_memory.mcp.reference"
    )
    # every tool also has hand-written notes on its result and errors
    for tool in await tool_schemas():
        assert re.search(rf"^#### `{tool['name']}` returns", text, re.M), tool["name"]


@pytest.mark.parametrize(
    "client_name", ["Claude Desktop", "Claude Code", "Cursor"], ids=lambda s: s.replace(" ", "")
)
def test_readme_shows_client_configuration(client_name: str) -> None:
    readme = (DOC.parents[1] / "README.md").read_text(encoding="utf-8")
    assert client_name in readme
    assert "memory-mcp" in readme


async def test_optional_families_register_only_when_their_self_test_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.machinery
    import sys
    import types

    from self_learning_memory.mcp import tools

    def family(name: str, reason: str | None) -> str:
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)

        def register(server: object, service: object) -> None:
            async def probe() -> str:
                return name

            server.add_tool(probe, name=f"{name.rsplit('.', 1)[-1]}_tool")  # type: ignore[attr-defined]

        module.self_test = lambda service: reason  # type: ignore[attr-defined]
        module.register = register  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, name, module)
        return name

    working = family("fake_working_family", None)
    broken = family("fake_broken_family", "wasmtime is not installed")
    monkeypatch.setattr(
        tools,
        "OPTIONAL_FAMILIES",
        {
            working: "working_tool (fake)",
            broken: "broken_tool (fake)",
            "no.such.module": "x (gone)",
        },
    )
    server, service = build_server(ServerSettings(data_dir=tmp_path))
    try:
        async with Client(server) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            assert "fake_working_family_tool" in names
            assert "fake_broken_family_tool" not in names
            health = await ok(c, "health_check", {})
            assert health["capabilities"]["not_offered"] == {
                "broken_tool (fake)": "wasmtime is not installed",
                "x (gone)": "not installed in this build",
            }
    finally:
        await service.close()


def test_tool_schema_choices_equal_the_library_enums() -> None:
    from typing import get_args

    from self_learning_memory.config import RetrievalMode
    from self_learning_memory.mcp import limits
    from self_learning_memory.model.episode import ComplexityLevel, TaskType

    assert list(get_args(limits.TaskTypeName)) == [m.value for m in TaskType]
    assert list(get_args(limits.ComplexityName)) == [m.value for m in ComplexityLevel]
    assert set(get_args(limits.RetrievalModeName)) == {m.value for m in RetrievalMode}
