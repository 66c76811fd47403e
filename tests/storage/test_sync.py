"""StorageSynchronizer on real files (SQLite primary, LMDB cache): first sync fills the cache
and the pattern/heuristic index, the three conflict strategies, stale removal, persisted state,
failures recorded, and the periodic task owned by SelfLearningMemory."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from self_learning_memory import (
    CacheConfig,
    Episode,
    ExecutionStep,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)
from self_learning_memory.config import SyncConfig
from self_learning_memory.model.episode import utc_now
from self_learning_memory.model.records import PatternFilters
from self_learning_memory.storage.lmdb_cache import EpisodeCache
from self_learning_memory.storage.sync import (
    HEURISTIC_PREFIX,
    PATTERN_PREFIX,
    STATE_KEY,
    ConflictStrategy,
    StorageSynchronizer,
)

pytestmark = pytest.mark.integration

CTX = TaskContext(domain="infra", language="go")


async def record(memory: SelfLearningMemory, description: str) -> Episode:
    eid = await memory.start_episode(description, CTX, "debugging")
    for n, (tool, action) in enumerate(
        [
            ("kubectl", "check whether the pod is crash looping"),
            ("editor", "raise the limit"),
            ("kubectl", "apply"),
        ],
        start=1,
    ):
        await memory.log_step(
            eid,
            ExecutionStep(
                step_number=n, tool=tool, action=action, result=SuccessResult(output="ok")
            ),
        )
    return await memory.complete_episode(eid, SuccessOutcome(verdict="pod is running"))


@pytest.fixture
async def primary(tmp_path: Path) -> AsyncIterator[SelfLearningMemory]:
    """A memory whose own cache is off: the synchronizer's cache starts empty."""
    config = MemoryConfig(cache=CacheConfig(enabled=False))
    async with SelfLearningMemory.open(tmp_path / "primary", config=config) as memory:
        yield memory


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[EpisodeCache]:
    c = EpisodeCache(tmp_path / "cache", max_entries=100)
    c.open()
    yield c
    c.close()


async def test_first_sync_fills_cache_index_and_state(
    primary: SelfLearningMemory, cache: EpisodeCache
) -> None:
    episodes = [await record(primary, f"fix crash loop {i}") for i in range(3)]
    sync = StorageSynchronizer(primary.storage, cache)
    stats, report = await sync.sync_all_recent()
    assert stats.episodes_synced == 3
    assert report.added == 3
    assert sorted(cache.keys()) == sorted(e.episode_id for e in episodes)
    assert cache.get(episodes[0].episode_id) == episodes[0]
    stored_patterns = await primary.storage.list_patterns(PatternFilters(), 100, 0)
    assert stored_patterns, "the primary learned patterns"
    assert stats.patterns_synced == len(stored_patterns)
    cached = await sync.cached_patterns()
    assert {p.id for p, _ in cached} == {p.id for p, _ in stored_patterns}
    heuristics = await primary.storage.list_heuristics(100, 0)
    assert heuristics, "three successes with the same decision step make a heuristic"
    assert stats.heuristics_synced == len(heuristics)
    assert {h.heuristic_id for h in await sync.cached_heuristics()} == {
        h.heuristic_id for h in heuristics
    }
    # nothing changed: a second run writes nothing
    again, report2 = await sync.sync_all_recent()
    assert (again.episodes_synced, again.patterns_synced, again.heuristics_synced) == (0, 0, 0)
    assert report2.unchanged == 3
    # state persisted in the LMDB env: a new synchronizer (a new process) sees it
    raw = cache.meta_get(STATE_KEY)
    assert raw is not None
    assert json.loads(raw)["sync_count"] == 2
    fresh = StorageSynchronizer(primary.storage, cache)
    state = await fresh.load_state()
    assert state.sync_count == 2
    assert state.last_sync is not None
    assert state.last_stats is not None
    assert state.last_stats["episodes_unchanged"] == 3
    assert fresh.report()["strategy"] == "primary_wins"


