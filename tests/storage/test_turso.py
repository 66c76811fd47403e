"""The Turso store in libsql's local-file mode (the remote round-trip cannot be tested on this
machine): the core behaviours through SelfLearningMemory (lifecycle, steps, completion with
learning, retrieval, delete, stats, health), reopen, a migration into it, and the degraded
start when the remote refuses connections."""

from __future__ import annotations

from pathlib import Path

import pytest

from self_learning_memory import (
    ExecutionStep,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)
from self_learning_memory.config import CacheConfig
from self_learning_memory.errors import ValidationError
from self_learning_memory.model.records import EpisodeFilters
from self_learning_memory.storage.lmdb_cache import EpisodeCache
from self_learning_memory.storage.migrate import migrate
from self_learning_memory.storage.sqlite import SQLiteStorage
from self_learning_memory.storage.turso import TursoStorage

pytest.importorskip("libsql")
pytestmark = pytest.mark.integration

CTX = TaskContext(domain="infra", language="go")


async def record(memory: SelfLearningMemory, description: str) -> None:
    eid = await memory.start_episode(description, CTX, "debugging")
    for n, (tool, action) in enumerate(
        [("kubectl", "check whether the pod is crash looping"), ("editor", "raise the limit")],
        start=1,
    ):
        await memory.log_step(
            eid,
            ExecutionStep(
                step_number=n, tool=tool, action=action, result=SuccessResult(output="ok")
            ),
        )
    await memory.complete_episode(eid, SuccessOutcome(verdict="pod is running"))


def turso_memory(tmp_path: Path) -> SelfLearningMemory:
    cache = EpisodeCache(tmp_path / "cache")
    return SelfLearningMemory(
        TursoStorage(tmp_path / "replica.db"),
        config=MemoryConfig(cache=CacheConfig(enabled=True)),
        cache=cache,
    )


async def test_lifecycle_learning_retrieval_and_reopen(tmp_path: Path) -> None:
    async with turso_memory(tmp_path) as memory:
        for i in range(3):
            await record(memory, f"fix the crash loop in service {i}")
        episodes = await memory.list_episodes(limit=10)
        assert len(episodes) == 3
        assert all(e.is_complete() and e.reward is not None for e in episodes)
        assert [s.step_number for s in episodes[0].steps] == [1, 2]
        found = await memory.retrieve_relevant_context("crash loop service", CTX, limit=2)
        assert found
        assert found[0].episode.episode_id in {e.episode_id for e in episodes}
        log = memory.storage.capabilities.candidate_log  # the embedded store's, on libsql
        assert log is not None
        _, changed = await log.changed_since(0)
        assert set(changed or []) == {e.episode_id for e in episodes}
        stats = await memory.stats()
        assert (stats.episodes, stats.steps) == (3, 6)
        assert stats.patterns >= 1
        assert stats.heuristics >= 1
        eid = await memory.start_episode("open one", CTX, "debugging")
        await memory.log_step(eid, ExecutionStep(step_number=1, tool="git", action="log"))
        await memory.flush_steps(eid)
        with pytest.raises(ValidationError):  # the store's checks run on libsql too
            await memory.storage.append_steps(
                eid, [ExecutionStep(step_number=1, tool="git", action="again")]
            )
        assert await memory.storage.delete_episode(episodes[0].episode_id)
        health = await memory.health()
        assert health["primary_storage"].healthy
        assert health["primary_storage"].details["mode"] == "local file"
        assert health["primary_storage"].details["degraded"] is False
    async with turso_memory(tmp_path) as again:
        assert await again.storage.count_episodes(EpisodeFilters()) == 3


async def test_migrate_sqlite_into_turso(tmp_path: Path) -> None:
    async with SelfLearningMemory.open(tmp_path / "embedded") as memory:
        for i in range(2):
            await record(memory, f"fix the crash loop {i}")
    async with (
        SQLiteStorage(tmp_path / "embedded" / "memory.db") as src,
        TursoStorage(tmp_path / "t.db") as dst,
    ):
        report = await migrate(src, dst)
        assert report.verified, report.problems
        assert report.target_after == report.source_counts
        assert (await migrate(src, dst)).target_after == report.source_counts


async def test_starts_degraded_when_the_remote_is_unreachable(tmp_path: Path) -> None:
    storage = TursoStorage(
        tmp_path / "replica.db", sync_url="libsql://127.0.0.1:9", auth_token="token"
    )
    async with SelfLearningMemory(storage) as memory:
        assert storage.degraded
        assert storage.last_remote_error
        await record(memory, "written while the remote is away")
        assert await memory.storage.count_episodes(EpisodeFilters()) == 1
        health = (await memory.health())["primary_storage"]
        assert health.details["degraded"] is True
        assert health.details["serving"].endswith(".offline.db")
        assert await storage.reconnect() is False  # still unreachable: stays degraded
        assert storage.degraded
    assert storage.offline_path.exists()  # kept for the replay when the remote returns


def test_from_url() -> None:
    s = TursoStorage.from_url("libsql://db-org.turso.io?authToken=abc", local_path="/tmp/r.db")
    assert s.sync_url == "libsql://db-org.turso.io"
    assert s.auth_token == "abc"
    local = TursoStorage.from_url("file:/tmp/x.db")
    assert local.sync_url is None
