"""The seeded MCP fuzzer against one real stdio server: no crash, a typed error for every bad
call, stdout only JSON-RPC, and the valid writes intact afterwards (read through the library)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_server.rpc import RawStdioServer
from self_learning_memory import SelfLearningMemory

from .mcp_fuzz import run, stdout_is_only_jsonrpc

pytestmark = pytest.mark.integration

SEED = 20261205
CALLS = 300


async def test_fuzzed_calls_get_typed_errors_and_leave_the_data_intact(tmp_path: Path) -> None:
    server = RawStdioServer(tmp_path)
    try:
        server.initialize()
        report = run(server, SEED, CALLS)
        assert report.untyped == []
        assert sum(report.errors.values()) == report.calls
        assert report.errors["validation_error"] > CALLS // 4
        assert not server.call("list_episodes", {})[0]  # still serving
    finally:
        assert server.close_stdin() == 0
    assert stdout_is_only_jsonrpc(server.stdout_lines) == []
    assert report.episodes
    async with SelfLearningMemory.open(tmp_path) as memory:
        for episode_id, steps in report.episodes.items():
            episode = await memory.get_episode(episode_id)
            assert len(episode.steps) == steps, episode_id
