"""Retrieval feedback on every durable store: which retrieved episodes and patterns a task used
is linked, counted with the task's outcome when it completes (in the completion's
transaction), read back as the episode's usage and its ``usefulness`` ranking component; bad
ids and sizes are refused with typed errors and write nothing."""

from __future__ import annotations

import uuid

import pytest

from self_learning_memory import (
    ExecutionStep,
    FailureOutcome,
    NotFoundError,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
    TaskType,
    ValidationError,
)
from self_learning_memory.model.limits import MAX_FEEDBACK_ITEMS
from self_learning_memory.model.records import EpisodeFilters

from .support import Backend

pytestmark = pytest.mark.integration

CTX = TaskContext(domain="billing", language="python")


async def _episode(
    memory: SelfLearningMemory, description: str, *, success: bool = True, tool: str = "helm"
) -> uuid.UUID:
    eid = await memory.start_episode(description, CTX, TaskType.CODE_GENERATION)
    await memory.log_step(
        eid,
        ExecutionStep(step_number=1, tool=tool, action="deploy", result=SuccessResult(output="ok")),
    )
    outcome = SuccessOutcome(verdict="done") if success else FailureOutcome(reason="broke")
    await memory.complete_episode(eid, outcome)
    return eid


async def test_feedback_is_linked_then_counted_with_the_outcome(backend: Backend) -> None:
    async with backend.open() as memory:
        used = await _episode(memory, "deploy the billing service with helm")
        other = await _episode(memory, "rotate the billing database password", tool="vault")
        task = await memory.start_episode("deploy the invoices service", CTX)
        assert await memory.record_retrieval_feedback(task, [used], helpful=True) == 0
        usage = await memory.episode_usage(used)
        assert (usage.uses, usage.helpful, usage.unhelpful) == (0, 1, 0)  # marks count at once
        await memory.complete_episode(task, SuccessOutcome(verdict="deployed"))
        usage = await memory.episode_usage(used)
        assert (usage.uses, usage.success, usage.helpful) == (1, 1.0, 1)
        assert usage.last_used is not None
        assert (await memory.episode_usage(other)).uses == 0
        # the same item again for the same task counts once; a new mark replaces the old one
        assert await memory.record_retrieval_feedback(task, [used], helpful=False) == 0
        usage = await memory.episode_usage(used)
        assert (usage.uses, usage.helpful, usage.unhelpful) == (1, 0, 1)
        # named after the task completed: counted at once, with its outcome
        assert await memory.record_retrieval_feedback(task, [other]) == 1
        assert (await memory.episode_usage(other)).uses == 1
    rows = backend.rows(
        "SELECT item_kind, item_id, helpful, applied FROM retrieval_uses "
        "WHERE task_episode_id = ? ORDER BY item_id",
        (str(task),),
    )
    assert sorted(rows) == sorted([("episode", str(used), 0, 1), ("episode", str(other), None, 1)])


async def test_for_episode_links_retrievals_and_a_failure_counts_against(
    backend: Backend,
) -> None:
    async with backend.open() as memory:
        a = await _episode(memory, "deploy the billing service with helm")
        task = await memory.start_episode("deploy the billing service again", CTX)
        found = await memory.retrieve_relevant_context(
            "deploy the billing service", CTX, for_episode=task
        )
        assert a in {r.episode.episode_id for r in found}
        patterns = await memory.retrieve_relevant_patterns(CTX, for_episode=task)
        assert patterns, "the completed episode taught at least one pattern"
        before = {p.pattern.id: (await memory.get_pattern(p.pattern.id))[1] for p in patterns}
        await memory.complete_episode(task, FailureOutcome(reason="helm timed out"))
        usage = await memory.episode_usage(a)
        assert (usage.uses, usage.success) == (1, 0.0)
        for pattern_id, old in before.items():
            new = (await memory.get_pattern(pattern_id))[1]
            assert new.application_count == old.application_count + 1
            assert new.failure_count == old.failure_count + 1
        # the ranking reports the evidence: one failed use, smoothed toward neutral
        again = await memory.retrieve_relevant_context("deploy the billing service", CTX)
        component = next(r.components for r in again if r.episode.episode_id == a)
        assert component.uses == 1
        assert component.usefulness == pytest.approx(2 / 5)


