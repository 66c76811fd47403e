"""The hybrid pipeline on its own, over a real store as its candidate source: it asks for the
source and the settings at each query, and ranks what that source holds."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from backends.support import Backend
from self_learning_memory import (
    EpisodeFilters,
    RetrievalConfig,
    RetrievalMode,
    SelfLearningMemory,
)
from self_learning_memory.embeddings.hashing import HashingEmbedding
from self_learning_memory.embeddings.provider import EmbeddingBatch
from self_learning_memory.model.episode import ExecutionStep, SuccessOutcome, SuccessResult
from self_learning_memory.model.records import EpisodeCandidate
from self_learning_memory.retrieval.hybrid import HybridPipeline
from self_learning_memory.storage.protocols import CandidateSource

from .test_hybrid import CTX, TASKS, record

pytestmark = pytest.mark.integration

OTHER_TASKS = ["Rotate the signing keys of the orders service"]


async def rank(
    pipeline: HybridPipeline, source: CandidateSource, query: str, mode: RetrievalMode
) -> list[tuple[str, str]]:
    """(description, mode) of each ranked candidate."""
    version = await source.data_version()
    ranked, _, _ = await pipeline.rank(query, CTX, 3, None, EpisodeFilters(), mode, version)
    return [(r.candidate.task_description, r.components.mode) for r in ranked]


async def test_the_pipeline_ranks_like_the_memory(backend: Backend) -> None:
    async with backend.open(embedder=HashingEmbedding(64)) as memory:
        await record(memory, TASKS)
        pipeline = HybridPipeline(
            lambda: memory.storage, lambda: memory.config.retrieval, memory.vectors
        )
        for mode in (RetrievalMode.HYBRID, RetrievalMode.LEXICAL, RetrievalMode.VECTOR):
            query = "pagination for the GET /orders endpoint"
            expected = await memory.retrieve_relevant_context(query, CTX, 3, mode=mode)
            ours = await rank(pipeline, memory.storage, query, mode)
            assert ours == [(r.episode.task_description, r.components.mode) for r in expected]
            assert ours[0] == (TASKS[0], mode.value)


async def test_the_source_and_settings_are_asked_at_each_query(
    backend: Backend, tmp_path: Path
) -> None:
    other = SelfLearningMemory.open(tmp_path / "other")
    async with backend.open() as memory, other:
        await record(memory, TASKS)
        await record(other, OTHER_TASKS)
        source: list[CandidateSource] = [memory.storage]
        settings = [RetrievalConfig()]
        pipeline = HybridPipeline(lambda: source[0], lambda: settings[0])
        query = "orders"
        assert (await rank(pipeline, source[0], query, RetrievalMode.LEXICAL))[0][0] == TASKS[0]

        source[0] = other.storage  # a replaced store is the one the next query reads
        assert await rank(pipeline, source[0], query, RetrievalMode.LEXICAL) == [
            (OTHER_TASKS[0], "lexical")
        ]

        # only the context counts now: every candidate's total is its context match
        settings[0] = RetrievalConfig(
            weight_relevance=0.0, weight_context=1.0, weight_outcome=0.0, weight_recency=0.0
        )
        version = await source[0].data_version()
        ranked, notes, _ = await pipeline.rank(
            query, CTX, 3, None, EpisodeFilters(), RetrievalMode.HYBRID, version
        )
        assert notes == ["vector:unavailable"]  # built without a vector search
        assert [r.components.total for r in ranked] == [r.components.context for r in ranked]
        assert ranked[0].components.relevance > 0.0


class SlowQueryEmbedding(HashingEmbedding):
    """Records, at each query embedding, how many full-text searches the store had started."""

    def __init__(self, started: list[int]) -> None:
        super().__init__(64)
        self.started = started
        self.seen: list[int] = []

    async def embed(self, texts: list[str]) -> EmbeddingBatch:
        await asyncio.sleep(0)  # let a search started just before run up to the store
        self.seen.append(len(self.started))
        return await super().embed(texts)


def counting_pipeline(memory: Any, started: list[int]) -> tuple[Any, HybridPipeline]:
    """The memory's store with its full-text search counted into ``started``, and a pipeline
    over it."""
    storage = memory.storage
    search = storage.lexical_candidates

    async def counted(*args: Any) -> list[EpisodeCandidate]:
        started.append(1)
        return await search(*args)

    storage.lexical_candidates = counted
    return storage, HybridPipeline(lambda: storage, lambda: memory.config.retrieval, memory.vectors)


async def test_a_code_like_query_starts_its_full_text_search_before_the_query_vector(
    backend: Backend,
) -> None:
    """A code-like query's full-text search runs while its query is embedded (it cannot be
    skipped); a plain-language one's is not started early (the vector rows decide). Both rank
    as the memory does."""
    started: list[int] = []
    embedder = SlowQueryEmbedding(started)
    async with backend.open(embedder=embedder) as memory:
        await record(memory, TASKS)
        storage, pipeline = counting_pipeline(memory, started)
        code_like = "TimeoutError in payment_retry.py"
        before = len(started)
        ours = await rank(pipeline, storage, code_like, RetrievalMode.HYBRID)
        assert embedder.seen[-1] == before + 1  # started before the query vector was made
        assert len(started) == before + 1  # and run once
        expected = await memory.retrieve_relevant_context(code_like, CTX, 3, mode="hybrid")
        assert ours == [(r.episode.task_description, r.components.mode) for r in expected]
        plain = "make the listing of purchases return pages"
        before = len(started)
        await rank(pipeline, storage, plain, RetrievalMode.HYBRID)
        assert embedder.seen[-1] == before  # nothing started before the vector search


class CountingEmbedding(HashingEmbedding):
    def __init__(self) -> None:
        super().__init__(64)
        self.texts: list[str] = []

    async def embed(self, texts: list[str]) -> EmbeddingBatch:
        self.texts += texts
        await asyncio.sleep(0)  # another caller may ask for the same text meanwhile
        return await super().embed(texts)


async def test_a_query_is_embedded_once_while_the_store_version_is_read(
    backend: Backend,
) -> None:
    """Retrieval starts the query embedding before it reads the store's version; the pipeline
    then awaits that work instead of embedding the query again."""
    embedder = CountingEmbedding()
    async with backend.open(embedder=embedder) as memory:
        await record(memory, TASKS)
        assert memory.vectors is not None
        embedder.texts.clear()
        found = await memory.retrieve_relevant_context("pagination of the orders list", CTX, 3)
        assert found[0].episode.task_description == TASKS[0]
        assert len(embedder.texts) == 1
        # two callers of one new text at once: one embedding, the same vector for both
        embedder.texts.clear()
        memory.vectors.prefetch_query("a brand new query", CTX)
        first, second = await asyncio.gather(
            memory.vectors.query_vector("a brand new query", CTX),
            memory.vectors.query_vector("a brand new query", CTX),
        )
        assert len(embedder.texts) == 1
        assert (first[0] == second[0]).all()


async def test_a_query_naming_a_tool_seen_in_candidates_starts_its_full_text_search_early(
    backend: Backend,
) -> None:
    """A query whose words name a tool that earlier candidates used may get lexical weight
    from that tool (known only once the candidates are), so its full-text search starts while
    the query is embedded; it ranks as the memory does."""
    started: list[int] = []
    embedder = SlowQueryEmbedding(started)
    async with backend.open(embedder=embedder) as memory:
        await record(memory, TASKS)
        eid = await memory.start_episode("Roll back the orders deployment", CTX)
        step = ExecutionStep(
            step_number=1, tool="kubectl", action="rollout undo", result=SuccessResult()
        )
        await memory.log_step(eid, step)
        await memory.complete_episode(eid, SuccessOutcome(verdict="rolled back"))
        storage, pipeline = counting_pipeline(memory, started)
        query = "kubectl orders release went wrong"
        before = len(started)
        await rank(pipeline, storage, query, RetrievalMode.HYBRID)  # no tool names known yet
        assert embedder.seen[-1] == before
        again = "kubectl orders release broke"  # another text: embedded again
        before = len(started)
        ours = await rank(pipeline, storage, again, RetrievalMode.HYBRID)
        assert embedder.seen[-1] == before + 1  # started before the query vector was made
        assert len(started) == before + 1  # and run once
        expected = await memory.retrieve_relevant_context(again, CTX, 3, mode="hybrid")
        assert ours == [(r.episode.task_description, r.components.mode) for r in expected]
        assert expected[0].components.lexical_weight is not None
        assert expected[0].components.lexical_weight > 0.0  # the tool name counted


async def test_a_code_like_query_with_a_known_vector_starts_its_full_text_search_before_the_scan(
    backend: Backend,
) -> None:
    """With the query vector already known, a search that runs whatever the vector search
    finds is queued on the store's thread before the index scan (the two overlap), so before
    the vector candidates' rows are asked for. It runs once, and the ranking is the
    memory's."""
    async with backend.open(embedder=HashingEmbedding(64)) as memory:
        await record(memory, TASKS)
        assert memory.vectors is not None
        storage = memory.storage
        events: list[str] = []
        rows, search = storage.candidates_by_ids, storage.lexical_candidates

        async def logged_rows(*args: Any) -> list[EpisodeCandidate]:
            events.append("rows asked")
            try:
                return await rows(*args)
            finally:
                events.append("rows back")

        async def logged_search(*args: Any) -> list[EpisodeCandidate]:
            events.append("full-text asked")
            return await search(*args)

        storage.candidates_by_ids = logged_rows
        storage.lexical_candidates = logged_search
        pipeline = HybridPipeline(lambda: storage, lambda: memory.config.retrieval, memory.vectors)
        code_like = "TimeoutError in payment_retry.py"
        await memory.vectors.query_vector(code_like, CTX)  # known before the ranking
        ours = await rank(pipeline, storage, code_like, RetrievalMode.HYBRID)
        if memory.vectors.where == "pgvector":  # beside the server's search, rows in it
            assert events == ["full-text asked"]
        else:
            assert events == ["full-text asked", "rows asked", "rows back"]
        storage.candidates_by_ids, storage.lexical_candidates = rows, search
        expected = await memory.retrieve_relevant_context(code_like, CTX, 3, mode="hybrid")
        assert ours == [(r.episode.task_description, r.components.mode) for r in expected]
        # a plain-language query may skip its full-text search: nothing is started for it
        events.clear()
        storage.candidates_by_ids, storage.lexical_candidates = logged_rows, logged_search
        plain = "make the listing of purchases return pages"
        await memory.vectors.query_vector(plain, CTX)
        await rank(
            HybridPipeline(lambda: storage, lambda: memory.config.retrieval, memory.vectors),
            storage,
            plain,
            RetrievalMode.HYBRID,
        )
        if memory.vectors.where != "pgvector":
            assert events[:2] == ["rows asked", "rows back"]
        assert "full-text asked" not in events


