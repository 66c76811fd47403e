"""The embedded store's embedding rows. Schema migration 8: their order moves from the implicit
rowid (given again once the newest row is deleted) to an ``AUTOINCREMENT`` sequence; a store
written before it keeps every vector and its number, retrieval finds them, and numbers go on
from the highest. Migration 9: the coverage's counts (completed episodes, vectors per identity)
kept by triggers equal the rows' through every kind of write."""

from __future__ import annotations

import random
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
from self_learning_memory.model.records import EmbeddingRecord
from self_learning_memory.storage.migrations import SQLITE_MIGRATIONS

pytestmark = pytest.mark.integration

CTX = TaskContext(domain="ops", language="python")
CONFIG = MemoryConfig.model_validate({"embeddings": {"provider": "hashing", "dimensions": 32}})
TASKS = ["parse the yaml config", "resize the thumbnail images", "rotate the service logs"]
# the table as migration 3 created it (the whole of that migration)
V7_TABLE = dict(SQLITE_MIGRATIONS)[3]
COLUMNS = "episode_id, identity, content_hash, dimensions, vector, truncated, created_at"


async def _complete(memory: SelfLearningMemory, task: str) -> object:
    eid = await memory.start_episode(task, CTX, "code_generation")
    step = ExecutionStep(step_number=1, tool="python", action="run", result=SuccessResult())
    await memory.log_step(eid, step)
    await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
    return eid


def _as_schema_7(db: Path) -> list[tuple[int, str, bytes]]:
    """Turn the store back into schema 7 (without migration 9's counts and migration 10's
    candidate log, the embeddings table as migration 3 made it: rowid = seq, numbers 1, 2, 5
    as a store with deletions has them); the rows (rowid, episode, vector)."""
    conn = apsw.Connection(str(db))
    with conn:
        rows = conn.execute(f"SELECT seq, {COLUMNS} FROM embeddings ORDER BY seq").fetchall()
        conn.execute("DROP TABLE embeddings")  # and its triggers (migration 9)
        for suffix in ("insert", "delete", "end"):
            conn.execute(f"DROP TRIGGER episodes_counted_{suffix}")
        conn.execute("DROP TABLE row_counts")
        for suffix in (
            "insert",
            "update",
            "delete",
            "usage_insert",
            "usage_update",
            "usage_delete",
        ):
            conn.execute(f"DROP TRIGGER candidate_changes_{suffix}")  # migration 10
        conn.execute("DROP TABLE candidate_changes")
        conn.execute("DELETE FROM sqlite_sequence WHERE name = 'embeddings'")
        conn.execute(V7_TABLE)
        for number, row in zip((1, 2, 5), rows, strict=True):
            marks = ", ".join("?" * 8)
            conn.execute(
                f"INSERT INTO embeddings (rowid, {COLUMNS}) VALUES ({marks})", (number, *row[1:])
            )
        # a vector whose episode is gone (this connection does not enforce foreign keys):
        # the migration does not copy it
        conn.execute(
            f"INSERT INTO embeddings (rowid, {COLUMNS}) VALUES (3, 'gone', 'x', 'h', 2, x'00', 0, 0)"
        )
        conn.execute("PRAGMA user_version=7")
        kept = conn.execute(
            "SELECT rowid, episode_id, vector FROM embeddings WHERE episode_id <> 'gone' "
            "ORDER BY rowid"
        )
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
        assert _counts(conn) == _kept_counts(conn) == {"completed": 3, _vectors(memory): 3}
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
        assert _counts(conn) == _kept_counts(conn) == {"completed": 3, _vectors(memory): 3}
        conn.close()


def _vectors(memory: SelfLearningMemory) -> str:
    assert memory.vectors is not None
    return f"vectors:{memory.vectors.identity}"


def _counts(conn: apsw.Connection) -> dict[str, int]:
    """The rows' counts, counted."""
    found = {
        "completed": int(
            conn.execute("SELECT count(*) FROM episodes WHERE end_time IS NOT NULL").fetchone()[0]
        )
    }
    for identity, n in conn.execute("SELECT identity, count(*) FROM embeddings GROUP BY identity"):
        found[f"vectors:{identity}"] = int(n)
    return found


def _kept_counts(conn: apsw.Connection) -> dict[str, int]:
    """The counts the triggers keep (identities whose vectors all went: 0, left out)."""
    rows = conn.execute("SELECT name, n FROM row_counts")
    return {str(name): int(n) for name, n in rows if n or name == "completed"}


async def test_the_kept_counts_equal_the_rows_through_every_kind_of_write(tmp_path: Path) -> None:
    """Completions, open episodes, deletes (the vector goes with its episode), re-embedding
    (the row replaced), vectors of another identity, another writer's INSERT OR REPLACE and
    UPDATE of the identity: after each, the counts kept equal the rows', and the coverage
    (``vectors.status``) reads them."""
    data = tmp_path / "data"
    rng = random.Random(3)
    async with SelfLearningMemory.open(data, config=CONFIG) as memory:
        assert memory.vectors is not None
        conn = apsw.Connection(str(data / "memory.db"))
        completed: list[object] = []
        for n in range(60):
            action = rng.choice(
                ["complete", "complete", "open", "delete", "reembed", "other", "foreign"]
            )
            if action == "complete":
                completed.append(await _complete(memory, f"{rng.choice(TASKS)} {n}"))
                assert await memory.wait_for_embeddings(30)
            elif action == "open":
                await memory.start_episode(f"still open {n}", CTX, "code_generation")
            elif action == "delete" and completed:
                await memory.delete_episode(completed.pop(rng.randrange(len(completed))))
            elif action == "reembed" and completed:
                episode = await memory.get_episode(rng.choice(completed))
                records = await memory.vectors.embed_records([episode])
                await memory.storage.store_embeddings(records)
            elif action == "other" and completed:
                eid = rng.choice(completed)
                record = EmbeddingRecord("other:model:2", "h", 2, bytes(8), False)
                await memory.storage.store_embeddings([(eid, record)])
            elif action == "foreign" and completed:  # another writer's statements
                eid = str(rng.choice(completed))
                with conn:
                    if rng.random() < 0.5:
                        conn.execute(
                            "INSERT OR REPLACE INTO embeddings (episode_id, identity, "
                            "content_hash, dimensions, vector, truncated, created_at) "
                            "SELECT episode_id, 'foreign:model:2', 'h', 2, x'0000000000000000', "
                            "0, 0 FROM episodes WHERE episode_id = ?",
                            (eid,),
                        )
                    else:
                        conn.execute(
                            "UPDATE embeddings SET identity = 'foreign:model:2' WHERE episode_id = ?",
                            (eid,),
                        )
            assert _kept_counts(conn) == _counts(conn), (n, action)
            status = await memory.vectors.status()
            counted = _counts(conn)
            mine = counted.get(_vectors(memory), 0)
            assert status.embedded == mine
            assert status.missing == counted["completed"] - mine
            others = sum(v for k, v in counted.items() if k not in ("completed", _vectors(memory)))
            assert status.other_identities == others
        conn.close()
