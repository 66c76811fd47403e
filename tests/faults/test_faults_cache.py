"""Issue 12, item 5: a damaged or unusable LMDB cache does not block the memory.

Real damage on real files, real ``memory-cli`` processes: the store is intact, so reads exit 0
with one warning line on stderr (stdout stays clean JSON), health says degraded and why,
``storage verify`` reports it and ``storage sync`` moves the damaged cache aside and rebuilds it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from cli.conftest import run_process
from cli.seeding import add_episode, seed
from faults.namespaces import needs_unshare
from self_learning_memory.core.health_status import summarise_health
from self_learning_memory.core.memory import SelfLearningMemory


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_process("-d", str(data), "-f", "json", *args, env={"NO_COLOR": "1"})


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def _cache_component(data: Path) -> tuple[str, dict[str, object]]:
    done = _cli(data, "health", "check")
    assert done.returncode == 0, done.stderr  # degraded is not unhealthy: exit 0
    report = json.loads(done.stdout)
    cache = next(c for c in report["components"] if c["name"] == "cache_storage")
    return str(report["status"]), cache


def _assert_degraded_reads(data: Path, eid: uuid.UUID) -> None:
    done = _cli(data, "episode", "view", str(eid))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["episode_id"] == str(eid)  # stdout: clean JSON
    lines = _warnings(done.stderr)
    assert len(lines) == 1, lines  # one warning line, naming the cache and the way out
    assert str(data / "cache") in lines[0]
    assert "storage sync" in lines[0]
    status, cache = _cache_component(data)
    assert status == "degraded"
    assert cache["status"] == "degraded"
    assert str(cache["reason"]).startswith("disabled: ")


def test_faults_cache_garbage_over_data_mdb_runs_degraded_and_sync_rebuilds(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    [eid] = seed(data, successes=1)
    garbage = b"\xde\xad\xbe\xef" * 8192
    (data / "cache" / "data.mdb").write_bytes(garbage)

    _assert_degraded_reads(data, eid)

    verify = _cli(data, "storage", "verify")
    assert verify.returncode == 7, verify.stderr  # storage error: something is wrong
    assert any("disabled" in p for p in json.loads(verify.stdout)["problems"])

    sync = _cli(data, "storage", "sync", "--since", "30d")
    assert sync.returncode == 0, sync.stderr
    rebuilt = json.loads(sync.stdout)["cache_rebuilt"]
    moved = Path(rebuilt["moved_to"])
    assert moved.name.startswith("cache.corrupt-")
    assert (moved / "data.mdb").read_bytes() == garbage  # kept aside, never deleted

    after = _cli(data, "episode", "view", str(eid))
    assert after.returncode == 0, after.stderr
    assert _warnings(after.stderr) == []
    status, cache = _cache_component(data)
    assert status == "healthy"
    assert cache["status"] == "healthy"
    assert cache["details"]["entries"] == 1  # type: ignore[index]
    verify = _cli(data, "storage", "verify")
    assert verify.returncode == 0, verify.stderr


def test_faults_cache_a_regular_file_where_the_cache_dir_should_be(tmp_path: Path) -> None:
    """Was FileExistsError (exit 1, a traceback's last line); now degraded with one line."""
    data = tmp_path / "data"
    [eid] = seed(data, successes=1)
    shutil.rmtree(data / "cache")
    (data / "cache").write_text("not a directory")
    _assert_degraded_reads(data, eid)
    sync = _cli(data, "storage", "sync")
    assert sync.returncode == 0, sync.stderr
    moved = Path(json.loads(sync.stdout)["cache_rebuilt"]["moved_to"])
    assert moved.read_text() == "not a directory"
    assert (data / "cache" / "data.mdb").is_file()


async def test_faults_cache_breaking_while_in_use_does_not_fail_a_read(tmp_path: Path) -> None:
    """LMDB failing under a running memory (its environment closed under it: every call
    then raises ``lmdb.Error``) turns into cache misses; the read is answered by the store."""
    async with SelfLearningMemory.open(tmp_path) as memory:
        eid = await add_episode(memory, "Fix the flaky login test")
        assert memory.cache is not None
        memory.cache._env.close()  # the real failure: lmdb.Error on every later call
        episode = await memory.get_episode(eid)
        assert episode.episode_id == eid
        assert memory.cache.disabled is not None
        summary = summarise_health(await memory.health())
        assert summary.status == "degraded"
        second = await add_episode(memory, "Fix the flaky logout test")  # writes too
        assert (await memory.get_episode(second)).episode_id == second


@needs_unshare
def test_faults_cache_on_a_read_only_file_system_runs_degraded(tmp_path: Path) -> None:
    """Root ignores file modes, so "read-only" is a real read-only mount: in a private mount
    namespace a tmpfs over ``cache/`` gets the cache's files and is remounted ``ro``."""
    data = tmp_path / "data"
    [eid] = seed(data, successes=1)
    cache, saved = data / "cache", tmp_path / "saved-cache"
    shutil.copytree(cache, saved)
    script = (
        f"mount -t tmpfs none {cache} && cp -a {saved}/. {cache}/ && "
        f"mount -o remount,ro {cache} && "
        f"{sys.executable} -m self_learning_memory.cli -d {data} -f json episode view {eid}"
    )
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["episode_id"] == str(eid)
    lines = _warnings(done.stderr)
    assert len(lines) == 1, lines
    assert "disabled" in lines[0]
    assert str(cache) in lines[0]
