"""Vectors inside PostgreSQL with pgvector (``storage/postgres/pgvector.py``), on the PostgreSQL 18
test server and, for the fallback, the machine's PostgreSQL 15 without the extension:
activation and the HNSW index, the move of bytea vectors, SQL filters with iterative scans,
equal rankings with the bytea path, and ``storage migrate`` to and from SQLite."""

from __future__ import annotations

import logging
import re
import uuid
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from self_learning_memory import (
    ConfigurationError,
    EpisodeFilters,
    SelfLearningMemory,
    TaskContext,
)
from self_learning_memory.embeddings.hashing import HashingEmbedding
from self_learning_memory.model.records import NearestRow
from self_learning_memory.storage.migrate import migrate, open_url
from self_learning_memory.storage.postgres import pgvector
from support.polling import poll_until

from .pgvector_corpus import (
    DIMS,
    QUERIES,
    exact_nearest,
    hnsw_indexes,
    identity_of,
    indexed,
    record_corpus,
    task_texts,
    vectors_by_episode,
)
from .support import Backend, postgres_schema

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.pgvector]


async def nearest_with_feedback(
    handle: pgvector.PgvectorIndex,
    identity: str,
    dimensions: int,
    query: bytes,
    k: int,
    filters: EpisodeFilters,
    feedback: int,
    weight: float,
) -> tuple[list[NearestRow], bytes | None, list[NearestRow]]:
    """``handle.search_with_feedback`` with no known candidates, as (rows, expanded query,
    its rows)."""
    found = await handle.search_with_feedback(
        identity, dimensions, query, k, filters, feedback, weight, lambda _: {}
    )
    return found.hits, found.expanded, found.expanded_hits


@pytest.fixture
def pg18(pg18_url: str, tmp_path: Path) -> Backend:
    return Backend("postgres18", pg18_url, tmp_path / "data")


@pytest.fixture
def other_pg18(pgvector_server_dsn: str, tmp_path: Path) -> Iterator[Backend]:
    """A second schema on the PostgreSQL 18 server."""
    with postgres_schema(pgvector_server_dsn) as url:
        yield Backend("postgres18", url, tmp_path / "other")


async def ranking(
    memory: SelfLearningMemory, queries: tuple[str, ...] = QUERIES
) -> list[list[str]]:
    """The top-5 task descriptions of each query."""
    out = []
    for query in queries:
        found = await memory.retrieve_relevant_context(query, None, 5)
        out.append([r.episode.task_description for r in found])
    return out


async def assert_feedback_cut_untied(
    memory: SelfLearningMemory, queries: tuple[str, ...] = QUERIES
) -> None:
    """On the in-process (bytea) path: each query's ``feedback_episodes``-th and next nearest
    episodes have different cosines. Where two vectors' cosines tie exactly, numpy's float32 dot
    and pgvector's own arithmetic may order them differently, so the two paths may expand the
    query with different feedback episodes; the 64-dimension hashing vectors of these corpora
    tie often (``task_texts(11, seed)``: at 10 of the seeds 1-16). The ranking comparisons
    between the paths check this first, so a corpus that ties fails here, not as a ranking
    diff."""
    assert memory.vectors is not None
    assert memory.vectors.where == "in-process"
    feedback = memory.config.retrieval.feedback_episodes
    for query in queries:
        vector, _ = await memory.vectors.query_vector(query, TaskContext())
        scores = [score for _, score in memory.vectors.index.search(vector, feedback + 1)]
        assert scores[feedback - 1] != scores[feedback], f"a tie at the feedback cut: {query!r}"