async def _conflicted(
    primary: SelfLearningMemory, cache: EpisodeCache, shift: timedelta
) -> tuple[Episode, Episode]:
    """An episode in the primary, and a different cached version ``shift`` later."""
    truth = await record(primary, "fix the crash loop")
    assert truth.end_time is not None
    other = truth.model_copy(
        update={"task_description": "edited in the cache", "end_time": truth.end_time + shift}
    )
    cache.put(other)
    return truth, other


@pytest.mark.parametrize(
    ("strategy", "shift", "primary_kept"),
    [
        ("primary_wins", timedelta(hours=1), True),
        ("cache_wins", timedelta(hours=-1), False),
        ("most_recent", timedelta(hours=1), False),  # the cache's version is newer
        ("most_recent", timedelta(hours=-1), True),  # the primary's version is newer
    ],
)
async def test_episode_conflicts_follow_the_strategy(
    primary: SelfLearningMemory,
    cache: EpisodeCache,
    strategy: str,
    shift: timedelta,
    primary_kept: bool,
) -> None:
    truth, other = await _conflicted(primary, cache, shift)
    sync = StorageSynchronizer(primary.storage, cache, strategy=strategy, index_limit=0)
    stats, report = await sync.sync_all_recent()
    assert stats.conflicts_resolved == 1
    assert stats.kept_cached == (0 if primary_kept else 1)
    assert report.strategy == strategy
    assert cache.get(truth.episode_id) == (truth if primary_kept else other)


async def test_force_rewrites_even_under_cache_wins(
    primary: SelfLearningMemory, cache: EpisodeCache
) -> None:
    truth, _ = await _conflicted(primary, cache, timedelta(hours=1))
    sync = StorageSynchronizer(primary.storage, cache, strategy="cache_wins", index_limit=0)
    await sync.sync_all_recent(force=True)
    assert cache.get(truth.episode_id) == truth


@pytest.mark.parametrize(
    ("strategy", "shift", "primary_kept"),
    [
        (ConflictStrategy.PRIMARY_WINS, timedelta(days=1), True),
        (ConflictStrategy.CACHE_WINS, timedelta(days=-1), False),
        (ConflictStrategy.MOST_RECENT, timedelta(days=1), False),
        (ConflictStrategy.MOST_RECENT, timedelta(days=-1), True),
    ],
)
async def test_pattern_and_heuristic_conflicts_follow_the_strategy(
    primary: SelfLearningMemory,
    cache: EpisodeCache,
    strategy: ConflictStrategy,
    shift: timedelta,
    primary_kept: bool,
) -> None:
    for i in range(3):  # a decision step seen in three successes is a heuristic
        await record(primary, f"fix the crash loop {i}")
    sync = StorageSynchronizer(primary.storage, cache, strategy=strategy)
    await sync.sync_all_recent()
    (pattern, usage), *_ = await sync.cached_patterns()
    heuristic = (await sync.cached_heuristics())[0]
    edited_p = pattern.model_copy(
        update={"occurrence_count": 99, "updated_at": pattern.updated_at + shift}
    )
    edited_h = heuristic.model_copy(
        update={"action": "edited in the cache", "updated_at": heuristic.updated_at + shift}
    )
    cache.meta_put(
        {
            PATTERN_PREFIX + pattern.id.bytes: json.dumps(
                {"pattern": edited_p.model_dump_json(), "usage": usage.model_dump_json()},
                sort_keys=True,
            ).encode(),
            HEURISTIC_PREFIX + heuristic.heuristic_id.bytes: edited_h.model_dump_json().encode(),
        }
    )
    stats, _ = await sync.sync_all_recent()
    assert stats.conflicts_resolved == 2
    assert stats.kept_cached == (0 if primary_kept else 2)
    cached_p = {p.id: p for p, _ in await sync.cached_patterns()}[pattern.id]
    cached_h = {h.heuristic_id: h for h in await sync.cached_heuristics()}[heuristic.heuristic_id]
    assert cached_p == (pattern if primary_kept else edited_p)
    assert cached_h == (heuristic if primary_kept else edited_h)


