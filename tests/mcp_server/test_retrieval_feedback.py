"""Learning from use over stdio (a real memory-mcp process, the SDK's client): what a session's
query_memory returned counts as used by the episode it then creates and completes, with the
outcome, and shows in the next ranking's components; record_retrieval_feedback says it
explicitly, with a bounded, strict schema."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from self_learning_memory.mcp.limits import MAX_ID

from .tools import call, ok, record_episode, stdio_client

pytestmark = pytest.mark.integration

OK = {"type": "success", "output": "ok"}
QUERY = {"query": "fix the flaky login endpoint test", "domain": "web-api", "limit": 5}


def _components(found: dict[str, object], episode_id: str) -> dict[str, object]:
    episodes = found["episodes"]
    assert isinstance(episodes, list)
    for item in episodes:
        if item["episode"]["episode_id"] == episode_id:
            components: dict[str, object] = item["components"]
            return components
    raise AssertionError(f"{episode_id} was not returned")


async def test_query_then_complete_in_one_session_records_the_use(tmp_path: Path) -> None:
    async with stdio_client(tmp_path) as c:
        await record_episode(
            c,
            "Fix the flaky login endpoint test that times out",
            [("pytest", OK), ("git", OK)],
            {"outcome_type": "success", "verdict": "green"},
        )
        first = await ok(c, "query_memory", QUERY)
        used = first["episodes"][0]["episode"]["episode_id"]
        assert _components(first, used)["usefulness"] == 0.5
        assert _components(first, used)["uses"] == 0
        # the session's next episode: what query_memory returned counts as used by it
        done = await record_episode(
            c,
            "Fix the flaky logout endpoint test",
            [("pytest", OK)],
            {"outcome_type": "success", "verdict": "green too"},
        )
        assert done["retrieval_feedback"]["used_episodes"] == len(first["episodes"])
        assert done["retrieval_feedback"]["used_patterns"] == len(first["patterns"])
        # a later episode of the session without a query in between records nothing
        later = await record_episode(
            c, "Rotate the API keys", [("vault", OK)], {"outcome_type": "success"}
        )
        assert "retrieval_feedback" not in later
        again = await ok(c, "query_memory", QUERY)
        components = _components(again, used)
        assert components["uses"] == 1
        assert components["usefulness"] == pytest.approx(3 / 5)
        # explicitly, with a mark: the use is already counted, the mark counts at once
        task = done["episode_id"]
        marked = await ok(
            c,
            "record_retrieval_feedback",
            {"episode_id": task, "used_episode_ids": [used], "helpful": True},
        )
        assert (marked["used_episodes"], marked["counted_now"]) == (1, 0)
        components = _components(await ok(c, "query_memory", QUERY), used)
        assert components["uses"] == 2
        assert components["usefulness"] == pytest.approx(4 / 6)


async def test_record_retrieval_feedback_refuses_bad_arguments(tmp_path: Path) -> None:
    async with stdio_client(tmp_path) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        schema = tools["record_retrieval_feedback"].input_schema
        assert schema["required"] == ["episode_id"]
        ids = schema["properties"]["used_episode_ids"]["anyOf"][0]
        assert ids["maxItems"] == 100
        assert ids["items"]["maxLength"] == MAX_ID
        assert schema["properties"]["helpful"]["anyOf"][0]["type"] == "boolean"
        done = await record_episode(
            c, "Fix the flaky login endpoint test", [("pytest", OK)], {"outcome_type": "success"}
        )
        task = done["episode_id"]
        is_error, text = await call(
            c,
            "record_retrieval_feedback",
            {"episode_id": task, "used_episode_ids": [str(uuid.uuid4()) for _ in range(101)]},
        )
        assert is_error
        assert text.startswith("validation_error: Invalid 'used_episode_ids'")
        assert "100" in text
        is_error, text = await call(
            c,
            "record_retrieval_feedback",
            {"episode_id": task, "used_episode_ids": [str(uuid.uuid4())]},
        )
        assert is_error
        assert text.startswith("not_found:")
        is_error, text = await call(c, "record_retrieval_feedback", {"episode_id": task})
        assert is_error
        assert text.startswith("validation_error:")
        assert "used_episode_ids" in text
        is_error, text = await call(
            c,
            "record_retrieval_feedback",
            {"episode_id": task, "used_episode_ids": [task], "weight": 2},
        )
        assert is_error
        assert "Unknown argument 'weight'" in text
