"""The sandbox through the library API and the MCP tool (the real server, in process): async
execution off the event loop, 50 concurrent runs from several threads, the tool's schema and
results, and fail closed (a sandbox that fails its self-test is not offered, a direct call is
refused, health_check says why)."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from mcp import Client

from self_learning_memory.mcp.server import ServerSettings, build_server
from self_learning_memory.sandbox import PRESETS, CodeSandbox, ExecutionContext, SandboxLimits
from self_learning_memory.settings.schema import SandboxSettings


def test_fifty_runs_from_several_threads_each_get_their_own_context() -> None:
    box = CodeSandbox.from_limits(SandboxLimits(time_ms=2000, memory_mb=32), pool_size=2)
    try:
        code = "globalThis.seen = (globalThis.seen || 0) + 1; return [context.input.i, seen]"

        def one(i: int) -> list[int]:
            result = box.run(code, ExecutionContext(input={"i": i}))
            assert result.ok, result.as_dict()
            return list(result.output)

        with ThreadPoolExecutor(5) as pool:
            outputs = list(pool.map(one, range(50)))
        assert outputs == [[i, 1] for i in range(50)]  # nothing shared between runs
        assert box.stats_dict()["wasm"]["calls"] == 50
        assert box.stats_dict()["wasm"]["success_rate"] == 1.0
    finally:
        box.close()


async def test_execute_code_runs_off_the_event_loop() -> None:
    box = CodeSandbox.from_limits(SandboxLimits(time_ms=300, memory_mb=32), pool_size=2)
    try:
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        results = await asyncio.gather(
            box.execute_code("while (true) {}"),
            *(box.execute_code("return 1 + 1") for _ in range(8)),
        )
        stop.set()
        await task
        assert results[0].variant == "timeout"
        assert [r.output for r in results[1:]] == [2] * 8
        assert ticks >= 10  # the loop kept running while the sandbox spun
        assert threading.current_thread() is threading.main_thread()
    finally:
        box.close()


def test_typescript_is_accepted_and_settings_choose_the_limits() -> None:
    box = CodeSandbox.from_settings(
        SandboxSettings(preset="permissive", max_execution_time_ms=1234, max_memory_mb=48)
    )
    try:
        assert box.limits.time_ms == 1234
        assert box.limits.memory_mb == 48
        assert box.limits.stack_kb == PRESETS["permissive"].stack_kb
        result = box.run("interface P { x: number }\nconst p: P = { x: 41 };\nreturn p.x + 1")
        assert result.output == 42
    finally:
        box.close()


async def _call(c: Client, name: str, args: dict[str, object]) -> tuple[bool, str]:
    result = await c.call_tool(name, args)
    return bool(result.is_error), result.content[0].text  # type: ignore[union-attr]


async def test_the_tool_runs_code_and_reports_each_variant(tmp_path: Path) -> None:
    server, service = build_server(
        ServerSettings(data_dir=tmp_path, sandbox=SandboxSettings(max_execution_time_ms=300))
    )
    try:
        async with Client(server) as c:
            tools = {t.name: t for t in (await c.list_tools()).tools}
            schema = tools["execute_agent_code"].input_schema
            assert schema["required"] == ["code", "context"]
            assert schema["properties"]["code"]["maxLength"] == 100_000

            args = {
                "code": "console.log(context.task); return context.input.a * 2",
                "context": {"task": "double", "input": {"a": 21}},
            }
            is_error, text = await _call(c, "execute_agent_code", args)
            assert not is_error
            assert json.loads(text) | {"execution_time_ms": 0} == {
                "variant": "success",
                "backend": "wasm",
                "execution_time_ms": 0,
                "output": 42,
                "stdout": "double\n",
            }
            # a result of the code (here a timeout) is a normal result, not a tool error
            is_error, text = await _call(
                c, "execute_agent_code", {"code": "for (;;) {}", "context": {"task": "t"}}
            )
            assert not is_error
            assert json.loads(text)["variant"] == "timeout"
            # bad arguments are tool errors that name the field and the limit
            is_error, text = await _call(
                c, "execute_agent_code", {"code": "x" * 100_001, "context": {"task": "t"}}
            )
            assert is_error
            assert text.startswith("validation_error:")
            assert "code" in text
            assert "100000" in text
            is_error, text = await _call(
                c, "execute_agent_code", {"code": "return 1", "context": {}}
            )
            assert is_error
            assert "context.task" in text

            health = json.loads((await _call(c, "health_check", {}))[1])
            assert health["sandbox"]["available"] is True
            assert health["sandbox"]["details"]["backends"]["wasm"]["calls"] == 2
            assert health["sandbox"]["details"]["limits"]["time_ms"] == 300
    finally:
        await service.close()


async def test_a_sandbox_that_fails_its_self_test_is_not_offered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from self_learning_memory.mcp.tools import sandbox as family

    monkeypatch.setattr(
        family, "self_test", lambda service: "self-test 'while (true) {}' gave success"
    )
    server, service = build_server(ServerSettings(data_dir=tmp_path))
    try:
        async with Client(server) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            assert "execute_agent_code" not in names
            is_error, text = await _call(
                c, "execute_agent_code", {"code": "return 1", "context": {"task": "t"}}
            )
            assert is_error
            assert text.startswith("capability_unavailable: 'execute_agent_code' is not offered")
            assert "gave success" in text
            health = json.loads((await _call(c, "health_check", {}))[1])
            assert health["sandbox"]["available"] is False
            assert "gave success" in health["sandbox"]["details"]["reason"]
    finally:
        await service.close()
