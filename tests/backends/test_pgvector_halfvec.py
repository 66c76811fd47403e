"""``storage.hnsw_type = halfvec`` (``storage/postgres/pgvector.py``): the HNSW index of a model of
up to 2,000 dimensions on ``halfvec`` (float16 elements), on the PostgreSQL 18 test server. The
search uses that index (its plan), finds the exact nearest rows (numpy over the stored float32
vectors) up to half precision, health reports the type, and switching the setting builds the
other type's index under its own name: each process's search scans its own type's index only.
Also the halfvec index of a model past 2,000 dimensions (there without the setting)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest

from self_learning_memory import EpisodeFilters, SelfLearningMemory
from self_learning_memory.embeddings.hashing import HashingEmbedding
from self_learning_memory.model.records import NearestRow
from self_learning_memory.storage.postgres import pgvector

from .pgvector_corpus import (
    DIMS,
    QUERIES,
    handle_of,
    hnsw_indexes,
    identity_of,
    record_corpus,
    task_texts,
    vectors_by_episode,
)
from .support import Backend

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.pgvector]

HALF = 2e-3  # cosine error of float16 elements (64 to 2,048 unit-norm dimensions), with margin


async def scanned_indexes(
    handle: pgvector.PgvectorIndex, search: Callable[[], Awaitable[Any]]
) -> list[list[str]]:
    """The HNSW indexes each search statement of ``search()`` scans, from its plan."""
    db, plans = handle.db, []
    original = db.read

    class Explained:
        def __init__(self, conn: Any) -> None:
            self._conn = conn

        async def execute(self, query: str, params: Any = None, **kw: Any) -> Any:
            if "ORDER BY d" in query:
                cur = await self._conn.execute("EXPLAIN " + query, params, **kw)
                plans.append("\n".join(str(r[0]) for r in await cur.fetchall()))
            return await self._conn.execute(query, params, **kw)

    async def read(fn: Any) -> Any:
        return await original(lambda conn: fn(Explained(conn)))

    db.read = read  # type: ignore[method-assign]
    try:
        await search()
    finally:
        del db.read
    return [re.findall(r"Index Scan using (embeddings_hnsw_\w+)", p) for p in plans]


async def check_nearest(
    memory: SelfLearningMemory, queries: list[str], dims: int, tolerance: float
) -> int:
    """Each query's 10 nearest from the server against numpy's exact cosine over the stored
    vectors: the similarities within ``tolerance``, every episode clearly inside the exact top
    10 returned; returns how many rows were compared."""
    assert memory.vectors is not None
    handle, identity = handle_of(memory), identity_of(memory)
    stored = await vectors_by_episode(memory)
    ids = list(stored)
    block = np.stack([np.frombuffer(stored[e], np.float32) for e in ids]).astype(np.float64)
    block /= np.linalg.norm(block, axis=1, keepdims=True)
    compared = 0
    for query in queries:
        q = (await memory.vectors.provider.embed([query])).vectors[0].astype(np.float32)
        exact = block @ (q / np.linalg.norm(q))
        order = np.argsort(-exact, kind="stable")
        rows = await handle.nearest(identity, dims, q.tobytes(), 10, EpisodeFilters())
        assert len(rows) == 10
        by_id = {ids[n]: float(exact[n]) for n in range(len(ids))}
        for row in rows:  # the reported similarity is the row's own, up to the precision
            assert row.similarity == pytest.approx(by_id[row.candidate.episode_id], abs=tolerance)
            assert row.vector == stored[row.candidate.episode_id]  # float32, as stored
        tenth = float(exact[order[9]])
        got = {r.candidate.episode_id for r in rows}
        for n in order[:10]:
            if exact[n] > tenth + 2 * tolerance:  # not a near-tie with the 10th
                assert ids[n] in got, (query, float(exact[n]), tenth)
        assert [r.similarity for r in rows] == sorted((r.similarity for r in rows), reverse=True)
        compared += len(rows)
    return compared


async def test_a_halfvec_index_serves_the_search_and_switching_builds_the_other(
    no_seqscan: Backend,
) -> None:
    texts = task_texts(240, seed=23)
    queries = [*QUERIES, texts[5], texts[77], texts[150] + " retry"]
    half = {"hnsw_type": "halfvec"}
    async with no_seqscan.open(embedder=HashingEmbedding(DIMS), storage=half) as memory:
        await record_corpus(memory, texts)
        handle, identity = handle_of(memory), identity_of(memory)
        assert handle.hnsw_type == "halfvec"
        name = await handle.ensure_index(identity, DIMS)
        assert name is not None
        assert name.endswith("_half")
        [(built, valid, definition)] = hnsw_indexes(no_seqscan)
        assert (built, valid) == (name, True)
        assert f"halfvec({DIMS})" in definition
        assert "halfvec_cosine_ops" in definition
        assert "vector_cosine_ops" not in definition.replace("halfvec_cosine_ops", "")

        assert await check_nearest(memory, queries, DIMS, HALF) == 10 * len(queries)
        assert memory.vectors is not None
        q = (await memory.vectors.provider.embed([QUERIES[1]])).vectors[0].astype(np.float32)
        hits: list[list[NearestRow]] = []

        async def searches() -> None:
            hits.append(await handle.nearest(identity, DIMS, q.tobytes(), 10, EpisodeFilters()))
            found = await handle.search_with_feedback(
                identity, DIMS, q.tobytes(), 10, EpisodeFilters(), 3, 1.0, lambda _: {}
            )
            hits.append(found.hits)
            assert found.expanded is not None
            assert len(found.expanded_hits) == 10

        assert await scanned_indexes(handle, searches) == [[name], [name]]
        sims = [r.similarity for r in hits[0]]  # the one-statement search: the same rows
        assert [r.similarity for r in hits[1]] == pytest.approx(sims, abs=1e-6)
        for n, row in enumerate(hits[0]):
            if all(abs(sims[m] - sims[n]) > 1e-5 for m in (n - 1, n + 1) if 0 <= m < 10):
                assert hits[1][n].candidate.episode_id == row.candidate.episode_id
        found = await memory.retrieve_relevant_context(texts[77], None, 5)
        assert found[0].episode.task_description == texts[77]

        state = (await memory.health())["primary_storage"].details["pgvector"]
        assert isinstance(state, dict)
        assert state["hnsw_type"] == "halfvec"
        assert [(i["name"], i["type"]) for i in state["indexes"]] == [(name, "halfvec")]

    # the default type on the same store: its own index, built by its first search; the
    # halfvec index stays, and each type's search scans its own index only
    async with no_seqscan.open(embedder=HashingEmbedding(DIMS)) as memory:
        handle, identity = handle_of(memory), identity_of(memory)
        assert handle.hnsw_type == "vector"
        found = await memory.retrieve_relevant_context(texts[5], None, 5)
        assert found[0].episode.task_description == texts[5]
        indexes = hnsw_indexes(no_seqscan)
        assert [(n, v) for n, v, _ in indexes] == [(name.removesuffix("_half"), True), (name, True)]
        assert f"(embedding)::vector({DIMS})) vector_cosine_ops" in indexes[0][2]
        assert await check_nearest(memory, queries, DIMS, 1e-5) == 10 * len(queries)

        async def search() -> None:
            await handle.nearest(identity, DIMS, q.tobytes(), 10, EpisodeFilters())

        assert await scanned_indexes(handle, search) == [[name.removesuffix("_half")]]
        state = (await memory.health())["primary_storage"].details["pgvector"]
        assert isinstance(state, dict)
        assert state["hnsw_type"] == "vector"
        assert [i["type"] for i in state["indexes"]] == ["vector", "halfvec"]

    async with no_seqscan.open(embedder=HashingEmbedding(DIMS), storage=half) as memory:
        handle = handle_of(memory)
        await handle.ensure_index(identity, DIMS)
        assert len(hnsw_indexes(no_seqscan)) == 2  # found, not built again

        async def search_half() -> None:
            await handle.nearest(identity, DIMS, q.tobytes(), 10, EpisodeFilters())

        assert await scanned_indexes(handle, search_half) == [[name]]


async def test_past_2000_dimensions_the_index_is_halfvec_whatever_the_setting(
    no_seqscan: Backend,
) -> None:
    """2,048 dimensions: the halfvec index under the identity's plain name (as before the
    setting existed), the query bound as float32 and cast, and the exact nearest rows."""
    dims = 2048
    texts = task_texts(60, seed=5)
    async with no_seqscan.open(embedder=HashingEmbedding(dims)) as memory:
        await record_corpus(memory, texts)
        handle, identity = handle_of(memory), identity_of(memory)
        name = await handle.ensure_index(identity, dims)
        assert name is not None
        assert not name.endswith("_half")
        [(built, _, definition)] = hnsw_indexes(no_seqscan)
        assert built == name
        assert f"halfvec({dims})) halfvec_cosine_ops" in definition
        assert await check_nearest(memory, [*QUERIES, texts[9]], dims, HALF) == 60
        assert memory.vectors is not None
        q = (await memory.vectors.provider.embed([texts[9]])).vectors[0].astype(np.float32)

        async def search() -> None:
            rows = await handle.nearest(identity, dims, q.tobytes(), 5, EpisodeFilters())
            assert rows[0].candidate.task_description == texts[9]

        assert await scanned_indexes(handle, search) == [[name]]
