"""Many processes, one store (real subprocesses on one data directory; the store is the
embedded SQLite file there, or one PostgreSQL schema whose DSN the children get with ``--url``):

- an episode started in one process gets steps in a second and is completed in a third;
- several processes and several asyncio tasks write at once and no lock error escapes;
- a writer killed with SIGKILL loses nothing it acknowledged, and the store opens clean.

The children run ``memory_child.py``; the parent reads their output line by line with a
timeout, never sleeping to wait for them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import defaultdict
from pathlib import Path

import apsw
import pytest

from backends.support import Backend
from self_learning_memory import (
    Episode,
    ExecutionStep,
    InvalidStateError,
    PatternFilters,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)
from self_learning_memory.storage.factory import DB_FILENAME

pytestmark = pytest.mark.integration

CHILD = Path(__file__).with_name("memory_child.py")
TIMEOUT = 30.0
CHILD_CONTEXT = TaskContext(domain="ops", language="python")  # what memory_child.py uses


async def spawn(store: Backend, *args: str) -> asyncio.subprocess.Process:
    """``memory_child.py COMMAND DATA_DIR ...`` on ``store`` (``--url`` for PostgreSQL)."""
    options = [] if store.url is None else ["--url", store.url]
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        *options,
        args[0],
        str(store.data_dir),
        *args[1:],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_child(store: Backend, *args: str) -> list[str]:
    """Run a child to the end; its stdout lines. Fails the test on any error it reports."""
    proc = await spawn(store, *args)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=TIMEOUT)
    text = out.decode()
    assert proc.returncode == 0, f"{args[0]} child failed: {text}{err.decode()}"
    assert "ERROR" not in text
    return text.splitlines()


def integrity(store: Backend) -> list[str]:
    """SQLite's own consistency check of the database file. On PostgreSQL (which keeps its own)
    only that no process wrote an embedded database into the data directory instead."""
    if not store.is_sqlite:
        stray = store.data_dir / DB_FILENAME
        return [f"{stray} exists: a process used the embedded store"] if stray.exists() else ["ok"]
    conn = apsw.Connection(str(store.data_dir / DB_FILENAME))
    try:
        return [r[0] for r in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


async def test_start_log_complete_in_three_processes(backend: Backend) -> None:
    async with backend.open() as parent:  # open alongside the children
        (line,) = await run_child(backend, "start", "Rotate the API signing keys")
        eid = uuid.UUID(line)
        assert not (await parent.get_episode(eid)).is_complete()

        assert await run_child(backend, "log", str(eid), "1", "4") == ["LOGGED"]
        seen = await parent.get_episode(eid)
        assert [s.step_number for s in seen.steps] == [1, 2, 3, 4]

        lines = await run_child(backend, "complete", str(eid))
        reported = Episode.model_validate_json(lines[-1])
        assert reported.is_complete()
        assert len(reported.steps) == 4

        # the parent, open all along, sees the completed episode with every step
        episode = await parent.get_episode(eid)
        assert episode == reported
        assert episode.task_description == "Rotate the API signing keys"
        assert episode.context == CHILD_CONTEXT
        assert [s.step_number for s in episode.steps] == [1, 2, 3, 4]
        assert [s.parameters for s in episode.steps] == [{"n": n} for n in range(1, 5)]
        assert episode.reward is not None
        assert episode.reflection is not None
        # the completion in another process is respected here
        with pytest.raises(InvalidStateError):
            await parent.log_step(
                eid, ExecutionStep(step_number=5, tool="shell", action="too late")
            )
        results = await parent.retrieve_relevant_context("rotate signing keys")
        assert [r.episode.episode_id for r in results] == [eid]

    async with backend.open() as reopened:
        assert await reopened.get_episode(eid) == reported
    assert integrity(backend) == ["ok"]


async def test_concurrent_writers_in_processes_and_tasks(backend: Backend) -> None:
    """3 processes x 3 tasks x 5 episodes plus 3 tasks x 5 episodes in this process, all on a
    fresh data directory and store (so they also race to create the schema and the cache)."""
    processes, tasks, episodes = 3, 3, 5
    children = [
        await spawn(backend, "writer", f"w{i}", str(tasks), str(episodes)) for i in range(processes)
    ]

    async def mine(memory: SelfLearningMemory, t: int) -> list[uuid.UUID]:
        ids = []
        for i in range(episodes):
            eid = await memory.start_episode(f"parent task {t} episode {i}", CHILD_CONTEXT)
            for n, tool in enumerate(["git", "editor", "pytest"], start=1):
                await memory.log_step(
                    eid,
                    ExecutionStep(
                        step_number=n, tool=tool, action=f"run command {n}", result=SuccessResult()
                    ),
                )
            await memory.complete_episode(eid, SuccessOutcome(verdict="ok"))
            ids.append(eid)
        return ids

    async with backend.open() as memory:
        own = await asyncio.wait_for(
            asyncio.gather(*(mine(memory, t) for t in range(tasks))), timeout=TIMEOUT
        )
    written = {eid for ids in own for eid in ids}
    for proc in children:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=TIMEOUT)
        text = out.decode()
        assert proc.returncode == 0, text + err.decode()
        assert "ERROR" not in text
        assert "locked" not in err.decode()
        lines = text.splitlines()
        assert len(lines) == tasks * episodes
        written |= {uuid.UUID(line.removeprefix("EPISODE ")) for line in lines}

    total = (processes + 1) * tasks * episodes
    assert len(written) == total
    async with backend.open() as memory:
        stored = await memory.list_episodes(limit=1000)
        assert {e.episode_id for e in stored} == written
        assert all(e.is_complete() and e.reward is not None for e in stored)
        assert all([s.tool for s in e.steps] == ["git", "editor", "pytest"] for e in stored)
        stats = await memory.stats()
        assert (stats.episodes, stats.completed, stats.steps) == (total, total, 3 * total)
        # aggregation under concurrency lost no update: one pattern counts every episode
        sequences = await memory.list_patterns(PatternFilters(pattern_type="tool_sequence"))
        assert [p.occurrence_count for p, _ in sequences] == [total]
    assert integrity(backend) == ["ok"]


async def read_acks(
    proc: asyncio.subprocess.Process, want_completions: int
) -> tuple[list[str], bool]:
    """Lines until ``want_completions`` episodes were acknowledged as completed."""
    assert proc.stdout is not None
    lines: list[str] = []
    completions = 0
    while completions < want_completions:
        raw = await asyncio.wait_for(proc.stdout.readline(), timeout=TIMEOUT)
        if not raw:
            return lines, False  # the child died on its own
        line = raw.decode().strip()
        lines.append(line)
        completions += line.startswith("ACK complete")
    return lines, True


async def kill_and_collect(proc: asyncio.subprocess.Process, lines: list[str]) -> None:
    """SIGKILL the child mid-write; every line it printed before dying is an acknowledgement."""
    assert proc.stdout is not None
    os.kill(proc.pid, signal.SIGKILL)
    rest = await asyncio.wait_for(proc.stdout.read(), timeout=TIMEOUT)
    await asyncio.wait_for(proc.wait(), timeout=TIMEOUT)
    assert proc.returncode == -signal.SIGKILL
    complete_lines = rest.decode().split("\n")[:-1]  # a torn last line was never acknowledged
    lines.extend(line.strip() for line in complete_lines)


async def test_sigkill_loses_no_acknowledged_write(backend: Backend) -> None:
    acked_starts: set[uuid.UUID] = set()
    acked_steps: dict[uuid.UUID, set[int]] = defaultdict(set)
    acked_completions: set[uuid.UUID] = set()
    finished_here: set[uuid.UUID] = set()
    for round_ in range(2):  # kill twice: the second writer starts on a store left by a kill
        proc = await spawn(backend, "acker")
        lines, alive = await read_acks(proc, want_completions=3 + round_)
        assert alive, f"the writer died by itself: {lines}"
        await kill_and_collect(proc, lines)
        for line in lines:
            assert line.startswith("ACK "), line
            kind, eid, *rest = line.split()[1:]
            episode_id = uuid.UUID(eid)
            if kind == "start":
                acked_starts.add(episode_id)
            elif kind == "step":
                acked_steps[episode_id].add(int(rest[0]))
            else:
                assert kind == "complete"
                acked_completions.add(episode_id)

        assert integrity(backend) == ["ok"]
        async with backend.open() as memory:
            health = await memory.health()
            assert all(report.healthy for report in health.values()), health
            for eid in acked_starts:
                episode = await memory.get_episode(eid)  # NotFoundError would fail the test
                stored = {s.step_number for s in episode.steps}
                assert acked_steps[eid] <= stored, f"acknowledged steps of {eid} were lost"
                if eid in acked_completions:
                    assert episode.is_complete()
                    assert episode.reward is not None
                    assert stored == {1, 2, 3}
            # the episode the kill interrupted can still be finished
            open_ones = acked_starts - acked_completions - finished_here
            for eid in open_ones:
                episode = await memory.get_episode(eid)
                if not episode.is_complete():
                    done = await memory.complete_episode(eid, SuccessOutcome(verdict="resumed"))
                    assert done.is_complete()
                finished_here.add(eid)
    assert len(acked_completions) >= 3 + 4
