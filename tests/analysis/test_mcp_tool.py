"""advanced_pattern_analysis through a real memory-mcp process over stdio, and its self-test."""

from __future__ import annotations

import json
import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from analysis.memory_seed import improving_debugging_history, seed_history_async
from mcp_server.rpc import server_command
from mcp_server.tools import call, ok
from self_learning_memory.mcp.tools import analysis

pytestmark = pytest.mark.integration


@asynccontextmanager
async def stdio_client(data_dir: Path) -> AsyncIterator[Client]:
    """Like mcp_server.tools.stdio_client, but the server inherits this environment (PYTHONPATH),
    so it runs the source under test rather than whatever the venv has installed."""
    command = server_command(data_dir)
    params = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    async with Client(params, mode="legacy", read_timeout_seconds=60) as client:
        yield client


async def test_tool_is_listed_and_analyzes_and_rejects_bad_input(tmp_path: Path) -> None:
    xs = [math.sin(i / 3) + (i % 7) * 0.1 for i in range(40)]
    ys = [2 * v + 1 for v in xs]
    async with stdio_client(tmp_path) as c:
        tools = {t.name for t in (await c.list_tools()).tools}
        assert "advanced_pattern_analysis" in tools
        result = await ok(
            c,
            "advanced_pattern_analysis",
            {
                "analysis_type": "comprehensive",
                "time_series_data": {"x": xs, "y": ys},
                "config": {"forecast_horizon": 3},
            },
        )
        pearson = next(
            r for r in result["statistical_results"]["correlations"] if r["method"] == "pearson"
        )
        assert pearson["coefficient"] == pytest.approx(1.0)
        assert len(result["predictive_results"]["forecasts"][0]["point_forecasts"]) == 3
        assert result["performance"]["total_time_ms"] > 0
        is_error, text = await call(
            c,
            "advanced_pattern_analysis",
            {"analysis_type": "statistical", "time_series_data": {"x": [1, 2]}},
        )
        assert is_error
        assert "time_series_data.x" in text
        assert "at least 3" in text
        is_error, text = await call(
            c,
            "advanced_pattern_analysis",
            {
                "analysis_type": "statistical",
                "time_series_data": {"x": [1, 2, 3]},
                "config": {"anomaly_sensitivity": 3},
            },
        )
        assert is_error
        assert "config.anomaly_sensitivity" in text
    json.dumps(result, allow_nan=False)


def test_self_test_passes_with_the_extra_and_names_why_when_disabled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert analysis.self_test() is None
    monkeypatch.setenv(analysis.DISABLE_ENV, "1")
    assert analysis.DISABLE_ENV in (analysis.self_test() or "")


async def test_memory_trends_tool_answers_from_the_stored_episodes(tmp_path: Path) -> None:
    await seed_history_async(tmp_path, improving_debugging_history())
    async with stdio_client(tmp_path) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        schema = tools["analyze_memory_trends"].input_schema["properties"]
        assert schema["max_episodes"]["maximum"] == 100_000
        assert schema["bucket_size"]["anyOf"][0]["maximum"] == 10_000
        result = await ok(
            c, "analyze_memory_trends", {"task_type": "debugging", "metrics": ["reward"]}
        )
        reward = result["metrics"]["reward"]
        assert reward["direction"] == "improving"
        assert reward["p_value"] < 0.05
        assert result["episodes_analyzed"] == 120
        flat = await ok(
            c,
            "analyze_memory_trends",
            {"task_type": "testing", "metrics": ["reward"], "bucket": "episodes"},
        )
        assert flat["metrics"]["reward"]["direction"] == "no significant trend"
        assert flat["bucket_size"] == 10
        few = await ok(
            c,
            "analyze_memory_trends",
            {"task_type": "debugging", "since": "2026-01-29", "metrics": ["success_rate"]},
        )
        assert few["metrics"]["success_rate"]["reason"] == "not enough data: 2 buckets, need 3"
        is_error, text = await call(c, "analyze_memory_trends", {"bucket_size": 0})
        assert is_error
        assert "bucket_size" in text
        is_error, text = await call(c, "analyze_memory_trends", {"bucket_size": 400})
        assert is_error
        assert "bucket_size" in text
        assert "1..365" in text  # the day limit is the library's, checked after the schema
        is_error, text = await call(c, "analyze_memory_trends", {"since": "soon"})
        assert is_error
        assert "'since'" in text
        assert "ISO 8601" in text
        assert "30d" in text  # the accepted forms


async def test_memory_trends_tool_is_absent_without_the_extra(tmp_path: Path) -> None:
    command = server_command(tmp_path)
    env = {**os.environ, analysis.DISABLE_ENV: "1"}
    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    async with Client(params, mode="legacy", read_timeout_seconds=60) as c:
        tools = {t.name for t in (await c.list_tools()).tools}
    assert "analyze_memory_trends" not in tools
    assert "advanced_pattern_analysis" not in tools
    assert "list_episodes" in tools