# -- 1. activation ---------------------------------------------------------------------------
async def test_pgvector_is_activated_and_the_index_built_on_first_search(pg18: Backend) -> None:
    async with pg18.open(embedder=HashingEmbedding(DIMS)) as memory:
        done = await record_corpus(memory, task_texts(12))
        details = (await memory.health())["primary_storage"].details
        assert details["vector_backend"] == "pgvector"
        state = details["pgvector"]
        assert isinstance(state, dict)
        assert state["active"] is True
        assert re.fullmatch(r"\d+\.\d+\.\d+", state["extension_version"])
        assert state["indexes"] == []  # built by the first search, not at open
        column = pg18.rows(
            "SELECT udt_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = 'embeddings' AND column_name = 'embedding'"
        )
        assert column == [("vector",)]
        assert pg18.rows("SELECT count(*), count(vector), count(embedding) FROM embeddings") == [
            (12, 0, 12)
        ]  # written to the vector column, bytea left NULL

        found = await memory.retrieve_relevant_context(done.text[done.ids[3]], None, 5)
        assert found[0].episode.episode_id == done.ids[3]
        assert "vector" in found[0].provenance
        await memory.retrieve_relevant_context(QUERIES[0], None, 5, mode="vector")
        assert memory.vectors is not None
        assert memory.vectors.where == "pgvector"
        assert len(memory.vectors.index) == 0  # no in-process matrix
        indexes = hnsw_indexes(pg18)
        assert len(indexes) == 1
        name, valid, definition = indexes[0]
        assert valid is True
        assert f"vector({DIMS})" in definition
        assert "vector_cosine_ops" in definition
        assert identity_of(memory) in definition  # partial: one identity
        health = await memory.health()
        reported = health["primary_storage"].details["pgvector"]["indexes"]  # type: ignore[index]
        assert [(i["name"], i["valid"]) for i in reported] == [(name, True)]
        assert reported[0]["bytes"] > 0
        pgvector = health["primary_storage"].details["pgvector"]  # type: ignore[index]
        # the server's memory as the HNSW scan sees it (PostgreSQL 18: huge_pages_status known)
        memory_facts = pgvector["server_memory"]
        assert memory_facts["shared_buffers_bytes"] > reported[0]["bytes"]
        assert memory_facts["huge_pages"] in ("try", "on", "off")
        assert memory_facts["huge_pages_status"] in ("on", "off")
        assert pgvector["hints"] == []  # a small index in shared_buffers: nothing to suggest
        assert health["embeddings"].details["index"] == "pgvector"
        assert health["embeddings"].details["embedded"] == 12


async def test_without_the_extension_vectors_stay_bytea_and_retrieval_works(
    pg_url: str, tmp_path: Path
) -> None:
    backend = Backend("postgres", pg_url, tmp_path / "data")
    async with backend.open(embedder=HashingEmbedding(DIMS)) as memory:
        done = await record_corpus(memory, task_texts(8))
        details = (await memory.health())["primary_storage"].details
        assert details["vector_backend"] == "bytea"
        state = details["pgvector"]
        assert isinstance(state, dict)
        assert state["active"] is False
        assert "vector extension" in state["reason"]
        assert "pgvector" in state["reason"]
        found = await memory.retrieve_relevant_context(done.text[done.ids[5]], None, 3)
        assert found[0].episode.episode_id == done.ids[5]
        assert found[0].components.vector is not None
        assert memory.vectors is not None
        assert memory.vectors.where == "in-process"
        assert len(memory.vectors.index) == 8
    assert backend.rows(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND table_name = 'embeddings' AND column_name = 'embedding'"
    ) == [(0,)]
    assert backend.rows("SELECT count(vector) FROM embeddings") == [(8,)]


