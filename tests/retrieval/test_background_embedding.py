"""Background episode embedding (``embeddings.background``, the default), on SQLite and
PostgreSQL: the completion is acknowledged before the vector is written; retrieval meanwhile
finds the episode lexically and says its vector is pending; a process killed (SIGKILL) after
the acknowledgement and before the vector was written loses nothing: the next start embeds it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from backends.support import Backend
from self_learning_memory import (
    ExecutionStep,
    MemoryConfig,
    SelfLearningMemory,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
)
from self_learning_memory.embeddings.hashing import HashingEmbedding
from self_learning_memory.embeddings.provider import EmbeddingBatch
from support.polling import poll_until

pytestmark = pytest.mark.integration

CTX = TaskContext(domain="web-api", language="python")
TASK = "Add pagination to the GET /orders endpoint"
BACKGROUND = MemoryConfig.model_validate({"embeddings": {"background": True}})


class GatedEmbedding(HashingEmbedding):
    """Holds every batch with an episode text (``TASK``) until ``release`` is set; queries
    pass at once."""

    def __init__(self) -> None:
        super().__init__(64)
        self.release = asyncio.Event()
        self.held = asyncio.Event()

    async def embed(self, texts: list[str]) -> EmbeddingBatch:
        if any(t.startswith(TASK) for t in texts):
            self.held.set()
            await self.release.wait()
        return await super().embed(texts)


async def _complete(memory: SelfLearningMemory, task: str = TASK) -> object:
    eid = await memory.start_episode(task, CTX, "code_generation")
    await memory.log_step(
        eid, ExecutionStep(step_number=1, tool="editor", action="edit", result=SuccessResult())
    )
    await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
    return eid


async def test_completion_is_acknowledged_before_the_vector_and_retrieval_says_so(
    backend: Backend,
) -> None:
    embedder = GatedEmbedding()
    async with backend.open(BACKGROUND, embedder=embedder) as memory:
        assert memory.vectors is not None
        eid = await _complete(memory)  # returns while the vector is held back
        await asyncio.wait_for(embedder.held.wait(), 30)
        status = await memory.vectors.status()
        assert (status.embedded, status.missing) == (0, 1)
        assert memory.vectors.pending == {eid}
        health = (await memory.health())["embeddings"]
        assert health.details["pending_vectors"] == 1
        assert health.details["background"] is True
        # a plain-language query would skip the full-text search when every episode has a
        # vector: while one is pending it searches lexically and finds the episode
        found = await memory.retrieve_relevant_context("orders pagination", CTX, 3)
        assert [r.episode.episode_id for r in found] == [eid]
        assert "vector:pending:1" in found[0].provenance
        assert "vector:episode-pending" in found[0].provenance
        assert not await memory.wait_for_embeddings(0.05)

        embedder.release.set()
        assert await memory.wait_for_embeddings(30)
        status = await memory.vectors.status()
        assert (status.embedded, status.missing) == (1, 0)
        assert memory.vectors.pending == set()
        again = await memory.retrieve_relevant_context("orders pagination", CTX, 3)
        assert [r.episode.episode_id for r in again] == [eid]
        assert not any("pending" in p for p in again[0].provenance)
        assert (await memory.health())["embeddings"].details["pending_vectors"] == 0


async def test_episodes_completed_meanwhile_are_embedded_in_one_later_batch(
    backend: Backend,
) -> None:
    embedder = GatedEmbedding()
    async with backend.open(BACKGROUND, embedder=embedder) as memory:
        assert memory.vectors is not None
        await _complete(memory)
        await asyncio.wait_for(embedder.held.wait(), 30)
        others = [await _complete(memory, f"Other task number {i}") for i in range(5)]
        assert memory.vectors.pending >= set(others)
        worker = memory._parts.embedding_worker
        assert worker is not None
        embedder.release.set()
        assert await memory.wait_for_embeddings(30)
        assert (await memory.vectors.status()).missing == 0
        assert worker.embedded == 6
        assert worker.batches == 2  # the held one, then the five that waited behind it


CHILD = """
import asyncio, sys
from pathlib import Path
from self_learning_memory import (ExecutionStep, MemoryConfig, SelfLearningMemory,
    SuccessOutcome, SuccessResult, TaskContext)
from self_learning_memory.embeddings.hashing import HashingEmbedding

class Stuck(HashingEmbedding):
    async def embed(self, texts):
        await asyncio.Event().wait()  # the vector is never written in this process

