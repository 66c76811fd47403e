"""pgvector faults on the PostgreSQL 18 test server, each in a database (or schema) of its own:
a change of embedding dimensions, the extension dropped while the store is closed and while it
is open, an invalid HNSW index, and a role that may not create the extension."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from self_learning_memory.embeddings.hashing import HashingEmbedding
from support.polling import poll_until

from .pgvector_corpus import DIMS, QUERIES, identity_of, new_database, record_corpus, task_texts
from .support import Backend

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.pgvector]

COUNT = 12


@pytest.fixture
def own_db(pgvector_server_dsn: str, tmp_path: Path) -> Iterator[Backend]:
    """A database of its own (the extension can be dropped there without touching other
    tests), whose sessions avoid sequential scans and sorts so searches use the HNSW index."""
    settings = ("enable_seqscan = off", "enable_sort = off")
    with new_database(pgvector_server_dsn, settings=settings) as url:
        yield Backend("postgres18", url, tmp_path / "data")


def pgvector_details(health: dict[str, object]) -> dict[str, object]:
    details = health["primary_storage"].details  # type: ignore[attr-defined]
    state = details["pgvector"]
    assert isinstance(state, dict)
    return {"vector_backend": details["vector_backend"], **state}


def index_scans(backend: Backend) -> dict[str, int]:
    """Scans per HNSW index of the embeddings table (closed sessions have reported theirs)."""
    rows = backend.rows(
        "SELECT s.indexrelname, s.idx_scan FROM pg_stat_user_indexes s "
        "JOIN pg_class c ON c.oid = s.indexrelid JOIN pg_am a ON a.oid = c.relam "
        "WHERE s.relname = 'embeddings' AND a.amname = 'hnsw'"
    )
    return {str(name): int(scans) for name, scans in rows}


def hnsw_valid(backend: Backend) -> dict[str, bool]:
    rows = backend.rows(
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_am a ON a.oid = c.relam JOIN pg_class t ON t.oid = i.indrelid "
        "WHERE t.relname = 'embeddings' AND t.relnamespace = current_schema()::regnamespace "
        "AND a.amname = 'hnsw'"
    )
    return {str(name): bool(valid) for name, valid in rows}


async def fill(backend: Backend, count: int = COUNT) -> list[str]:
    texts = task_texts(count, seed=5)
    async with backend.open(embedder=HashingEmbedding(DIMS)) as memory:
        await record_corpus(memory, texts)
        await memory.retrieve_relevant_context(QUERIES[0], None, 3)  # builds the index
    return texts


# -- (a) a change of dimensions --------------------------------------------------------------
async def test_dimension_change_reembeds_and_builds_a_second_index(own_db: Backend) -> None:
    texts = await fill(own_db)
    (old,) = hnsw_valid(own_db)
    async with own_db.open(embedder=HashingEmbedding(32)) as memory:
        status = (await memory.health())["embeddings"].details
        assert (status["embedded"], status["missing"], status["other_identities"]) == (
            0,
            COUNT,
            COUNT,
        )
        found = await memory.retrieve_relevant_context(texts[4], None, 3)
        assert found[0].episode.task_description == texts[4]  # lexically
        assert "vector" not in found[0].provenance
        assert not found[0].components.vector
        assert await memory.reindex_embeddings() == COUNT
        status = (await memory.health())["embeddings"].details
        assert (status["embedded"], status["missing"], status["other_identities"]) == (
            COUNT,
            0,
            0,
        )
        found = await memory.retrieve_relevant_context(texts[6], None, 3, mode="vector")
        assert found[0].episode.task_description == texts[6]
        assert found[0].components.relevance == pytest.approx(1.0)
        indexes = pgvector_details(await memory.health())["indexes"]
        assert isinstance(indexes, list)
        assert len(indexes) == 2
        assert all(i["valid"] for i in indexes)
        identity = identity_of(memory)
    (new,) = set(hnsw_valid(own_db)) - {old}
    definition = own_db.rows("SELECT pg_get_indexdef(?::regclass)", (new,))[0][0]
    assert "vector(32)" in definition
    assert identity in definition
    await poll_until(
        lambda: index_scans(own_db).get(new, 0) > 0,
        message=lambda: f"the new index {new} was never scanned: {index_scans(own_db)}",
    )


# -- (b) the extension dropped while the store is closed -------------------------------------
async def test_dropped_extension_with_auto_is_recreated_and_reindex_restores(
    own_db: Backend,
) -> None:
    texts = await fill(own_db)
    own_db.execute("DROP EXTENSION vector CASCADE")  # drops the column and its index
    async with own_db.open(embedder=HashingEmbedding(DIMS)) as memory:
        # the extension is still available: auto creates it again, with an empty column
        state = pgvector_details(await memory.health())
        assert state["vector_backend"] == "pgvector"
        assert state["vectors_lost"] == COUNT
        assert "memory-cli storage reindex" in str(state["fix"])
        status = (await memory.health())["embeddings"].details
        assert (status["embedded"], status["missing"]) == (0, COUNT)
        found = await memory.retrieve_relevant_context(texts[2], None, 3)
        assert found[0].episode.task_description == texts[2]  # lexically
        assert "vector" not in found[0].provenance
        assert not found[0].components.vector
        assert await memory.reindex_embeddings() == COUNT
        assert "vectors_lost" not in pgvector_details(await memory.health())
        found = await memory.retrieve_relevant_context(texts[2], None, 3, mode="vector")
        assert found[0].episode.task_description == texts[2]
        assert found[0].components.vector is not None
        assert memory.vectors is not None
        assert memory.vectors.where == "pgvector"
        assert len(memory.vectors.index) == 0
    assert own_db.rows("SELECT count(vector), count(embedding) FROM embeddings") == [(0, COUNT)]
    async with own_db.open(embedder=HashingEmbedding(DIMS)) as memory:
        state = pgvector_details(await memory.health())
        assert "vectors_lost" not in state  # repaired
        assert state["active"] is True


async def test_dropped_extension_with_off_falls_back_to_bytea(own_db: Backend) -> None:
    texts = await fill(own_db)
    own_db.execute("DROP EXTENSION vector CASCADE")
    async with own_db.open(embedder=HashingEmbedding(DIMS), storage={"pgvector": "off"}) as memory:
        state = pgvector_details(await memory.health())
        assert state["vector_backend"] == "bytea"
        assert state["active"] is False
        assert state["vectors_lost"] == COUNT
        assert "memory-cli storage reindex" in str(state["fix"])
        status = (await memory.health())["embeddings"].details
        assert (status["embedded"], status["missing"], status["index"]) == (0, COUNT, "in-process")
        found = await memory.retrieve_relevant_context(texts[8], None, 3)
        assert found[0].episode.task_description == texts[8]  # lexically
        assert "vector" not in found[0].provenance
        assert not found[0].components.vector
        assert await memory.reindex_embeddings() == COUNT
        assert "vectors_lost" not in pgvector_details(await memory.health())
        found = await memory.retrieve_relevant_context(texts[8], None, 3, mode="vector")
        assert found[0].episode.task_description == texts[8]
        assert memory.vectors is not None
        assert len(memory.vectors.index) == COUNT  # the in-process index
    assert own_db.rows("SELECT count(vector) FROM embeddings") == [(COUNT,)]
    assert own_db.rows("SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == [(0,)]
    # auto again: the extension comes back and the re-embedded bytea vectors move into it
    async with own_db.open(embedder=HashingEmbedding(DIMS)) as memory:
        state = pgvector_details(await memory.health())
        assert state["vector_backend"] == "pgvector"
        assert state["moved_from_bytea"] == COUNT
        assert "vectors_lost" not in state


# -- (e) the extension dropped while the store is open: the search fails for real ------------
async def test_vector_search_failing_in_the_server_falls_back_to_lexical(
    own_db: Backend,
) -> None:
    texts = task_texts(COUNT, seed=5)
    async with own_db.open(embedder=HashingEmbedding(DIMS)) as memory:
        await record_corpus(memory, texts)
        found = await memory.retrieve_relevant_context(texts[3], None, 3)
        assert found[0].components.vector is not None
        own_db.execute("DROP EXTENSION vector CASCADE")  # under the running store
        found = await memory.retrieve_relevant_context(texts[4], None, 3)  # not a cached query
        assert found[0].episode.task_description == texts[4]  # lexically
        assert "vector" not in found[0].provenance
        assert not found[0].components.vector
        assert "vector:error" in found[0].provenance
        # the failure made the store choose its vector path again: with the extension still
        # installable, auto created it anew (an empty column): no vector, never a wrong one
        state = pgvector_details(await memory.health())
        assert state["active"] is True
        assert state["vectors_lost"] == COUNT
        assert await memory.retrieve_relevant_context(texts[5], None, 3, mode="vector") == []
        late = await record_corpus(memory, ["a late task after the drop"])
        assert (await memory.get_episode(late.ids[0])).outcome is not None
        found = await memory.retrieve_relevant_context(
            "a late task after the drop", None, 3, mode="vector"
        )
        assert [r.episode.episode_id for r in found] == late.ids  # written to the new column
        assert await memory.reindex_embeddings() == COUNT
        memory._query_cache.clear()
        found = await memory.retrieve_relevant_context(texts[5], None, 3, mode="vector")
        assert found[0].episode.task_description == texts[5]
        assert "vectors_lost" not in pgvector_details(await memory.health())


# -- (c) an invalid HNSW index ---------------------------------------------------------------
async def test_an_invalid_index_is_rebuilt_by_the_next_process(
    pg18_url: str, pgvector_server_dsn: str, tmp_path: Path
) -> None:
    backend = Backend("postgres18", pg18_url, tmp_path / "data")
    texts = await fill(backend)
    ((name, valid),) = hnsw_valid(backend).items()
    assert valid is True
    (schema,) = backend.rows("SELECT current_schema()")[0]
    (before,) = backend.rows("SELECT ?::regclass::oid", (name,))[0]
    with psycopg.connect(pgvector_server_dsn, autocommit=True) as conn:  # as the superuser
        conn.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass",
            (f'"{schema}"."{name}"',),
        )
    assert hnsw_valid(backend) == {name: False}
    async with backend.open(embedder=HashingEmbedding(DIMS)) as memory:
        state = pgvector_details(await memory.health())
        indexes = state["indexes"]
        assert isinstance(indexes, list)
        assert [(i["name"], i["valid"]) for i in indexes] == [(name, False)]
        found = await memory.retrieve_relevant_context(texts[1], None, 3, mode="vector")
        assert found[0].episode.task_description == texts[1]
        state = pgvector_details(await memory.health())
        assert [(i["name"], i["valid"]) for i in state["indexes"]] == [(name, True)]  # type: ignore[union-attr]
    assert hnsw_valid(backend) == {name: True}
    assert backend.rows("SELECT ?::regclass::oid", (name,))[0][0] != before  # built anew


CHILD = Path(__file__).with_name("index_child.py")


def _child(url: str, data_dir: Path, query: str) -> subprocess.Popen[str]:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root / "tests")])}
    return subprocess.Popen(
        [sys.executable, str(CHILD), url, str(data_dir), str(DIMS), query],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _refused_builders(backend: Backend) -> int:
    """Sessions that asked for the index build's lock and do not hold it (they try again)."""
    return int(
        backend.rows(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'SELECT pg_try_advisory_lock%%' AND pid NOT IN "
            "(SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)"
        )[0][0]
    )