async def test_a_new_query_is_embedded_and_searched_while_the_store_version_is_read(
    backend: Backend,
) -> None:
    """A new query's embedding (the longer of the two) reaches its thread before the store's
    version is asked for, so the version read never delays it; a code-like query's full-text
    search is asked for right behind the version, before its answer. Results as before."""
    order: list[str] = []

    class Ordered(HashingEmbedding):
        async def embed(self, texts: list[str]) -> EmbeddingBatch:
            order.append("embed")
            await asyncio.sleep(0)  # a model works on its thread: not done at once
            return await super().embed(texts)

    async with backend.open(embedder=Ordered(64)) as memory:
        await record(memory, TASKS)
        storage = memory.storage
        version, search = storage.data_version, storage.lexical_candidates

        async def logged_version() -> int:
            order.append("version asked")
            try:
                return await version()
            finally:
                order.append("version back")

        async def logged_search(*args: Any) -> list[EpisodeCandidate]:
            order.append("full-text asked")
            return await search(*args)

        storage.data_version = logged_version  # type: ignore[method-assign]
        storage.lexical_candidates = logged_search  # type: ignore[method-assign]
        order.clear()
        found = await memory.retrieve_relevant_context("pagination of the orders list", CTX, 3)
        assert found[0].episode.task_description == TASKS[0]
        in_statement = memory.vectors is not None and memory.vectors.where == "pgvector"
        if in_statement:  # the version is read by the server's vector search statement
            assert order == ["embed"]
        else:
            assert order[:3] == ["embed", "version asked", "version back"]  # plain: not searched
        order.clear()
        code_like = "TimeoutError in payment_retry.py"
        ours = await memory.retrieve_relevant_context(code_like, CTX, 3)
        if in_statement:  # the version first: the search's rows are not older than it
            assert order == ["embed", "version asked", "version back", "full-text asked"]
        else:
            assert order == ["embed", "version asked", "full-text asked", "version back"]
        memory._query_cache.clear()
        again = await memory.retrieve_relevant_context(code_like, CTX, 3)  # vector known now
        # the same ranking (the scores move only with the recency of a later "now")
        assert [r.episode.episode_id for r in again] == [r.episode.episode_id for r in ours]
        assert [r.score for r in again] == pytest.approx([r.score for r in ours], abs=1e-6)


async def test_a_query_cache_hit_starts_no_full_text_search(
    backend: Backend,
) -> None:
    """A ranking still cached for this store version is returned as it is, even when the
    query's vector was forgotten (so its embedding is started): only the version is read, no
    full-text search is started for it, and the store serves the next query."""
    async with backend.open(embedder=CountingEmbedding()) as memory:
        await record(memory, TASKS)
        assert memory.vectors is not None
        code_like = "TimeoutError in payment_retry.py"
        first = await memory.retrieve_relevant_context(code_like, CTX, 3)
        hits = memory.query_cache_hits
        started: list[int] = []
        counting_pipeline(memory, started)  # counts the store's full-text searches
        memory.vectors._queries.clear()  # the vector is forgotten, the ranking is not
        again = await memory.retrieve_relevant_context(code_like, CTX, 3)
        assert memory.query_cache_hits == hits + 1
        assert started == []  # a cached ranking: nothing searched
        assert [(r.episode.episode_id, r.score) for r in again] == [
            (r.episode.episode_id, r.score) for r in first
        ]
        later = await memory.retrieve_relevant_context("pagination of the orders list", CTX, 3)
        assert later[0].episode.task_description == TASKS[0]
