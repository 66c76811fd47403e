"""The memory-mcp process itself: stdout carries only JSON-RPC, acknowledged writes survive a
SIGKILL, SIGTERM and end of input shut it down cleanly, several servers share a data dir."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from self_learning_memory import SelfLearningMemory

from .rpc import TIMEOUT_S, RawStdioServer

pytestmark = pytest.mark.integration

OK = {"type": "success", "output": "ok"}


def _episode(server: RawStdioServer, description: str, steps: int) -> str:
    is_error, created = server.call(
        "create_episode",
        {"task_description": description, "domain": "cli", "task_type": "testing"},
    )
    assert not is_error, created
    eid: str = created["episode_id"]
    for n in range(1, steps + 1):
        is_error, ack = server.call(
            "add_episode_step",
            {
                "episode_id": eid,
                "step_number": n,
                "tool": "pytest",
                "action": f"run {n}",
                "result": OK,
            },
        )
        assert not is_error, ack
        assert ack["durable"] is True
    return eid


def test_stdout_carries_only_jsonrpc(tmp_path: Path) -> None:
    server = RawStdioServer(tmp_path, "--log-level", "DEBUG")
    try:
        init = server.initialize()
        assert init["result"]["serverInfo"]["name"] == "memory-mcp"
        server.request("tools/list")
        eid = _episode(server, "Run the unit tests", 2)
        server.call("complete_episode", {"episode_id": eid, "outcome_type": "success"})
        server.call("query_memory", {"query": "unit tests", "domain": "cli"})
        server.call("query_memory", {"query": "", "domain": "cli"})  # a tool error
        server.call("health_check", {})
        unknown = server.request("tools/call", {"name": "no_such_tool", "arguments": {}})
        assert unknown["result"]["isError"] is True
        nonsense = server.request("no/such/method")
        assert nonsense["error"]["code"] == -32601
        assert "result" not in nonsense
    finally:
        assert server.close_stdin() == 0
    assert server.stdout_lines
    for line in server.stdout_lines:
        message = json.loads(line)
        assert message["jsonrpc"] == "2.0"
        assert "result" in message or "error" in message or "method" in message
    # logs went to stderr instead
    assert any("memory opened" in line for line in server.stderr_lines)


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    server = RawStdioServer(tmp_path)
    server.initialize()
    done = _episode(server, "Completed before the kill", 3)
    is_error, _ = server.call("complete_episode", {"episode_id": done, "outcome_type": "success"})
    assert not is_error
    open_eid = _episode(server, "In progress at the kill", 5)
    server.kill()
    assert server.proc.returncode == -signal.SIGKILL

    again = RawStdioServer(tmp_path)
    try:
        again.initialize()
        is_error, episode = again.call("get_episode", {"episode_id": open_eid})
        assert not is_error, episode
        assert [s["step_number"] for s in episode["steps"]] == [1, 2, 3, 4, 5]
        is_error, episode = again.call("get_episode", {"episode_id": done})
        assert episode["completed"] is True
        assert episode["reward"] is not None
        # the interrupted episode can be finished by the new server
        is_error, finished = again.call(
            "complete_episode", {"episode_id": open_eid, "outcome_type": "success"}
        )
        assert not is_error, finished
        assert finished["step_count"] == 5
    finally:
        assert again.close_stdin() == 0


def test_sigterm_closes_cleanly(tmp_path: Path) -> None:
    server = RawStdioServer(tmp_path)
    server.initialize()
    eid = _episode(server, "Interrupted by SIGTERM", 2)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=TIMEOUT_S) == 0
    assert any("memory closed" in line for line in server.stderr_after_exit())

    async def check() -> None:
        async with SelfLearningMemory.open(tmp_path) as memory:
            episode = await memory.get_episode(eid)
            assert len(episode.steps) == 2

    import asyncio

    asyncio.run(check())


def test_end_of_input_exits_zero_before_any_tool_call(tmp_path: Path) -> None:
    server = RawStdioServer(tmp_path)
    server.initialize()
    assert server.close_stdin() == 0


async def test_two_servers_and_a_library_share_one_data_dir(tmp_path: Path) -> None:
    one, two = RawStdioServer(tmp_path), RawStdioServer(tmp_path)
    try:
        one.initialize()
        two.initialize()
        a = _episode(one, "Started by server one", 2)
        # server two adds a step to server one's episode and completes it
        is_error, ack = two.call(
            "add_episode_step",
            {"episode_id": a, "step_number": 3, "tool": "git", "action": "commit", "result": OK},
        )
        assert not is_error, ack
        async with SelfLearningMemory.open(tmp_path) as memory:
            lib = await memory.start_episode("Started by the library")
        b = _episode(two, "Started by server two", 1)
        is_error, done = one.call("complete_episode", {"episode_id": a, "outcome_type": "success"})
        assert not is_error, done
        assert done["step_count"] == 3
        is_error, listed = one.call("list_episodes", {})
        assert listed["total"] == 3
        assert {e["episode_id"] for e in listed["episodes"]} == {a, b, str(lib)}
    finally:
        assert one.close_stdin() == 0
        assert two.close_stdin() == 0
