"""`memory-cli storage`: status, sync of the cache from the store, a real VACUUM, verify that
finds real damage (cache and store), backup, health, connections (with another process holding
the data open); bad input; --format json purity in real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apsw
import lmdb
import pytest
import yaml

from self_learning_memory.core.memory import SelfLearningMemory

from .conftest import Invoke, run_process
from .seeding import add_episode, seed, with_memory

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir(cli_env: dict[str, str]) -> Path:
    return Path(cli_env["MEMORY_DATA_DIR"])


@pytest.fixture
def seeded(data_dir: Path) -> list[uuid.UUID]:
    return seed(data_dir, successes=3, failures=1)


def test_status_counts_sizes_schema(
    invoke: Invoke, invoke_json: Callable[..., Any], seeded: list[uuid.UUID], data_dir: Path
) -> None:
    status = invoke_json("storage", "status")
    assert status["mode"] == "embedded"
    assert status["schema_version"] == status["expected_schema_version"] == 10
    counts = status["counts"]
    assert counts["episodes"] == counts["completed"] == 4
    assert counts["steps"] == 8
    assert counts["patterns"] >= 2
    assert counts["outcomes"] == {"success": 3, "failure": 1}
    assert counts["in_progress"] == counts["buffered_steps"] == 0
    assert counts["learning_queue_depth"] is None  # the learning queue is off: learning inline
    sizes = status["sizes_bytes"]
    assert sizes["database"] == (data_dir / "memory.db").stat().st_size > 0
    assert sizes["cache"] > 0
    assert sizes["total"] == sum(v for k, v in sizes.items() if k != "total")
    assert status["cache"]["entries"] == 4
    assert status["cache"]["max_entries"] >= 4  # from the config (smart defaults)
    assert invoke_json("st", "stats")["counts"] == counts  # alias and short group name
    human = invoke("storage", "status")
    assert human.exit_code == 0
    assert "schema v10" in human.stdout
    assert yaml.safe_load(invoke("-f", "yaml", "storage", "stats").stdout)["counts"] == counts


def _clear_cache(data_dir: Path) -> None:
    async def clear(memory: SelfLearningMemory) -> None:
        assert memory.cache is not None
        memory.cache.clear()

    with_memory(data_dir, clear)


def test_sync_refreshes_the_cache_from_the_store(
    invoke: Invoke, invoke_json: Callable[..., Any], seeded: list[uuid.UUID], data_dir: Path
) -> None:
    _clear_cache(data_dir)
    dry = invoke_json("storage", "sync", "--dry-run")
    assert dry["dry_run"] is True
    assert dry["added"] == 4
    assert invoke_json("storage", "status")["cache"]["entries"] == 0  # nothing written
    assert invoke_json("--dry-run", "storage", "sync")["added"] == 4

    done = invoke_json("storage", "sync")
    assert "no remote primary" in done["primary"]
    assert (done["examined"], done["cacheable"], done["added"]) == (4, 4, 4)
    assert (done["cache_entries_before"], done["cache_entries_after"]) == (0, 4)
    again = invoke_json("storage", "sync", "--since", "2d")
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, 4)
    forced = invoke_json("st", "sync", "--force")
    assert forced["updated"] == 4
    human = invoke("storage", "sync")
    assert human.exit_code == 0
    assert "no remote" in human.stdout
    assert invoke_json("storage", "verify")["ok"] is True


def test_vacuum_really_shrinks_the_file(
    invoke: Invoke, invoke_json: Callable[..., Any], data_dir: Path
) -> None:
    async def fill(memory: SelfLearningMemory) -> list[uuid.UUID]:
        return [await add_episode(memory, f"Bulky task {i}", output="x" * 9_000) for i in range(30)]

    ids = with_memory(data_dir, fill)

    async def drop(memory: SelfLearningMemory) -> None:
        for eid in ids[:27]:
            await memory.delete_episode(eid)

    with_memory(data_dir, drop)
    db = data_dir / "memory.db"
    dry = invoke_json("storage", "vacuum", "--dry-run")
    assert dry["dry_run"] is True
    assert dry["freelist_pages_before"] > 0
    assert dry["reclaimable_bytes"] >= dry["freelist_pages_before"] * 4096
    assert dry["after"] is None
    size_before = db.stat().st_size
    assert invoke_json("--dry-run", "storage", "vacuum")["dry_run"] is True
    assert db.stat().st_size == size_before  # a dry run writes nothing

    done = invoke_json("storage", "vacuum")
    assert done["dry_run"] is False
    assert done["freelist_pages_after"] == 0
    assert done["after"]["database"] < done["before"]["database"]
    assert done["freed_bytes"] > 0
    assert db.stat().st_size == done["after"]["database"]
    # the store still works: full-text links survived, search finds the kept episodes
    assert invoke_json("storage", "verify")["ok"] is True
    found = invoke_json("episode", "search", "Bulky task", "-l", "10")
    assert {r["episode"]["episode_id"] for r in found["results"]} == {str(i) for i in ids[27:]}
    assert "vacuumed" in invoke("storage", "vacuum").stdout


def test_verify_ok_then_finds_cache_damage_and_sync_repairs_it(
    invoke: Invoke, invoke_json: Callable[..., Any], seeded: list[uuid.UUID], data_dir: Path
) -> None:
    report = invoke_json("storage", "verify")
    assert report["ok"] is True
    assert report["store"]["integrity_check"] == ["ok"]
    assert report["cache"]["checked"] == report["cache"]["matching"] == 4

    async def damage(memory: SelfLearningMemory) -> None:
        assert memory.cache is not None
        episode = await memory.get_episode(seeded[0])
        memory.cache.put(episode.model_copy(update={"task_description": "tampered"}))
        await memory.storage.delete_episode(seeded[1])  # behind the cache's back: stale

    with_memory(data_dir, damage)
    env = lmdb.open(str(data_dir / "cache"), max_dbs=8)
    items = env.open_db(b"items")
    with env.begin(write=True, db=items) as txn:
        txn.put(seeded[2].bytes, b"not an episode")
    env.close()

    bad = invoke("--format", "json", "storage", "verify")
    assert bad.exit_code == 7, bad.stderr
    found = json.loads(bad.stdout)
    assert found["ok"] is False
    cache = found["cache"]
    assert cache["corrupt"] == [str(seeded[2])]
    assert cache["stale"] == [str(seeded[1])]
    assert cache["differs"] == [{"episode_id": str(seeded[0]), "fields": ["task_description"]}]
    assert cache["matching"] == 1
    assert bad.stderr.startswith("error: Verification found 3 problem(s)")
    assert "hint:" in bad.stderr

    fixed = invoke_json("storage", "sync")
    assert fixed["updated"] == 2  # the tampered and the corrupt entry
    assert fixed["stale_removed"] == 1
    assert invoke_json("storage", "verify")["ok"] is True


def test_verify_finds_store_damage(invoke: Invoke, seeded: list[uuid.UUID], data_dir: Path) -> None:
    conn = apsw.Connection(str(data_dir / "memory.db"))
    conn.execute(
        "INSERT INTO episodes_fts (rowid, task_description, steps_text, outcome_text, "
        "reflection_text) VALUES (999999, 'ghost', '', '', '')"
    )
    conn.close()
    result = invoke("storage", "verify")
    assert result.exit_code == 7
    assert "1 full-text row(s) without their episode" in result.stderr
    assert "problems found" in result.stdout


def test_verify_finds_counts_that_differ_and_vacuum_counts_them_again(
    invoke: Invoke, invoke_json: Callable[..., Any], seeded: list[uuid.UUID], data_dir: Path
) -> None:
    """The counts the store keeps for the embedding coverage (migration 9): a store whose
    counts were changed behind the triggers' back fails verify, and vacuum counts them again."""
    conn = apsw.Connection(str(data_dir / "memory.db"))
    completed = conn.execute("SELECT n FROM row_counts WHERE name = 'completed'").fetchone()[0]
    conn.execute("UPDATE row_counts SET n = n + 5 WHERE name = 'completed'")
    conn.close()
    result = invoke("storage", "verify")
    assert result.exit_code == 7
    drift = f"completed: kept {completed + 5}, rows {completed}"
    assert drift in result.stderr
    assert "storage vacuum" in result.stderr
    assert drift in result.stdout
    vacuumed = invoke_json("storage", "vacuum")
    assert any(drift in note for note in vacuumed["notes"])
    checked = invoke_json("storage", "verify")
    assert checked["ok"] is True
    assert checked["store"]["count_drift"] == []


