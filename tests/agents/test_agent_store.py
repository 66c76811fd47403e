"""Agent identity and agent executions in the durable store, on SQLite and PostgreSQL: an
episode's agent round-trips (store, a second process's open, the filters); its completion writes
exactly one execution row in the same transaction; record_agent_execution is idempotent by id;
the SQL aggregation gives exact totals, durations, streaks, windows and the ``other`` fold."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from backends.support import Backend
from self_learning_memory import (
    EpisodeFilters,
    ErrorResult,
    ExecutionStep,
    FailureOutcome,
    PartialSuccessOutcome,
    SuccessOutcome,
    SuccessResult,
    ValidationError,
)


async def test_agent_round_trips_and_filters(backend: Backend) -> None:
    async with backend.open() as memory:
        mine = await memory.start_episode("tag the release", agent="  ci/release-bot@v2 ")
        other = await memory.start_episode("write the changelog", agent="docs.bot")
        plain = await memory.start_episode("no agent here")
    async with backend.open() as memory:  # read back from the store, not this process's state
        assert (await memory.get_episode(mine)).agent == "ci/release-bot@v2"  # trimmed
        assert (await memory.get_episode(other)).agent == "docs.bot"
        assert (await memory.get_episode(plain)).agent is None
        found = await memory.list_episodes(EpisodeFilters(agent="ci/release-bot@v2"))
        assert [e.episode_id for e in found] == [mine]
        assert await memory.count_episodes(EpisodeFilters(agent="docs.bot")) == 1
        assert await memory.count_episodes(EpisodeFilters(agent="nobody")) == 0
    rows = backend.rows("SELECT agent FROM episodes ORDER BY agent")
    assert sorted(r[0] or "" for r in rows) == ["", "ci/release-bot@v2", "docs.bot"]


@pytest.mark.parametrize(
    ("agent", "problem", "limit"),
    [
        ("", "is empty", "1..64 characters"),
        ("   ", "is empty", "1..64 characters"),
        ("a" * 65, "is 65 characters long", "64 characters"),
        ("bad name", "contains ' '", "letters, digits and . _ : @ / - only"),
        ('x"}\n', "contains", "letters, digits and . _ : @ / - only"),
    ],
)
async def test_a_bad_agent_is_refused_and_nothing_is_written(
    backend: Backend, agent: str, problem: str, limit: str
) -> None:
    async with backend.open() as memory:
        with pytest.raises(ValidationError) as refused:
            await memory.start_episode("task", agent=agent)
        assert refused.value.field == "agent"
        assert problem in refused.value.problem
        assert refused.value.limit == limit
        with pytest.raises(ValidationError) as again:
            await memory.record_agent_execution(agent, True, 1.0)
        assert again.value.field == "agent"
        assert await memory.count_episodes() == 0
    assert backend.rows("SELECT count(*) FROM agent_executions") == [(0,)]


async def test_completion_writes_one_execution_with_the_episode(backend: Backend) -> None:
    async with backend.open() as memory:
        eid = await memory.start_episode(
            "fix the flaky test", task_type="debugging", agent="debugger-1"
        )
        await memory.log_step(
            eid,
            ExecutionStep(
                step_number=1, tool="pytest", action="run", result=ErrorResult(message="boom")
            ),
        )
        await memory.log_step(
            eid, ExecutionStep(step_number=2, tool="pytest", action="rerun", result=SuccessResult())
        )
        done = await memory.complete_episode(eid, FailureOutcome(reason="still flaky"))
        assert done.agent == "debugger-1"
        no_agent = await memory.start_episode("not monitored")
        await memory.complete_episode(no_agent, SuccessOutcome(verdict="ok"))
    rows = backend.rows(
        "SELECT execution_id, agent, agent_type, task_type, success, outcome, step_count, "
        "error_count, "
        "episode_id, task_description, error_message, duration_ms FROM agent_executions"
    )
    assert len(rows) == 1
    row = rows[0]
    assert row[:11] == (
        str(eid),
        "debugger-1",
        "debugger",
        "debugging",
        0,
        "failure",
        2,
        1,
        str(eid),
        "fix the flaky test",
        "still flaky",
    )
    assert done.end_time is not None
    expected_ms = (done.end_time - done.start_time).total_seconds() * 1000
    assert row[11] == pytest.approx(expected_ms, abs=0.01)


async def test_queued_learning_writes_the_execution_once(backend: Backend) -> None:
    async with backend.open(queue={"enabled": True}) as memory:
        eid = await memory.start_episode("queued task", agent="test-runner")
        await memory.complete_episode(eid, SuccessOutcome(verdict="green"))
        assert await memory.wait_for_learning(30)
        assert (await memory.get_episode(eid)).reward is not None  # the learned write ran
    assert backend.rows("SELECT count(*), sum(success) FROM agent_executions") == [(1, 1)]


async def test_record_agent_execution_is_idempotent_by_id(backend: Backend) -> None:
    run = uuid.uuid4()
    async with backend.open() as memory:
        first = await memory.record_agent_execution(
            "goap-agent",
            True,
            250.0,
            task_type="analysis",
            steps=4,
            errors=1,
            task_description="x" * 500,
            execution_id=run,
        )
        again = await memory.record_agent_execution("goap-agent", True, 250.0, execution_id=run)
        assert first.execution_id == again.execution_id == run
        assert first.agent_type == "goap-agent"
        assert first.task_description is not None
        assert len(first.task_description) == 200
        with pytest.raises(ValidationError) as refused:
            await memory.record_agent_execution("goap-agent", True, -1.0)
        assert refused.value.field == "duration_ms"
        with pytest.raises(ValidationError) as refused:
            await memory.record_agent_execution("goap-agent", True, 1.0, steps=2, errors=3)
        assert refused.value.field == "errors"
        metrics = await memory.agent_metrics()
    assert backend.rows("SELECT count(*) FROM agent_executions") == [(1,)]
    assert metrics.total_executions == 1
    assert metrics.agents[0].steps == 4


async def test_aggregates_are_exact(backend: Backend) -> None:
    # alpha: T T F T T T (durations 10..60), beta: T F (5, 15), partial counts as unsuccessful
    async with backend.open() as memory:
        for i, ok in enumerate([True, True, False, True, True, True]):
            await memory.record_agent_execution(
                "alpha", ok, 10.0 * (i + 1), steps=3, errors=0 if ok else 2
            )
        await memory.record_agent_execution("beta", True, 5.0)
        beta = await memory.start_episode("beta partial", agent="beta")
        await memory.complete_episode(beta, PartialSuccessOutcome(verdict="half"))
        m = await memory.agent_metrics(window="hour")
    by = {a.agent: a for a in m.agents}
    alpha = by["alpha"]
    assert (alpha.executions, alpha.successes, alpha.failures) == (6, 5, 1)
    assert alpha.success_rate == pytest.approx(5 / 6, abs=1e-6)
    assert (alpha.min_duration_ms, alpha.max_duration_ms) == (10.0, 60.0)
    assert alpha.avg_duration_ms == pytest.approx(35.0)
    assert alpha.total_duration_ms == pytest.approx(210.0)
    assert (alpha.steps, alpha.errors) == (18, 2)
    assert (alpha.current_streak, alpha.longest_streak) == (3, 3)
    assert by["beta"].executions == 2
    assert (by["beta"].current_streak, by["beta"].longest_streak) == (0, 1)
    assert (m.total_agents, m.total_executions, m.successful_executions) == (2, 8, 6)
    assert [a.agent for a in m.agents] == ["alpha", "beta"]  # the busiest first
    # one hour window holds them all (unless the test crossed an hour boundary: then two)
    points = alpha.series
    assert sum(p.executions for p in points) == 6
    assert sum(p.successes for p in points) == 5
    assert all(p.window_start.minute == 0 and p.window_start.second == 0 for p in points)
    assert all(p.window_start.tzinfo is not None for p in points)


async def test_streaks_windows_since_and_the_other_fold(backend: Backend) -> None:
    async with backend.open() as memory:
        for ok in [True, True, True, False, True]:
            await memory.record_agent_execution("streaky", ok, 1.0)
        for i in range(5):
            await memory.record_agent_execution(f"tail-{i}", i % 2 == 0, 2.0)
        top = await memory.agent_metrics(top=2, window="week")
        # the running totals (all time) and a GROUP BY over the rows (since) agree
        recent = await memory.agent_metrics(top=2, since=datetime.now(UTC) - timedelta(days=1))
        future = await memory.agent_metrics(since=datetime.now(UTC) + timedelta(hours=1))
        with pytest.raises(ValidationError) as refused:
            await memory.agent_metrics(window="month")
        assert refused.value.field == "window"
    assert [a.model_dump(exclude={"series"}) for a in recent.agents] == [
        a.model_dump(exclude={"series"}) for a in top.agents
    ]
    by = {a.agent: a for a in top.agents}
    assert (by["streaky"].current_streak, by["streaky"].longest_streak) == (1, 3)
    assert [a.agent for a in top.agents] == ["streaky", "tail-0", "other"]
    other = by["other"]
    assert (other.agents, other.executions, other.successes) == (4, 4, 2)
    assert sum(p.executions for p in other.series) == 4
    assert top.total_agents == 6
    assert top.total_executions == 10
    week = by["streaky"].series[0].window_start
    assert week.weekday() == 0
    assert (week.hour, week.minute) == (0, 0)
    assert future.total_executions == 0
    assert future.agents == []


async def test_the_cache_keeps_the_agent(backend: Backend) -> None:
    async with backend.open() as memory:
        eid = await memory.start_episode("cached", agent="claude-code")
        await memory.complete_episode(eid, SuccessOutcome(verdict="ok"))
        assert memory.cache is not None
        cached = memory.cache.get(eid)
    assert cached is not None
    assert cached.agent == "claude-code"
