"""Stored texts and queries go to different provider methods: the episodes a memory embeds (in
the background, at completion when the background is off, and by a re-index) go through
``embed_documents`` when the provider has one, the queries through ``embed``; a provider with
``embed`` alone serves both."""

from __future__ import annotations

from pathlib import Path

import pytest

from self_learning_memory import (
    ExecutionStep,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)
from self_learning_memory.embeddings import embed_documents
from self_learning_memory.embeddings.hashing import HashingEmbedding
from self_learning_memory.embeddings.provider import EmbeddingBatch, query_text

CTX = TaskContext(domain="web-api", language="python")
TASK = "Add pagination to the GET /orders endpoint"
QUERY = "orders pagination"


class Recording(HashingEmbedding):
    """Records which method embedded which texts."""

    def __init__(self) -> None:
        super().__init__(64)
        self.queries: list[str] = []
        self.documents: list[str] = []

    async def embed(self, texts: list[str]) -> EmbeddingBatch:
        self.queries.extend(texts)
        return await super().embed(texts)

    async def embed_documents(self, texts: list[str]) -> EmbeddingBatch:
        self.documents.extend(texts)
        return await super().embed(texts)


async def _memory_with(
    tmp_path: Path, embedder: HashingEmbedding, background: bool
) -> SelfLearningMemory:
    config = MemoryConfig.model_validate({"embeddings": {"background": background}})
    return SelfLearningMemory.open(tmp_path / "data", config=config, embedder=embedder)


async def _complete(memory: SelfLearningMemory) -> None:
    eid = await memory.start_episode(TASK, CTX, "code_generation")
    await memory.log_step(
        eid, ExecutionStep(step_number=1, tool="editor", action="edit", result=SuccessResult())
    )
    await memory.complete_episode(eid, SuccessOutcome(verdict="done"))


@pytest.mark.parametrize("background", [True, False])
async def test_episodes_go_to_embed_documents_and_queries_to_embed(
    tmp_path: Path, background: bool
) -> None:
    embedder = Recording()
    async with await _memory_with(tmp_path, embedder, background) as memory:
        await _complete(memory)
        assert await memory.wait_for_embeddings(30)
        assert [t.startswith(TASK) for t in embedder.documents] == [True]
        assert not any(t.startswith(TASK) for t in embedder.queries)
        found = await memory.retrieve_relevant_context(QUERY, CTX, 3)
        assert len(found) == 1
        assert embedder.queries
        assert all(t.startswith(QUERY) for t in embedder.queries)
        assert len(embedder.documents) == 1  # a query is never embedded as a document


async def test_a_query_embeds_its_context_values_and_an_episode_its_labelled_context(
    tmp_path: Path,
) -> None:
    """The query's context goes in as its bare values (measured better than the labelled form
    on both evaluation sets, with fewer tokens: ``provider.query_text``); episodes keep it
    labelled. A context-free query embeds its text alone."""
    embedder = Recording()
    async with await _memory_with(tmp_path, embedder, background=False) as memory:
        await _complete(memory)
        assert "domain: web-api. language: python." in embedder.documents[0]
        context = TaskContext(
            domain="web-api", language="python", framework="fastapi", tags=["rest", "paging"]
        )
        await memory.retrieve_relevant_context(QUERY, context, 3)
        await memory.retrieve_relevant_context(QUERY, CTX, 3)
        await memory.retrieve_relevant_context(QUERY, None, 3)
        assert embedder.queries == [
            f"{QUERY}. web-api python fastapi rest paging.",
            f"{QUERY}. web-api python.",
            f"{QUERY}. general.",  # no context: the default one (domain "general")
        ]
    assert query_text(QUERY, None) == QUERY


async def test_a_reindex_embeds_documents(tmp_path: Path) -> None:
    async with await _memory_with(tmp_path, HashingEmbedding(64), background=False) as memory:
        await _complete(memory)  # stored with the identity of a 64-dimension hashing model
    embedder = Recording()
    embedder.dimensions = 32  # another identity: the episode has no vector of it
    async with await _memory_with(tmp_path, embedder, background=False) as memory:
        embedder.documents.clear()
        assert await memory.reindex_embeddings() == 1
        assert [t.startswith(TASK) for t in embedder.documents] == [True]
        assert not any(t.startswith(TASK) for t in embedder.queries)


async def test_a_provider_without_embed_documents_embeds_documents_with_embed() -> None:
    class Plain(HashingEmbedding):
        def __init__(self) -> None:
            super().__init__(16)
            self.seen: list[str] = []

        async def embed(self, texts: list[str]) -> EmbeddingBatch:
            self.seen.extend(texts)
            return await super().embed(texts)

    plain = Plain()
    batch = await embed_documents(plain, ["a stored text", "another"])
    assert batch.vectors.shape == (2, 16)
    assert plain.seen == ["a stored text", "another"]
    recording = Recording()
    await embed_documents(recording, ["a stored text"])
    assert (recording.documents, recording.queries) == (["a stored text"], [])


def test_the_local_provider_takes_its_document_graph_from_the_config() -> None:
    from self_learning_memory.config import EmbeddingsConfig
    from self_learning_memory.embeddings import provider_from_config
    from self_learning_memory.embeddings.local import LocalEmbedding

    default = provider_from_config(EmbeddingsConfig(provider="local"))
    assert isinstance(default, LocalEmbedding)
    assert default.document_precision == "fp32"
    assert default.precision == "int8"  # queries
    chosen = provider_from_config(EmbeddingsConfig(provider="local", document_precision="int8"))
    assert isinstance(chosen, LocalEmbedding)
    assert chosen.document_precision == "int8"
    with pytest.raises(ValueError, match="document_precision"):
        EmbeddingsConfig(provider="local", document_precision="fp16")  # type: ignore[arg-type]
