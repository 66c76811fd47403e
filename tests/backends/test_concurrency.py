"""Many processes, one store (embedded SQLite, and one PostgreSQL schema): nothing lost, nothing double-counted, no errors;
and one process's change evicts another process's cache entry (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import pytest

from self_learning_memory import (
    ExecutionStep,
    MemoryConfig,
    PatternFilters,
    SelfLearningMemory,
    SuccessOutcome,
    TaskContext,
)
from self_learning_memory.storage.postgres import PostgresStorage
from support.polling import poll_until

from .support import Backend

pytestmark = pytest.mark.integration

CHILD = Path(__file__).with_name("store_child.py")
PROCESSES = 10
EPISODES = 3
TOOLS = ["checkout", "build", "deploy"]


def on(url: str) -> MemoryConfig:
    return MemoryConfig.model_validate({"storage": {"url": url}})


async def test_ten_processes_aggregate_one_pattern_without_loss(backend: Backend) -> None:
    async with backend.open():
        pass  # migrate once up front so the children race on data, not on DDL
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(CHILD),
            backend.url or "-",
            str(backend.data_dir),  # one data directory: the embedded store, a shared cache
            f"p{i}",
            str(EPISODES),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for i in range(PROCESSES)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 120)
    acknowledged: set[uuid.UUID] = set()
    for proc, (out, err) in zip(procs, outputs, strict=True):
        text = out.decode()
        assert proc.returncode == 0, text + err.decode()
        assert "ERROR" not in text
        acknowledged |= {uuid.UUID(line.split()[1]) for line in text.splitlines()}
    total = PROCESSES * EPISODES
    assert len(acknowledged) == total

    async with backend.open() as memory:
        stats = await memory.stats()
        assert (stats.episodes, stats.completed, stats.steps) == (total, total, total * 3)
        episodes = await memory.list_episodes(limit=total)
        assert {e.episode_id for e in episodes} == acknowledged
        assert all([s.step_number for s in e.steps] == [1, 2, 3] for e in episodes)
        sequences = [
            p
            for p, _usage in await memory.list_patterns(
                PatternFilters(pattern_type="tool_sequence")
            )
            if p.tools == TOOLS  # type: ignore[union-attr]
        ]
        assert len(sequences) == 1, "one aggregated pattern per similarity key"
        assert sequences[0].occurrence_count == total  # no lost update
        evidence = await memory.pattern_evidence([sequences[0].id], per_pattern=100)
        assert set(evidence[sequences[0].id]) == acknowledged  # linked to every episode


async def test_another_process_delete_evicts_the_cache_entry(pg_url: str, tmp_path: Path) -> None:
    ctx = TaskContext(domain="ops")
    async with (
        SelfLearningMemory.open(tmp_path / "a", config=on(pg_url)) as writer,
        SelfLearningMemory.open(tmp_path / "b", config=on(pg_url)) as reader,
    ):
        store = getattr(reader.storage, "primary", reader.storage)
        assert isinstance(store, PostgresStorage)
        assert store.listener is not None
        await asyncio.wait_for(store.listener.connected.wait(), 10)
        eid = await writer.start_episode("drain the old node pool", ctx)
        await writer.log_step(eid, ExecutionStep(step_number=1, tool="kubectl", action="drain"))
        await writer.complete_episode(eid, SuccessOutcome(verdict="drained"))
        await reader.get_episode(eid)  # read through: now in the reader's LMDB cache
        assert reader.cache is not None
        cache = reader.cache
        if await asyncio.to_thread(cache.get, eid) is None:
            await asyncio.to_thread(cache.put, await reader.get_episode(eid))
        assert await asyncio.to_thread(cache.get, eid) is not None
        await writer.delete_episode(eid)

        async def evicted() -> bool:
            return await asyncio.to_thread(cache.get, eid) is None

        await poll_until(evicted, timeout=10, message="the reader's cache entry was not evicted")
        assert store.listener.received >= 1
