"""Helpers for calling tools through the SDK client."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from .rpc import server_command


@asynccontextmanager
async def stdio_client(data_dir: Path, *extra: str) -> AsyncIterator[Client]:
    """The SDK's own client talking to a real ``memory-mcp`` process over stdio. (A context
    manager, not a fixture: the SDK's task groups must open and close in the same task.)"""
    command = server_command(data_dir, *extra)
    # the whole environment (the SDK passes only a few variables by default): the server runs
    # the code under test from PYTHONPATH, not whatever copy is installed
    params = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    async with Client(params, mode="legacy", read_timeout_seconds=60) as client:
        yield client


async def call(client: Client, name: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
    """(is_error, parsed JSON result or the error text)."""
    result = await client.call_tool(name, arguments)
    text = result.content[0].text  # type: ignore[union-attr]
    if result.is_error:
        return True, text
    return False, json.loads(text)


async def ok(client: Client, name: str, arguments: dict[str, Any]) -> Any:
    is_error, data = await call(client, name, arguments)
    assert not is_error, data
    return data


async def record_episode(
    client: Client,
    description: str,
    steps: list[tuple[str, dict[str, Any]]],
    outcome: dict[str, Any],
    *,
    domain: str = "web-api",
    task_type: str = "debugging",
) -> dict[str, Any]:
    created = await ok(
        client,
        "create_episode",
        {"task_description": description, "domain": domain, "task_type": task_type},
    )
    eid = created["episode_id"]
    for number, (tool, result) in enumerate(steps, 1):
        await ok(
            client,
            "add_episode_step",
            {
                "episode_id": eid,
                "step_number": number,
                "tool": tool,
                "action": f"run {tool}",
                "parameters": {"n": number},
                "result": result,
                "latency_ms": 40,
            },
        )
    completed: dict[str, Any] = await ok(client, "complete_episode", {"episode_id": eid, **outcome})
    return completed