async def test_two_processes_building_the_same_index_at_once_end_with_one_valid_index(
    pg18_url: str, tmp_path: Path
) -> None:
    """Two real processes call ``ensure_index`` on the same fresh store at once. The first's
    ``CREATE INDEX CONCURRENTLY`` is held half-way (its index exists but is not valid yet: a
    transaction of this test holds a writer's lock on the table, which the build waits out),
    and the second starts then, so it sees an invalid index of that name. It must wait for the
    build, not take it for an interrupted one and drop it: both end with the same single valid
    index (the one the first created) and their searches find the asked episode."""
    backend = Backend("postgres18", pg18_url, tmp_path / "data")
    texts = task_texts(40, seed=9)
    async with backend.open(embedder=HashingEmbedding(DIMS)) as memory:
        await record_corpus(memory, texts)
        identity = identity_of(memory)
    assert hnsw_valid(backend) == {}
    assert backend.url is not None
    writer = psycopg.connect(backend.url)  # a transaction holding a writer's lock
    try:
        writer.execute("LOCK TABLE embeddings IN ROW EXCLUSIVE MODE")
        first = _child(backend.url, tmp_path / "first", texts[3])
        await poll_until(
            lambda: list(hnsw_valid(backend).values()) == [False],
            timeout=60,
            message="the first build never created its (not yet valid) index",
        )
        ((name, _),) = hnsw_valid(backend).items()
        (oid,) = backend.rows("SELECT ?::regclass::oid", (name,))[0]
        second = _child(backend.url, tmp_path / "second", texts[17])
        await poll_until(  # the first waits out the writer, the second for the first
            lambda: _refused_builders(backend) >= 1,
            timeout=60,
            message="the second process never asked for the build",
        )
        assert hnsw_valid(backend) == {name: False}
    finally:
        writer.rollback()
        writer.close()
    outputs = []
    for child, query in ((first, texts[3]), (second, texts[17])):
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, (out, err)
        lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
        assert lines["IDENTITY"] == identity
        assert lines["INDEX"] == name
        assert lines["TOP"] == query
        assert "vector" in lines["PROVENANCE"].split(",")
        assert "vector:error" not in lines["PROVENANCE"]
        outputs.append(err)
    assert "rebuilding" not in outputs[1]  # the second did not take the build for a crash's
    assert hnsw_valid(backend) == {name: True}
    assert backend.rows("SELECT ?::regclass::oid", (name,))[0][0] == oid  # not dropped, rebuilt


