"""The SDK's own client against the real memory-mcp process over stdio: the whole lifecycle
through the tools, retrieval and patterns, metrics, health, and every kind of bad argument."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from self_learning_memory.mcp.tools import CORE_TOOLS

from .tools import call, ok, record_episode, stdio_client

pytestmark = pytest.mark.integration

OK = {"type": "success", "output": "ok"}
FAIL = {"type": "error", "message": "ConnectionError: database refused connection on port 5432"}


async def test_tools_list_has_every_core_tool_with_bounded_schemas(tmp_path: Path) -> None:
    async with stdio_client(tmp_path) as c:
        await _test_tools_list_has_every_core_tool_with_bounded_schemas(c)


async def _test_tools_list_has_every_core_tool_with_bounded_schemas(c: Client) -> None:
    tools = {t.name: t for t in (await c.list_tools()).tools}
    # make test installs both optional extras: the core tools plus both families are offered
    assert set(tools) == set(CORE_TOOLS) | {
        "execute_agent_code",
        "advanced_pattern_analysis",
        "analyze_memory_trends",
    }
    query = tools["query_memory"].input_schema
    assert query["required"] == ["query", "domain"]
    assert query["properties"]["limit"]["maximum"] == 1000
    assert query["properties"]["limit"]["minimum"] == 1
    assert query["properties"]["query"]["maxLength"] == 10_000
    assert tools["search_patterns"].input_schema["properties"]["limit"]["maximum"] == 100
    assert tools["recommend_patterns"].input_schema["properties"]["limit"]["maximum"] == 50
    assert tools["recommend_patterns"].input_schema["properties"]["limit"]["default"] == 3
    step = tools["add_episode_step"].input_schema
    assert step["required"] == ["episode_id", "step_number", "tool", "action"]
    # the WASM sandbox is installed and passes its self-test: its tool is offered
    assert tools["execute_agent_code"].input_schema["required"] == ["code", "context"]


async def test_full_lifecycle_through_tools(tmp_path: Path) -> None:
    async with stdio_client(tmp_path) as c:
        await _test_full_lifecycle_through_tools(c)


async def _test_full_lifecycle_through_tools(c: Client) -> None:
    first = await record_episode(
        c,
        "Fix the flaky login endpoint test that times out against postgres",
        [("pytest", FAIL), ("docker", OK), ("pytest", OK), ("git", OK)],
        {"outcome_type": "success", "verdict": "test passes 50 runs in a row"},
    )
    assert first["learning"] == "inline"
    assert first["reward"]["total"] > 0
    assert first["reflection"]["successes"]
    assert first["patterns_learned"] >= 1
    assert first["step_count"] == 4

    second = await record_episode(
        c,
        "Fix the flaky signup endpoint test that cannot reach postgres",
        [("pytest", FAIL), ("docker", OK), ("pytest", OK), ("git", OK)],
        {"outcome_type": "success", "verdict": "green"},
    )
    failed = await record_episode(
        c,
        "Fix the flaky checkout endpoint test against postgres",
        [("pytest", FAIL), ("pytest", FAIL)],
        {"outcome_type": "failure", "reason": "could not reach the database"},
    )

    # query finds the recorded episodes, with score components and provenance
    found = await ok(
        c, "query_memory", {"query": "flaky login endpoint test postgres", "domain": "web-api"}
    )
    ids = [r["episode"]["episode_id"] for r in found["episodes"]]
    assert ids[0] == first["episode_id"]
    assert {second["episode_id"], failed["episode_id"]} <= set(ids)
    top = found["episodes"][0]
    assert set(top["components"]) >= {"relevance", "context", "outcome", "recency", "total"}
    assert top["provenance"]
    assert top["episode"]["tools"] == ["pytest", "docker", "git"]
    assert "steps" not in top["episode"]
    assert found["insights"]["total_episodes"] == len(ids)
    # patterns aggregated across the episodes appear, with evidence
    assert found["patterns"]
    assert max(p["evidence"]["occurrences"] for p in found["patterns"]) >= 2
    assert any(p["evidence"]["episode_ids"] for p in found["patterns"])

    with_steps = await ok(
        c,
        "query_memory",
        {"query": "flaky login endpoint", "domain": "web-api", "limit": 1, "include_steps": True},
    )
    assert len(with_steps["episodes"][0]["episode"]["steps"]) == 4

    only_failures = await ok(
        c,
        "query_memory",
        {"query": "flaky endpoint test", "domain": "web-api", "outcome": "failure"},
    )
    assert [r["episode"]["episode_id"] for r in only_failures["episodes"]] == [failed["episode_id"]]

    warning = await ok(
        c,
        "check_known_failures",
        {"task_description": "Fix a flaky endpoint test against postgres", "domain": "web-api"},
    )
    assert [f["episode"]["episode_id"] for f in warning["failures"]] == [failed["episode_id"]]
    assert warning["summary"]

    recommended = await ok(
        c,
        "recommend_patterns",
        {"task_description": "Fix the flaky login endpoint test", "domain": "web-api"},
    )
    assert 1 <= len(recommended["patterns"]) <= 3
    assert recommended["patterns"][0]["from_similar_episode"] is not None
    assert recommended["similar_episodes"]

    searched = await ok(
        c, "search_patterns", {"domain": "web-api", "pattern_type": "tool_sequence"}
    )
    assert searched["patterns"]
    assert all(p["pattern"]["type"] == "tool_sequence" for p in searched["patterns"])
    none = await ok(c, "search_patterns", {"domain": "web-api", "query": "kubernetes"})
    assert none["patterns"] == []

    analysis = await ok(c, "analyze_patterns", {"task_type": "web-api", "min_success_rate": 0.0})
    stats = analysis["statistics"]
    assert stats["total_patterns"] == len(analysis["patterns"]) > 0
    rates = [p["success_rate"] for p in analysis["patterns"]]
    assert stats["avg_success_rate"] == pytest.approx(sum(rates) / len(rates))
    top_tools = stats["most_common_tools"]
    assert {t["tool"] for t in top_tools} <= {"pytest", "docker", "git"}
    counts = [t["occurrences"] for t in top_tools]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] >= 2
    strict = await ok(c, "analyze_patterns", {"task_type": "web-api", "min_success_rate": 1.0})
    assert all(p["success_rate"] >= 1.0 for p in strict["patterns"])

    listed = await ok(c, "list_episodes", {"limit": 2})
    assert listed["total"] == 3
    assert len(listed["episodes"]) == 2
    failures = await ok(c, "list_episodes", {"outcome": "failure"})
    assert [e["episode_id"] for e in failures["episodes"]] == [failed["episode_id"]]

    episode = await ok(c, "get_episode", {"episode_id": first["episode_id"]})
    assert [s["tool"] for s in episode["steps"]] == ["pytest", "docker", "pytest", "git"]
    assert episode["steps"][0]["result"]["type"] == "error"
    assert episode["steps"][0]["parameters"] == {"n": 1}

    metrics = await ok(c, "get_metrics", {})
    assert metrics["episodes"]["total"] == 3
    assert metrics["episodes"]["completion_rate"] == 1.0
    assert metrics["episodes"]["outcomes"] == {"success": 2, "failure": 1}
    assert metrics["patterns"]["unique"] >= 1
    assert metrics["patterns"]["total"] > metrics["patterns"]["unique"]
    tools = metrics["performance"]["tools"]
    assert tools["create_episode"]["calls"] == 3
    assert tools["add_episode_step"]["calls"] == 10
    assert tools["add_episode_step"]["p95_ms"] >= tools["add_episode_step"]["p50_ms"] > 0
    assert metrics["performance"]["average_latency_ms"] > 0
    assert metrics["system"]["memory_usage_mb"] > 10
    only_system = await ok(c, "get_metrics", {"metric_type": "system"})
    assert set(only_system) == {"timestamp", "metric_type", "system"}

    health = await ok(c, "health_check", {})
    assert health["overall"] in ("healthy", "degraded")
    assert health["primary_storage"]["status"] in ("healthy", "degraded")
    assert health["primary_storage"]["latency_ms"] >= 0
    assert health["cache_storage"]["backend"] == "lmdb"
    assert health["memory_system"]["details"]["episodes"] == 3
    assert health["embeddings"]["status"] == "disabled"
    assert health["sandbox"]["available"] is True
    assert health["capabilities"]["execute_agent_code"] is True
    assert health["capabilities"]["semantic_retrieval"] is False

    await ok(c, "delete_episode", {"episode_id": failed["episode_id"]})
    is_error, text = await call(c, "get_episode", {"episode_id": failed["episode_id"]})
    assert is_error
    assert text.startswith("not_found:")
    assert (await ok(c, "list_episodes", {}))["total"] == 2


LONG = "x" * 10_001
BAD_CALLS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("query_memory", {"domain": "web"}, ["Missing required argument 'query'"]),
    ("query_memory", {"query": "", "domain": "web"}, ["'query'", "at least 1 characters"]),
    ("query_memory", {"query": LONG, "domain": "web"}, ["'query'", "10000"]),
    ("query_memory", {"query": "q", "domain": "web", "limit": 0}, ["'limit'", ">= 1"]),
    ("query_memory", {"query": "q", "domain": "web", "limit": 1001}, ["'limit'", "1000"]),
    ("query_memory", {"query": "q", "domain": "web", "limit": "ten"}, ["'limit'", "integer"]),
    ("query_memory", {"query": "q", "domain": "web", "task_type": "cooking"}, ["'task_type'"]),
    ("query_memory", {"query": "q", "domain": "web", "tags": ["t"] * 51}, ["'tags'", "50"]),
    ("query_memory", {"query": "q", "domain": "web", "mode": "magic"}, ["'mode'", "lexical"]),
    ("query_memory", {"query": "q", "domain": "web", "qurey": "x"}, ["Unknown argument 'qurey'"]),
    ("search_patterns", {"domain": "web", "limit": 101}, ["'limit'", "100"]),
    ("recommend_patterns", {"task_description": "t", "domain": "w", "limit": 51}, ["50"]),
    ("analyze_patterns", {"task_type": "x", "min_success_rate": 1.5}, ["min_success_rate", "1"]),
    ("check_known_failures", {"task_description": "t", "domain": "w", "limit": 101}, ["100"]),
    ("get_metrics", {"metric_type": "everything"}, ["'metric_type'", "performance"]),
    ("list_episodes", {"offset": -1}, ["'offset'", ">= 0"]),
    (
        "create_episode",
        {"task_description": LONG, "domain": "w", "task_type": "debugging"},
        ["'task_description'", "10000"],
    ),
    (
        "create_episode",
        {"task_description": "t", "domain": "w" * 201, "task_type": "debugging"},
        ["'domain'", "200"],
    ),
    (
        "create_episode",
        {"task_description": "t", "domain": "w", "task_type": "cooking"},
        ["'task_type'", "code_generation"],
    ),
    (
        "create_episode",
        {"task_description": "t", "domain": "w", "task_type": "testing", "complexity": "huge"},
        ["'complexity'"],
    ),
    ("get_episode", {"episode_id": "not-a-uuid"}, ["validation_error", "episode_id"]),
    (
        "get_episode",
        {"episode_id": "6f1c2b8e-0000-4000-8000-000000000000"},
        ["not_found", "6f1c2b8e"],
    ),
    ("delete_episode", {"episode_id": "6f1c2b8e-0000-4000-8000-000000000000"}, ["not_found"]),
    (
        "add_episode_step",
        {
            "episode_id": "6f1c2b8e-0000-4000-8000-000000000000",
            "step_number": 1,
            "tool": "t",
            "action": "a",
        },
        ["not_found"],
    ),
    (
        "complete_episode",
        {"episode_id": "6f1c2b8e-0000-4000-8000-000000000000", "outcome_type": "success"},
        ["not_found"],
    ),
    (
        "complete_episode",
        {"episode_id": "x", "outcome_type": "won"},
        ["'outcome_type'", "partial_success"],
    ),
]


async def test_bad_arguments_are_tool_errors_naming_argument_and_limit(tmp_path: Path) -> None:
    async with stdio_client(tmp_path) as c:
        for tool, arguments, expected in BAD_CALLS:
            is_error, text = await call(c, tool, arguments)
            assert is_error, (tool, arguments)
            for part in expected:
                assert part in text, (tool, arguments, text)
        # the server survived every one of them
        assert (await ok(c, "list_episodes", {}))["total"] == 0


async def test_state_errors_on_episodes(tmp_path: Path) -> None:
    async with stdio_client(tmp_path) as c:
        await _test_state_errors_on_episodes(c)


async def _test_state_errors_on_episodes(c: Client) -> None:
    created = await ok(
        c, "create_episode", {"task_description": "t", "domain": "w", "task_type": "testing"}
    )
    eid = created["episode_id"]
    step = {"episode_id": eid, "tool": "pytest", "action": "run"}
    await ok(c, "add_episode_step", {**step, "step_number": 2})
    is_error, text = await call(c, "add_episode_step", {**step, "step_number": 2})
    assert is_error
    assert "step_number" in text
    assert "> 2" in text
    is_error, text = await call(
        c, "add_episode_step", {**step, "step_number": 3, "result": {"type": "error"}}
    )
    assert is_error
    assert "result.message" in text
    is_error, text = await call(
        c, "add_episode_step", {**step, "step_number": 3, "parameters": {"data": "x" * 1_000_001}}
    )
    assert is_error
    assert "parameters" in text
    is_error, text = await call(
        c, "complete_episode", {"episode_id": eid, "outcome_type": "failure", "verdict": "v"}
    )
    assert is_error
    assert "'verdict'" in text
    assert "failure" in text
    await ok(c, "complete_episode", {"episode_id": eid, "outcome_type": "success"})
    is_error, text = await call(
        c, "complete_episode", {"episode_id": eid, "outcome_type": "success"}
    )
    assert is_error
    assert text.startswith("invalid_state:")
    is_error, text = await call(c, "add_episode_step", {**step, "step_number": 9})
    assert is_error
    assert "completed" in text
    # nothing half-written: the episode kept exactly its one good step
    episode = await ok(c, "get_episode", {"episode_id": eid})
    assert [s["step_number"] for s in episode["steps"]] == [2]
