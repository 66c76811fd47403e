"""execute_agent_code with the configured backend (the real server, in process, a real MCP
client): Node, the hybrid router, the sandbox switched off, and Node asked for but missing
(a PATH without node): the tool is then absent and health_check says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from self_learning_memory.mcp.server import MemoryMCPServer, ServerSettings, build_server
from self_learning_memory.settings.schema import SandboxSettings

ARGS = {"code": "return context.input.a * 2", "context": {"task": "double", "input": {"a": 21}}}


async def _call(c: Client, name: str, args: dict[str, Any]) -> tuple[bool, str]:
    result = await c.call_tool(name, args)
    return bool(result.is_error), result.content[0].text  # type: ignore[union-attr]


async def _health(c: Client) -> dict[str, Any]:
    return dict(json.loads((await _call(c, "health_check", {}))[1])["sandbox"])


async def test_backend_node_is_listed_runs_in_node_and_reports_its_stats(tmp_path: Path) -> None:
    server, service = build_server(
        ServerSettings(data_dir=tmp_path, sandbox=SandboxSettings(backend="node"))
    )
    try:
        async with Client(server) as c:
            tools = {t.name: t for t in (await c.list_tools()).tools}
            assert "execute_agent_code" in tools
            assert "Node.js process" in (tools["execute_agent_code"].description or "")
            is_error, text = await _call(c, "execute_agent_code", ARGS)
            assert not is_error
            result = json.loads(text)
            assert (result["variant"], result["backend"], result["output"]) == (
                "success",
                "node",
                42,
            )
            is_error, text = await _call(
                c,
                "execute_agent_code",
                {"code": "return require('fs').readdirSync('/')", "context": {"task": "t"}},
            )
            assert json.loads(text)["error_type"] == "permission"
            health = await _health(c)
            assert health["available"] is True
            details = health["details"]
            assert details["backend"] == "node"
            assert details["backends"]["node"]["calls"] == 2
            assert details["backends"]["node"]["success_rate"] == 0.5
            assert details["node"]["version"].startswith("v")
            assert details["node"]["network_isolation"].split(":")[0] in ("on", "off")
            metrics = json.loads((await _call(c, "get_metrics", {"metric_type": "performance"}))[1])
            assert metrics["performance"]["sandbox_backends"]["node"]["calls"] == 2
    finally:
        await service.close()


async def test_hybrid_routes_by_rule_and_shows_the_routing(tmp_path: Path) -> None:
    config = SandboxSettings(backend="hybrid", node_rule="uses_require")
    server, service = build_server(ServerSettings(data_dir=tmp_path, sandbox=config))
    try:
        async with Client(server) as c:
            plain = json.loads((await _call(c, "execute_agent_code", ARGS))[1])
            assert plain["backend"] == "wasm"
            required = json.loads(
                (
                    await _call(
                        c,
                        "execute_agent_code",
                        {"code": "return require('path').sep", "context": {"task": "t"}},
                    )
                )[1]
            )
            assert (required["backend"], required["output"]) == ("node", "/")
            details = (await _health(c))["details"]
            assert details["backend"] == "hybrid"
            assert details["routing"] == {"node_ratio": 0.0, "node_rule": "uses_require"}
            assert {k: v["calls"] for k, v in details["backends"].items()} == {"wasm": 1, "node": 1}
    finally:
        await service.close()


async def _tool_absent(server: MemoryMCPServer, message: str) -> str:
    """The sandbox tool is not listed, a call to it fails naming ``message``, and health says it
    is unavailable; returns the reason health gives."""
    async with Client(server) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert "execute_agent_code" not in names
        is_error, text = await _call(c, "execute_agent_code", ARGS)
        assert is_error
        assert message in text
        health = await _health(c)
        assert health["available"] is False
        return str(health["details"]["reason"])


@pytest.mark.parametrize("backend", ["node", "hybrid"])
async def test_node_asked_for_but_missing_leaves_the_tool_absent_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # a real PATH without node
    server, service = build_server(
        ServerSettings(data_dir=tmp_path, sandbox=SandboxSettings(backend=backend))
    )
    try:
        reason = await _tool_absent(server, "node backend: node was not found on PATH")
        assert reason.startswith("node backend: node was not found")
        assert service.sandbox is None
    finally:
        await service.close()


async def test_enabled_false_turns_the_sandbox_off(tmp_path: Path) -> None:
    server, service = build_server(
        ServerSettings(data_dir=tmp_path, sandbox=SandboxSettings(enabled=False))
    )
    try:
        reason = await _tool_absent(server, "disabled by configuration")
        assert reason == "disabled by configuration (sandbox.enabled = false)"
        assert service.sandbox is None  # nothing was built
    finally:
        await service.close()


@pytest.mark.integration
async def test_the_real_memory_mcp_reads_the_backend_from_its_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcp_server.tools import call, ok, stdio_client

    monkeypatch.setenv("MEMORY_SANDBOX_BACKEND", "node")
    async with stdio_client(tmp_path) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert "Node.js process" in (tools["execute_agent_code"].description or "")
        result = await ok(c, "execute_agent_code", ARGS)
        assert (result["backend"], result["output"]) == ("node", 42)
    monkeypatch.setenv("MEMORY_SANDBOX_ENABLED", "false")
    async with stdio_client(tmp_path) as c:
        assert "execute_agent_code" not in {t.name for t in (await c.list_tools()).tools}
        is_error, text = await call(c, "execute_agent_code", ARGS)
        assert is_error
        assert "disabled by configuration" in text