# -- (d) a role that may not create the extension --------------------------------------------
@pytest.fixture
def unprivileged(pgvector_server_dsn: str, tmp_path: Path) -> Iterator[Backend]:
    """A database owned by a new LOGIN role (no superuser) where the extension is not installed;
    the store connects as that role."""
    role = f"slm_role_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pgvector_server_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        with new_database(pgvector_server_dsn, owner=role) as url:
            yield Backend("postgres18", url, tmp_path / "data")
    finally:
        with psycopg.connect(pgvector_server_dsn, autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


async def test_a_refused_create_extension_leaves_the_store_on_bytea(
    unprivileged: Backend,
) -> None:
    assert unprivileged.rows("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == [
        (False,)
    ]
    texts = task_texts(COUNT, seed=5)
    async with unprivileged.open(embedder=HashingEmbedding(DIMS)) as memory:
        await record_corpus(memory, texts)
        state = pgvector_details(await memory.health())
        assert state["vector_backend"] == "bytea"
        assert state["active"] is False
        reason = str(state["reason"])
        assert "CREATE EXTENSION vector failed" in reason
        assert "permission denied" in reason
        found = await memory.retrieve_relevant_context(texts[9], None, 3, mode="vector")
        assert found[0].episode.task_description == texts[9]
        assert memory.vectors is not None
        assert memory.vectors.where == "in-process"
    assert unprivileged.rows("SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == [(0,)]
    assert unprivileged.rows("SELECT count(vector) FROM embeddings") == [(COUNT,)]
