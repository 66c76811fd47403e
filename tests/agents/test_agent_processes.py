"""Agent metrics are exact across processes: four OS processes complete episodes for two agents
(and record one execution directly) against one store (the embedded SQLite data directory, and
one PostgreSQL schema), then the per-agent totals and successes equal what was done."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from backends.support import Backend

pytestmark = pytest.mark.integration

CHILD = Path(__file__).with_name("agent_child.py")
PROCESSES = 4
EPISODES = 5  # per agent and process


async def test_four_processes_give_exact_agent_counts(backend: Backend) -> None:
    async with backend.open():
        pass  # migrate once up front so the children race on data, not on DDL
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(CHILD),
            backend.child_url,
            str(backend.data_dir),
            f"p{i}",
            str(EPISODES),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for i in range(PROCESSES)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 180)
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out.decode() + err.decode()
        assert out.decode().split() == ["DONE", str(2 * EPISODES)]

    async with backend.open() as memory:
        m = await memory.agent_metrics()
    by = {a.agent: a for a in m.agents}
    alpha_ok = PROCESSES * len(range(0, EPISODES, 2))  # even i succeed
    assert (by["alpha-bot"].executions, by["alpha-bot"].successes) == (
        PROCESSES * EPISODES,
        alpha_ok,
    )
    assert by["alpha-bot"].steps == PROCESSES * EPISODES
    review = by["code-reviewer-2"]
    assert (review.executions, review.successes) == (PROCESSES * EPISODES, PROCESSES * EPISODES)
    assert (review.steps, review.errors) == (2 * PROCESSES * EPISODES, PROCESSES * EPISODES)
    assert review.agent_type == "code-reviewer"
    assert review.current_streak == review.longest_streak == PROCESSES * EPISODES
    assert (by["gamma"].executions, by["gamma"].successes) == (PROCESSES, PROCESSES)
    assert m.total_executions == 2 * PROCESSES * EPISODES + PROCESSES
    assert sum(p.executions for a in m.agents for p in a.series) == m.total_executions
    rows = backend.rows("SELECT count(*), count(DISTINCT execution_id) FROM agent_executions")
    assert rows == [(m.total_executions, m.total_executions)]  # no duplicate, none lost
    # the running totals, updated by every process's transactions, equal a count of the rows
    totals = backend.rows("SELECT agent, executions, successes FROM agent_totals ORDER BY agent")
    counted = backend.rows(
        "SELECT agent, count(*), sum(success) FROM agent_executions GROUP BY agent ORDER BY agent"
    )
    assert [tuple(int(v) if i else v for i, v in enumerate(r)) for r in totals] == [
        tuple(int(v) if i else v for i, v in enumerate(r)) for r in counted
    ]
