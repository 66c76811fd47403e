"""Agent identity over MCP (a real memory-mcp process over stdio, the SDK's client): the
client's name (``clientInfo.name``, sanitised) is the agent of the episodes it creates, an
explicit ``agent`` wins, record_agent_execution records one directly, and get_metrics shows
them in its ``agents`` section; bad names are refused naming the field and the limit."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.types import Implementation

from mcp_server.rpc import server_command
from mcp_server.tools import call, ok

pytestmark = pytest.mark.integration

OK = {"type": "success", "output": "ok"}


@asynccontextmanager
async def named_client(data_dir: Path, name: str) -> AsyncIterator[Client]:
    command = server_command(data_dir)
    params = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    info = Implementation(name=name, version="1.0")
    async with Client(params, mode="legacy", read_timeout_seconds=60, client_info=info) as client:
        yield client


async def _episode(client: Client, description: str, outcome: str, **extra: str) -> dict:
    created = await ok(
        client,
        "create_episode",
        {"task_description": description, "domain": "web-api", "task_type": "testing", **extra},
    )
    await ok(
        client,
        "add_episode_step",
        {
            "episode_id": created["episode_id"],
            "step_number": 1,
            "tool": "pytest",
            "action": "run",
            "result": OK,
        },
    )
    args = {"outcome_type": outcome}
    if outcome == "failure":
        args["reason"] = "red"
    await ok(client, "complete_episode", {"episode_id": created["episode_id"], **args})
    return created


async def test_client_name_is_the_default_agent_and_metrics_show_it(tmp_path: Path) -> None:
    async with named_client(tmp_path, "Claude Code (test) v2") as c:
        first = await _episode(c, "run the login tests", "success")
        assert first["agent"] == "Claude-Code-test-v2"
        second = await _episode(c, "run the api tests", "failure", agent="test-runner-7")
        assert second["agent"] == "test-runner-7"
        stored = await ok(c, "get_episode", {"episode_id": first["episode_id"]})
        assert stored["agent"] == "Claude-Code-test-v2"
        direct = await ok(
            c, "record_agent_execution", {"success": True, "duration_ms": 42.5, "steps": 3}
        )
        assert (direct["agent"], direct["recorded"]) == ("Claude-Code-test-v2", True)
        metrics = await ok(c, "get_metrics", {"metric_type": "agents"})
        assert set(metrics) == {"timestamp", "metric_type", "agents"}
        section = metrics["agents"]
        by = {a["agent"]: a for a in section["agents"]}
        assert (
            by["Claude-Code-test-v2"]["executions"],
            by["Claude-Code-test-v2"]["successes"],
        ) == (2, 2)
        assert (by["test-runner-7"]["executions"], by["test-runner-7"]["successes"]) == (1, 0)
        assert by["test-runner-7"]["agent_type"] == "test-runner"
        assert section["total_executions"] == 3
        assert section["top_agents"] == 10
        assert sum(p["executions"] for p in by["Claude-Code-test-v2"]["series"]) == 2
        everything = await ok(c, "get_metrics", {})
        assert everything["agents"]["total_executions"] == 3


async def test_bad_agents_are_refused(tmp_path: Path) -> None:
    async with named_client(tmp_path, "tester") as c:
        is_error, text = await call(
            c,
            "create_episode",
            {"task_description": "x", "domain": "d", "task_type": "other", "agent": "two words"},
        )
        assert is_error
        assert "validation_error" in text
        assert "'agent'" in text
        assert "letters, digits" in text
        is_error, text = await call(
            c,
            "create_episode",
            {"task_description": "x", "domain": "d", "task_type": "other", "agent": "a" * 65},
        )
        assert is_error
        assert "agent" in text
        is_error, text = await call(
            c, "record_agent_execution", {"success": True, "duration_ms": -1}
        )
        assert is_error
        assert "duration_ms" in text
        tools = {t.name: t for t in (await c.list_tools()).tools}
        schema = tools["record_agent_execution"].input_schema
        assert schema["required"] == ["success", "duration_ms"]
        assert schema["properties"]["agent"]["anyOf"][0]["maxLength"] == 64
        listed = await ok(c, "list_episodes", {})
        assert (listed["total"], listed["episodes"]) == (0, [])  # nothing was created
