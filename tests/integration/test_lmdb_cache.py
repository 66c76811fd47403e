"""The LMDB cache in front of the durable store (embedded SQLite, and PostgreSQL: the cache is in
the data directory either way), on real files: a corrupt entry is dropped and re-read from the
store (never returned), the cache stays bounded with LRU eviction, and a deleted episode is never
served again, not even by another process that still has it cached."""

from __future__ import annotations

import asyncio
import sys
import threading
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path

import lmdb
import pytest

from backends.support import Backend
from self_learning_memory import (
    CacheConfig,
    Episode,
    ExecutionStep,
    MemoryConfig,
    NotFoundError,
    SelfLearningMemory,
    StorageUnavailableError,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)
from self_learning_memory.storage.factory import CACHE_DIRNAME
from self_learning_memory.storage.lmdb_cache import EpisodeCache, encode

pytestmark = pytest.mark.integration

CHILD = Path(__file__).with_name("memory_child.py")
CTX = TaskContext(domain="infra", language="go")


async def record(memory: SelfLearningMemory, description: str) -> Episode:
    eid = await memory.start_episode(description, CTX, "debugging")
    await memory.log_step(
        eid,
        ExecutionStep(
            step_number=1,
            tool="kubectl",
            action="describe the failing pod",
            result=SuccessResult(output="CrashLoopBackOff"),
        ),
    )
    await memory.log_step(
        eid,
        ExecutionStep(
            step_number=2,
            tool="editor",
            action="raise the memory limit",
            result=SuccessResult(output="limits.memory: 512Mi"),
        ),
    )
    return await memory.complete_episode(eid, SuccessOutcome(verdict="pod is running"))


def cache_of(memory: SelfLearningMemory) -> EpisodeCache:
    assert memory.cache is not None
    return memory.cache


def poke(store: Backend, key: bytes, value: bytes) -> None:
    """Write raw bytes into the cache's items table, as a torn or foreign write would."""
    env = lmdb.open(str(store.data_dir / CACHE_DIRNAME), max_dbs=8)
    try:
        items = env.open_db(b"items")
        with env.begin(write=True, db=items) as txn:
            txn.put(key, value)
    finally:
        env.close()


def _other_episode(_: Episode, other: Episode) -> bytes:
    return encode(other)  # a valid entry, but for a different episode


def _bad_crc(episode: Episode, _: Episode) -> bytes:
    data = bytearray(encode(episode))
    data[-2] ^= 0xFF  # one flipped byte in the payload
    return bytes(data)


def _valid_crc_bad_json(_: Episode, __: Episode) -> bytes:
    payload = b'{"episode_id": "not a uuid", "steps": 7}'
    return b"SLM1" + zlib.crc32(payload).to_bytes(4, "big") + payload


GARBAGE: dict[str, Callable[[Episode, Episode], bytes]] = {
    "random-bytes": lambda e, o: b"\x00\xffgarbage\x13\x37" * 9,
    "too-short": lambda e, o: b"SL",
    "bad-crc": _bad_crc,
    "valid-crc-invalid-episode": _valid_crc_bad_json,
    "another-episodes-entry": _other_episode,
}


@pytest.mark.parametrize("make_garbage", list(GARBAGE.values()), ids=list(GARBAGE))
async def test_corrupt_entry_is_dropped_and_reread_from_sql(
    backend: Backend, make_garbage: Callable[[Episode, Episode], bytes]
) -> None:
    async with backend.open() as memory:
        episode = await record(memory, "Pod restarts after the deploy")
        other = await record(memory, "Ingress returns 502 for the API")
        assert episode.episode_id in set(cache_of(memory).keys())
        truth = await memory.storage.get_episode(episode.episode_id)
        assert truth == episode

    poke(backend, episode.episode_id.bytes, make_garbage(episode, other))

    async with backend.open() as memory:
        cache = cache_of(memory)
        got = await memory.get_episode(episode.episode_id)
        assert got == episode  # from SQL, not the garbage
        assert cache.stats.corrupt_dropped == 1
        assert cache.stats.hits == 0
        # the good copy read from SQL replaced the garbage: the next read is a clean hit
        assert cache.get(episode.episode_id) == episode
        assert cache.stats.hits == 1
        # the other episode's entry was not disturbed
        assert await memory.get_episode(other.episode_id) == other
        assert cache.stats.corrupt_dropped == 1


async def test_several_episodes_are_read_at_once_and_a_corrupt_one_is_dropped_alone(
    backend: Backend,
) -> None:
    """``get_many`` (a search's results in one transaction): the hits by id, a miss left out,
    a corrupt entry dropped and counted without disturbing the others, every hit touched for
    the LRU, and the results of retrieval read through it."""
    async with backend.open() as memory:
        first = await record(memory, "Pod restarts after the deploy")
        second = await record(memory, "Ingress returns 502 for the API")
        third = await record(memory, "Node runs out of disk")
    poke(backend, second.episode_id.bytes, b"SLM1\x00\x00\x00\x00{}")
    async with backend.open() as memory:
        cache = cache_of(memory)
        absent = uuid.uuid4()
        ids = [third.episode_id, absent, second.episode_id, first.episode_id]
        got = cache.get_many(ids)
        assert got == {third.episode_id: third, first.episode_id: first}
        assert (cache.stats.hits, cache.stats.misses, cache.stats.corrupt_dropped) == (2, 2, 1)
        assert second.episode_id not in set(cache.keys())  # dropped; the others kept
        assert set(cache._touched) == {third.episode_id.bytes, first.episode_id.bytes}
        # the memory's reads go through it: the dropped one comes from the store
        assert await memory.get_episode(second.episode_id) == second
        assert cache.get_many([second.episode_id]) == {second.episode_id: second}