# -- 2. the move of bytea vectors ------------------------------------------------------------
async def test_bytea_vectors_move_into_pgvector_byte_identical_in_batches(
    pg18: Backend, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    count = 11
    async with pg18.open(embedder=HashingEmbedding(DIMS), storage={"pgvector": "off"}) as memory:
        await record_corpus(memory, task_texts(count, seed=4))  # no tie at the cut (below)
        details = (await memory.health())["primary_storage"].details
        assert details["vector_backend"] == "bytea"
        assert details["pgvector"]["reason"] == "off (storage.pgvector)"  # type: ignore[index]
        identity = identity_of(memory)
        before = await vectors_by_episode(memory)
        hashes = dict(pg18.rows("SELECT content_hash, episode_id FROM embeddings"))
        by_hash = {h: await memory.storage.vector_by_hash(identity, h) for h in hashes}
        transfer = memory.storage.capabilities.transfer
        assert transfer is not None
        exported = await transfer.export_embeddings("", 1000)
        ranked_before = await ranking(memory)
        await assert_feedback_cut_untied(memory)
    assert len(before) == len(by_hash) == len(exported) == count
    assert pg18.rows("SELECT count(vector) FROM embeddings") == [(count,)]

    monkeypatch.setattr(pgvector, "MOVE_BATCH", 3)  # 3 + 3 + 3 + 2: four transactions
    with caplog.at_level(logging.INFO, logger=pgvector.__name__):
        async with pg18.open(embedder=HashingEmbedding(DIMS)) as memory:
            details = (await memory.health())["primary_storage"].details
            assert details["vector_backend"] == "pgvector"
            assert details["pgvector"]["moved_from_bytea"] == count  # type: ignore[index]
            assert await vectors_by_episode(memory) == before
            assert {h: await memory.storage.vector_by_hash(identity, h) for h in hashes} == by_hash
            transfer = memory.storage.capabilities.transfer
            assert transfer is not None
            assert await transfer.export_embeddings("", 1000) == exported
            assert await ranking(memory) == ranked_before
            assert memory.vectors is not None
            assert memory.vectors.where == "pgvector"
    batches = [r for r in caplog.records if "bytea vectors into the vector column" in r.message]
    assert len(batches) == 3  # one line per full batch
    assert pg18.rows("SELECT count(vector), count(embedding) FROM embeddings") == [(0, count)]

    with pytest.raises(ConfigurationError, match=r"storage\.pgvector"):
        async with pg18.open(embedder=HashingEmbedding(DIMS), storage={"pgvector": "off"}):
            pass
    async with pg18.open(embedder=HashingEmbedding(DIMS)) as memory:  # nothing more to move
        details = (await memory.health())["primary_storage"].details
        assert "moved_from_bytea" not in details["pgvector"]  # type: ignore[operator]
        assert await vectors_by_episode(memory) == before


# -- 3. filters in SQL with iterative scans --------------------------------------------------
def index_scans(backend: Backend) -> int:
    rows = backend.rows(
        "SELECT coalesce(sum(s.idx_scan), 0) FROM pg_stat_user_indexes s "
        "JOIN pg_index i ON i.indexrelid = s.indexrelid JOIN pg_class c ON c.oid = s.indexrelid "
        "JOIN pg_am a ON a.oid = c.relam WHERE s.relname = 'embeddings' AND a.amname = 'hnsw'"
    )
    return int(rows[0][0])


async def test_filtered_search_returns_k_exact_matches_with_a_rare_filter(
    no_seqscan: Backend,
) -> None:
    pg18 = no_seqscan
    total, window = 400, range(200, 220)
    async with pg18.open(embedder=HashingEmbedding(DIMS)) as memory:
        done = await record_corpus(
            memory,
            task_texts(total),
            domain=lambda i: "billing" if i % 20 == 3 else "web-api",
            failed=lambda i: i % 20 == 11,
            window=window,
        )
        assert done.window is not None
        since, until = done.window
        cases = [
            (EpisodeFilters(domain="billing"), [e for n, e in enumerate(done.ids) if n % 20 == 3]),
            (
                EpisodeFilters(outcome="failure"),
                [e for n, e in enumerate(done.ids) if n % 20 == 11],
            ),
            (EpisodeFilters(since=since, until=until), [done.ids[n] for n in window]),
        ]
        handle, provider, identity = await indexed(memory)
        for filters, matching in cases:
            assert len(matching) == 20  # 5 % of the store
            allowed = set(matching)
            for query in QUERIES[:3]:
                every = dict(await exact_nearest(memory, query, matching, len(matching)))
                exact = sorted(every.values(), reverse=True)[:10]
                q = (await provider.embed([query])).vectors[0].astype("float32").tobytes()
                rows = await handle.nearest(identity, DIMS, q, 10, filters)
                assert len(rows) == 10, (filters, query)
                got = {r.candidate.episode_id for r in rows}
                assert got <= allowed
                # the exact answer up to ties (hashed texts share no word: cosine 0.0)
                assert sorted((every[e] for e in got), reverse=True) == pytest.approx(
                    exact, abs=1e-6
                ), (filters, query)
                assert [r.similarity for r in rows] == pytest.approx(exact, abs=1e-5)
                best = max(every, key=lambda e: every[e])

                found = await memory.retrieve_relevant_context(query, None, 10, filters=filters)
                assert len(found) == 10, (filters, query)
                assert {r.episode.episode_id for r in found} <= allowed
                assert best in {r.episode.episode_id for r in found}
                vector_only = await memory.retrieve_relevant_context(
                    query, None, 10, filters=filters, mode="vector"
                )
                assert len(vector_only) == 10
                assert {r.episode.episode_id for r in vector_only} <= allowed
                assert best in {r.episode.episode_id for r in vector_only}
    await poll_until(  # the searches went through the HNSW index (closed sessions report it)
        lambda: index_scans(pg18) > 0, message="the HNSW index was never scanned"
    )


def _same_rows(got: list[Any], want: list[Any], beyond: list[Any] | None = None) -> None:
    """The same similarities in order, and the same episode at every position whose
    similarity is not tied with a neighbour's (ties come back in either order; ``beyond``: the
    row after ``want``'s last when ``want`` is a prefix, a tie with it is a tie too)."""
    sims = [r.similarity for r in want]
    assert [r.similarity for r in got] == pytest.approx(sims, abs=1e-6)
    around = sims + [r.similarity for r in beyond or []][:1]
    for n, row in enumerate(want):
        tied = any(abs(around[m] - sims[n]) < 1e-5 for m in (n - 1, n + 1) if 0 <= m < len(around))
        if not tied:
            assert got[n].candidate.episode_id == row.candidate.episode_id
            assert got[n].vector == row.vector


async def test_one_statement_search_equals_two_searches_and_a_client_side_expansion(
    pg18: Backend,
) -> None:
    """``search_with_feedback`` (the query's nearest, the Rocchio-expanded query computed by
    the server and its nearest, in one statement) returns what ``nearest``, the client's
    ``rocchio`` and ``nearest`` again return: the same rows in the same order (up to ties),
    the same similarities and an expanded query equal within float32 rounding; filtered too."""
    import numpy as np

    from self_learning_memory.retrieval.index import rocchio

    texts = task_texts(120, seed=5)
    async with pg18.open(embedder=HashingEmbedding(DIMS)) as memory:
        await record_corpus(memory, texts, domain=lambda i: "billing" if i % 3 else "web-api")
        handle, provider, identity = await indexed(memory)
        handle.feedback_pool = 0  # the second search is an HNSW search (the pool: below)
        expansions = 0
        for filters in (EpisodeFilters(), EpisodeFilters(domain="billing")):
            for query in (*QUERIES, texts[7], texts[42], texts[101] + " retry"):
                q = (await provider.embed([query])).vectors[0].astype(np.float32)
                for feedback, weight in ((3, 0.5), (5, 1.0)):
                    hits, moved, more = await nearest_with_feedback(
                        handle, identity, DIMS, q.tobytes(), 12, filters, feedback, weight
                    )
                    # 13: a tie at the 12th row comes back either way
                    before = await handle.nearest(identity, DIMS, q.tobytes(), 13, filters)
                    assert len(hits) == len(more) == 12
                    _same_rows(hits, before[:12], before[12:])
                    assert moved is not None
                    sims = [r.similarity for r in before]
                    if abs(sims[feedback - 1] - sims[feedback]) < 1e-5:
                        continue  # the feedback episodes are a tie's choice: not comparable
                    chosen = [np.frombuffer(r.vector, np.float32) for r in before[:feedback]]
                    expected = rocchio(q, np.stack(chosen), weight)
                    assert expected is not None
                    assert np.abs(np.frombuffer(moved, np.float32) - expected).max() < 1e-6
                    after = await handle.nearest(identity, DIMS, expected.tobytes(), 13, filters)
                    _same_rows(more, after[:12], after[12:])
                    expansions += 1
                alone = await nearest_with_feedback(
                    handle, identity, DIMS, q.tobytes(), 12, filters, 0, 0.5
                )
                assert alone[1] is None
                assert alone[2] == []
                _same_rows(alone[0], before[:12], before[12:])
        assert expansions >= 12  # of 24: most feedback cut-offs are not ties


async def test_the_feedback_search_runs_at_its_own_ef_search(pg18: Backend) -> None:
    """``feedback_ef_search`` (``retrieval.hnsw_feedback_ef_search``) is the second search's
    ``hnsw.ef_search`` inside the one statement, the first search keeps ``ef_search``, and
    the session's setting is ``ef_search`` again afterwards. Seen with iterative scans off and
    the index forced: an HNSW scan then returns at most ``hnsw.ef_search`` rows."""
    import numpy as np

    texts = task_texts(120, seed=5)
    async with pg18.open(embedder=HashingEmbedding(DIMS)) as memory:
        await record_corpus(memory, texts)
        handle, _, identity = await indexed(memory)
        q = (await memory.vectors.provider.embed([QUERIES[0]])).vectors[0].astype(np.float32)
        db, after = handle.db, []
        original = db.read

        class Capped:
            def __init__(self, conn: Any) -> None:
                self._conn = conn

            async def execute(self, query: str, params: Any = None, **kw: Any) -> Any:
                if "ORDER BY d LIMIT" not in query:
                    return await self._conn.execute(query, params, **kw)
                await self._conn.execute(
                    "SET hnsw.iterative_scan = off; SET enable_seqscan = off; SET enable_sort = off"
                )
                try:
                    return await self._conn.execute(query, params, **kw)
                finally:
                    shown = await self._conn.execute("SHOW hnsw.ef_search")
                    after.append((await shown.fetchone())[0])
                    await self._conn.execute(
                        "SET hnsw.iterative_scan = relaxed_order; RESET enable_seqscan; "
                        "RESET enable_sort"
                    )

        async def read(fn: Any) -> Any:
            return await original(lambda conn: fn(Capped(conn)))

        db.read = read  # type: ignore[method-assign]
        handle.feedback_pool = 0  # a second HNSW search, whose ef_search this is
        try:
            handle.ef_search, handle.feedback_ef_search = 10, 0
            hits, moved, more = await nearest_with_feedback(
                handle, identity, DIMS, q.tobytes(), 30, EpisodeFilters(), 3, 1.0
            )
            assert moved is not None
            assert (len(hits), len(more)) == (10, 10)  # ef_search caps both scans
            handle.ef_search = 40  # the session's setting (a new handle would SET it)
            for conn in list(handle._configured):
                handle._configured.discard(conn)
            handle.feedback_ef_search = 10
            hits, moved, more = await nearest_with_feedback(
                handle, identity, DIMS, q.tobytes(), 30, EpisodeFilters(), 3, 1.0
            )
            assert (len(hits), len(more)) == (30, 10)
            handle.feedback_ef_search = 40  # equal: no per-statement setting
            hits, moved, more = await nearest_with_feedback(
                handle, identity, DIMS, q.tobytes(), 30, EpisodeFilters(), 3, 1.0
            )
            assert (len(hits), len(more)) == (30, 30)
        finally:
            del db.read
        assert after == ["10", "40", "40"]  # the statement's setting did not outlive it


async def test_the_feedback_pool_ranks_the_expanded_query_over_the_first_searchs_rows(
    pg18: Backend,
) -> None:
    """``feedback_pool`` (``retrieval.hnsw_feedback_pool``): one HNSW scan in the statement
    (two without it, seen in its plan); the query's ``k`` nearest as without it, the expanded
    query as the client's ``rocchio`` computes it, and the expanded query's ``k`` nearest
    equal to an exact numpy ranking of the query's nearest ``feedback_pool`` rows (the pool,
    taken from ``nearest`` at the same ``ef_search``); a pool below ``k`` is ``k``."""
    import numpy as np

    from self_learning_memory.retrieval.index import rocchio

    texts = task_texts(160, seed=11)
    async with pg18.open(embedder=HashingEmbedding(DIMS)) as memory:
        await record_corpus(memory, texts, domain=lambda i: "billing" if i % 3 else "web-api")
        handle, provider, identity = await indexed(memory)
        db, plans, limits = handle.db, [], []
        original = db.read

        class Explained:
            def __init__(self, conn: Any) -> None:
                self._conn = conn

            async def execute(self, query: str, params: Any = None, **kw: Any) -> Any:
                if query.startswith("WITH "):
                    limits.append([int(n) for n in re.findall(r"LIMIT (\d+)", query)])
                    await self._conn.execute(
                        "SET enable_seqscan = off; SET enable_bitmapscan = off; "
                        "SET enable_sort = off"
                    )
                    try:
                        cur = await self._conn.execute("EXPLAIN " + query, params, **kw)
                        plans.append("\n".join(str(r[0]) for r in await cur.fetchall()))
                    finally:
                        await self._conn.execute(
                            "RESET enable_seqscan; RESET enable_bitmapscan; RESET enable_sort"
                        )
                return await self._conn.execute(query, params, **kw)

        async def read(fn: Any) -> Any:
            return await original(lambda conn: fn(Explained(conn)))

        def hnsw_scans(plan: str) -> int:
            return len(re.findall(r"Index Scan using embeddings_hnsw_\w+", plan))

        db.read = read  # type: ignore[method-assign]
        ef_search = handle.ef_search
        try:
            q0 = (await provider.embed([QUERIES[0]])).vectors[0].astype(np.float32)
            handle.feedback_pool = 0
            await nearest_with_feedback(
                handle, identity, DIMS, q0.tobytes(), 12, EpisodeFilters(), 3, 1.0
            )
            handle.feedback_pool = 30
            await nearest_with_feedback(
                handle, identity, DIMS, q0.tobytes(), 12, EpisodeFilters(), 3, 1.0
            )
            handle.ef_search = 20  # the pool is at most ef_search: what one scan finds
            await nearest_with_feedback(
                handle, identity, DIMS, q0.tobytes(), 12, EpisodeFilters(), 3, 1.0
            )
        finally:
            del db.read
            handle.ef_search = ef_search
        assert [hnsw_scans(p) for p in plans] == [2, 1, 1]
        # LIMITs (literals in the SQL): (k, feedback, k) with two scans; (pool, k, feedback, k) with one
        assert limits == [[12, 3, 12], [30, 12, 3, 12], [20, 12, 3, 12]]

        compared = 0
        for pool_size, k in ((30, 12), (5, 12)):
            handle.feedback_pool = pool_size
            for filters in (EpisodeFilters(), EpisodeFilters(domain="billing")):
                for query in (*QUERIES, texts[7], texts[42], texts[101] + " retry"):
                    q = (await provider.embed([query])).vectors[0].astype(np.float32)
                    hits, moved, more = await nearest_with_feedback(
                        handle, identity, DIMS, q.tobytes(), k, filters, 3, 1.0
                    )
                    pool = await handle.nearest(
                        identity, DIMS, q.tobytes(), max(k, pool_size), filters
                    )
                    assert len(hits) == len(more) == k
                    # a tie at the k-th row comes back either way: the row after it (a pool of
                    # k rows has none, so it is asked for)
                    beyond = (
                        pool[k:]
                        or (await handle.nearest(identity, DIMS, q.tobytes(), k + 1, filters))[k:]
                    )
                    _same_rows(hits, pool[:k], beyond)
                    assert moved is not None
                    sims = [r.similarity for r in pool]
                    if abs(sims[2] - sims[3]) < 1e-5:
                        continue  # the feedback episodes are a tie's choice: not comparable
                    chosen = np.stack([np.frombuffer(r.vector, np.float32) for r in pool[:3]])
                    expected = rocchio(q, chosen, 1.0)
                    assert expected is not None
                    x = np.frombuffer(moved, np.float32)
                    assert np.abs(x - expected).max() < 1e-6
                    block = np.stack([np.frombuffer(r.vector, np.float32) for r in pool])
                    cosine = (block @ x) / (np.linalg.norm(block, axis=1) * np.linalg.norm(x))
                    order = np.argsort(-cosine, kind="stable")[:k]
                    want = [pool[int(n)] for n in order]
                    assert [r.similarity for r in more] == pytest.approx(
                        [float(cosine[int(n)]) for n in order], abs=1e-5
                    )
                    for n, row in enumerate(more):  # the same episode where not tied
                        c = float(cosine[int(order[n])])
                        if all(
                            abs(c - float(cosine[int(order[m])])) > 1e-5
                            for m in (n - 1, n + 1)
                            if 0 <= m < k
                        ):
                            assert row.candidate.episode_id == want[n].candidate.episode_id
                            assert row.vector == want[n].vector
                    in_pool = {r.candidate.episode_id for r in pool}
                    assert {r.candidate.episode_id for r in more} <= in_pool
                    compared += 1
                if pool_size == 30:
                    beyond = {r.candidate.episode_id for r in more} - {
                        r.candidate.episode_id for r in hits
                    }
                    assert beyond, "the expanded query found nothing past the query's k"
        assert compared >= 16  # of 24


async def test_the_unfiltered_pool_looks_up_only_the_episodes_it_returns(pg18: Backend) -> None:
    """With no filter but completion, the pooled search scans without joining ``episodes`` and
    looks up only the rows it returns (``EXPLAIN ANALYZE`` planned as on a large store: ``k`` to
    2 x ``k`` primary-key lookups for a pool of 4 x ``k``, where the joined pool looks up every
    pooled row); its answer, expanded query and expanded rows equal the joined pool's (asked
    with a filter every episode passes). An
    episode made incomplete is never returned; when fewer than ``k`` of the scanned rows are of
    completed episodes the joined pool is asked too (a second statement) and still gives ``k``."""
    from datetime import UTC, datetime

    texts = task_texts(160, seed=12)
    async with pg18.open(embedder=HashingEmbedding(DIMS)) as memory:
        await record_corpus(memory, texts)
        handle, provider, identity = await indexed(memory)
        handle.feedback_pool, k = 40, 10
        everything = EpisodeFilters(since=datetime(2000, 1, 1, tzinfo=UTC))
        db, sent = handle.db, []
        original = db.read
        # the statements planned as on a large store (this one is small enough for an exact
        # scan and hash joins over all episodes): both the HNSW scan, lookups by primary key
        plain = ("enable_seqscan", "enable_bitmapscan", "enable_hashjoin", "enable_mergejoin")
        large = "; ".join(f"SET {o} = off" for o in (*plain, "enable_sort"))
        reset = "; ".join(f"RESET {o}" for o in (*plain, "enable_sort"))

        class Recorded:
            def __init__(self, conn: Any) -> None:
                self._conn = conn

            async def execute(self, query: str, params: Any = None, **kw: Any) -> Any:
                if not query.startswith("WITH "):
                    return await self._conn.execute(query, params, **kw)
                sent.append((query, params))
                await self._conn.execute(large)
                try:
                    return await self._conn.execute(query, params, **kw)
                finally:
                    await self._conn.execute(reset)

        async def read(fn: Any) -> Any:
            return await original(lambda conn: fn(Recorded(conn)))

        async def lookups(query: str, params: Any) -> int:
            """Primary-key lookups of ``episodes`` executing the statement."""

            async def run(conn: Any) -> list[Any]:
                await conn.execute(large)
                try:
                    cur = await conn.execute("EXPLAIN (ANALYZE) " + query, params)
                    return list(await cur.fetchall())
                finally:
                    await conn.execute(reset)

            plan = [str(r[0]) for r in await original(run)]
            return sum(
                int(re.findall(r"loops=(\d+)", line)[-1])
                for line in plan
                if "Index Scan using episodes_pkey" in line
            )

        db.read = read  # type: ignore[method-assign]
        try:
            for query in (*QUERIES, texts[3], texts[77]):
                q = (await provider.embed([query])).vectors[0].tobytes()
                sent.clear()
                lazy = await handle.search_with_feedback(
                    identity, DIMS, q, k, EpisodeFilters(), 3, 1.0, lambda _: {}
                )
                assert len(sent) == 1
                assert sent[0][0].startswith("WITH scan AS")
                assert k <= await lookups(*sent[0]) <= 2 * k < handle.feedback_pool
                sent.clear()
                # k + 1: a tie at the k-th row comes back either way
                joined = await handle.search_with_feedback(
                    identity, DIMS, q, k + 1, everything, 3, 1.0, lambda _: {}
                )
                assert len(sent) == 1
                assert sent[0][0].startswith("WITH pool AS")
                _same_rows(lazy.hits, joined.hits[:k], joined.hits[k:])
                _same_rows(lazy.expanded_hits, joined.expanded_hits[:k], joined.expanded_hits[k:])
                assert lazy.expanded is not None
                assert joined.expanded is not None
                assert list(array("f", lazy.expanded)) == pytest.approx(
                    list(array("f", joined.expanded)), abs=1e-6
                )
                assert len(lazy.hits) == len(lazy.expanded_hits) == k

            # the query's nearest 35 made incomplete: 5 of the 40 scanned rows are completed
            q = (await provider.embed([QUERIES[0]])).vectors[0].tobytes()
            nearest = await handle.nearest(identity, DIMS, q, 35, EpisodeFilters())
            gone = {r.candidate.episode_id for r in nearest}
            listed = ", ".join(f"'{e}'" for e in gone)
            pg18.execute(f"UPDATE episodes SET end_time = NULL WHERE episode_id IN ({listed})")
            sent.clear()
            found = await handle.search_with_feedback(
                identity, DIMS, q, k, EpisodeFilters(), 3, 1.0, lambda _: {}
            )
            assert [s[0][:13] for s in sent] == ["WITH scan AS ", "WITH pool AS "]
            assert len(found.hits) == k
            returned = {r.candidate.episode_id for r in (*found.hits, *found.expanded_hits)}
            assert not returned & gone
            # 3 of them incomplete: one statement, none of the 3 returned
            pg18.execute(
                "UPDATE episodes SET end_time = start_time WHERE end_time IS NULL; "
                f"UPDATE episodes SET end_time = NULL WHERE episode_id IN "
                f"({', '.join(repr(str(r.candidate.episode_id)) for r in nearest[:3])})"
            )
            sent.clear()
            found = await handle.search_with_feedback(
                identity, DIMS, q, k, EpisodeFilters(), 3, 1.0, lambda _: {}
            )
            assert len(sent) == 1
            assert len(found.hits) == k
            returned = {r.candidate.episode_id for r in (*found.hits, *found.expanded_hits)}
            assert not returned & {r.candidate.episode_id for r in nearest[:3]}
            assert nearest[3].candidate.episode_id in returned
        finally:
            del db.read


# -- 4. the same rankings as the bytea path --------------------------------------------------
async def test_rankings_equal_the_bytea_path(pg18: Backend, other_pg18: Backend) -> None:
    texts = task_texts(60, seed=1)  # no tie at the feedback cut (checked below)
    async with pg18.open(embedder=HashingEmbedding(DIMS)) as memory:
        await record_corpus(memory, texts)
        assert memory.vectors is not None
        assert memory.vectors.where == "pgvector"
        on_pgvector = await ranking(memory, (*QUERIES, texts[7], texts[42]))
    async with other_pg18.open(
        embedder=HashingEmbedding(DIMS), storage={"pgvector": "off"}
    ) as memory:
        await record_corpus(memory, texts)
        assert memory.vectors is not None
        assert memory.vectors.where == "in-process"
        on_bytea = await ranking(memory, (*QUERIES, texts[7], texts[42]))
        await assert_feedback_cut_untied(memory, (*QUERIES, texts[7], texts[42]))
    assert on_pgvector == on_bytea
    assert on_pgvector[5][0] == texts[7]
    assert on_pgvector[6][0] == texts[42]
    assert all(len(top) == 5 for top in on_pgvector)


# -- 6. storage migrate between SQLite and pgvector ------------------------------------------
async def test_migrate_sqlite_to_pgvector_and_back_keeps_vectors(
    pg18: Backend, tmp_path: Path
) -> None:
    source = Backend("sqlite", None, tmp_path / "source")
    async with source.open(embedder=HashingEmbedding(DIMS)) as memory:
        done = await record_corpus(memory, task_texts(9))
        want = await vectors_by_episode(memory)
    assert len(want) == 9

    async def copy(src_url: str, dst_url: str) -> None:
        src, dst = open_url(src_url), open_url(dst_url)
        async with src, dst:
            report = await migrate(src, dst, batch_size=4)
        assert report.verified, report.problems
        assert report.copied["embeddings"] == 9

    assert pg18.url is not None
    await copy(str(source.data_dir), pg18.url)
    assert pg18.rows("SELECT count(vector), count(embedding) FROM embeddings") == [(0, 9)]
    async with pg18.open(embedder=HashingEmbedding(DIMS)) as memory:
        assert await vectors_by_episode(memory) == want
        assert memory.vectors is not None
        assert memory.vectors.where == "pgvector"
        found = await memory.retrieve_relevant_context(done.text[done.ids[2]], None, 3)
        assert found[0].episode.episode_id == done.ids[2]

    back = Backend("sqlite", None, tmp_path / "back")
    await copy(pg18.url, str(back.data_dir))
    async with back.open(embedder=HashingEmbedding(DIMS)) as memory:
        assert await vectors_by_episode(memory) == want
    assert {uuid.UUID(r[0]) for r in back.rows("SELECT episode_id FROM embeddings")} == set(want)
