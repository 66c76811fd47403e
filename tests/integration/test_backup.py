"""Backups on real SQLite and LMDB files: create -> verify -> restore into a new directory gives
the same store, for every format; a snapshot taken while another task writes is consistent; a
damaged backup fails verify and is refused by restore before anything is overwritten."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import apsw
import pytest

from self_learning_memory import (
    ErrorResult,
    ExecutionStep,
    FailureOutcome,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)
from self_learning_memory.backup import (
    BackupFormat,
    create_backup,
    list_backups,
    resolve_backup,
    restore_backup,
    verify_backup,
)
from self_learning_memory.backup import create as create_module
from self_learning_memory.backup.export import FTS_COLUMNS
from self_learning_memory.config import EmbeddingsConfig
from self_learning_memory.errors import (
    DataIntegrityError,
    InvalidStateError,
    NotFoundError,
    ValidationError,
)
from self_learning_memory.storage.restore_lock import LOCK_NAME

pytestmark = [
    pytest.mark.integration,
    pytest.mark.sqlite_only(
        "backups copy the embedded SQLite file and LMDB cache; a PostgreSQL store is moved with "
        "`memory-cli storage migrate` (tests/cli/test_migrate.py) or backed up with pg_dump"
    ),
]

WEB = TaskContext(domain="web-api", language="python", framework="fastapi", tags=["http", "O'k"])
CONFIG = MemoryConfig(embeddings=EmbeddingsConfig(provider="hashing"))
FORMATS = [f.value for f in BackupFormat]
STEP_ACTIONS = [
    "check whether the router already has the route",
    "add the endpoint to the router",
    "run the endpoint tests",
]
TABLES = [
    "episodes",
    "steps",
    "patterns",
    "episode_patterns",
    "heuristics",
    "learning_jobs",
    "meta",
    "embeddings",
    "retrieval_uses",
    "episode_usage",
    "row_counts",
]


async def record(memory: SelfLearningMemory, description: str, *, fail: bool = False) -> str:
    eid = await memory.start_episode(description, WEB, "code_generation")
    tools = ["read_file", "edit_file", "run_tests"]
    for n, tool in enumerate(tools, 1):
        result = (
            ErrorResult(message="2 failed\nline 'two'")
            if fail and n == 3
            else SuccessResult(output=f"ok {n}: ünïcode \"quoted\" 'single'")
        )
        await memory.log_step(
            eid,
            ExecutionStep(
                step_number=n,
                tool=tool,
                action=STEP_ACTIONS[n - 1],
                parameters={"path": "app/routes.py", "n": n, "nested": {"x": [1.5, None]}},
                result=result,
                latency_ms=10 * n,
                tokens_used=100 + n,
            ),
        )
    outcome = (
        FailureOutcome(reason="tests fail")
        if fail
        else SuccessOutcome(verdict="done", artifacts=["app/routes.py"])
    )
    await memory.complete_episode(eid, outcome)
    return str(eid)


async def populate(data_dir: Path, episodes: int = 6) -> None:
    async with SelfLearningMemory.open(data_dir, config=CONFIG) as memory:
        ids = [
            await record(memory, f"Add the /health{i} endpoint to the orders API", fail=i == 2)
            for i in range(episodes)
        ]
        open_id = await memory.start_episode("Write the release notes", task_type="documentation")
        await memory.log_step(open_id, ExecutionStep(step_number=1, tool="git", action="git log"))
        if len(ids) >= 2:  # retrieval feedback: uses counted (a completed task) and pending
            await memory.record_retrieval_feedback(ids[1], [ids[0]], helpful=True)
            await memory.record_retrieval_feedback(open_id, [ids[0], ids[1]])
        await memory.wait_for_learning()


def table_rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (and the full-text rows), for exact comparison."""
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}
        rows["episodes_rowid"] = conn.execute(
            "SELECT rowid, episode_id FROM episodes ORDER BY rowid"
        ).fetchall()
        rows["fts"] = conn.execute(
            f"SELECT rowid, {', '.join(FTS_COLUMNS)} FROM episodes_fts ORDER BY rowid"
        ).fetchall()
        return rows
    finally:
        conn.close()


