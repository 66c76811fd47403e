"""A damaged write-ahead log (memory.db-wal truncated, zeroed or garbled while no process has the
store open, left behind by a writer killed with SIGKILL): the store still opens, serves and
passes ``PRAGMA integrity_check``; SQLite drops the WAL frames from the damage on (its checksum
recovery). That the acknowledged writes in those frames go missing without a word is a known gap
(the xfail below)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from self_learning_memory import SelfLearningMemory

from .kill_loop import _round, integrity

pytestmark = pytest.mark.integration


def _damage(wal: Path, how: str) -> None:
    size = wal.stat().st_size
    if how == "truncate":
        os.truncate(wal, size // 2)
    elif how == "zero":
        os.truncate(wal, 0)
    else:
        with wal.open("r+b") as f:
            f.seek(size // 3)
            f.write(b"\xa5" * 4096)


async def _killed_writer(tmp_path: Path) -> tuple[Path, int]:
    data_dir = tmp_path / "data"
    log = tmp_path / "acks"
    log.write_text("")
    await _round(data_dir, 30, log)
    starts = sum(line.startswith("ACK start") for line in log.read_text().splitlines())
    assert (data_dir / "memory.db-wal").stat().st_size > 0
    return data_dir, starts


@pytest.mark.parametrize("how", ["truncate", "zero", "garble"])
async def test_a_damaged_wal_still_opens_clean(tmp_path: Path, how: str) -> None:
    data_dir, _ = await _killed_writer(tmp_path)
    _damage(data_dir / "memory.db-wal", how)
    async with SelfLearningMemory.open(data_dir) as memory:
        episodes = await memory.list_episodes(limit=1000)
        for episode in episodes:
            assert (await memory.get_episode(episode.episode_id)).episode_id == episode.episode_id
        await memory.start_episode("after the damage", task_type="testing")
    assert integrity(data_dir) == "ok"


@pytest.mark.xfail(
    strict=True,
    reason="known gap (reported with issue 12): SQLite silently drops acknowledged writes in a "
    "damaged WAL; nothing detects or reports the loss yet",
)
async def test_acknowledged_writes_lost_with_a_damaged_wal_are_reported(tmp_path: Path) -> None:
    data_dir, starts = await _killed_writer(tmp_path)
    _damage(data_dir / "memory.db-wal", "zero")
    async with SelfLearningMemory.open(data_dir) as memory:
        episodes = await memory.list_episodes(limit=1000)
        health = await memory.health()
    reported = any(not report.healthy for report in health.values())
    assert len(episodes) == starts or reported
