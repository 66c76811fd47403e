"""Issue 12, item 4: a store lost behind the cache's back is rebuilt from the cache's copies
(`memory-cli storage rebuild-from-cache`, ``backup/rebuild.py``) instead of only being
refused. Real files, real `memory-cli` processes: a 0-byte, missing, garbage or replaced
``memory.db``; every recovered episode is compared with what was written before the loss."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli.conftest import run_process
from cli.seeding import add_episode, with_memory
from self_learning_memory import SelfLearningMemory
from self_learning_memory.model.records import PatternFilters

pytestmark = pytest.mark.integration

EPISODES = 7


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_process("-d", str(data), *args, env={"NO_COLOR": "1", "COLUMNS": "400"})


def _rebuild(data: Path, *args: str) -> dict[str, Any]:
    done = _cli(data, "-f", "json", "storage", "rebuild-from-cache", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


async def _snapshot(memory: SelfLearningMemory) -> dict[str, Any]:
    """Every episode as JSON, and the patterns and heuristics by id."""
    episodes = await memory.list_episodes(limit=1000)
    patterns = await memory.storage.list_patterns(PatternFilters(), 1000, 0)
    heuristics = await memory.storage.list_heuristics(1000, 0)
    return {
        "episodes": {str(e.episode_id): e.model_dump(mode="json") for e in episodes},
        "patterns": {str(p.id): p.model_dump(mode="json") for p, _ in patterns},
        "heuristics": {str(h.heuristic_id): h.model_dump(mode="json") for h in heuristics},
    }


def _seeded(tmp_path: Path, name: str = "data", tag: str = "login") -> tuple[Path, dict[str, Any]]:
    data = tmp_path / name

    async def seed(memory: SelfLearningMemory) -> dict[str, Any]:
        for i in range(EPISODES):
            tools = ("editor", "pytest", "git")[: 2 + i % 2]
            await add_episode(memory, f"Fix the flaky {tag} test {i}", tools=tools, success=i != 3)
        return await _snapshot(memory)

    return data, with_memory(data, seed)


def _now(data: Path) -> dict[str, Any]:
    return with_memory(data, _snapshot)


def _digests(data: Path) -> dict[str, str]:
    """sha256 of every file but the logs and LMDB's lock.mdb (its reader table, which every
    process reading the cache writes its pid into)."""
    return {
        str(p.relative_to(data)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(data.rglob("*"))
        if p.is_file() and "logs" not in p.parts and p.name != "lock.mdb"
    }


def test_faults_rebuild_a_truncated_store_gives_back_every_episode(tmp_path: Path) -> None:
    data, before = _seeded(tmp_path)
    store = data / "memory.db"
    store.write_bytes(b"")
    refused = _cli(data, "episode", "list")
    assert refused.returncode == 7
    assert "storage rebuild-from-cache" in " ".join(refused.stderr.split())

    report = _rebuild(data)
    assert report["mode"] == "rebuild"
    assert report["store_state"] == "empty"
    assert report["verified"] is True
    assert report["problems"] == []
    assert report["recovered"]["episodes"] == EPISODES
    assert report["recovered"]["steps"] == sum(len(e["steps"]) for e in before["episodes"].values())
    aside = [Path(p) for p in report["moved_aside"]]
    assert aside
    assert all(p.name.startswith("memory.db") for p in aside)
    assert ".before-rebuild-" in aside[0].name
    assert aside[0].stat().st_size == 0

    after = _now(data)
    assert after["episodes"] == before["episodes"]  # content, steps, reward, reflection, ids
    # patterns come back under their old ids (extracted again: no cached index in embedded mode)
    assert before["patterns"].keys() == after["patterns"].keys()
    for pid, pattern in before["patterns"].items():
        got = after["patterns"][pid]
        assert got["occurrence_count"] == pattern["occurrence_count"]
        assert got.get("success_rate") == pattern.get("success_rate")
    assert before["heuristics"].keys() == after["heuristics"].keys()
    assert _cli(data, "storage", "verify").returncode == 0
    notes = " ".join(report["not_recoverable"])
    assert "embeddings" in notes
    assert "never completed" in notes


def test_faults_rebuild_a_deleted_store_and_text_output(tmp_path: Path) -> None:
    data, before = _seeded(tmp_path)
    for name in ("memory.db", "memory.db-wal", "memory.db-shm"):
        (data / name).unlink(missing_ok=True)
    done = _cli(data, "-f", "human", "storage", "rebuild-from-cache")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "is missing" in text
    assert f"recovered {EPISODES} episode(s)" in text
    assert "verified" in text
    assert _now(data)["episodes"] == before["episodes"]


def test_faults_rebuild_a_store_that_is_not_a_database(tmp_path: Path) -> None:
    data, before = _seeded(tmp_path)
    (data / "memory.db").write_bytes(b"this is not a database " * 300)
    (data / "memory.db-wal").unlink(missing_ok=True)
    (data / "memory.db-shm").unlink(missing_ok=True)
    report = _rebuild(data)
    assert report["store_state"] == "not a database"
    assert report["mode"] == "rebuild"
    kept = Path(report["moved_aside"][0])
    assert kept.read_bytes().startswith(b"this is not a database")  # kept, never deleted
    assert _now(data)["episodes"] == before["episodes"]


def test_faults_rebuild_dry_run_changes_nothing(tmp_path: Path) -> None:
    data, _ = _seeded(tmp_path)
    (data / "memory.db").write_bytes(b"")
    digests = _digests(data)
    report = _rebuild(data, "--dry-run")
    assert report["dry_run"] is True
    assert report["to_recover"] == EPISODES
    assert report["recovered"]["episodes"] == 0
    assert report["moved_aside"] == []
    assert _digests(data) == digests
    global_flag = _cli(data, "-f", "human", "--dry-run", "storage", "rebuild-from-cache")
    assert global_flag.returncode == 0, global_flag.stderr
    assert "nothing was changed" in " ".join(global_flag.stdout.split())
    assert _digests(data) == digests


def test_faults_rebuild_merges_into_a_replaced_store(tmp_path: Path) -> None:
    """The store swapped for another one: the cached episodes it lacks are added back, and its
    own episodes stay exactly as they were."""
    data, before = _seeded(tmp_path)
    other, theirs = _seeded(tmp_path, "other", tag="signup")
    for name in ("memory.db-wal", "memory.db-shm"):
        (data / name).unlink(missing_ok=True)
    (data / "memory.db").write_bytes((other / "memory.db").read_bytes())
    health = _cli(data, "-f", "json", "health", "check")  # was: healthy
    assert health.returncode != 0
    assert f"lacks {EPISODES} of the {EPISODES} episodes" in health.stdout
    assert "rebuild-from-cache" in health.stdout
    digests = _digests(data)
    dry = _rebuild(data, "--dry-run")
    assert dry["mode"] == "merge"
    assert dry["to_recover"] == EPISODES
    assert _digests(data) == digests

    report = _rebuild(data)
    assert report["mode"] == "merge"
    assert report["verified"] is True
    assert report["already_in_store"] == 0
    assert report["moved_aside"] == []
    after = _now(data)
    assert after["episodes"] == {**theirs["episodes"], **before["episodes"]}
    assert _cli(data, "health", "check").returncode == 0
    again = _rebuild(data)  # idempotent: nothing left to recover
    assert again["to_recover"] == 0
    assert again["already_in_store"] == EPISODES
    assert _now(data)["episodes"] == after["episodes"]


_HOLDER = """
import asyncio, sys
from self_learning_memory import SelfLearningMemory