async def content(data_dir: Path) -> dict[str, Any]:
    """What the library gives back: episodes with steps, patterns with counts, heuristics, and
    a lexical search (which needs the full-text rows)."""
    async with SelfLearningMemory.open(data_dir, config=CONFIG) as memory:
        episodes = await memory.list_episodes(limit=1000)
        patterns = await memory.list_patterns()
        heuristics = await memory.list_heuristics(limit=1000)
        found = await memory.retrieve_relevant_context("health endpoint orders", WEB, limit=5)
        return {
            "episodes": [e.model_dump(mode="json") for e in episodes],
            "patterns": [
                (p.model_dump(mode="json"), u.model_dump(mode="json")) for p, u in patterns
            ],
            "heuristics": [h.model_dump(mode="json") for h in heuristics],
            "search": sorted(str(r.episode.episode_id) for r in found),
        }


def store_entries(data_dir: Path) -> list[str]:
    """The names in a data directory, without the restore lock every opener creates."""
    return sorted(p.name for p in data_dir.iterdir() if p.name != LOCK_NAME)


def digest_tree(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
async def source(tmp_path: Path) -> Path:
    data = tmp_path / "source"
    await populate(data)
    return data


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("fmt", FORMATS)
async def test_round_trip_gives_the_same_store(
    source: Path, tmp_path: Path, fmt: str, compress: bool
) -> None:
    info = await create_backup(source, tmp_path / "backups", format=fmt, compress=compress)
    assert info.manifest is not None
    manifest = info.manifest
    assert manifest.format == fmt
    assert manifest.compressed is compress
    assert manifest.counts.episodes == 7
    assert manifest.counts.steps == 19
    assert manifest.counts.patterns > 0
    assert manifest.counts.heuristics > 0
    assert manifest.counts.embeddings == 6
    assert manifest.schema_version >= 3
    assert [f.name for f in manifest.files] == [manifest.data_file()]
    on_disk = json.loads((info.path / "manifest.json").read_text())
    assert (
        on_disk["files"][0]["sha256"]
        == hashlib.sha256((info.path / manifest.data_file()).read_bytes()).hexdigest()
    )

    report = await verify_backup(info.path)
    assert report.ok, report.problems
    assert report.files_checked == 1

    target = tmp_path / "restored"
    restored = await restore_backup(info.path, target)
    assert restored.replaced_existing is False
    assert restored.counts == manifest.counts
    assert store_entries(target) == ["memory.db"]  # no stale cache, no staging

    assert table_rows(target / "memory.db") == table_rows(source / "memory.db")
    feedback = table_rows(source / "memory.db")
    assert (len(feedback["retrieval_uses"]), len(feedback["episode_usage"])) == (3, 1)
    expected = await content(source)
    assert expected["search"], "the search must find something to compare"
    assert await content(target) == expected


async def test_sql_export_is_plain_inserts_for_the_real_schema(
    source: Path, tmp_path: Path
) -> None:
    info = await create_backup(source, tmp_path / "b", format="sql")
    text = (info.path / "memory.sql").read_text(encoding="utf-8")
    statements = [line for line in text.splitlines() if line and not line.startswith("--")]
    assert statements[0].startswith("INSERT INTO episodes (rowid, episode_id,")
    assert any(s.startswith("INSERT INTO steps (") for s in statements)
    assert any(s.startswith("INSERT INTO heuristics (") for s in statements)
    assert "O''k" in text  # quotes escaped as SQL


async def test_backup_without_embeddings(source: Path, tmp_path: Path) -> None:
    for fmt in ("sqlite", "jsonl"):
        info = await create_backup(source, tmp_path / "b", format=fmt, embeddings=False)
        assert info.manifest is not None
        assert info.manifest.counts.embeddings == 0
        assert info.manifest.embeddings is False
        target = tmp_path / f"r-{fmt}"
        await restore_backup(info.path, target)
        rows = table_rows(target / "memory.db")
        assert rows["embeddings"] == []
        # the counts the store keeps (migration 9) follow the rows restored
        assert all(r[1] == 0 for r in rows["row_counts"] if str(r[0]).startswith("vectors:"))
        assert ("completed", 6) in [tuple(r) for r in rows["row_counts"]]  # 1 of 7 is open
        assert rows["episodes"] == table_rows(source / "memory.db")["episodes"]


async def test_backup_of_an_open_memory_includes_its_buffered_steps(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with SelfLearningMemory.open(data) as memory:
        eid = await memory.start_episode("buffered steps", WEB)
        await memory.log_step(eid, ExecutionStep(step_number=1, tool="t", action="a"))
        info = await create_backup(memory, tmp_path / "b")
    assert info.manifest is not None
    assert info.manifest.counts.steps == 1


async def test_snapshot_is_consistent_while_another_task_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snapshot is copied one page at a time; between pages the writer commits more
    episodes and steps. The copy must still be the store of one instant."""
    data = tmp_path / "data"
    monkeypatch.setattr(create_module, "PAGES_PER_STEP", 1)
    async with SelfLearningMemory.open(data, config=CONFIG) as memory:
        for i in range(4):
            await record(memory, f"seed episode {i}")
        committed = threading.Event()
        stop = asyncio.Event()
        writes = 0

        async def writer() -> None:
            nonlocal writes
            while not stop.is_set():
                await record(memory, f"concurrent episode {writes}")
                writes += 1
                committed.set()

        pages_seen = 0
        interleaved = 0

        def progress(stage: str, done: int, total: int) -> None:
            nonlocal pages_seen, interleaved
            if stage != "snapshot" or done >= total:
                return
            pages_seen += 1
            committed.clear()
            if pages_seen <= 5 and committed.wait(timeout=30):  # let a write land mid-copy
                interleaved += 1

        task = asyncio.create_task(writer())
        try:
            info = await create_backup(memory, tmp_path / "b", progress=progress)
        finally:
            stop.set()
            await task
        writes_after = writes

    assert interleaved >= 3, "the writer must have committed while the snapshot was copied"
    assert info.manifest is not None
    counts = info.manifest.counts
    assert 4 <= counts.episodes < 4 + writes_after
    target = tmp_path / "restored"
    await restore_backup(info.path, target)
    conn = apsw.Connection(str(target / "memory.db"))
    try:
        mismatched = conn.execute(
            "SELECT e.episode_id FROM episodes e WHERE e.step_count != "
            "(SELECT count(*) FROM steps s WHERE s.episode_id = e.episode_id)"
        ).fetchall()
        assert mismatched == []
        missing_fts = conn.execute(
            "SELECT count(*) FROM episodes e WHERE e.end_time IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM episodes_fts f WHERE f.rowid = e.rowid)"
        ).fetchone()
        assert missing_fts == (0,)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT count(*) FROM episodes").fetchone() == (counts.episodes,)
    finally:
        conn.close()


# -- damaged backups ---------------------------------------------------------------------
def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def edit_manifest(key: str, value: Any) -> Any:
    def edit(backup: Path) -> None:
        manifest = json.loads((backup / "manifest.json").read_text())
        target = manifest
        *parents, last = key.split(".")
        for name in parents:
            target = target[name]
        target[last] = value
        (backup / "manifest.json").write_text(json.dumps(manifest))

    return edit


DAMAGE: dict[str, Any] = {
    "flipped-byte": lambda b, name: flip_byte(b / name),
    "truncated": lambda b, name: truncate(b / name),
    "deleted-data-file": lambda b, name: (b / name).unlink(),
    "deleted-manifest": lambda b, name: (b / "manifest.json").unlink(),
    "manifest-not-json": lambda b, name: (b / "manifest.json").write_text("{not json"),
    "manifest-wrong-checksum": lambda b, name: edit_manifest("files", [])(b),
    "manifest-wrong-counts": lambda b, name: edit_manifest("counts.episodes", 99)(b),
    "manifest-path-escape": lambda b, name: edit_manifest(
        "files", [{"name": "../memory.db", "size_bytes": 1, "sha256": "0"}]
    )(b),
}


@pytest.mark.parametrize("fmt", ["sqlite", "jsonl"])
@pytest.mark.parametrize("damage", list(DAMAGE))
async def test_damaged_backup_fails_verify_and_restore_overwrites_nothing(
    source: Path, tmp_path: Path, damage: str, fmt: str
) -> None:
    info = await create_backup(source, tmp_path / "b", format=fmt)
    assert info.manifest is not None
    data_file = info.manifest.data_file()
    DAMAGE[damage](info.path, data_file)

    report = await verify_backup(info.path)
    assert not report.ok
    problem = " ".join(report.problems)
    named = "manifest" if "manifest" in damage else data_file
    assert named in problem, problem

    # the target holds a store someone uses (with its cache): it must survive untouched
    target = tmp_path / "in-use"
    await populate(target, episodes=2)
    async with SelfLearningMemory.open(target, config=CONFIG) as memory:
        await memory.list_episodes()
    before = digest_tree(target)
    with pytest.raises(DataIntegrityError):
        await restore_backup(info.path, target, force=True)
    assert digest_tree(target) == before
    assert store_entries(target) == ["cache", "memory.db"]

    fresh = tmp_path / "fresh"
    with pytest.raises(DataIntegrityError):
        await restore_backup(info.path, fresh)
    assert not fresh.exists()


async def test_restore_refuses_sql_that_is_not_an_insert(source: Path, tmp_path: Path) -> None:
    """A backup's SQL runs under an authorizer: it can insert rows, never attach a file."""
    info = await create_backup(source, tmp_path / "b", format="sql")
    sql = info.path / "memory.sql"
    outside = tmp_path / "written-by-backup.db"
    for evil in (
        f"INSERT INTO meta (key, value) VALUES ('a', 'b'); ATTACH '{outside}' AS x;\n",
        "INSERT INTO meta (key, value) SELECT 'k', load_extension('x');\n",
        f"ATTACH '{outside}' AS x;\n",
    ):
        sql.write_text(sql.read_text() + evil)
        resign(info.path)
        with pytest.raises(DataIntegrityError):
            await restore_backup(info.path, tmp_path / "target")
        assert not outside.exists()
        assert not (tmp_path / "target").exists()
        sql.write_text(sql.read_text().replace(evil, ""))


def resign(backup: Path) -> None:
    """Rewrite the manifest's sizes and checksums (as an attacker could)."""
    manifest = json.loads((backup / "manifest.json").read_text())
    for entry in manifest["files"]:
        data = (backup / entry["name"]).read_bytes()
        entry["size_bytes"] = len(data)
        entry["sha256"] = hashlib.sha256(data).hexdigest()
    (backup / "manifest.json").write_text(json.dumps(manifest))


async def test_restore_over_a_store_needs_force_and_drops_the_cache(
    source: Path, tmp_path: Path
) -> None:
    info = await create_backup(source, tmp_path / "b", compress=True)
    target = tmp_path / "target"
    async with SelfLearningMemory.open(target, config=CONFIG) as memory:
        old_id = await record(memory, "an episode only the old store has")
        await memory.get_episode(old_id)  # now in the LMDB cache too
    assert (target / "cache").is_dir()
    (target / "notes.txt").write_text("not part of the store")
    before = digest_tree(target)

    with pytest.raises(InvalidStateError, match="already holds a store"):
        await restore_backup(info.path, target)
    assert digest_tree(target) == before

    report = await restore_backup(info.path, target, force=True)
    assert report.replaced_existing is True
    assert (target / "notes.txt").read_text() == "not part of the store"
    assert not (target / "cache").exists()
    assert store_entries(target) == ["memory.db", "notes.txt"]
    async with SelfLearningMemory.open(target, config=CONFIG) as memory:
        with pytest.raises(NotFoundError):
            await memory.get_episode(old_id)  # the old cache cannot serve it
    assert await content(target) == await content(source)


async def test_list_resolve_and_bad_inputs(source: Path, tmp_path: Path) -> None:
    root = tmp_path / "b"
    first = await create_backup(source, root, format="json")
    second = await create_backup(source, root, format="sql", compress=True)
    (root / ".backup_x.partial").mkdir()  # an interrupted create is not a backup
    broken = root / "backup_broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("[]")
    found = await list_backups(root)
    assert [b.path for b in found[:2]] == [second.path, first.path]
    assert found[2].path == broken
    assert found[2].manifest is None
    assert found[2].problem is not None
    assert len(found) == 3

    assert first.manifest is not None
    assert resolve_backup(first.manifest.backup_id, root) == first.path
    assert resolve_backup(first.path) == first.path
    with pytest.raises(NotFoundError):
        resolve_backup("backup_nope", root)
    with pytest.raises(NotFoundError):
        await list_backups(tmp_path / "missing")
    with pytest.raises(NotFoundError):
        await create_backup(tmp_path / "no-store", root)
    with pytest.raises(ValidationError, match="format"):
        await create_backup(source, root, format="xml")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ValidationError, match="not a directory"):
        await create_backup(source, tmp_path / "a-file")
    gz = second.path / "memory.sql.gz"
    assert gzip.decompress(gz.read_bytes()).startswith(b"-- self-learning-memory-export")
