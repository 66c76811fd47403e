"""A damaged outbox.db (the journal of writes acknowledged while the primary store is down), with
a flaky primary and resilience on so the outbox is used: a garbled file gives a typed
DataIntegrityError naming the file and what to do, never a raw apsw error; a 0-byte, deleted or
replaced file while writes were queued is refused the same way (the marker ``outbox.db.pending``,
``resilience/outbox_marker.py``), while a drained outbox, or a marker left by a crash after the
drain, opens as before."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pytest

from resilience.test_outbox import open_memory, record
from self_learning_memory import DataIntegrityError
from self_learning_memory.resilience.outbox import Outbox

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


def _pending_marker(tmp_path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((tmp_path / "outbox.db.pending").read_text())
    return data


async def _refused(tmp_path: Path, pattern: str) -> None:
    memory, flaky, _ = open_memory(tmp_path)
    flaky.down = True
    with pytest.raises(DataIntegrityError, match=pattern) as caught:
        async with memory:
            pass
    text = str(caught.value)
    assert "outbox.db.pending" in text
    assert "up to 6 write(s)" in text  # two episodes, each journaled as start, steps, completion
    assert "Nothing was opened" in text


@pytest.mark.parametrize("how", ["truncated", "deleted", "replaced"])
async def test_an_emptied_outbox_is_reported(tmp_path: Path, how: str) -> None:
    """Was: a 0-byte outbox.db was taken for a new one and its queued writes vanished."""
    await _queued(tmp_path)
    marker = _pending_marker(tmp_path)
    assert marker["first_seq"] == 1
    box = tmp_path / "outbox.db"
    if how == "truncated":
        os.truncate(box, 0)
        await _refused(tmp_path, r"outbox .*outbox\.db is empty \(0 bytes\)")
        assert box.stat().st_size == 0  # nothing re-created over it
    elif how == "deleted":
        for name in ("outbox.db", "outbox.db-wal", "outbox.db-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        await _refused(tmp_path, r"outbox .*outbox\.db is missing")
        assert not box.exists()
    else:  # a new, empty outbox put in its place
        for name in ("outbox.db", "outbox.db-wal", "outbox.db-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        fresh = Outbox(tmp_path / "fresh" / "outbox.db")
        fresh.open()
        fresh.close()
        shutil.copyfile(tmp_path / "fresh" / "outbox.db", box)
        await _refused(tmp_path, r"holds none of the queued writes")


async def test_a_drained_outbox_drops_its_marker_and_opens(tmp_path: Path) -> None:
    ids = await _queued(tmp_path)
    assert (tmp_path / "outbox.db.pending").exists()
    memory, _, wrapped = open_memory(tmp_path)
    async with memory:  # the primary is back: the outbox replays and drains
        assert await wrapped.wait_replayed(10)
        assert not (tmp_path / "outbox.db.pending").exists()
        assert (await memory.get_episode(ids[0])).is_complete()
    # a marker left by a crash between the drain and its removal is no loss: removed at open
    (tmp_path / "outbox.db.pending").write_text('{"first_seq": 1, "last_seq": 6, "since": 0}')
    memory, _, _ = open_memory(tmp_path)
    async with memory:
        assert not (tmp_path / "outbox.db.pending").exists()


async def test_a_torn_marker_still_refuses_an_emptied_outbox(tmp_path: Path) -> None:
    """A crash while the marker was refreshed leaves it unreadable: still evidence of a loss."""
    await _queued(tmp_path)
    (tmp_path / "outbox.db.pending").write_bytes(b'{"first_seq": 1, "la')
    os.truncate(tmp_path / "outbox.db", 0)
    memory, flaky, _ = open_memory(tmp_path)
    flaky.down = True
    with pytest.raises(DataIntegrityError, match="an unknown number of writes"):
        async with memory:
            pass
