"""Issue 12, item 3: an episode that could never complete. Eleven steps of ~0.95 MB parameters
were each within the per-step limits; complete_episode then failed for ever (episode over
10 MB) while new steps were still accepted. Now ``log_step`` refuses the step that would take
the open episode over ``MAX_OPEN_EPISODE_SIZE`` (the 10 MB limit less the room kept for the
outcome), so an episode whose steps were all accepted always completes, on SQLite and
PostgreSQL, and across processes (the size is learnt from the store).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest

from backends.support import Backend
from self_learning_memory import (
    ExecutionStep,
    PartialSuccessOutcome,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
)
from self_learning_memory.core.episode_size import json_size
from self_learning_memory.errors import ValidationError
from self_learning_memory.model import validation as v

pytestmark = pytest.mark.integration

CLI = (sys.executable, "-m", "self_learning_memory.cli")
BIG = 950_000  # bytes of one step's parameters: within the 1 MB per-step limit


def step(n: int, payload: int = 0, text: str = "x") -> ExecutionStep:
    return ExecutionStep(
        step_number=n,
        tool="editor",
        action=f"write part {n}",
        parameters={"content": text * payload} if payload else {"n": n, "note": 'naïve ✓ "q"'},
        result=SuccessResult(output="ok"),
    )


def largest_outcome() -> PartialSuccessOutcome:
    """An outcome of almost MAX_OUTCOME_SIZE bytes of JSON."""
    item = "y" * 9_990
    outcome = PartialSuccessOutcome(verdict="v" * 9_000, completed=[item] * 49, failed=[item] * 49)
    assert v.MAX_OUTCOME_SIZE - 30_000 < json_size(outcome) <= v.MAX_OUTCOME_SIZE
    return outcome


def open_size(memory: SelfLearningMemory, eid: uuid.UUID) -> int:
    size = memory._writer.sizes.get(eid)
    assert size is not None
    return size


async def test_eleven_big_steps_the_one_over_the_limit_is_refused(backend: Backend) -> None:
    async with backend.open() as memory:
        eid = await memory.start_episode("Write a large generated file in parts")
        for n in range(1, 10):  # 9 x 0.95 MB fit in 8,999,900 bytes; the 10th does not
            await memory.log_step(eid, step(n, BIG))
        with pytest.raises(ValidationError) as caught:
            await memory.log_step(eid, step(10, BIG))
        error = caught.value
        assert error.field == "episode"
        assert "step 10" in error.problem
        assert "10000000 bytes" in str(error)
        would = int(error.problem.split(" would be ")[1].split(" ")[0])
        assert would > v.MAX_OPEN_EPISODE_SIZE
        await memory.log_step(eid, step(10))  # a small step still fits
        # the largest outcome allowed still fits: the episode completes
        episode = await memory.complete_episode(eid, largest_outcome())
    assert [s.step_number for s in episode.steps] == [*range(1, 11)]
    assert json_size(episode.model_copy(update={"reward": None, "reflection": None})) <= (
        v.MAX_EPISODE_SIZE
    )
    rows = backend.rows("SELECT count(*) FROM steps WHERE episode_id = ?", (str(eid),))
    assert int(rows[0][0]) == 10


async def test_running_size_is_the_stored_episodes_json_size(backend: Backend) -> None:
    """The size kept step by step is exactly what the stored episode serialises to, so the
    limit is neither loose nor early (non-ASCII text and escapes included)."""
    async with backend.open() as memory:
        eid = await memory.start_episode("Count bytes exactly: é ✓", metadata={"k": "v\n"})
        for n in range(1, 6):
            await memory.log_step(eid, step(n))
        await memory.log_step(eid, step(6, 1000, "é"))
        await memory.flush_steps(eid)
        stored = await memory.get_episode(eid)
        assert open_size(memory, eid) == json_size(stored)


async def test_another_instance_sees_the_size_already_stored(backend: Backend) -> None:
    async with backend.open() as memory:
        eid = await memory.start_episode("Fill an episode from two processes")
        for n in range(1, 10):
            await memory.log_step(eid, step(n, BIG))
    async with backend.open() as other:  # a new instance: learns the size from the store
        with pytest.raises(ValidationError) as caught:
            await other.log_step(eid, step(10, BIG))
        assert caught.value.field == "episode"
        await other.log_step(eid, step(10))
        done = await other.complete_episode(eid, SuccessOutcome(verdict="done"))
    assert len(done.steps) == 10


def test_cli_log_step_sees_the_size_already_stored(backend: Backend) -> None:
    """``memory-cli episode log-step`` is a new process per call: it refuses the step that
    would overflow an episode filled by another process (exit 3), and accepts one that fits."""

    async def fill() -> tuple[uuid.UUID, int]:
        async with backend.open() as memory:
            eid = await memory.start_episode("Fill an episode, then log from the CLI")
            for n in range(1, 10):
                await memory.log_step(eid, step(n, BIG))
            room = v.MAX_OPEN_EPISODE_SIZE - open_size(memory, eid)
            filler = step(10, room - 100_000)  # leaves under 100 kB
            await memory.log_step(eid, filler)
            return eid, v.MAX_OPEN_EPISODE_SIZE - open_size(memory, eid)

    eid, room = asyncio.run(fill())
    assert 50_000 < room < 100_000
    env = {**os.environ, "MEMORY_DATA_DIR": str(backend.data_dir), "MEMORY_FORMAT": "json"}
    if backend.url:
        env["MEMORY_DB_URL"] = backend.url

    def log_step(params: dict[str, str]) -> subprocess.CompletedProcess[str]:
        args = ["episode", "log-step", str(eid), "-t", "editor", "-a", "append"]
        return subprocess.run(
            [*CLI, *args, "--params", json.dumps(params)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    refused = log_step({"content": "z" * 110_000})
    assert refused.returncode == 3, refused.stderr
    said = " ".join(refused.stderr.split())  # the terminal width wraps the line
    assert "Invalid 'episode'" in said
    assert "step 11" in said
    assert "10000000 bytes" in said
    accepted = log_step({"content": "z" * 1_000})
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["step_number"] == 11


async def test_outcome_over_its_limit_is_refused(backend: Backend) -> None:
    async with backend.open() as memory:
        eid = await memory.start_episode("Finish with a huge outcome")
        huge = SuccessOutcome(verdict="done", artifacts=["a" * 9_000] * 120)
        with pytest.raises(ValidationError) as caught:
            await memory.complete_episode(eid, huge)
        assert caught.value.field == "outcome"
        assert str(v.MAX_OUTCOME_SIZE) in str(caught.value)


class HeldAppends:
    """The real store, whose step writes wait until the test releases them."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def append_steps(self, episode_id: uuid.UUID, steps: list[ExecutionStep]) -> Any:
        self.entered.set()
        await self.release.wait()
        return await self._store.append_steps(episode_id, steps)


async def test_step_logged_during_a_flush_is_counted(backend: Backend) -> None:
    """A step logged while a flush is writing counts the steps in flight (its comma, its order)
    and keeps its bytes in the running size."""
    memory = backend.open()
    held = HeldAppends(memory.storage)
    memory.storage = held
    async with memory:
        eid = await memory.start_episode("Log while a flush is in flight")
        await memory.log_step(eid, step(1, 5_000))
        flushing = asyncio.create_task(memory.flush_steps(eid))
        try:
            await held.entered.wait()
            with pytest.raises(ValidationError) as caught:  # step 1 is being written: not again
                await memory.log_step(eid, step(1))
            assert caught.value.field == "step.step_number"
            await memory.log_step(eid, step(2, 7_000))
        finally:
            held.release.set()  # never leave the flush (and close) waiting
        assert await flushing == 1
        await memory.flush_steps(eid)
        stored = await memory.get_episode(eid)
        assert len(stored.steps) == 2
        assert open_size(memory, eid) == json_size(stored)