async def test_deleted_episodes_leave_the_cache(
    primary: SelfLearningMemory, cache: EpisodeCache
) -> None:
    keep = await record(primary, "keep me")
    gone = await record(primary, "delete me")
    sync = StorageSynchronizer(primary.storage, cache)
    await sync.sync_all_recent()
    await primary.delete_episode(gone.episode_id)
    stats, _ = await sync.sync_all_recent()
    assert stats.episodes_removed == 1
    assert cache.keys() == [keep.episode_id]


async def test_window_and_since(primary: SelfLearningMemory, cache: EpisodeCache) -> None:
    await record(primary, "an episode")
    sync = StorageSynchronizer(primary.storage, cache, index_limit=0)
    stats, report = await sync.sync_all_recent(utc_now() + timedelta(minutes=1))
    assert report.examined == 0
    assert stats.episodes_synced == 0
    stats, report = await sync.sync_all_recent()  # default: the window (1 h)
    assert report.examined == 1
    assert stats.episodes_synced == 1


async def test_dry_run_writes_nothing(primary: SelfLearningMemory, cache: EpisodeCache) -> None:
    await record(primary, "an episode")
    sync = StorageSynchronizer(primary.storage, cache)
    stats, report = await sync.sync_all_recent(dry_run=True)
    assert report.added == 1
    assert stats.patterns_synced > 0
    assert cache.entries() == 0
    assert cache.meta_scan(PATTERN_PREFIX) == []
    assert cache.meta_get(STATE_KEY) is None


async def test_a_failed_run_is_recorded_and_persisted(tmp_path: Path, cache: EpisodeCache) -> None:
    config = MemoryConfig(cache=CacheConfig(enabled=False))
    memory = SelfLearningMemory.open(tmp_path / "p", config=config)
    await memory.start()
    await memory.close()  # the store is closed: every read fails
    sync = StorageSynchronizer(memory.storage, cache)
    with pytest.raises(Exception, match="closed"):
        await sync.sync_all_recent()
    state = await StorageSynchronizer(memory.storage, cache).load_state()
    assert state.error_count == 1
    assert state.sync_count == 0
    assert state.last_error is not None
    assert "closed" in state.last_error


async def test_periodic_task_is_owned_by_the_memory(tmp_path: Path) -> None:
    config = MemoryConfig(sync=SyncConfig(enabled=True, interval_s=0.05, strategy="most_recent"))
    async with SelfLearningMemory.open(tmp_path / "m", config=config) as memory:
        sync = memory.synchronizer
        assert sync is not None
        assert sync.running
        assert sync.strategy is ConflictStrategy.MOST_RECENT
        await record(memory, "an episode")
        assert await sync.wait_for_runs(2, timeout=10)
        health = await memory.health()
        assert health["synchronizer"].healthy
        assert health["synchronizer"].details["sync_count"] >= 2
        stats = await memory.stats()
        assert stats.sync is not None
        assert stats.sync["periodic"] is True
        task = sync._task
    assert task is not None
    assert task.done()
    assert memory.synchronizer is not None
    assert not memory.synchronizer.running
    # the state survived the close: a new memory on the same directory sees the count
    async with SelfLearningMemory.open(tmp_path / "m", config=config) as again:
        assert again.synchronizer is not None
        assert again.synchronizer.state.sync_count >= 2


async def test_off_by_default_for_the_embedded_store(tmp_path: Path) -> None:
    async with SelfLearningMemory.open(tmp_path / "m") as memory:
        assert memory.synchronizer is None
        assert "synchronizer" not in await memory.health()
        assert (await memory.stats()).sync is None


async def test_periodic_loop_survives_a_failing_run(
    primary: SelfLearningMemory, cache: EpisodeCache
) -> None:
    sync = StorageSynchronizer(primary.storage, cache, interval_s=0.02)
    calls = 0
    original = sync.sync_all_recent

    async def flaky(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("primary unreachable")
        return await original()

    sync.sync_all_recent = flaky  # type: ignore[method-assign]
    await sync.start()
    try:
        assert await sync.wait_for_runs(1, timeout=10)
    finally:
        await sync.stop()
    assert calls >= 2
    assert not sync.running
    assert sync.state.sync_count >= 1
