"""The exact in-process regime of a small pgvector store (``storage.pgvector_exact_below``,
``retrieval/vectors.py``): below the threshold a process scores the store's vectors in its own
matrix as the bytea path does, past it the matrix is dropped and the server's HNSW search is
used, and a store shrunk to 90 % of the threshold is scored in process again. Rankings equal
the bytea path's in both regimes, on the PostgreSQL 18 + pgvector test server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from self_learning_memory import EpisodeFilters, SelfLearningMemory
from self_learning_memory.embeddings.hashing import HashingEmbedding

from .pgvector_corpus import DIMS, QUERIES, exact_nearest, handle_of, record_corpus, task_texts
from .support import Backend, postgres_schema

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.pgvector]

THRESHOLD = 50


@pytest.fixture
def pg18(pg18_url: str, tmp_path: Path) -> Backend:
    return Backend("postgres18", pg18_url, tmp_path / "data")


@pytest.fixture
def other_pg18(pgvector_server_dsn: str, tmp_path: Path) -> Iterator[Backend]:
    """A second schema on the PostgreSQL 18 server (the bytea reference)."""
    with postgres_schema(pgvector_server_dsn) as url:
        yield Backend("postgres18", url, tmp_path / "other")


def hnsw_count(backend: Backend) -> int:
    rows = backend.rows(
        "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_am a ON a.oid = c.relam "
        "WHERE t.relname = 'embeddings' AND t.relnamespace = current_schema()::regnamespace "
        "AND a.amname = 'hnsw'"
    )
    return int(rows[0][0])


async def top5(memory: SelfLearningMemory, queries: list[str]) -> list[list[str]]:
    out = []
    for query in queries:
        found = await memory.retrieve_relevant_context(query, None, 5)
        out.append([r.episode.task_description for r in found])
    return out


async def server_top5(backend: Backend, queries: list[str]) -> list[list[str]]:
    """``top5`` by a process on the same store that always uses the server's search."""
    other = Backend(backend.kind, backend.url, backend.data_dir.parent / "server-only")
    async with other.open(embedder=HashingEmbedding(DIMS)) as memory:
        assert memory.vectors is not None
        out = await top5(memory, queries)
        assert memory.vectors.regime == "server_hnsw"
        return out


async def server_equals_exact(memory: SelfLearningMemory, ids: list[uuid.UUID]) -> None:
    """The server's 10 nearest of each query are the exact answer (similarities, up to ties)."""
    assert memory.vectors is not None
    handle = handle_of(memory)
    for query in QUERIES:
        q = (await memory.vectors.provider.embed([query])).vectors[0].astype(np.float32)
        rows = await handle.nearest(
            memory.vectors.identity, DIMS, q.tobytes(), 10, EpisodeFilters()
        )
        want = await exact_nearest(memory, query, ids, 10)
        assert [r.similarity for r in rows] == pytest.approx([s for _, s in want], abs=1e-5)


async def regime_state(memory: SelfLearningMemory) -> tuple[str, Any, Any, int]:
    """(the process's regime, the store health's vector_search and exact_below, index size)."""
    assert memory.vectors is not None
    health = await memory.health()
    state = health["primary_storage"].details["pgvector"]
    assert isinstance(state, dict)
    assert health["embeddings"].details["vector_search"] == memory.vectors.regime
    return (
        memory.vectors.regime,
        state["vector_search"],
        state["exact_below"],
        len(memory.vectors.index),
    )