def test_backup_is_backup_create(
    invoke: Invoke, invoke_json: Callable[..., Any], seeded: list[uuid.UUID], tmp_path: Path
) -> None:
    made = invoke_json("storage", "backup", "-p", str(tmp_path / "bk"))
    assert Path(made["path"]).is_dir()
    assert made["counts"]["episodes"] == 4
    listed = invoke_json("backup", "list", "-p", str(tmp_path / "bk"))
    assert [b["backup_id"] for b in listed["backups"]] == [made["backup_id"]]
    assert "--path" in invoke("storage", "backup", "--help").stdout


def test_health_is_health_check(invoke_json: Callable[..., Any], seeded: list[uuid.UUID]) -> None:
    report = invoke_json("storage", "health")
    assert report["status"] in ("healthy", "degraded")
    assert {c["name"] for c in report["components"]} == {"primary_storage", "cache_storage"}


_HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from self_learning_memory.core.memory import SelfLearningMemory

    async def main():
        async with SelfLearningMemory.open(sys.argv[1]) as memory:
            await memory.health()  # takes a reader slot in the shared cache
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)

    asyncio.run(main())
    """
)


def test_connections_sees_another_process(
    invoke: Invoke, invoke_json: Callable[..., Any], seeded: list[uuid.UUID], data_dir: Path
) -> None:
    alone = invoke_json("storage", "connections")
    assert alone["store"]["wal_enabled"] is True
    assert alone["store"]["busy_timeout_ms"] == 30_000
    assert alone["cache"]["map_size_bytes"] > 0
    assert alone["other_processes"] == []
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        shared = invoke_json("st", "connections")
        assert holder.pid in shared["other_processes"]
        assert str(holder.pid) in invoke("storage", "connections").stdout
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)
    assert holder.returncode == 0


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (("storage", "sync", "--since", "yesterday"), 3, "--since"),
        (("storage", "sync", "--since", "5w"), 3, "Nh, Nd or Nm"),
        (("storage", "nope"), 2, "No such command"),
        (("storage", "backup"), 2, "--path"),
    ],
)
def test_bad_input(invoke: Invoke, args: tuple[str, ...], code: int, text: str) -> None:
    result = invoke(*args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert text in result.stderr
    assert result.stdout == ""


def test_cache_disabled_is_a_clear_error(
    invoke: Invoke, seeded: list[uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    from self_learning_memory.cli.state import CliState
    from self_learning_memory.config import MemoryConfig

    config = MemoryConfig.model_validate({"cache": {"enabled": False}})
    monkeypatch.setattr(CliState, "memory_config", lambda self: config)
    result = invoke("storage", "sync")
    assert result.exit_code == 10
    assert "cache is disabled" in result.stderr
    verified = invoke("--format", "json", "storage", "verify")
    assert verified.exit_code == 0
    assert json.loads(verified.stdout)["cache"] is None


def test_json_stdout_is_pure_in_real_processes(
    cli_env: dict[str, str], seeded: list[uuid.UUID], tmp_path: Path
) -> None:
    for args in (
        ("storage", "status"),
        ("st", "stats"),
        ("storage", "sync"),
        ("storage", "vacuum", "--dry-run"),
        ("storage", "vacuum"),
        ("storage", "verify"),
        ("storage", "backup", "-p", str(tmp_path / "bk")),
        ("storage", "health"),
        ("storage", "connections"),
    ):
        proc = run_process("--format", "json", "-v", *args, env=cli_env)
        assert proc.returncode == 0, (args, proc.stderr)
        json.loads(proc.stdout)


def test_reindex_embeds_missing_episodes_with_the_configured_provider(
    invoke: Invoke, invoke_json: Callable[..., Any], cli_env: dict[str, str]
) -> None:
    seed(Path(cli_env["MEMORY_DATA_DIR"]), successes=3, failures=1)
    no_provider = invoke("storage", "reindex")
    assert no_provider.exit_code == 10
    assert "embeddings.provider" in no_provider.stderr
    would = invoke_json("--dry-run", "storage", "reindex", "--provider", "openai")
    assert would["dry_run"] is True
    bad = invoke("storage", "reindex", "--provider", "magic")
    assert bad.exit_code == 3
    done = invoke_json("storage", "reindex", "--provider", "local")
    assert done["embedded_now"] == 4
    assert done["missing"] == 0
    assert done["identity"].startswith("local")
    again = invoke_json("storage", "reindex", "--provider", "local")
    assert again["embedded_now"] == 0
    assert again["embedded_total"] == 4
