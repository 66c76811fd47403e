"""Vector and hybrid retrieval through the memory, on SQLite and PostgreSQL: fallback, failures,
re-embedding, cache."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from backends.support import Backend
from self_learning_memory import (
    CapabilityUnavailableError,
    ExecutionStep,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)
from self_learning_memory.config import EmbeddingsConfig
from self_learning_memory.embeddings.hashing import HashingEmbedding
from self_learning_memory.embeddings.provider import EmbeddingBatch

pytestmark = pytest.mark.integration

TASKS = [
    "Add pagination to the GET /orders endpoint",
    "Fix the flaky payment retry test",
    "Write a migration adding an index on invoices",
]
CTX = TaskContext(domain="web-api", language="python")


class FlakyEmbedding(HashingEmbedding):
    """Fails while ``broken`` is set; marks long texts as truncated."""

    def __init__(self, dimensions: int = 64) -> None:
        super().__init__(dimensions)
        self.broken = False

    async def embed(self, texts: list[str]) -> EmbeddingBatch:
        if self.broken:
            raise CapabilityUnavailableError("The test provider is down.")
        batch = await super().embed(texts)
        return EmbeddingBatch(batch.vectors, [len(t) > 300 for t in texts])


LEXICAL = {"sqlite": "fts5", "postgres": "tsvector"}  # the lexical index named in provenance


async def record(memory: SelfLearningMemory, tasks: Sequence[str]) -> None:
    for task in tasks:
        eid = await memory.start_episode(task, CTX, "code_generation")
        await memory.log_step(
            eid, ExecutionStep(step_number=1, tool="editor", action="edit", result=SuccessResult())
        )
        await memory.complete_episode(eid, SuccessOutcome(verdict="done"))


async def test_without_a_provider_hybrid_is_lexical_and_says_so(backend: Backend) -> None:
    async with backend.open() as memory:
        await record(memory, TASKS)
        results = await memory.retrieve_relevant_context("orders pagination", CTX, 3)
        assert results[0].episode.task_description == TASKS[0]
        assert results[0].components.mode == "lexical"
        assert results[0].components.vector is None
        assert "vector:unavailable" in results[0].provenance
        with pytest.raises(CapabilityUnavailableError, match=r"embeddings\.provider"):
            await memory.retrieve_relevant_context("orders", CTX, 3, mode="vector")


async def test_hybrid_uses_vectors_written_at_completion(backend: Backend) -> None:
    async with backend.open(embedder=HashingEmbedding(64)) as memory:
        await record(memory, TASKS)
        assert memory.vectors is not None
        status = await memory.vectors.status()
        assert (status.embedded, status.missing) == (3, 0)
        hybrid = await memory.retrieve_relevant_context(  # a route: both searches run
            "pagination for the GET /orders endpoint", CTX, 3
        )
        assert hybrid[0].episode.task_description == TASKS[0]
        assert hybrid[0].components.mode == "hybrid"
        assert hybrid[0].components.vector is not None
        assert hybrid[0].components.vector > hybrid[1].components.vector  # type: ignore[operator]
        assert {LEXICAL[backend.engine], "vector"} <= set(hybrid[0].provenance)
        vector_only = await memory.retrieve_relevant_context(
            "pagination for the orders endpoint", CTX, 3, mode="vector"
        )
        assert vector_only[0].components.mode == "vector"
        assert vector_only[0].components.relevance == pytest.approx(1.0)  # the best cosine


async def test_hybrid_reports_a_higher_lexical_weight_for_an_error_line(backend: Backend) -> None:
    async with backend.open(embedder=HashingEmbedding(64)) as memory:
        await record(memory, TASKS)
        plain = await memory.retrieve_relevant_context("pagination for the orders endpoint", CTX)
        pasted = await memory.retrieve_relevant_context(
            "KeyError: 'cursor' in GET /orders pagination", CTX
        )
        config = memory.config.retrieval
        floor, ceiling = 1 - config.vector_weight, config.lexical_weight_max
        assert [r.components.lexical_weight for r in plain] == pytest.approx([floor] * len(plain))
        assert [r.components.lexical_weight for r in pasted] == pytest.approx(
            [ceiling] * len(pasted)
        )
        assert pasted[0].episode.task_description == TASKS[0]
        lexical = await memory.retrieve_relevant_context("orders", CTX, mode="lexical")
        assert lexical[0].components.lexical_weight is None  # a hybrid component only


async def test_provider_failure_keeps_the_episode_and_reindex_repairs(backend: Backend) -> None:
    provider = FlakyEmbedding()
    async with backend.open(embedder=provider) as memory:
        provider.broken = True
        await record(memory, TASKS[:2])  # completes despite the provider being down
        assert memory.vectors is not None
        assert (await memory.vectors.status()).missing == 2
        results = await memory.retrieve_relevant_context("payment retry", CTX, 2)
        assert "vector:error" in results[0].provenance  # hybrid fell back, and said so
        with pytest.raises(CapabilityUnavailableError):
            await memory.reindex_embeddings()
        assert (await memory.vectors.status()).missing == 2  # nothing half-indexed
        provider.broken = False
        seen: list[tuple[int, int]] = []
        assert (
            await memory.reindex_embeddings(batch_size=1, progress=lambda d, t: seen.append((d, t)))
            == 2
        )
        assert seen == [(1, 2), (2, 2)]
        assert (await memory.vectors.status()).missing == 0


async def test_dimension_change_is_detected_and_reembedded(backend: Backend) -> None:
    async with backend.open(embedder=HashingEmbedding(64)) as memory:
        await record(memory, TASKS)
    async with backend.open(embedder=HashingEmbedding(32)) as memory:
        assert memory.vectors is not None
        status = await memory.vectors.status()
        assert (status.embedded, status.missing, status.other_identities) == (0, 3, 3)
        results = await memory.retrieve_relevant_context("orders pagination", CTX, 3)
        assert results[0].episode.task_description == TASKS[0]  # lexical still finds it
        assert await memory.reindex_embeddings() == 3
        results = await memory.retrieve_relevant_context("orders pagination", CTX, 3, mode="vector")
        assert results[0].episode.task_description == TASKS[0]
        assert results[0].components.vector is not None


async def test_truncated_texts_are_reported(backend: Backend) -> None:
    async with backend.open(embedder=FlakyEmbedding()) as memory:
        await record(memory, ["Refactor the report generator " + "with many details " * 30])
        results = await memory.retrieve_relevant_context("refactor report generator", CTX, 1)
        assert "vector:episode-truncated" in results[0].provenance


async def test_query_cache_hits_and_invalidates_on_write(backend: Backend) -> None:
    async with backend.open(embedder=HashingEmbedding(64)) as memory:
        await record(memory, TASKS)
        first = await memory.retrieve_relevant_context("orders pagination", CTX, 3)
        again = await memory.retrieve_relevant_context("orders pagination", CTX, 3)
        assert memory.query_cache_hits == 1
        assert [r.episode.episode_id for r in again] == [r.episode.episode_id for r in first]
        again[0].episode.task_description = "mutated by the caller"
        third = await memory.retrieve_relevant_context("orders pagination", CTX, 3)
        assert third[0].episode.task_description == TASKS[0]  # the cache hands out copies
        await record(memory, ["Add pagination to the GET /orders endpoint, again"])
        after = await memory.retrieve_relevant_context("orders pagination", CTX, 3)
        assert memory.query_cache_hits == 2  # the write changed the store version: a miss
        assert len(after) == 3


async def test_local_provider_finds_paraphrases(backend: Backend) -> None:
    config = MemoryConfig(embeddings=EmbeddingsConfig(provider="local"))
    async with backend.open(config) as memory:
        await record(memory, [*TASKS, "Speed up the slow dashboard query"])
        assert await memory.wait_for_embeddings(60)  # written by the background worker
        results = await memory.retrieve_relevant_context(
            "the listing of purchases returns everything at once; split it into pages",
            CTX,
            2,
            mode="vector",
        )
        assert results[0].episode.task_description == TASKS[0]


async def test_health_reports_the_embedding_state(backend: Backend) -> None:
    async with backend.open(embedder=HashingEmbedding(64)) as memory:
        await record(memory, TASKS)
    async with backend.open(embedder=HashingEmbedding(32)) as memory:
        report = (await memory.health())["embeddings"]
        assert report.healthy
        assert report.details["identity"] == "hashing:feature-hashing-v1:32"
        assert (report.details["embedded"], report.details["missing"]) == (0, 3)
        assert report.details["other_identities"] == 3
        assert "reindex" in str(report.details["action"])


async def test_vector_candidates_are_kept_until_the_store_changes(backend: Backend) -> None:
    """The vector search's candidate rows are read once per store version: the same query
    again reads none, and after a write (here a delete) they are read afresh, so the deleted
    episode is not a candidate. With pgvector the rows come with the store's own search, so
    none is ever read by id."""
    async with backend.open(embedder=HashingEmbedding(64)) as memory:
        await record(memory, TASKS)
        assert memory.vectors is not None
        in_store = memory.vectors.where == "pgvector"
        assert in_store == (backend.kind == "postgres18")
        storage = memory.storage
        asked: list[int] = []
        original = storage.candidates_by_ids

        async def counting(ids, filters):  # type: ignore[no-untyped-def]
            asked.append(len(ids))
            return await original(ids, filters)

        storage.candidates_by_ids = counting  # type: ignore[method-assign]
        first = await memory.retrieve_relevant_context("orders pagination", CTX, 3)
        assert bool(asked) != in_store
        assert first[0].episode.task_description == TASKS[0]
        asked.clear()
        memory._query_cache.clear()
        again = await memory.retrieve_relevant_context("orders pagination", CTX, 3)
        assert asked == []  # served from memory
        assert [r.episode.episode_id for r in again] == [r.episode.episode_id for r in first]
        await memory.delete_episode(first[0].episode.episode_id)
        memory._query_cache.clear()
        after = await memory.retrieve_relevant_context("orders pagination", CTX, 3)
        assert bool(asked) != in_store  # the store changed: read afresh
        assert first[0].episode.episode_id not in {r.episode.episode_id for r in after}
        assert len(after) == len(TASKS) - 1


def _count_lexical(memory: SelfLearningMemory) -> list[int]:
    """Count the memory's full-text searches."""
    storage = memory.storage
    calls: list[int] = []
    original = storage.lexical_candidates

    async def counting(terms, filters, limit):  # type: ignore[no-untyped-def]
        calls.append(1)
        return await original(terms, filters, limit)

    storage.lexical_candidates = counting  # type: ignore[method-assign]
    return calls