async def test_bad_feedback_is_refused_and_writes_nothing(backend: Backend) -> None:
    async with backend.open() as memory:
        used = await _episode(memory, "deploy the billing service with helm")
        task = await memory.start_episode("deploy the invoices service", CTX)
        with pytest.raises(NotFoundError):
            await memory.record_retrieval_feedback(uuid.uuid4(), [used])
        with pytest.raises(NotFoundError):  # one unknown id: nothing of the call is written
            await memory.record_retrieval_feedback(task, [used, uuid.uuid4()])
        with pytest.raises(NotFoundError):
            await memory.record_retrieval_feedback(task, used_pattern_ids=[uuid.uuid4()])
        with pytest.raises(NotFoundError):  # an open episode was never retrieved
            await memory.record_retrieval_feedback(used, [task])
        with pytest.raises(ValidationError, match="used_episode_ids"):
            await memory.record_retrieval_feedback(task, [task])
        with pytest.raises(ValidationError, match=r"used_episode_ids\[1\]"):
            await memory.record_retrieval_feedback(task, [used, "not-a-uuid"])
        too_many = [uuid.uuid4() for _ in range(MAX_FEEDBACK_ITEMS + 1)]
        with pytest.raises(ValidationError, match=f"at most {MAX_FEEDBACK_ITEMS}"):
            await memory.record_retrieval_feedback(task, too_many)
        with pytest.raises(ValidationError, match="used_episode_ids"):
            await memory.record_retrieval_feedback(task)
        with pytest.raises(ValidationError, match="helpful"):
            await memory.record_retrieval_feedback(task, [used], helpful="yes")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="for_episode"):
            await memory.retrieve_relevant_context("deploy", CTX, for_episode="nope")
        await memory.complete_episode(task, SuccessOutcome(verdict="deployed"))
        assert (await memory.episode_usage(used)).uses == 0
    assert backend.rows("SELECT count(*) FROM retrieval_uses") == [(0,)]
    assert backend.rows("SELECT count(*) FROM episode_usage") == [(0,)]


async def test_deleting_episodes_deletes_their_feedback(backend: Backend) -> None:
    async with backend.open() as memory:
        used = await _episode(memory, "deploy the billing service with helm")
        task = await memory.start_episode("deploy the invoices service", CTX)
        await memory.record_retrieval_feedback(task, [used])
        await memory.complete_episode(task, SuccessOutcome(verdict="deployed"))
        assert backend.rows("SELECT count(*) FROM episode_usage") == [(1,)]
        await memory.delete_episode(task)
        assert backend.rows("SELECT count(*) FROM retrieval_uses") == [(0,)]
        assert (await memory.episode_usage(used)).uses == 1  # what it did stays counted
        await memory.delete_episode(used)
    assert backend.rows("SELECT count(*) FROM episode_usage") == [(0,)]


async def test_an_episode_that_keeps_helping_rises_above_an_equal_one(backend: Backend) -> None:
    query = "deploy the billing service"
    async with backend.open() as memory:
        alpha = await _episode(memory, "alpha: deploy the billing service")
        beta = await _episode(memory, "beta: deploy the billing service")
        before = await memory.retrieve_relevant_context(query, CTX)
        order = [r.episode.episode_id for r in before]
        assert set(order[:2]) == {alpha, beta}
        assert all(r.components.usefulness == 0.5 and r.components.uses == 0 for r in before)
        high, low = order[:2]  # without feedback: tied but for recency and the id
        for n in range(3):
            task = await memory.start_episode(f"rotate the vault token {n}", CTX)
            await memory.record_retrieval_feedback(task, [low])
            await memory.complete_episode(task, SuccessOutcome(verdict="rotated"))
        after = {
            r.episode.episode_id: r for r in await memory.retrieve_relevant_context(query, CTX)
        }
        assert after[low].score > after[high].score
        assert after[high].score == pytest.approx(before[0].score)  # no feedback: unchanged
        used = after[low].components
        assert (used.uses, used.usefulness) == (3, pytest.approx(5 / 7))


async def test_a_completed_task_that_finds_itself_does_not_use_itself(backend: Backend) -> None:
    async with backend.open() as memory:
        other = await _episode(memory, "deploy the billing service with helm")
        task = await _episode(memory, "deploy the billing service with kubectl", tool="kubectl")
        found = await memory.retrieve_relevant_context(
            "deploy the billing service", CTX, for_episode=task
        )
        assert {task, other} <= {r.episode.episode_id for r in found}
        assert (await memory.episode_usage(other)).uses == 1  # counted at once: task is done
        assert (await memory.episode_usage(task)).uses == 0


async def test_candidate_rows_carry_the_usage_read_in_the_same_query(backend: Backend) -> None:
    """The candidate queries join the usage counters (no second query per retrieval): the
    values equal what ``episode_usage`` reads; an episode without feedback has None."""
    async with backend.open() as memory:
        used = await _episode(memory, "deploy the billing service with helm")
        other = await _episode(memory, "rotate the billing database password", tool="vault")
        task = await memory.start_episode("deploy the invoices service", CTX)
        await memory.record_retrieval_feedback(task, [used], helpful=True)
        await memory.complete_episode(task, SuccessOutcome(verdict="deployed"))
        expected = await memory.episode_usage(used)
        storage = memory.storage
        by_ids = await storage.candidates_by_ids([used, other], EpisodeFilters())
        lexical = await storage.lexical_candidates(["billing"], EpisodeFilters(), 10)
        context = await storage.context_candidates(CTX, EpisodeFilters(), 10)
        for found in (by_ids, lexical, context):
            rows = {c.episode_id: c for c in found}
            assert rows[used].usage_known
            assert rows[other].usage_known
            assert rows[used].usage == expected
            assert rows[other].usage is None
