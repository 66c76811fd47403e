"""A damaged write-ahead log (memory.db-wal truncated, zeroed or garbled while no process has the
store open, left behind by a writer killed with SIGKILL): the store still opens, serves and
passes ``PRAGMA integrity_check``; SQLite drops the WAL frames from the damage on (its checksum
recovery). The acknowledged completions in those frames are still in the LMDB cache: health and
``storage verify`` report the store as missing them, and ``storage rebuild-from-cache`` writes
them back (``storage/cache_loss.py``, ``backup/rebuild.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from cli.conftest import run_process
from self_learning_memory import SelfLearningMemory
from self_learning_memory.storage.maintenance import lock_holders
from self_learning_memory.storage.wal_check import check_wal

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


def _before_open(data_dir: Path) -> str:
    """What the WAL check sees before the store is opened, for a failure message."""
    db = data_dir / "memory.db"
    shm = (data_dir / "memory.db-shm").read_bytes()[:136]
    wal = data_dir / "memory.db-wal"
    return (
        f"check_wal={check_wal(db)} shm={shm.hex()} wal_bytes={wal.stat().st_size} "
        f"holders={lock_holders([db, data_dir / 'memory.db-shm'])}"
    )


def _acked_starts(tmp_path: Path) -> set[uuid.UUID]:
    lines = (tmp_path / "acks").read_text().splitlines()
    return {uuid.UUID(line.split()[2]) for line in lines if line.startswith("ACK start")}


@pytest.mark.parametrize("how", ["truncate", "zero", "garble"])
async def test_a_damaged_wal_still_opens_clean(tmp_path: Path, how: str) -> None:
    data_dir, _ = await _killed_writer(tmp_path)
    _damage(data_dir / "memory.db-wal", how)
    seen = _before_open(data_dir)
    async with SelfLearningMemory.open(data_dir) as memory:
        episodes = await memory.list_episodes(limit=1000)
        for episode in episodes:
            assert (await memory.get_episode(episode.episode_id)).episode_id == episode.episode_id
        await memory.start_episode("after the damage", task_type="testing")
        primary = (await memory.health())["primary_storage"]
    assert integrity(data_dir) == "ok"
    if not _acked_starts(tmp_path) - {e.episode_id for e in episodes}:
        # the damage hit only frames a checkpoint had copied, or frames past the last commit
        return
    # acknowledged starts are gone: the committed frames SQLite dropped are found before its
    # recovery forgets them
    assert not primary.healthy, seen
    assert "rebuild-from-cache" in str(primary.details["error"])
    # the WAL check names the lost frames where the damage hit frames no checkpoint had copied
    # (the cache comparison names the lost episodes either way)
    recorded = (data_dir / "memory.db.wal-loss").exists()
    assert recorded == ("wal_lost_frames" in primary.details), seen
    if recorded:
        lost = primary.details["wal_lost_frames"]
        assert isinstance(lost, int)
        assert 0 < lost <= int(primary.details["wal_committed_frames"])  # type: ignore[call-overload]


async def test_an_intact_wal_left_by_a_kill_is_no_loss(tmp_path: Path) -> None:
    data_dir, starts = await _killed_writer(tmp_path)
    async with SelfLearningMemory.open(data_dir) as memory:
        # every acknowledged start is there; a start committed just before the kill may
        # have no ACK line yet, so the store can hold more than the log
        assert len(await memory.list_episodes(limit=1000)) >= starts
        assert (await memory.health())["primary_storage"].healthy
    assert not (data_dir / "memory.db.wal-loss").exists()


async def test_acknowledged_writes_lost_with_a_damaged_wal_are_reported(tmp_path: Path) -> None:
    data_dir, starts = await _killed_writer(tmp_path)
    _damage(data_dir / "memory.db-wal", "zero")
    async with SelfLearningMemory.open(data_dir) as memory:
        episodes = await memory.list_episodes(limit=1000)
        health = await memory.health()
    reported = any(not report.healthy for report in health.values())
    assert len(episodes) == starts or reported


def _completed(tmp_path: Path) -> set[uuid.UUID]:
    lines = (tmp_path / "acks").read_text().splitlines()
    return {uuid.UUID(line.split()[2]) for line in lines if line.startswith("ACK complete")}


async def test_completions_lost_with_a_zeroed_wal_come_back_from_the_cache(tmp_path: Path) -> None:
    """Was: silently gone. Now: health names the loss and the command; the rebuild restores
    every acknowledged completion, steps included."""
    data_dir, _ = await _killed_writer(tmp_path)
    completed = _completed(tmp_path)
    assert completed
    _damage(data_dir / "memory.db-wal", "zero")
    seen = _before_open(data_dir)
    async with SelfLearningMemory.open(data_dir) as memory:
        left = {e.episode_id for e in await memory.list_episodes(limit=1000)}
        primary = (await memory.health())["primary_storage"]
    lost = completed - left  # empty if a checkpoint had saved every completion before the kill
    if not lost and not _acked_starts(tmp_path) - left:
        return  # nothing acknowledged was in the frames the damage took
    assert not primary.healthy, seen
    # a completion committed and cached just before the kill may have no ACK line yet
    cache_lost = primary.details.get("lost_episodes", 0)
    assert isinstance(cache_lost, int)
    assert cache_lost >= len(lost)
    assert "rebuild-from-cache" in str(primary.details["error"])

    env = {"NO_COLOR": "1", "COLUMNS": "400"}
    verify = run_process("-d", str(data_dir), "storage", "verify", env=env)
    assert verify.returncode == 7, verify.stdout + verify.stderr
    assert "rebuild-from-cache" in " ".join(verify.stderr.split())

    done = run_process("-d", str(data_dir), "-f", "json", "storage", "rebuild-from-cache", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["mode"] == "merge"
    assert report["verified"] is True
    assert report["recovered"]["episodes"] == cache_lost
    assert report["moved_aside"] == []
    if "wal_lost_frames" in primary.details:
        assert report["wal_loss"]["lost_frames"] > 0
    assert not (data_dir / "memory.db.wal-loss").exists()  # cleared once written back
    async with SelfLearningMemory.open(data_dir) as memory:
        for episode_id in completed:
            episode = await memory.get_episode(episode_id)
            assert episode.is_complete()
            assert len(episode.steps) == 3
        assert (await memory.health())["primary_storage"].healthy
    assert integrity(data_dir) == "ok"


_WRITER = """
import apsw, os, sys
conn = apsw.Connection(sys.argv[1])
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA wal_autocheckpoint=0")
conn.execute("CREATE TABLE t(x)")
conn.execute("INSERT INTO t VALUES (1)")
if sys.argv[2] == "checkpoint":
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
os._exit(0)  # no close: the WAL and its index stay as a crash leaves them
"""


@pytest.mark.parametrize("checkpointed", [True, False])
def test_only_frames_no_checkpoint_copied_count_as_lost(tmp_path: Path, checkpointed: bool) -> None:
    db = tmp_path / "memory.db"
    how = "checkpoint" if checkpointed else "none"
    subprocess.run([sys.executable, "-c", _WRITER, str(db), how], check=True, timeout=30)
    os.truncate(tmp_path / "memory.db-wal", 0)
    loss = check_wal(db)
    if checkpointed:
        assert loss is None  # every committed frame is already in memory.db
    else:
        assert loss is not None
        assert loss.lost_frames == loss.committed_frames > 0