async def main():
    url = None if sys.argv[2] == "-" else sys.argv[2]
    config = MemoryConfig.model_validate({"storage": {"url": url}})
    memory = SelfLearningMemory.open(Path(sys.argv[1]), config=config, embedder=Stuck(64))
    await memory.start()
    eid = await memory.start_episode(sys.argv[3], TaskContext(domain="web-api"), "testing")
    await memory.log_step(eid, ExecutionStep(step_number=1, tool="editor", action="edit",
                                             result=SuccessResult()))
    await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
    print("ACK", eid, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_a_killed_process_loses_no_vector_the_next_start_embeds_it(
    backend: Backend, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(backend.data_dir),
        backend.child_url,
        TASK,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert child.stdout is not None
        line = (await asyncio.wait_for(child.stdout.readline(), 120)).decode()
        assert line.startswith("ACK "), line
    finally:
        child.send_signal(signal.SIGKILL)
        await asyncio.wait_for(child.wait(), 30)
    acknowledged = line.split()[1]
    async with backend.open(BACKGROUND, embedder=HashingEmbedding(64)) as memory:
        assert memory.vectors is not None
        # the worker looks for completed episodes without a vector at start-up
        assert await memory.wait_for_embeddings(60)
        status = await memory.vectors.status()
        assert (status.embedded, status.missing) == (1, 0)
        found = await memory.retrieve_relevant_context(TASK, mode="vector")
        assert [str(r.episode.episode_id) for r in found] == [acknowledged]


async def test_a_write_then_a_retrieval_searches_nothing_and_counts_once(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent's loop, complete then retrieve: the worker reads this process's new episode by
    id (no search of the store for episodes without a vector), then counts the store once; that
    answer is the retrieval's coverage, so the retrieval counts nothing and still skips the
    full-text search. An uncovered answer is not kept when vectors are added."""
    from self_learning_memory.retrieval import vectors as vectors_module

    monkeypatch.setattr(vectors_module, "_COVERAGE_TTL_S", 3600.0)  # no re-ask by the clock
    async with backend.open(BACKGROUND, embedder=HashingEmbedding(64)) as memory:
        search = memory.vectors
        assert search is not None
        await _complete(memory)
        assert await memory.wait_for_embeddings(30)
        # the first retrieval finds the store's vector path (pgvector: in process when small)
        await memory.retrieve_relevant_context("orders pagination", CTX, 3)
        calls = {"scan": 0, "count": 0}
        scan, count = search.storage.episodes_missing_embedding, search.storage.embedding_status

        async def counted_scan(identity: str, limit: int) -> object:
            calls["scan"] += 1
            return await scan(identity, limit)

        async def counted_count(identity: str) -> object:
            calls["count"] += 1
            return await count(identity)

        monkeypatch.setattr(search.storage, "episodes_missing_embedding", counted_scan)
        monkeypatch.setattr(search.storage, "embedding_status", counted_count)
        for i in range(3):
            calls.update(scan=0, count=0)
            eid = await _complete(memory, f"Another task {i}")
            assert await memory.wait_for_embeddings(30)
            assert calls == {"scan": 0, "count": 1}  # the worker's count, no search
            found = await memory.retrieve_relevant_context(f"Another task {i}", CTX, 3)
            assert found[0].episode.episode_id == eid
            assert "lexical:skipped" in found[0].provenance  # known to be covered
            assert calls == {"scan": 0, "count": 1}  # the retrieval counted nothing
        assert (await memory.vectors.status()).missing == 0
        search._coverage = (0, 0.0, False)  # an uncovered answer is not kept
        search.vectors_added()
        assert search._coverage is None


class FailsOnce(HashingEmbedding):
    """Fails the first batch with an episode text starting with ``LOST``."""

    def __init__(self) -> None:
        super().__init__(64)
        self.failed = False

    async def embed(self, texts: list[str]) -> EmbeddingBatch:
        if not self.failed and any(t.startswith("LOST") for t in texts):
            self.failed = True
            raise RuntimeError("provider down")
        return await super().embed(texts)


async def test_a_completion_embeds_an_episode_another_process_left_without_a_vector(
    backend: Backend,
) -> None:
    """An episode without a vector that is not this process's (as if its process died before
    writing it): the next completion here finds it by the worker's count and search, and
    embeds it, before the worker goes idle."""
    embedder = FailsOnce()
    async with backend.open(BACKGROUND, embedder=embedder) as memory:
        search = memory.vectors
        assert search is not None
        lost = await _complete(memory, "LOST task whose vector was never written")
        await poll_until(
            lambda: embedder.failed, timeout=30, message="the first batch did not fail"
        )
        search.pending.discard(lost)  # not this process's any more: only the store knows it
        assert (await search.status()).missing == 1
        await _complete(memory, "A later task")
        assert await memory.wait_for_embeddings(30)
        status = await search.status()
        assert (status.embedded, status.missing) == (2, 0)


async def test_episodes_deleted_by_another_process_are_noticed_after_a_completion(
    backend: Backend,
) -> None:
    """The worker's count after a completion does not stand for the coverage when the store
    holds fewer vectors than the index (episodes deleted behind this memory's back, as by
    another process): the next retrieval asks the store and rebuilds the index."""
    async with backend.open(BACKGROUND, embedder=HashingEmbedding(64)) as memory:
        search = memory.vectors
        assert search is not None
        kept = await _complete(memory, "First task to keep")
        gone = [await _complete(memory, f"Task number {i} to delete") for i in range(2)]
        assert await memory.wait_for_embeddings(30)
        await memory.retrieve_relevant_context("task", CTX, 3)
        if search.server is not None:  # the store searches its own vectors: no index here
            return
        assert len(search.index) == 3
        for eid in gone:  # not through this memory's writer
            assert await memory.storage.delete_episode(eid)
        added = await _complete(memory, "Third task to add")
        assert await memory.wait_for_embeddings(30)
        await memory.retrieve_relevant_context("task", CTX, 3)
        assert set(search.index.ids()) == {kept, added}


@pytest.mark.parametrize("through_memory", [True, False], ids=["memory", "store"])
async def test_a_vector_written_after_the_newest_one_was_deleted_is_loaded(
    backend: Backend, through_memory: bool
) -> None:
    """The index loads vectors written since its last refresh by their sequence number. On
    SQLite that number was the row id, which SQLite gives again once the newest row is deleted:
    a vector written after the newest episode was deleted (by this memory, or behind its back)
    came back under the deleted one's number, the refresh never loaded it, and the counts
    (one deleted, one added) did not show it. The store's sequence never gives a number twice."""
    async with backend.open(BACKGROUND, embedder=HashingEmbedding(64)) as memory:
        search = memory.vectors
        assert search is not None
        kept = await _complete(memory, "First task to keep")
        newest = await _complete(memory, "Second task to delete")
        assert await memory.wait_for_embeddings(30)
        await memory.retrieve_relevant_context("task", CTX, 3)
        if search.server is not None:  # the store searches its own vectors: no index here
            return
        assert set(search.index.ids()) == {kept, newest}
        if through_memory:
            await memory.delete_episode(newest)
        else:
            assert await memory.storage.delete_episode(newest)
        added = await _complete(memory, "Third task to add")
        assert await memory.wait_for_embeddings(30)
        found = await memory.retrieve_relevant_context("Third task to add", CTX, 3)
        assert added in search.index.ids()
        assert newest not in search.index.ids()
        assert found[0].episode.episode_id == added


async def test_rows_read_before_the_index_was_rebuilt_are_read_again(backend: Backend) -> None:
    """A refresh reads the rows above the index's watermark. When the index is rebuilt (reset)
    while that read is in flight (the background worker's refresh beside a retrieval that found
    deletions), its rows are not added to the new index: they would move the watermark past
    every row below them, which the rebuild has not read yet and would then never read."""
    foreground = MemoryConfig.model_validate({"embeddings": {"background": False}})
    async with backend.open(foreground, embedder=HashingEmbedding(64)) as memory:
        search = memory.vectors
        assert search is not None
        first = [await _complete(memory, f"Early task number {i}") for i in range(3)]
        await memory.retrieve_relevant_context("task", CTX, 3)
        if search.server is not None:  # the store searches its own vectors: no index here
            return
        assert set(search.index.ids()) == set(first)
        later = await _complete(memory, "Later task to load")  # its vector not loaded yet
        storage = search.storage
        read = storage.embeddings_since
        gate, asked = asyncio.Event(), asyncio.Event()

        async def held(identity: str, after: int, limit: int) -> object:
            rows = await read(identity, after, limit)
            if after > 0 and not gate.is_set():  # the stale read: from the old watermark
                assert [r[1] for r in rows] == [later]
                asked.set()
                await gate.wait()
            return rows

        storage.embeddings_since = held  # type: ignore[method-assign]
        try:
            stale = asyncio.ensure_future(search.refresh())
            await asyncio.wait_for(asked.wait(), 10)
            search.index.reset()  # the rebuild starts; the stale read returns into it
            gate.set()
            await asyncio.wait_for(stale, 10)
        finally:
            del storage.embeddings_since
        await search.refresh()
        assert set(search.index.ids()) == {*first, later}


async def test_a_process_that_only_writes_does_not_load_the_vectors(backend: Backend) -> None:
    """The worker loads new vectors into an index this process has loaded (to see deletions
    in its count); a process that has not retrieved (a CLI command that records a task) does
    not read every vector of the store after its completions. Its first retrieval loads them."""
    async with backend.open(BACKGROUND, embedder=HashingEmbedding(64)) as memory:
        search = memory.vectors
        assert search is not None
        done = [await _complete(memory, f"Recorded task number {i}") for i in range(3)]
        assert await memory.wait_for_embeddings(30)
        assert (len(search.index), search.index.watermark) == (0, 0)
        await memory.retrieve_relevant_context("Recorded task number 1", CTX, 3)
        if search.server is None:
            assert set(search.index.ids()) == set(done)
