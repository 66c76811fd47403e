"""Regression: a LISTEN/NOTIFY episode change delivered while (or after) a memory closes raised
``lmdb.Error: Attempt to operate on closed/deleted/dropped object`` in the eviction callback,
because close() closed the LMDB cache while the PostgreSQL listener was still running.

close() now stops the listener before it closes the cache, and the callback ignores a closed
cache (a change already being applied finishes before the cache closes)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import pytest

from self_learning_memory import MemoryConfig, SelfLearningMemory
from self_learning_memory.storage.postgres import PostgresStorage

pytestmark = pytest.mark.integration
CALLBACK_FAILED = "episode-change callback failed"


def on(url: str) -> MemoryConfig:
    return MemoryConfig.model_validate({"storage": {"url": url}})


def primary_of(memory: SelfLearningMemory) -> PostgresStorage:
    store = getattr(memory.storage, "primary", memory.storage)
    assert isinstance(store, PostgresStorage)
    return store


async def test_close_stops_the_listener_before_the_cache_closes(
    pg_url: str, tmp_path: Path
) -> None:
    memory = SelfLearningMemory.open(tmp_path / "m", config=on(pg_url))
    await memory.start()
    store = primary_of(memory)
    listener = store.listener
    assert listener is not None
    await asyncio.wait_for(listener.connected.wait(), 10)
    cache = memory.cache
    assert cache is not None
    listening_at_cache_close: list[bool] = []
    close_cache = cache.close

    def recording_close() -> None:
        listening_at_cache_close.append(listener.running)
        close_cache()

    cache.close = recording_close  # type: ignore[method-assign]
    await memory.close()
    assert listening_at_cache_close == [False]
    assert store.listener is None


async def test_a_change_delivered_after_close_is_ignored(
    pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    memory = SelfLearningMemory.open(tmp_path / "m", config=on(pg_url))
    await memory.start()
    listener = primary_of(memory).listener
    assert listener is not None
    await memory.close()
    caplog.set_level(logging.ERROR)
    # what a notification already read from the socket does when it is dispatched late
    for op in ("steps", "completed", "deleted"):
        payload = f"{listener.schema}|{op}|{uuid.uuid4()}"
        await listener._dispatch(-1, payload)  # -1: not one of our pool's server pids
    assert listener.received == 3
    assert [r for r in caplog.records if CALLBACK_FAILED in r.getMessage()] == []
