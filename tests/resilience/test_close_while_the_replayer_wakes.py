"""Regression: ``ResilientStorage.close()`` hung forever when it cancelled the outbox replayer
just as the replayer's wake-up event fired. Python 3.11's ``asyncio.wait_for`` returns the inner
result instead of raising when a cancellation arrives after the inner wait finished, so the loop
went round again and ``close()`` waited on it for good (seen as a PostgreSQL memory whose second
open of a data directory failed on the LMDB cache and then never returned)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from self_learning_memory.resilience.outbox import Outbox
from self_learning_memory.resilience.resilient import ResilientStorage
from self_learning_memory.storage.sqlite import SQLiteStorage


async def test_close_right_after_a_wake_up_returns(tmp_path: Path) -> None:
    # close after every number of loop turns up to ten: one of them lands in the window where
    # the woken wait has finished and the replayer has not resumed yet
    for turns in range(10):
        store = ResilientStorage(
            SQLiteStorage(tmp_path / f"memory{turns}.db"),
            outbox=Outbox(tmp_path / f"outbox{turns}.db"),
            replay_interval_s=60.0,
        )
        await store.initialize()  # starts the replayer and wakes it once
        assert store.replayer is not None
        replayer = store.replayer.task
        assert replayer is not None
        for _ in range(turns):
            await asyncio.sleep(0)
        await asyncio.wait_for(store.close(), timeout=5)  # TimeoutError here was the hang
        assert replayer.done()
