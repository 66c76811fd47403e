"""The whole public API on both durable stores (embedded SQLite + LMDB files, and PostgreSQL with
the LMDB cache): record, learn, read, filter, retrieve, aggregate patterns and heuristics,
stats, delete, then reopen the same store and see the same data."""

from __future__ import annotations

import uuid

import pytest

from backends.support import Backend
from self_learning_memory import (
    EpisodeFilters,
    ErrorResult,
    ExecutionStep,
    FailureOutcome,
    NotFoundError,
    PatternFilters,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
    TaskType,
)

pytestmark = pytest.mark.integration

WEB = TaskContext(domain="web-api", language="python", framework="fastapi", tags=["http"])
DB = TaskContext(domain="database", language="sql")
TOOLS = ["read_file", "edit_file", "run_tests"]


def web_steps() -> list[ExecutionStep]:
    return [
        ExecutionStep(
            step_number=1,
            tool="read_file",
            action="check whether the router already has the route",
            result=SuccessResult(output="no /health route"),
            latency_ms=12,
        ),
        ExecutionStep(
            step_number=2,
            tool="edit_file",
            action="add the endpoint to the router",
            parameters={"path": "app/routes.py"},
            result=SuccessResult(output="1 file changed"),
            latency_ms=30,
            tokens_used=420,
        ),
        ExecutionStep(
            step_number=3,
            tool="run_tests",
            action="run the endpoint tests",
            result=SuccessResult(output="12 passed"),
            latency_ms=900,
        ),
    ]


async def record_web(memory: SelfLearningMemory, description: str) -> uuid.UUID:
    eid = await memory.start_episode(description, WEB, TaskType.CODE_GENERATION)
    for step in web_steps():
        await memory.log_step(eid, step)
    await memory.complete_episode(eid, SuccessOutcome(verdict="endpoint added, tests pass"))
    return eid


async def tool_sequence_count(memory: SelfLearningMemory) -> int:
    found = [
        p
        for p, _usage in await memory.list_patterns(PatternFilters(pattern_type="tool_sequence"))
        if p.tools == TOOLS  # type: ignore[union-attr]
    ]
    assert len(found) <= 1, "one aggregated pattern per similarity key"
    return found[0].occurrence_count if found else 0


