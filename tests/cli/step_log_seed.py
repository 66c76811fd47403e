"""A data directory with known steps for the monitor and logs tests (seeded via the library)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import apsw

from self_learning_memory.core.memory import SelfLearningMemory
from self_learning_memory.model.episode import (
    ErrorResult,
    ExecutionStep,
    FailureOutcome,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
    TimeoutResult,
)


@dataclass(frozen=True)
class Seeded:
    episodes: list[str]  # ids, oldest first
    old_episode: str | None  # started 3 days ago (outside a 24h window)


# (tool, action, result, observation, latency_ms); result is success / error / timeout
STEPS_A = [
    ("pytest", "run the login tests", "error", "Connection refused by db:5432", 100),
    ("pytest", "rerun with retries", "error", "Connection refused by db:5432", 300),
    ("editor", "add a retry to the fixture", "success", "patched conftest.py", 20),
    ("pytest", "run the login tests", "success", "12 passed", 200),
]
STEPS_B = [
    ("curl", "call /health", "timeout", None, 5000),
    ("shell", "chmod the socket", "error", "Permission denied: /var/run/app.sock", 10),
    ("shell", "restart the service", "error", "segfault in worker 100%_done", 40),
    ("editor", "fix the unit file", "success", "ok", 10),
]


def _step(n: int, spec: tuple[str, str, str, str | None, int]) -> ExecutionStep:
    tool, action, kind, text, latency = spec
    result: SuccessResult | ErrorResult | TimeoutResult
    if kind == "success":
        result = SuccessResult(output=text or "")
    elif kind == "error":
        result = ErrorResult(message=text or "failed")
    else:
        result = TimeoutResult()
    return ExecutionStep(step_number=n, tool=tool, action=action, result=result, latency_ms=latency)


def seed_steps(data_dir: Path, *, old_episode: bool = False) -> Seeded:
    """Two episodes in the window (A completed with success, B still open), optionally one
    more moved three days into the past."""

    async def go() -> Seeded:
        async with SelfLearningMemory.open(data_dir) as memory:
            ids = []
            old = None
            if old_episode:
                eid = await memory.start_episode("Old migration task", TaskContext(), "other")
                await memory.log_step(
                    eid, _step(1, ("alembic", "upgrade head", "success", "ok", 7))
                )
                await memory.complete_episode(eid, SuccessOutcome(verdict="migrated"))
                old = str(eid)
            a = await memory.start_episode(
                "Fix the flaky login test", TaskContext(domain="web-api"), "debugging"
            )
            for n, spec in enumerate(STEPS_A, start=1):
                await memory.log_step(a, _step(n, spec))
            await memory.complete_episode(a, SuccessOutcome(verdict="login test is stable"))
            b = await memory.start_episode(
                "Bring the service back up", TaskContext(domain="ops"), "debugging"
            )
            for n, spec in enumerate(STEPS_B, start=1):
                await memory.log_step(b, _step(n, spec))
            await memory.flush_steps()
            ids = [str(a), str(b)]
        if old is not None:
            _move_back(data_dir, old, timedelta(days=3))
        return Seeded(ids, old)

    return asyncio.run(go())


def add_failed_episode(data_dir: Path) -> None:
    async def go() -> None:
        async with SelfLearningMemory.open(data_dir) as memory:
            eid = await memory.start_episode("Deploy the api", TaskContext(), "other")
            await memory.log_step(eid, _step(1, ("kubectl", "apply", "error", "timeout", 3)))
            await memory.complete_episode(eid, FailureOutcome(reason="deploy failed"))

    asyncio.run(go())


def _move_back(data_dir: Path, episode_id: str, by: timedelta) -> None:
    us = int(by.total_seconds() * 1_000_000)
    conn = apsw.Connection(str(data_dir / "memory.db"))
    try:
        conn.execute(
            "UPDATE episodes SET start_time = start_time - ? WHERE episode_id = ?",
            (us, episode_id),
        )
        conn.execute(
            "UPDATE steps SET timestamp = timestamp - ? WHERE episode_id = ?", (us, episode_id)
        )
    finally:
        conn.close()
