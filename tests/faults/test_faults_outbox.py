"""A damaged outbox.db (the journal of writes acknowledged while the primary store is down), with
a flaky primary and resilience on so the outbox is used: a garbled file gives a typed
DataIntegrityError naming the file and what to do, never a raw apsw error; a 0-byte file is a
known gap (the queued writes vanish without a word: the xfail below)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from resilience.test_outbox import open_memory, record
from self_learning_memory import DataIntegrityError

pytestmark = pytest.mark.integration


async def _queued(tmp_path: Path) -> list[uuid.UUID]:
    memory, flaky, wrapped = open_memory(tmp_path)
    flaky.down = True
    async with memory:
        ids = [await record(memory, f"n{i}", 2) for i in range(2)]
        assert (await wrapped.resilience_status())["outbox"]["pending"] > 0
    return ids


async def test_a_garbled_outbox_gives_a_typed_error(tmp_path: Path) -> None:
    await _queued(tmp_path)
    with (tmp_path / "outbox.db").open("r+b") as f:
        f.write(b"\xa5" * 200)
    memory, flaky, _ = open_memory(tmp_path)
    flaky.down = True
    with pytest.raises(DataIntegrityError, match=r"outbox .*outbox\.db is damaged"):
        async with memory:
            pass


@pytest.mark.xfail(
    strict=True,
    reason="known gap (reported with issue 12): a 0-byte outbox.db is taken for a new one and "
    "the writes it journaled are dropped without a warning",
)
async def test_an_emptied_outbox_is_reported(tmp_path: Path) -> None:
    await _queued(tmp_path)
    os.truncate(tmp_path / "outbox.db", 0)
    memory, flaky, _ = open_memory(tmp_path)
    flaky.down = True
    with pytest.raises(DataIntegrityError):
        async with memory:
            pass