async def test_full_lifecycle_and_reopen(backend: Backend) -> None:
    async with backend.open() as memory:
        # patterns aggregate: the same tool sequence grows its occurrence count per episode
        web_ids = []
        counts = []
        for description in (
            "Add a /health endpoint to the orders API",
            "Add a /ready endpoint to the orders API",
            "Add a /version endpoint to the billing API",
        ):
            web_ids.append(await record_web(memory, description))
            counts.append(await tool_sequence_count(memory))
        assert counts == [1, 2, 3]

        # a failed database episode and one still in progress
        failed = await memory.start_episode("Migrate the users table", DB, "debugging")
        await memory.log_step(
            failed,
            ExecutionStep(
                step_number=1,
                tool="psql",
                action="apply migration 0042",
                result=ErrorResult(message="ERROR: column users.email already exists"),
            ),
        )
        done_failed = await memory.complete_episode(
            failed, FailureOutcome(reason="migration conflicts with an existing column")
        )
        assert done_failed.outcome is not None
        assert done_failed.outcome.type == "failure"
        open_id = await memory.start_episode("Write the release notes", task_type="documentation")
        await memory.log_step(open_id, ExecutionStep(step_number=1, tool="git", action="git log"))

        # get_episode: steps, outcome, reward, reflection, learned pattern links
        first = await memory.get_episode(web_ids[0])
        assert [s.tool for s in first.steps] == TOOLS
        assert [s.step_number for s in first.steps] == [1, 2, 3]
        assert first.steps[1].parameters == {"path": "app/routes.py"}
        assert first.steps[1].tokens_used == 420
        assert first.is_complete()
        assert first.reward is not None
        assert first.reward.total > 0
        assert first.reflection is not None
        assert first.reflection.successes
        assert first.patterns
        in_progress = await memory.get_episode(open_id)
        assert not in_progress.is_complete()
        assert [s.tool for s in in_progress.steps] == ["git"]  # buffered step is visible

        # list_episodes: filters, newest first, limit and offset
        everything = await memory.list_episodes(limit=100)
        assert len(everything) == 5
        starts = [e.start_time for e in everything]
        assert starts == sorted(starts, reverse=True)
        page1 = await memory.list_episodes(limit=2, offset=0)
        page2 = await memory.list_episodes(limit=2, offset=2)
        page3 = await memory.list_episodes(limit=2, offset=4)
        paged = [e.episode_id for e in page1 + page2 + page3]
        assert paged == [e.episode_id for e in everything]
        assert await memory.list_episodes(limit=2, offset=5) == []
        by_domain = await memory.list_episodes(EpisodeFilters(domain="web-api"))
        assert {e.episode_id for e in by_domain} == set(web_ids)
        failures = await memory.list_episodes(EpisodeFilters(outcome="failure"))
        assert [e.episode_id for e in failures] == [failed]
        unfinished = await memory.list_episodes(EpisodeFilters(completed=False))
        assert [e.episode_id for e in unfinished] == [open_id]
        typed = await memory.list_episodes(
            EpisodeFilters(task_type=TaskType.CODE_GENERATION, language="python", tag="http")
        )
        assert {e.episode_id for e in typed} == set(web_ids)

        # retrieval: the web episodes answer a web question, with score components
        results = await memory.retrieve_relevant_context(
            "add a /metrics endpoint to the orders API", WEB, limit=3
        )
        assert results, "completed episodes matching the query must be retrieved"
        assert results[0].episode.episode_id in web_ids
        assert all(r.episode.is_complete() for r in results)
        assert open_id not in {r.episode.episode_id for r in results}
        for r in results:
            assert r.score == pytest.approx(r.components.total)
            assert 0.0 <= r.components.context <= 1.0
            assert r.provenance
        scores = [r.score for r in results]
        assert scores == sorted(scores, reverse=True)

        patterns = await memory.retrieve_relevant_patterns(WEB, limit=10)
        sequences = [m for m in patterns if m.pattern.type == "tool_sequence"]
        assert sequences
        assert sequences[0].pattern.occurrence_count == 3
        heuristics = await memory.retrieve_heuristics(WEB, limit=10)
        assert heuristics, "a decision step seen in three successful episodes is a heuristic"
        assert all(h.heuristic.evidence.sample_size >= 2 for h in heuristics)
        assert any("check whether the router" in h.heuristic.condition for h in heuristics)

        stats = await memory.stats()
        assert (stats.episodes, stats.completed, stats.in_progress) == (5, 4, 1)
        assert stats.steps == 3 * 3 + 1  # web + failed; the open episode's step is buffered
        assert stats.buffered_steps == 1
        assert stats.patterns >= 1
        assert stats.heuristics >= 1
        assert stats.storage_bytes > 0
        assert stats.operations["complete_episode"].calls == 4

        # delete: gone from reads, lists and retrieval; a second delete is NotFound
        await memory.delete_episode(web_ids[2])
        with pytest.raises(NotFoundError):
            await memory.get_episode(web_ids[2])
        with pytest.raises(NotFoundError):
            await memory.delete_episode(web_ids[2])
        assert web_ids[2] not in {e.episode_id for e in await memory.list_episodes()}
        again = await memory.retrieve_relevant_context("add a /version endpoint", WEB, limit=5)
        assert web_ids[2] not in {r.episode.episode_id for r in again}

        before = {e.episode_id: e for e in await memory.list_episodes(limit=100)}
        sequence_count = await tool_sequence_count(memory)

    # closing flushed the buffered step; reopening sees exactly the same data
    async with backend.open() as reopened:
        after = {e.episode_id: e for e in await reopened.list_episodes(limit=100)}
        assert set(after) == set(before) == {*web_ids[:2], failed, open_id}
        for eid in (web_ids[0], web_ids[1], failed):
            assert after[eid] == before[eid]
            assert await reopened.get_episode(eid) == before[eid]
        assert [s.tool for s in after[open_id].steps] == ["git"]
        assert await tool_sequence_count(reopened) == sequence_count == 3
        stats = await reopened.stats()
        assert (stats.episodes, stats.completed, stats.steps) == (4, 3, 3 * 2 + 1 + 1)
        # and it keeps learning where it left off
        await record_web(reopened, "Add a /live endpoint to the orders API")
        assert await tool_sequence_count(reopened) == 4