async def test_a_store_crossing_the_threshold_switches_regime_both_ways_with_exact_rankings(
    pg18: Backend, other_pg18: Backend
) -> None:
    texts = task_texts(70, seed=11)
    async with (
        pg18.open(
            embedder=HashingEmbedding(DIMS), storage={"pgvector_exact_below": THRESHOLD}
        ) as memory,
        other_pg18.open(embedder=HashingEmbedding(DIMS), storage={"pgvector": "off"}) as bytea,
    ):
        assert memory.vectors is not None
        queries = [*QUERIES, texts[3], texts[37]]
        first = await record_corpus(memory, texts[:40])
        reference = await record_corpus(bytea, texts[:40])

        # 40 vectors: scored in process, exactly; the server is not searched (no index built)
        assert await top5(memory, queries) == await top5(bytea, queries)
        assert await regime_state(memory) == ("in_process_exact", "in_process_exact", 50, 40)
        assert hnsw_count(pg18) == 0
        for query in QUERIES:
            q = (await memory.vectors.provider.embed([query])).vectors[0].astype(np.float32)
            got = memory.vectors.index.search(q, 10)
            want = await exact_nearest(memory, query, first.ids, 10)
            assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-6)

        # 70 vectors (past 50): the matrix is dropped, the server's HNSW search is used
        more = await record_corpus(memory, texts[40:])
        more_ref = await record_corpus(bytea, texts[40:])
        # the same rankings as a process that always uses the server (threshold 0), and the
        # server's nearest rows are the exact answer (up to ties)
        assert await top5(memory, queries) == await server_top5(pg18, queries)
        await server_equals_exact(memory, [*first.ids, *more.ids])
        assert await regime_state(memory) == ("server_hnsw", "server_hnsw", 50, 0)
        assert memory.vectors.server is not None
        assert hnsw_count(pg18) == 1  # built by the first server search

        # 50 vectors: above 90 % of the threshold, the process stays on the server (hysteresis)
        async def delete(ids: list[uuid.UUID], ref_ids: list[uuid.UUID]) -> None:
            for eid, rid in zip(ids, ref_ids, strict=True):
                await memory.delete_episode(eid)
                await bytea.delete_episode(rid)

        await delete(more.ids[:20], more_ref.ids[:20])
        assert await top5(memory, queries) == await server_top5(pg18, queries)
        assert (await regime_state(memory))[0] == "server_hnsw"

        # 40 vectors (<= 45): back in process, loaded again, rankings still the bytea path's
        await delete(more.ids[20:], more_ref.ids[20:])
        assert await top5(memory, queries) == await top5(bytea, queries)
        assert await regime_state(memory) == ("in_process_exact", "in_process_exact", 50, 40)
        assert set(memory.vectors.index.vectors(first.ids)) == set(first.ids)
    assert reference.ids  # the bytea store held the same corpus


async def test_a_process_opened_on_a_large_store_stops_loading_past_the_threshold(
    pg18: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = task_texts(70, seed=12)
    async with pg18.open(embedder=HashingEmbedding(DIMS)) as writer:  # server path (0)
        await record_corpus(writer, texts)
    async with pg18.open(
        embedder=HashingEmbedding(DIMS), storage={"pgvector_exact_below": THRESHOLD}
    ) as memory:
        vectors = memory.vectors
        assert vectors is not None
        loaded: list[int] = []
        original = vectors.storage.embeddings_since

        async def counting(identity: str, after: int, limit: int) -> Any:
            rows = await original(identity, after, limit)
            loaded.append(len(rows))
            return rows

        monkeypatch.setattr(vectors.storage, "embeddings_since", counting)
        found = await memory.retrieve_relevant_context(texts[9], None, 5)
        assert found[0].episode.task_description == texts[9]
        assert sum(loaded) == THRESHOLD + 1  # never more than the threshold and one
        assert await regime_state(memory) == ("server_hnsw", "server_hnsw", 50, 0)
        await memory.retrieve_relevant_context(texts[20], None, 5)
        assert sum(loaded) == THRESHOLD + 1  # nothing loaded on the server search


async def test_a_filtered_query_in_the_exact_regime_is_filtered_by_the_server(
    pg18: Backend,
) -> None:
    """Below the threshold, a query with hard filters still gets k matching episodes: it goes
    to the store (filters in SQL, pgvector's iterative scans), not to the in-process nearest
    rows filtered afterwards; unfiltered queries stay in process."""
    total = 200
    async with pg18.open(
        embedder=HashingEmbedding(DIMS), storage={"pgvector_exact_below": 1000}
    ) as memory:
        assert memory.vectors is not None
        done = await record_corpus(
            memory,
            task_texts(total, seed=13),
            domain=lambda i: "billing" if i % 20 == 3 else "web-api",
        )
        billing = {e for n, e in enumerate(done.ids) if n % 20 == 3}
        assert len(billing) == 10
        filters = EpisodeFilters(domain="billing")
        for query in QUERIES[:3]:
            found = await memory.retrieve_relevant_context(
                query, None, 10, filters=filters, mode="vector"
            )
            assert {r.episode.episode_id for r in found} == billing, query
        # the unfiltered search is still the process's own (exact, in process)
        await memory.retrieve_relevant_context(QUERIES[0], None, 5)
        assert await regime_state(memory) == (
            "in_process_exact",
            "in_process_exact",
            1000,
            total,
        )