async def test_corrupt_entry_is_never_returned_by_retrieval(backend: Backend) -> None:
    async with backend.open() as memory:
        episode = await record(memory, "Pod restarts after the deploy")
    poke(backend, episode.episode_id.bytes, b"SLM1\x00\x00\x00\x00{}")
    async with backend.open() as memory:
        results = await memory.retrieve_relevant_context("pod restarts", CTX)
        assert [r.episode for r in results] == [episode]
        assert cache_of(memory).stats.corrupt_dropped == 1


async def test_eviction_keeps_the_cache_bounded_and_lru(backend: Backend) -> None:
    config = MemoryConfig(cache=CacheConfig(max_episodes=3))
    async with backend.open(config) as memory:
        cache = cache_of(memory)
        ids: list[uuid.UUID] = []
        for i in range(8):
            ids.append((await record(memory, f"Incident number {i} in the cluster")).episode_id)
            assert cache.entries() <= 3
        assert set(cache.keys()) == set(ids[-3:])  # the three most recent
        assert cache.stats.evictions == 5

        # a hit refreshes recency: ids[5] is now the most recently used of the three
        assert (await memory.get_episode(ids[5])).episode_id == ids[5]
        assert cache.stats.hits == 1
        # a miss is read from SQL and cached, evicting the least recently used: ids[6]
        old = await memory.get_episode(ids[0])
        assert old.episode_id == ids[0]
        assert set(cache.keys()) == {ids[5], ids[7], ids[0]}
        assert cache.entries() == 3
        # every episode is still readable: the cache is bounded, the data is not
        for eid in ids:
            assert (await memory.get_episode(eid)).episode_id == eid
        assert cache.entries() == 3
        stats = await memory.stats()
        assert stats.cache is not None
        assert stats.cache.entries == 3


async def test_deleted_episode_is_not_served_from_the_cache(backend: Backend) -> None:
    async with backend.open() as memory:
        cache = cache_of(memory)
        stale = await record(memory, "Node runs out of disk")
        assert stale.episode_id in set(cache.keys())
        await memory.delete_episode(stale.episode_id)
        assert stale.episode_id not in set(cache.keys())
        with pytest.raises(NotFoundError):
            await memory.get_episode(stale.episode_id)
        # a reader that loaded the episode before the delete puts it back: the tombstone wins
        cache.put(stale)
        assert cache.get(stale.episode_id) is None
        with pytest.raises(NotFoundError):
            await memory.get_episode(stale.episode_id)
        assert await memory.retrieve_relevant_context("node out of disk", CTX) == []


async def test_delete_in_another_process_is_seen_through_the_shared_cache(backend: Backend) -> None:
    async with backend.open() as memory:
        cache = cache_of(memory)
        kept = await record(memory, "DNS lookups time out")
        gone = await record(memory, "Certificates expired on the gateway")
        assert await memory.get_episode(gone.episode_id) == gone  # cached and served here
        assert gone.episode_id in set(cache.keys())

        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(CHILD),
            *([] if backend.url is None else ["--url", backend.url]),
            "delete",
            str(backend.data_dir),
            str(gone.episode_id),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(child.communicate(), timeout=60)
        assert child.returncode == 0, (out + err).decode()
        assert out.decode().strip() == "DELETED"

        with pytest.raises(NotFoundError):
            await memory.get_episode(gone.episode_id)
        cache.put(gone)  # this process's stale copy cannot come back either
        assert cache.get(gone.episode_id) is None
        assert await memory.get_episode(kept.episode_id) == kept


def sqlite_threads() -> int:
    return sum(t.name.startswith("sqlite") for t in threading.enumerate())


async def test_second_open_of_a_data_dir_in_one_process_is_a_typed_error(
    backend: Backend,
) -> None:
    """Regression: LMDB refuses a second environment on one path per process; that escaped as a
    raw ``lmdb.Error`` and left the second memory's SQLite connection and thread open (on
    PostgreSQL: its pool's and listener's tasks)."""
    async with backend.open() as first:
        episode = await record(first, "Pod restarts after the deploy")
        threads, tasks = sqlite_threads(), len(asyncio.all_tasks())
        second = backend.open()
        with pytest.raises(StorageUnavailableError, match="cache"):
            await second.start()
        assert sqlite_threads() == threads  # nothing leaked
        assert len(asyncio.all_tasks()) == tasks
        assert await first.get_episode(episode.episode_id) == episode  # unaffected
    async with backend.open() as later:  # free again once closed
        assert await later.get_episode(episode.episode_id) == episode