async def main():
    async with SelfLearningMemory.open(sys.argv[1]):
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.read)

asyncio.run(main())
"""


def test_faults_rebuild_is_refused_while_another_process_holds_the_store(
    tmp_path: Path,
) -> None:
    data, before = _seeded(tmp_path)
    other, _ = _seeded(tmp_path, "other", tag="signup")
    for name in ("memory.db-wal", "memory.db-shm"):
        (data / name).unlink(missing_ok=True)
    (data / "memory.db").write_bytes((other / "memory.db").read_bytes())
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(data)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        digests = _digests(data)
        done = _cli(data, "-f", "human", "storage", "rebuild-from-cache")
        assert done.returncode == 5, done.stdout + done.stderr
        text = " ".join(done.stderr.split())
        assert f"pid {holder.pid}" in text
        assert "Nothing was changed" in text
        assert _digests(data) == digests
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    assert holder.returncode == 0
    assert _rebuild(data)["recovered"]["episodes"] == EPISODES
    assert set(before["episodes"]) <= set(_now(data)["episodes"])


def test_faults_rebuild_without_a_cache_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    done = _cli(data, "-f", "human", "storage", "rebuild-from-cache")
    assert done.returncode == 5, done.stderr
    assert "no cache" in done.stderr
    assert not (data / "memory.db").exists()
    assert not (data / "cache").exists()


def test_faults_rebuild_help_is_listed() -> None:
    done = run_process("storage", "--help")
    assert "rebuild-from-cache" in done.stdout


def test_faults_rebuild_takes_patterns_with_usage_from_the_cached_index(tmp_path: Path) -> None:
    """After `storage sync` the cache holds the pattern and heuristic index with usage
    counters: the rebuild writes those as they were (a new extraction would reset them)."""
    data, before = _seeded(tmp_path)

    async def usage(memory: SelfLearningMemory) -> dict[str, Any]:
        rows = await memory.storage.list_patterns(PatternFilters(), 1000, 0)
        return {str(p.id): u.model_dump(mode="json") for p, u in rows}

    used = with_memory(data, usage)
    assert any(u["application_count"] > 0 for u in used.values())
    assert _cli(data, "storage", "sync", "--since", "1d").returncode == 0
    (data / "memory.db").write_bytes(b"")
    for leftover in ("memory.db-wal", "memory.db-shm"):
        (data / leftover).unlink(missing_ok=True)
    report = _rebuild(data)
    assert report["verified"] is True
    assert report["recovered"]["patterns"] == len(before["patterns"])
    assert not any("start over" in note for note in report["not_recoverable"])
    assert with_memory(data, usage) == used
    assert _now(data)["episodes"] == before["episodes"]
