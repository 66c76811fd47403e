"""Issue 12 item 10 on a real stdio server: distinct long unknown tool names are counted under one
metrics key (get_metrics stays small), and an error never echoes a huge argument back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcp_server.rpc import RawStdioServer

pytestmark = pytest.mark.integration

CALLS = 300
NAME_CHARS = 10_000


def test_unknown_tool_names_share_one_metrics_key(tmp_path: Path) -> None:
    server = RawStdioServer(tmp_path)
    try:
        server.initialize()
        for i in range(CALLS):
            is_error, text = server.call(f"{i:05d}" + "x" * NAME_CHARS, {})
            assert is_error
            assert text.startswith("not_found: Unknown tool '")
            assert len(text) < 300, len(text)
        reply = server.request(
            "tools/call", {"name": "get_metrics", "arguments": {"metric_type": "performance"}}
        )
        raw = reply["result"]["content"][0]["text"]
        assert len(raw) < 20_000, len(raw)
        tools = json.loads(raw)["performance"]["tools"]
        assert tools["<unknown>"]["calls"] == CALLS
        assert tools["<unknown>"]["errors"] == CALLS
        assert len(tools) <= 2  # <unknown>, and get_metrics once it is counted
    finally:
        assert server.close_stdin() == 0


def test_error_replies_do_not_echo_a_huge_argument(tmp_path: Path) -> None:
    huge = "y" * 1_000_000
    server = RawStdioServer(tmp_path)
    try:
        server.initialize()
        cases: list[tuple[str, dict[str, object]]] = [
            (huge, {}),  # unknown tool
            ("list_episodes", {huge: 1}),  # unknown argument name
            ("list_episodes", {"limit": [huge]}),  # wrong type, a repr
            ("list_episodes", {"limit": {"k": huge}}),
            ("create_episode", {"task_description": huge, "domain": "d", "task_type": "testing"}),
            ("create_episode", {"task_description": "t", "domain": "d", "task_type": huge}),
        ]
        for name, arguments in cases:
            is_error, text = server.call(name, arguments)
            assert is_error, name[:20]
            assert len(text) < 2_000, (name[:20], len(text), text[:200])
            assert text.split(":", 1)[0] in ("not_found", "validation_error"), text[:200]
        assert not server.call("list_episodes", {})[0]
    finally:
        assert server.close_stdin() == 0
