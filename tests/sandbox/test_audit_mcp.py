"""The audit trail through the MCP tool: a real ``memory-mcp`` process over stdio (the SDK's
client) records every ``execute_agent_code`` call with its hash, size, outcome and type;
``get_metrics`` counts them; ``memory-cli sandbox audit --json`` (a real process) lists them.
In process: a store that cannot take the record does not fail the tool call."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mcp_server.tools import call, ok, stdio_client
from self_learning_memory.mcp.server import ServerSettings, build_server
from self_learning_memory.settings.schema import SandboxSettings

pytestmark = pytest.mark.integration


def sha(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def memory_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "self_learning_memory.cli", "--data-dir", str(data_dir), *args],
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_each_tool_call_is_recorded_counted_and_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMORY_SANDBOX_MAX_EXECUTION_TIME_MS", "300")
    data = tmp_path / "data"
    calls = [
        ("return context.input.n + 1", "success", None),
        ("return (", "error", "syntax"),
        ("while (true) {}", "timeout", None),
        ("throw new TypeError('boom')", "error", "runtime"),
    ]
    async with stdio_client(data) as client:
        for code, variant, _kind in calls:
            result = await ok(
                client,
                "execute_agent_code",
                {"code": code, "context": {"task": "count", "input": {"n": 1}}},
            )
            assert result["variant"] == variant
        # a bad argument is refused before running: not a run, not recorded
        is_error, _text = await call(
            client, "execute_agent_code", {"code": "x" * 100_001, "context": {"task": "t"}}
        )
        assert is_error
        metrics = await ok(client, "get_metrics", {"metric_type": "sandbox"})
    assert set(metrics) == {"timestamp", "metric_type", "sandbox"}
    sandbox = metrics["sandbox"]
    assert sandbox["recorded_runs"] == 4
    assert sandbox["by_outcome"] == {
        "success": 1,
        "error": 2,
        "timeout": 1,
        "security_violation": 0,
    }
    assert sandbox["by_backend"] == {"wasm": {"success": 1, "error": 2, "timeout": 1}}
    assert sandbox["this_process"]["wasm"]["calls"] == 4
    assert sandbox["audit_write_failures"] == 0
    assert sandbox["audit_keep"] == 10_000

    listed = memory_cli(data, "sandbox", "audit", "--json")
    assert listed.returncode == 0, listed.stderr
    runs: list[dict[str, Any]] = json.loads(listed.stdout)["runs"]
    expected = list(reversed(calls))  # newest first
    assert [(r["code_sha256"], r["outcome"], r["error_type"]) for r in runs] == [
        (sha(code), variant, kind) for code, variant, kind in expected
    ]
    assert [r["code_bytes"] for r in runs] == [len(code.encode()) for code, _, _ in expected]
    assert {r["caller"] for r in runs} == {"mcp"}
    assert {r["task"] for r in runs} == {"count"}
    assert {r["limits"]["time_ms"] for r in runs} == {300}
    assert {r["limits"]["preset"] for r in runs} == {"restrictive"}
    timeout = runs[1]
    assert timeout["outcome"] == "timeout"
    assert timeout["duration_ms"] >= 250

    only = json.loads(memory_cli(data, "-f", "json", "sb", "audit", "--outcome", "error").stdout)
    assert [r["error_type"] for r in only["runs"]] == ["runtime", "syntax"]
    assert only["counts"]["total"] == 2


async def test_a_record_the_store_refuses_does_not_fail_the_call(tmp_path: Path) -> None:
    server, service = build_server(
        ServerSettings(data_dir=tmp_path, sandbox=SandboxSettings(max_execution_time_ms=300))
    )
    try:
        async with Client(server) as c:
            memory = await service.memory()
            await memory.storage.close()  # the store is gone when the record is written
            result = await c.call_tool(
                "execute_agent_code", {"code": "return 6 * 7", "context": {"task": "t"}}
            )
            assert not result.is_error
            assert json.loads(result.content[0].text)["output"] == 42  # type: ignore[union-attr]
            assert service.sandbox_audit_failures == 1
            assert memory.sandbox_audit_failures == 1
    finally:
        await service.close()


async def test_with_the_store_down_runs_are_lost_counted_and_metrics_still_answer(
    tmp_path: Path,
) -> None:
    from resilience.flaky import FlakySQLite
    from self_learning_memory import MemoryConfig, SelfLearningMemory
    from self_learning_memory.resilience.resilient import ResilientStorage, resilient_from_config
    from self_learning_memory.storage.lmdb_cache import EpisodeCache

    config = MemoryConfig.model_validate(
        {
            "resilience": {
                "retry_base_ms": 1,
                "retry_max_delay_ms": 5,
                "retry_budget_ms": 200,
                "breaker_threshold": 1000,  # the breaker stays closed: the store's own error
            }
        }
    )
    flaky = FlakySQLite(tmp_path / "memory.db")
    cache = EpisodeCache(tmp_path / "cache")
    store = resilient_from_config(flaky, config.resilience, tmp_path, cache)
    assert isinstance(store, ResilientStorage)
    assert store.outbox is not None
    server, service = build_server(
        ServerSettings(data_dir=tmp_path, sandbox=SandboxSettings(max_execution_time_ms=300))
    )
    memory = SelfLearningMemory(store, config=config, cache=cache, data_dir=tmp_path)
    await memory.start()
    service._memory = memory
    try:
        async with Client(server) as c:
            args = {"code": "return 1", "context": {"task": "t"}}
            assert not (await c.call_tool("execute_agent_code", args)).is_error
            flaky.down = True
            result = await c.call_tool("execute_agent_code", args)
            assert not result.is_error  # the run answers; its record is lost, not queued
            assert store.outbox.pending() == 0
            metrics = await c.call_tool("get_metrics", {})
            assert not metrics.is_error, metrics.content
            data = json.loads(metrics.content[0].text)  # type: ignore[union-attr]
            assert data["episodes"]["total"] == 0  # the other sections answer (local counts)
            sandbox = data["sandbox"]
            assert sandbox["recorded_runs"] is None
            assert "cut the connection" in sandbox["error"]
            assert sandbox["audit_write_failures"] == 1
            assert sandbox["this_process"]["wasm"]["calls"] == 2
            flaky.down = False
            data = json.loads((await c.call_tool("get_metrics", {})).content[0].text)  # type: ignore[union-attr]
            assert data["sandbox"]["recorded_runs"] == 1
    finally:
        flaky.down = False
        await service.close()