async def test_plain_language_skips_the_full_text_search_only_when_it_cannot_count(
    backend: Backend,
) -> None:
    """A plain-language hybrid query ranks by the vector signal alone, so with every episode
    embedded the full-text search is skipped (and says so); a query with an identifier or an
    error line still runs it; so does a plain query while an episode lacks a vector, which
    the full-text search alone can reach."""
    provider = FlakyEmbedding()
    async with backend.open(embedder=provider) as memory:
        await record(memory, TASKS)
        calls = _count_lexical(memory)
        plain = await memory.retrieve_relevant_context("add pagination to the orders list", CTX)
        assert calls == []
        assert all("lexical:skipped" in r.provenance for r in plain)
        assert plain[0].episode.task_description == TASKS[0]
        assert plain[0].components.mode == "hybrid"
        assert plain[0].components.lexical_weight == 0.0
        code = await memory.retrieve_relevant_context("fix test_payment_retry.py flakiness", CTX)
        assert calls == [1]
        assert "lexical:skipped" not in code[0].provenance
        assert code[0].components.lexical_weight is not None
        assert code[0].components.lexical_weight > 0
        provider.broken = True  # the next episode is stored without a vector
        await record(memory, ["Rotate the signing keys of the billing webhooks"])
        provider.broken = False
        calls.clear()
        found = await memory.retrieve_relevant_context("rotate signing keys billing", CTX)
        assert calls == [1]  # not every episode has a vector: the full-text search runs
        assert found[0].episode.task_description.startswith("Rotate the signing keys")
        assert "lexical:skipped" not in found[0].provenance


async def test_a_deleted_episode_leaves_the_vector_index(backend: Backend) -> None:
    """Deleting an episode deletes its vector; the in-process index is rebuilt from the store
    at the next plain-language query, so the deleted vector no longer takes a nearest-neighbour
    place or seeds the query expansion. With pgvector there is no in-process index (it stays
    empty) and the store's search no longer finds the deleted episode."""
    async with backend.open(embedder=HashingEmbedding(64)) as memory:
        await record(memory, TASKS)
        assert memory.vectors is not None
        in_process = len(TASKS) if memory.vectors.where == "in-process" else 0
        await memory.retrieve_relevant_context("add pagination to the orders list", CTX)
        assert len(memory.vectors.index) == in_process
        first = (await memory.list_episodes())[0]
        await memory.delete_episode(first.episode_id)
        results = await memory.retrieve_relevant_context("add pagination to the orders list", CTX)
        assert len(memory.vectors.index) == max(0, in_process - 1)
        assert first.episode_id not in {r.episode.episode_id for r in results}
        assert first.episode_id not in memory.vectors.index.vectors([first.episode_id])
        assert len(results) == len(TASKS) - 1
