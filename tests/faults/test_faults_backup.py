"""Crafted backups (issue 12, item 12): a SQL export may hold only the exporter's own INSERT
statements; anything else (an UPDATE or DELETE after an INSERT prefix, a statement for a table an
export never has) fails verify and is refused by restore, with the target left byte-identical."""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
from pathlib import Path

import pytest

from integration.test_backup import CONFIG, digest_tree, populate, resign
from self_learning_memory import SelfLearningMemory
from self_learning_memory.backup import create_backup, restore_backup, verify_backup
from self_learning_memory.errors import DataIntegrityError, InvalidStateError

pytestmark = [pytest.mark.integration, pytest.mark.sqlite_only("backups of the embedded store")]


@pytest.fixture
async def sql_backup(tmp_path: Path) -> Path:
    await populate(tmp_path / "source", episodes=2)
    info = await create_backup(tmp_path / "source", tmp_path / "backups", format="sql")
    return info.path


def _append_to_first_insert(backup: Path, extra: str) -> int:
    """Put ``extra`` on the line of the first INSERT; returns that line's number."""
    sql = backup / "memory.sql"
    lines = sql.read_text(encoding="utf-8").splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines) if line.startswith("INSERT INTO episodes "))
    lines[number] = lines[number].rstrip("\n") + extra + "\n"
    sql.write_text("".join(lines), encoding="utf-8")
    resign(backup)
    return number + 1


@pytest.mark.parametrize(
    "extra",
    [
        " UPDATE episodes SET task_description = 'pwned';",
        " DELETE FROM episodes;",
        " INSERT INTO meta (key, value) SELECT 'x', sqlite_version();",
    ],
    ids=["update", "delete", "insert-select"],
)
async def test_faults_backup_sql_statement_after_an_insert_is_refused(
    sql_backup: Path, tmp_path: Path, extra: str
) -> None:
    line = _append_to_first_insert(sql_backup, extra)
    report = await verify_backup(sql_backup)
    assert not report.ok
    assert f"line {line}" in " ".join(report.problems)

    target = tmp_path / "target"
    await populate(target, episodes=1)
    before = digest_tree(target)
    with pytest.raises(DataIntegrityError, match=f"line {line}"):
        await restore_backup(sql_backup, target, force=True)
    assert digest_tree(target) == before


async def test_faults_backup_sql_insert_into_a_foreign_table_is_refused(
    sql_backup: Path, tmp_path: Path
) -> None:
    sql = sql_backup / "memory.sql"
    with sql.open("a", encoding="utf-8") as out:
        out.write("INSERT INTO episodes_fts_config (k, v) VALUES ('version', 99);\n")
    resign(sql_backup)
    with pytest.raises(DataIntegrityError, match="episodes_fts_config"):
        await restore_backup(sql_backup, tmp_path / "target")
    assert not (tmp_path / "target").exists()


async def test_faults_backup_sql_quotes_and_odd_values_round_trip(tmp_path: Path) -> None:
    """The strict reader still reads every literal the exporter writes (quotes, newlines)."""
    source = tmp_path / "source"
    async with SelfLearningMemory.open(source, config=CONFIG) as memory:
        text = "it's a 'quoted'); DELETE FROM episodes; --\nsecond line, ''x'' \u00e9"
        await memory.start_episode(text, task_type="documentation")
    info = await create_backup(source, tmp_path / "backups", format="sql")
    assert (await verify_backup(info.path)).ok
    await restore_backup(info.path, tmp_path / "target")
    async with SelfLearningMemory.open(tmp_path / "target", config=CONFIG) as memory:
        episodes = await memory.list_episodes(limit=10)
    assert [e.task_description for e in episodes] == [text]


async def test_faults_backup_gzip_bomb_is_refused_at_the_recorded_size(tmp_path: Path) -> None:
    """A re-signed backup whose .gz expands to 64 MiB (from ~64 KiB) is refused once the output
    passes the manifest's recorded plain size plus 1 MiB, not after writing all of it."""
    await populate(tmp_path / "source", episodes=1)
    info = await create_backup(tmp_path / "source", tmp_path / "backups", compress=True)
    manifest = json.loads((info.path / "manifest.json").read_text())
    recorded = manifest["files"][0]["plain_size_bytes"]
    assert recorded > 0
    with gzip.open(info.path / "memory.db.gz", "wb", compresslevel=9) as bomb:
        for _ in range(64):
            bomb.write(bytes(1 << 20))
    assert (info.path / "memory.db.gz").stat().st_size < 200_000
    resign(info.path)

    report = await verify_backup(info.path)
    assert not report.ok
    assert f"more than {recorded + (1 << 20)} bytes" in " ".join(report.problems)

    target = tmp_path / "target"
    await populate(target, episodes=1)
    before = digest_tree(target)
    with pytest.raises(DataIntegrityError, match="decompression bomb"):
        await restore_backup(info.path, target, force=True)
    assert digest_tree(target) == before


HOLDER = """
import asyncio, sys
from self_learning_memory import MemoryConfig, SelfLearningMemory
from self_learning_memory.config import EmbeddingsConfig

async def main() -> None:
    config = MemoryConfig(embeddings=EmbeddingsConfig(provider="hashing"))
    async with SelfLearningMemory.open(sys.argv[1], config=config) as memory:
        await memory.start_episode("acknowledged while the restore ran", task_type="testing")
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)

asyncio.run(main())
"""


async def test_faults_backup_restore_refuses_while_a_process_holds_the_store(
    tmp_path: Path,
) -> None:
    await populate(tmp_path / "source", episodes=1)
    info = await create_backup(tmp_path / "source", tmp_path / "backups")
    target = tmp_path / "target"
    await populate(target, episodes=2)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLDER,
        str(target),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stdin is not None
        assert (await asyncio.wait_for(child.stdout.readline(), 60)).strip() == b"ready"
        with pytest.raises(InvalidStateError, match=f"pid {child.pid}") as refused:
            await restore_backup(info.path, target, force=True)
        assert "restore into a new directory" in str(refused.value)
        assert refused.value.exit_code == 5
        child.stdin.write(b"stop\n")
        await child.stdin.drain()
        assert await asyncio.wait_for(child.wait(), 60) == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    async with SelfLearningMemory.open(target, config=CONFIG) as memory:
        kept = [e.task_description for e in await memory.list_episodes(limit=100)]
    assert "acknowledged while the restore ran" in kept  # not swapped away under the writer
    report = await restore_backup(info.path, target, force=True)  # once it stopped: works
    assert report.replaced_existing


async def test_faults_backup_symlinked_data_file_is_refused(tmp_path: Path) -> None:
    """A data file that is a symlink (here to another store's database, re-signed so sizes and
    checksums match) is never followed: verify fails and restore leaves the target as it was."""
    await populate(tmp_path / "source", episodes=1)
    info = await create_backup(tmp_path / "source", tmp_path / "backups")
    elsewhere = tmp_path / "elsewhere.db"
    (info.path / "memory.db").rename(elsewhere)
    (info.path / "memory.db").symlink_to(elsewhere)
    resign(info.path)
    report = await verify_backup(info.path)
    assert not report.ok
    assert "memory.db is a symbolic link" in " ".join(report.problems)
    target = tmp_path / "target"
    await populate(target, episodes=2)
    before = digest_tree(target)
    with pytest.raises(DataIntegrityError, match="symbolic link"):
        await restore_backup(info.path, target, force=True)
    assert digest_tree(target) == before
