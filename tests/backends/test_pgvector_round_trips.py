"""Statements per retrieval on the pgvector server search (``storage/postgres/pgvector.py``,
``retrieval/hybrid.py``, ``core/retriever.py``): the store's data version read by the vector
search statement itself when no cached ranking can answer, a separate ``data_version`` read only
where it must come first (a cached ranking, a full-text search started beside the vector search),
a prepared search that keeps PostgreSQL's generic plan, and candidate rows decoded again after
any write. On the PostgreSQL 18 + pgvector test server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from self_learning_memory import EpisodeFilters, SelfLearningMemory, TaskContext
from self_learning_memory.config import RetrievalMode
from self_learning_memory.embeddings.hashing import HashingEmbedding

from .pgvector_corpus import DIMS, QUERIES, handle_of, record_corpus, task_texts
from .support import Backend

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.pgvector]


@pytest.fixture
def pg18(pg18_url: str, tmp_path: Path) -> Backend:
    return Backend("postgres18", pg18_url, tmp_path / "data")


def kind(query: str) -> str:
    if query.startswith("WITH "):
        return "search+version" if "FROM data_version" in query else "search"
    if "FROM data_version" in query:
        return "version"
    if "plainto_tsquery" in query:  # the full-text search (term counts, then the ranked rows)
        return "lexical"
    return "other"


@contextmanager
def statements(memory: SelfLearningMemory, ends: list[str] | None = None) -> Iterator[list[str]]:
    """The kinds of the statements the store's connections run meanwhile, in the order they
    are sent; with ``ends``, also every statement's kind as it starts ("+kind") and as its
    answer arrives ("-kind"), in order."""
    import psycopg

    seen: list[str] = []
    original = psycopg.AsyncCursor.execute

    async def execute(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        what = kind(str(query))
        seen.append(what)
        if ends is not None:
            ends.append("+" + what)
        try:
            return await original(self, query, params, **kw)
        finally:
            if ends is not None:
                ends.append("-" + what)

    psycopg.AsyncCursor.execute = execute  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        psycopg.AsyncCursor.execute = original  # type: ignore[method-assign]


async def top5(memory: SelfLearningMemory, query: str) -> list[str]:
    found = await memory.retrieve_relevant_context(query, None, 5)
    return [r.episode.task_description for r in found]


async def test_the_search_statement_reads_the_store_version(pg18: Backend) -> None:
    """A retrieval with no cached ranking makes one statement (the search, carrying the
    version); the same query again reads only the version and answers from the cache; after a
    write the version differs, so it reads the version and searches again (without reading it
    twice). The rankings are those of a process that reads the version first as before."""
    texts = task_texts(60, seed=8)
    query = QUERIES[0]
    async with pg18.open(embedder=HashingEmbedding(DIMS)) as memory:
        await record_corpus(memory, texts)
        # the background worker's statements share the pool: done before the measured ones
        assert await memory.wait_for_embeddings(30)
        assert memory.vectors is not None
        assert memory.vectors.where == "pgvector"
        await top5(memory, QUERIES[1])  # the index built, the connections configured
        memory._query_cache.clear()
        with statements(memory) as seen:
            first = await top5(memory, query)
        assert [s for s in seen if s != "other"] == ["search+version"]
        hits = memory._retriever.query_cache_hits
        with statements(memory) as seen:
            again = await top5(memory, query)
        assert [s for s in seen if s != "other"] == ["version"]
        assert memory._retriever.query_cache_hits == hits + 1
        assert again == first
        await record_corpus(memory, ["a new episode about retry budgets for flaky uploads"])
        with statements(memory) as seen:
            after = await top5(memory, query)
        assert [s for s in seen if s != "other"] == ["version", "search"]
        assert memory._retriever.query_cache_hits == hits + 1
        server = memory.vectors.server
        assert server is not None
        version = await memory.storage.data_version()
        assert server._version == version  # the candidates kept are of the current version
        cached = next(iter(memory._query_cache.values()))
        assert cached[0] == version
        # the same answers as the ranking at a version read first
        memory._query_cache.clear()
        ranked, _, _ = await memory._retriever.pipeline.rank(
            query, TaskContext(), 5, None, EpisodeFilters(), RetrievalMode.HYBRID, version
        )
        assert [c.candidate.task_description for c in ranked] == after


async def test_a_full_text_search_beside_the_vector_search_reads_the_version_first(
    pg18: Backend,
) -> None:
    """A query whose words give the lexical side weight starts its full-text search beside
    the server's vector search (two pooled connections), also when its vector is known
    already (the in-process index runs them one after the other): the version is read before
    both, so
    the full-text rows are never older than the version they are kept under, and the search
    statement does not read it again. The ranking equals the one made one step at a time."""
    texts = task_texts(60, seed=12)
    query = f"{texts[5]} TypeError: unsupported operand in compute_total()"
    async with pg18.open(embedder=HashingEmbedding(DIMS)) as memory:
        await record_corpus(memory, texts)
        # the background worker's statements share the pool: done before the measured ones
        assert await memory.wait_for_embeddings(30)
        await top5(memory, query)  # the query's vector cached: only the store is left
        memory._query_cache.clear()
        events: list[str] = []
        with statements(memory, events) as seen:
            found = await top5(memory, query)
        kinds = [s for s in dict.fromkeys(seen) if s != "other"]
        assert kinds[0] == "version"
        assert sorted(kinds[1:]) == ["lexical", "search"]
        # side by side: the full-text search was sent before the vector search answered
        assert events.index("+lexical") < events.index("-search")
        version = await memory.storage.data_version()
        ranked, _, _ = await memory._retriever.pipeline.rank(
            query, TaskContext(), 5, None, EpisodeFilters(), RetrievalMode.HYBRID, version
        )
        assert [c.candidate.task_description for c in ranked] == found


async def test_the_prepared_search_keeps_a_generic_plan(pg18: Backend) -> None:
    """The search's LIMITs are literals, so once psycopg prepares it PostgreSQL's plan cache
    switches to the generic plan (no planning per execution); the plan still scans the HNSW
    index (the answers equal those before the switch)."""
    texts = task_texts(80, seed=9)
    async with pg18.open(embedder=HashingEmbedding(DIMS)) as memory:
        await record_corpus(memory, texts)
        # the background worker's statements share the pool: done before the measured ones
        assert await memory.wait_for_embeddings(30)
        answers: list[list[list[str]]] = []
        for _ in range(4):
            memory._query_cache.clear()
            answers.append([await top5(memory, q) for q in (*QUERIES, texts[3], texts[50])])
        assert all(a == answers[0] for a in answers)
        handle = handle_of(memory)

        async def plans(conn: Any) -> list[Any]:
            cur = await conn.execute(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                # the unfiltered search's statement (the filtered one: 'WITH pool AS ...')
                "WHERE statement LIKE 'WITH scan AS MATERIALIZED%%'"
            )
            return list(await cur.fetchall())

        counted = await handle.db.read(plans)
        assert counted, "the search was not prepared"
        assert sum(int(g) for g, _ in counted) > 0
