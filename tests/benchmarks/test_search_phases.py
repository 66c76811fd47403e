"""The benchmarks' search timeline (``benchmarks/search_phases.py``) on a real embedded store:
it records the phases a hybrid retrieval goes through, in order, and leaves nothing wrapped."""

from __future__ import annotations

from pathlib import Path

from benchmarks import search_phases
from self_learning_memory import (
    ExecutionStep,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)
from self_learning_memory.embeddings.hashing import HashingEmbedding
from self_learning_memory.retrieval import hybrid
from self_learning_memory.retrieval.index import VectorIndex
from self_learning_memory.storage.factory import open_embedded

CTX = TaskContext(domain="web-api", language="python")
TASKS = [
    "Fix the TimeoutError in handlers/payment.py",
    "Add pagination to the orders endpoint",
    "Refactor the configuration loader",
    "Speed up the slow report query",
]


async def test_phases_follow_a_hybrid_retrieval_and_are_removed_after(tmp_path: Path) -> None:
    config = MemoryConfig()
    storage, cache = open_embedded(tmp_path, config)
    embedder = HashingEmbedding(64)
    async with SelfLearningMemory(storage, config=config, cache=cache, embedder=embedder) as memory:
        for task in TASKS:
            eid = await memory.start_episode(task, CTX, "code_generation")
            step = ExecutionStep(step_number=1, tool="editor", action=task, result=SuccessResult())
            await memory.log_step(eid, step)
            await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
        assert await memory.wait_for_embeddings(60)
        originals = (VectorIndex.search_with_feedback, hybrid.rank_with_signals)

        with search_phases.phases(memory) as recorder:
            for query in ("TimeoutError in handlers/payment.py", "make the orders page faster"):
                with recorder.search():
                    found = await memory.retrieve_relevant_context(query, CTX, 3)
                assert found
            summary = recorder.summary()

        assert summary["searches"] == 2
        phases = summary["phases"]
        # the code-like query runs the full-text search; both embed, scan, rank and read results
        for phase in ("embed", "data_version", "vector_scan", "rank", "episode_cache"):
            assert phases[phase]["searches"] == 2, phase
        assert phases["full_text"]["searches"] >= 1
        total = summary["total_p50_ms"]
        for phase, row in phases.items():
            assert 0 <= row["start_p50_ms"] <= row["end_p50_ms"], phase
            assert row["duration_p50_ms"] > 0, phase
            if row["searches"] == summary["searches"]:  # medians over the same searches
                assert row["end_p50_ms"] <= total, phase
        # the ranking waits for the query vector and the scan; the results are read last
        assert phases["embed"]["end_p50_ms"] <= phases["vector_scan"]["start_p50_ms"]
        assert phases["vector_scan"]["end_p50_ms"] <= phases["rank"]["start_p50_ms"]
        assert phases["rank"]["end_p50_ms"] <= phases["episode_cache"]["start_p50_ms"]

        # nothing stays wrapped: the class and module functions are the originals again, the
        # instances' methods their classes' own, and later retrievals are not recorded
        assert (VectorIndex.search_with_feedback, hybrid.rank_with_signals) == originals
        for call in search_phases.STORE_CALLS:
            assert call not in vars(memory.storage), call
        assert "embed" not in vars(embedder)
        assert cache is not None
        assert "get_many" not in vars(cache)
        await memory.retrieve_relevant_context("Refactor the loader", CTX, 3)
        assert recorder.summary() == summary

        # a benchmark without --phases: no recorder, nothing wrapped, the search block inert
        with search_phases.optional(memory, False) as absent:
            assert absent is None
            assert VectorIndex.search_with_feedback is originals[0]
            with search_phases.search(absent):
                assert await memory.retrieve_relevant_context("Refactor the loader", CTX, 3)
