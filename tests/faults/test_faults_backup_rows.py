"""Backups whose rows the library cannot read (issue 12, item 12): a re-signed backup (sizes and
checksums match) with a context that is not valid JSON, or a step result of an unknown type,
fails verify and is refused by restore naming the table, the row and the field, in every format,
with the target left byte-identical; a manifest whose schema version is not the data's, or is
newer than the library's newest migration, is refused too."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import apsw
import pytest

from integration.test_backup import CONFIG, digest_tree, edit_manifest, populate, resign
from self_learning_memory import SelfLearningMemory
from self_learning_memory.backup import create_backup, restore_backup, verify_backup
from self_learning_memory.backup.export import _insert_sql
from self_learning_memory.backup.manifest import latest_schema
from self_learning_memory.backup.sql_statements import parse_insert
from self_learning_memory.errors import DataIntegrityError

pytestmark = [pytest.mark.integration, pytest.mark.sqlite_only("backups of the embedded store")]

FORMATS = ["sqlite", "json", "jsonl", "sql"]
BAD_CONTEXT = '{"language":"python" "framework":"fastapi"}'  # a comma missing: not JSON
BAD_RESULT = '{"type":"teleport","output":"?"}'  # not a result type the library knows


def _edit_row(record: dict[str, Any], table: str, column: str, value: str) -> str:
    """Set ``column`` of the first ``table`` row of an episode record; returns the row's id."""
    if table == "episodes":
        record[column] = value
        return str(record["episode_id"])
    step = record["steps"][0]
    step[column] = value
    return f"{step['episode_id']} step {step['step_number']}"


def corrupt(backup: Path, fmt: str, table: str, column: str, value: str) -> str:
    """Write ``value`` into ``column`` of the first row of ``table`` in the backup's data file,
    then re-sign the manifest (as an attacker could). Returns the row's id."""
    if fmt == "sqlite":
        conn = apsw.Connection(str(backup / "memory.db"))
        try:
            conn.execute("PRAGMA journal_mode=DELETE")
            key = "rowid" if table == "episodes" else "episode_id, step_number"
            first = conn.execute(f"SELECT {key} FROM {table} ORDER BY {key} LIMIT 1").fetchone()
            if table == "episodes":
                conn.execute(f"UPDATE episodes SET {column} = ? WHERE rowid = ?", (value, *first))
                (row_id,) = conn.execute(
                    "SELECT episode_id FROM episodes WHERE rowid = ?", first
                ).fetchone()
            else:
                where = "episode_id = ? AND step_number = ?"
                conn.execute(f"UPDATE steps SET {column} = ? WHERE {where}", (value, *first))
                row_id = f"{first[0]} step {first[1]}"
        finally:
            conn.close()
    elif fmt == "json":
        doc = json.loads((backup / "memory.json").read_text(encoding="utf-8"))
        row_id = _edit_row(doc["episodes"][0], table, column, value)
        (backup / "memory.json").write_text(json.dumps(doc), encoding="utf-8")
    elif fmt == "jsonl":
        lines = (backup / "memory.jsonl").read_text(encoding="utf-8").splitlines()
        number = next(i for i, line in enumerate(lines) if json.loads(line)["kind"] == "episode")
        item = json.loads(lines[number])
        row_id = _edit_row(item["data"], table, column, value)
        lines[number] = json.dumps(item)
        (backup / "memory.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        sql = backup / "memory.sql"
        lines = sql.read_text(encoding="utf-8").splitlines(keepends=True)
        number = next(i for i, ln in enumerate(lines) if ln.startswith(f"INSERT INTO {table} "))
        _, row = parse_insert(lines[number].strip(), sql, number + 1)
        row[column] = value
        lines[number] = _insert_sql(table, row)
        sql.write_text("".join(lines), encoding="utf-8")
        row_id = (
            row["episode_id"]
            if table == "episodes"
            else f"{row['episode_id']} step {row['step_number']}"
        )
    resign(backup)
    return str(row_id)


async def _refused_everywhere(backup: Path, tmp_path: Path, expected: str) -> None:
    """verify names ``expected``; restore over a store and into a new directory refuse with it
    and leave both as they were."""
    report = await verify_backup(backup)
    assert not report.ok
    assert expected in " ".join(report.problems), report.problems

    target = tmp_path / "target"
    await populate(target, episodes=1)
    before = digest_tree(target)
    with pytest.raises(DataIntegrityError) as refused:
        await restore_backup(backup, target, force=True)
    assert expected in str(refused.value)
    assert digest_tree(target) == before
    with pytest.raises(DataIntegrityError) as refused_fresh:
        await restore_backup(backup, tmp_path / "fresh")
    assert expected in str(refused_fresh.value)
    assert not (tmp_path / "fresh").exists()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("table", "column", "value"),
    [("episodes", "context", BAD_CONTEXT), ("steps", "result", BAD_RESULT)],
    ids=["context-not-json", "step-result-unknown-type"],
)
async def test_faults_backup_row_the_library_cannot_read_is_refused(
    tmp_path: Path, fmt: str, table: str, column: str, value: str
) -> None:
    await populate(tmp_path / "source", episodes=2)
    info = await create_backup(tmp_path / "source", tmp_path / "backups", format=fmt)
    assert (await verify_backup(info.path)).ok
    row_id = corrupt(info.path, fmt, table, column, value)
    await _refused_everywhere(info.path, tmp_path, f"table {table}, row {row_id}: field '{column}'")


