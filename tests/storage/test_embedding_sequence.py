"""Schema migration 8 on the embedded store: the embedding rows' order moves from the implicit
rowid (given again once the newest row is deleted) to an ``AUTOINCREMENT`` sequence. A store
written before it keeps every vector and its number, retrieval finds them, and numbers go on
from the highest."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from self_learning_memory import (
    ExecutionStep,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)
from self_learning_memory.storage.migrations import SQLITE_MIGRATIONS

pytestmark = pytest.mark.integration

CTX = TaskContext(domain="ops", language="python")
CONFIG = MemoryConfig.model_validate({"embeddings": {"provider": "hashing", "dimensions": 32}})
TASKS = ["parse the yaml config", "resize the thumbnail images", "rotate the service logs"]
# the table as migration 3 created it
V7_TABLE = """
CREATE TABLE embeddings (
    episode_id   TEXT PRIMARY KEY REFERENCES episodes(episode_id) ON DELETE CASCADE,
    identity     TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    dimensions   INTEGER NOT NULL,
    vector       BLOB NOT NULL,
    truncated    INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);
CREATE INDEX idx_embeddings_identity ON embeddings(identity, episode_id);
CREATE INDEX idx_embeddings_hash ON embeddings(identity, content_hash);
"""
COLUMNS = "episode_id, identity, content_hash, dimensions, vector, truncated, created_at"


async def _complete(memory: SelfLearningMemory, task: str) -> object:
    eid = await memory.start_episode(task, CTX, "code_generation")
    step = ExecutionStep(step_number=1, tool="python", action="run", result=SuccessResult())
    await memory.log_step(eid, step)
    await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
    return eid


def _as_schema_7(db: Path) -> list[tuple[int, str, bytes]]:
    """Turn the store's embeddings table back into migration 3's (rowid = seq, numbers 1, 2, 5
    as a store with deletions has them) and its version to 7; the rows (rowid, episode, vector)."""
    conn = apsw.Connection(str(db))
    with conn:
        rows = conn.execute(f"SELECT seq, {COLUMNS} FROM embeddings ORDER BY seq").fetchall()
        conn.execute("DROP TABLE embeddings")
        conn.execute("DELETE FROM sqlite_sequence WHERE name = 'embeddings'")
        conn.execute(V7_TABLE)
        for number, row in zip((1, 2, 5), rows, strict=True):
            marks = ", ".join("?" * 8)
            conn.execute(
                f"INSERT INTO embeddings (rowid, {COLUMNS}) VALUES ({marks})", (number, *row[1:])
            )
        conn.execute("PRAGMA user_version=7")
        kept = conn.execute("SELECT rowid, episode_id, vector FROM embeddings ORDER BY rowid")
        found = [(int(r[0]), str(r[1]), bytes(r[2])) for r in kept]
    conn.close()
    return found


async def test_a_store_of_schema_7_keeps_its_vectors_and_numbers_them_on(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with SelfLearningMemory.open(data, config=CONFIG) as memory:
        ids = [await _complete(memory, task) for task in TASKS]
        assert await memory.wait_for_embeddings(30)
    before = _as_schema_7(data / "memory.db")
    assert [r[0] for r in before] == [1, 2, 5]

    async with SelfLearningMemory.open(data, config=CONFIG) as memory:
        conn = apsw.Connection(str(data / "memory.db"))
        assert conn.execute("PRAGMA user_version").fetchone() == (len(SQLITE_MIGRATIONS),)
        after = conn.execute("SELECT seq, episode_id, vector FROM embeddings ORDER BY seq")
        assert [(int(r[0]), str(r[1]), bytes(r[2])) for r in after] == before
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        # every vector is found where it was
        for eid, task in zip(ids, TASKS, strict=True):
            found = await memory.retrieve_relevant_context(task, CTX, 1, mode="vector")
            assert found[0].episode.episode_id == eid
        # the newest row deleted, the next vector is numbered after it all the same
        await memory.delete_episode(ids[2])
        added = await _complete(memory, "compress the nightly backups")
        assert await memory.wait_for_embeddings(30)
        row = conn.execute("SELECT seq FROM embeddings WHERE episode_id = ?", (str(added),))
        assert row.fetchone()[0] == 6
        found = await memory.retrieve_relevant_context(
            "compress the nightly backups", CTX, 1, mode="vector"
        )
        assert found[0].episode.episode_id == added
        conn.close()
