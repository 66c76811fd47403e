"""Issue 12, item 4 (in part): a store lost or replaced behind the cache's back must not cost the
cache's copies. A missing or 0-byte ``memory.db`` next to a cache that holds episodes is refused
at open (nothing is created); a store replaced by an empty one is opened, but ``storage verify``
does not advise the sync that drops the cached episodes, and ``storage sync`` (with or without
``--force``) refuses to drop them.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from cli.conftest import run_process
from cli.seeding import add_episode, with_memory
from self_learning_memory import DataIntegrityError, SelfLearningMemory

pytestmark = pytest.mark.integration

EPISODES = 6


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_process("-d", str(data), *args, env={"NO_COLOR": "1", "COLUMNS": "400"})


def _seeded(tmp_path: Path) -> Path:
    data = tmp_path / "data"

    async def seed(memory: SelfLearningMemory) -> None:
        for i in range(EPISODES):
            await add_episode(memory, f"Fix the flaky login test number {i}")

    with_memory(data, seed)
    for leftover in ("memory.db-wal", "memory.db-shm"):
        (data / leftover).unlink(missing_ok=True)
    return data


def _replaced_store(tmp_path: Path) -> Path:
    """The store file swapped for an empty store (a wrong copy, a re-created file)."""
    data = _seeded(tmp_path)
    empty = tmp_path / "empty"

    async def nothing(memory: SelfLearningMemory) -> None:
        return None

    with_memory(empty, nothing)
    shutil.copyfile(empty / "memory.db", data / "memory.db")
    return data


@pytest.mark.parametrize("how", ["truncated", "deleted"])
def test_faults_emptied_store_is_refused_at_open(tmp_path: Path, how: str) -> None:
    """Was: re-created empty in silence, and health said healthy."""
    data = _seeded(tmp_path)
    store = data / "memory.db"
    if how == "truncated":
        store.write_bytes(b"")
    else:
        store.unlink()
    done = _cli(data, "episode", "list")
    assert done.returncode == 7, done.stdout + done.stderr
    text = " ".join(done.stderr.split())
    assert f"holds {EPISODES} episode(s)" in text
    assert "nothing was created" in text
    assert (store.stat().st_size == 0) if how == "truncated" else not store.exists()

    async def open_it() -> None:
        async with SelfLearningMemory.open(data):
            pass

    with pytest.raises(DataIntegrityError, match="missing or empty"):
        asyncio.run(open_it())
    # an empty cache is no evidence of loss: a store with no cache entries opens as before
    shutil.rmtree(data / "cache")
    assert _cli(data, "episode", "list").returncode == 0


def _cache_report(data: Path) -> dict[str, object]:
    done = _cli(data, "-f", "json", "storage", "verify")
    report = json.loads(done.stdout)
    assert isinstance(report["cache"], dict)
    return report["cache"]


def test_faults_emptied_store_verify_never_advises_dropping_the_cache(tmp_path: Path) -> None:
    """Was: verify advised `storage sync --force`, which deletes the cache's last copies."""
    data = _replaced_store(tmp_path)
    done = _cli(data, "storage", "verify")
    assert done.returncode == 7, done.stderr
    text = " ".join(done.stderr.split())
    assert "sync --force" not in text
    assert "back up the data directory" in text


@pytest.mark.parametrize("force", [False, True])
def test_faults_emptied_store_sync_keeps_the_cached_copies(tmp_path: Path, force: bool) -> None:
    """Was: `storage sync` removed every cached episode as stale (exit 0)."""
    data = _replaced_store(tmp_path)
    assert _cache_report(data)["checked"] == EPISODES
    done = _cli(data, "storage", "sync", *(["--force"] if force else []))
    assert done.returncode == 7, done.stdout + done.stderr
    assert "looks emptied or replaced" in " ".join(done.stderr.split())
    cache = _cache_report(data)
    assert cache["checked"] == EPISODES  # every cached copy is still there
    assert len(cache["stale"]) == EPISODES  # type: ignore[arg-type]