@pytest.mark.parametrize("fmt", FORMATS)
async def test_faults_backup_manifest_schema_version_not_the_datas_is_refused(
    tmp_path: Path, fmt: str
) -> None:
    """The data is at the newest schema; a manifest claiming an older one (valid on its own)
    does not match what the export header or the database's user_version records."""
    assert latest_schema() >= 2
    await populate(tmp_path / "source", episodes=1)
    info = await create_backup(tmp_path / "source", tmp_path / "backups", format=fmt)
    edit_manifest("schema_version", latest_schema() - 1)(info.path)
    await _refused_everywhere(
        info.path, tmp_path, f"schema version {latest_schema()}, the manifest says"
    )


@pytest.mark.parametrize("fmt", ["sqlite", "jsonl"])
async def test_faults_backup_manifest_schema_newer_than_the_library_is_refused(
    tmp_path: Path, fmt: str
) -> None:
    await populate(tmp_path / "source", episodes=1)
    info = await create_backup(tmp_path / "source", tmp_path / "backups", format=fmt)
    edit_manifest("schema_version", latest_schema() + 1)(info.path)
    expected = f"schema version {latest_schema() + 1} is newer than this library's"
    report = await verify_backup(info.path, deep=False)
    assert not report.ok
    assert expected in " ".join(report.problems)
    target = tmp_path / "target"
    await populate(target, episodes=1)
    before = digest_tree(target)
    with pytest.raises(DataIntegrityError, match=expected):
        await restore_backup(info.path, target, force=True)
    assert digest_tree(target) == before


async def test_faults_backup_the_librarys_own_read_names_the_bad_field(tmp_path: Path) -> None:
    """The codec that verify and restore use is the one normal reads use: a store row with a
    context that is not JSON fails a read with the field named, not a bare pydantic error."""

    await populate(tmp_path / "store", episodes=1)
    conn = apsw.Connection(str(tmp_path / "store" / "memory.db"))
    try:
        (eid,) = conn.execute("SELECT episode_id FROM episodes ORDER BY rowid LIMIT 1").fetchone()
        conn.execute("UPDATE episodes SET context = ? WHERE episode_id = ?", (BAD_CONTEXT, eid))
    finally:
        conn.close()
    shutil.rmtree(tmp_path / "store" / "cache")  # read it from the store, not the cache
    async with SelfLearningMemory.open(tmp_path / "store", config=CONFIG) as memory:
        with pytest.raises(DataIntegrityError, match=f"episode {eid} is invalid: field 'context'"):
            await memory.get_episode(eid)
