"""A small known memory for the dashboard tests, written with the library: episodes with known
tasks, successes and failures, learned patterns, and completion times spread over four days so
the learning curve has four points with known success rates; seven of them are run by two
agents, so the agents page has known counts and points per day."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import apsw

from self_learning_memory import (
    ErrorResult,
    ExecutionStep,
    FailureOutcome,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
    TaskType,
)
from self_learning_memory.storage.codec import to_us
from self_learning_memory.storage.factory import DB_FILENAME

REVIEWER = "code-reviewer@ci"
IMPLEMENTER = "feature-implementer"
# (task, succeeded, days before today it completed, agent)
TASKS = [
    ("Add a readiness probe to the billing service", True, 3, REVIEWER),
    ("Fix the flaky pagination test in the orders API", False, 3, IMPLEMENTER),
    ("Rotate the TLS certificates on the staging cluster", True, 2, REVIEWER),
    ("Add a readiness probe to the inventory service", True, 2, IMPLEMENTER),
    ("Upgrade the payments worker to Python 3.12", False, 2, REVIEWER),
    ("Add a readiness probe to the search gateway", True, 1, None),
    ("Tune the nightly vacuum of the analytics warehouse", True, 0, IMPLEMENTER),
    ("Add a readiness probe to the notification relay", False, 0, REVIEWER),
]
KNOWN_TASK = "Rotate the TLS certificates on the staging cluster"
# success rate per day, oldest first: 3 days ago 1/2, 2 days ago 2/3, yesterday 1/1, today 1/2
CURVE = [0.5, 2 / 3, 1.0, 0.5]
# per agent: (executions, successes, current streak, longest streak, type) and its
# (executions, successes) per day it ran, oldest first
AGENTS = {
    REVIEWER: ((4, 2, 0, 2, "code-reviewer"), [(1, 1), (2, 1), (1, 0)]),
    IMPLEMENTER: ((3, 2, 2, 2, "feature-implementer"), [(1, 0), (1, 1), (1, 1)]),
}


@dataclass(frozen=True)
class Seeded:
    data_dir: Path
    episode_ids: dict[str, str]  # task -> episode id


async def _record(data_dir: Path) -> dict[str, str]:
    ids: dict[str, str] = {}
    async with SelfLearningMemory.open(data_dir) as memory:
        for task, ok, _days, agent in TASKS:
            ctx = TaskContext(domain="ops", language="python", tags=["k8s"])
            eid = await memory.start_episode(task, ctx, TaskType.CODE_GENERATION, agent=agent)
            steps = [("kubectl", 120, True), ("editor", 340, True), ("pytest", 80, ok)]
            for n, (tool, latency, good) in enumerate(steps, start=1):
                result = SuccessResult(output="ok") if good else ErrorResult(message="failed")
                await memory.log_step(
                    eid,
                    ExecutionStep(
                        step_number=n, tool=tool, action=f"{tool} for {task}", result=result,
                        latency_ms=latency,
                    ),
                )  # fmt: skip
            outcome = (
                SuccessOutcome(verdict="done", artifacts=["probe.yaml"])
                if ok
                else FailureOutcome(reason="tests failed", error_details="AssertionError")
            )
            await memory.complete_episode(eid, outcome)
            ids[task] = str(eid)
    return ids


def seed(data_dir: Path) -> Seeded:
    """Record :data:`TASKS` in ``data_dir`` and move their completion times (and their agent
    executions' end times, and each agent's last execution) to their days."""
    # its own thread: Playwright's sync API may already run an event loop in this one
    with ThreadPoolExecutor(1) as pool:
        ids = pool.submit(asyncio.run, _record(data_dir)).result()
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    conn = apsw.Connection(str(data_dir / DB_FILENAME))
    try:
        for n, (task, _ok, days, _agent) in enumerate(TASKS):
            when = midnight - timedelta(days=days) + timedelta(seconds=1 + n)
            conn.execute(
                "UPDATE episodes SET end_time = ? WHERE episode_id = ?", (to_us(when), ids[task])
            )
            conn.execute(
                "UPDATE agent_executions SET ended_at = ? WHERE episode_id = ?",
                (to_us(when), ids[task]),
            )
        conn.execute(
            "UPDATE agent_totals SET last_at = (SELECT max(ended_at) FROM agent_executions e "
            "WHERE e.agent = agent_totals.agent)"
        )
    finally:
        conn.close()
    return Seeded(data_dir, ids)
