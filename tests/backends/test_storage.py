"""Store-level behaviours on both durable stores: step order and validation, the durable
learning queue, embeddings, data_version, lexical ranking, stats and health."""

from __future__ import annotations

import asyncio

import pytest

from self_learning_memory import (
    EpisodeFilters,
    ExecutionStep,
    InvalidStateError,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
    TaskType,
    ValidationError,
)
from self_learning_memory.storage.backend import StorageBackend
from support.polling import poll_until

from .support import Backend

pytestmark = pytest.mark.integration

CTX = TaskContext(domain="ops", language="python", tags=["deploy"])


def step(n: int, tool: str, action: str = "run") -> ExecutionStep:
    return ExecutionStep(
        step_number=n, tool=tool, action=action, result=SuccessResult(output="ok"), latency_ms=5
    )


def primary(storage: StorageBackend) -> StorageBackend:
    """The concrete store behind a resilience wrapper, if any."""
    inner = getattr(storage, "primary", storage)
    assert isinstance(inner, StorageBackend)
    return inner


async def test_steps_append_in_order_and_refuse_bad_numbers(backend: Backend) -> None:
    async with backend.open(batch={"max_batch_size": 1}) as memory:
        eid = await memory.start_episode("rotate the TLS certificates", CTX, TaskType.ANALYSIS)
        for n, tool in enumerate(["openssl", "kubectl", "curl"], start=1):
            await memory.log_step(eid, step(n, tool))
        await memory.flush_steps()
        with pytest.raises(ValidationError):
            await memory.log_step(eid, step(2, "late"))
        store = primary(memory.storage)
        state = await store.get_episode_state(eid)
        assert state is not None
        assert (state.step_count, state.last_step_number, state.completed) == (3, 3, False)
        with pytest.raises(ValidationError):  # the store itself checks the order too
            await store.append_steps(eid, [step(3, "dup")])
        stored = await memory.get_episode(eid)
        assert [s.tool for s in stored.steps] == ["openssl", "kubectl", "curl"]
        done = await memory.complete_episode(eid, SuccessOutcome(verdict="rotated"))
        assert done.end_time is not None
        with pytest.raises(InvalidStateError):
            await store.append_steps(eid, [step(4, "after")])
        with pytest.raises(InvalidStateError):
            await memory.complete_episode(eid, SuccessOutcome(verdict="again"))
        again = await store.get_episode(eid)
        assert again is not None
        assert again.end_time == done.end_time  # microseconds survive the round trip
        assert again.start_time == done.start_time
        assert [s.timestamp for s in again.steps] == [s.timestamp for s in done.steps]


async def test_lexical_retrieval_finds_the_right_episode(backend: Backend) -> None:
    topics = {
        "Fix the flaky websocket reconnect in the chat client": ["grep", "edit_file"],
        "Add pagination to the invoices endpoint": ["read_file", "edit_file", "pytest"],
        "Tune the postgres autovacuum thresholds": ["psql", "edit_file"],
        "Upgrade the kafka consumer to the new protocol": ["edit_file", "mvn"],
    }
    async with backend.open() as memory:
        ids = {}
        for description, tools in topics.items():
            eid = await memory.start_episode(description, CTX, TaskType.CODE_GENERATION)
            for n, tool in enumerate(tools, start=1):
                await memory.log_step(eid, step(n, tool))
            await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
            ids[description] = eid
        results = await memory.retrieve_relevant_context(
            "invoices endpoint pagination", CTX, limit=3, mode="lexical"
        )
        assert results
        assert results[0].episode.episode_id == ids["Add pagination to the invoices endpoint"]
        assert results[0].components.lexical > 0
        vacuum = await memory.retrieve_relevant_context("autovacuum", limit=2, mode="lexical")
        assert vacuum[0].episode.episode_id == ids["Tune the postgres autovacuum thresholds"]
        store = primary(memory.storage)
        candidates = await store.lexical_candidates(
            ["websocket", "reconnect", "nonexistentword"], EpisodeFilters(), 10
        )
        assert [c.episode_id for c in candidates] == [
            ids["Fix the flaky websocket reconnect in the chat client"]
        ]
        typed = await store.lexical_candidates(
            ["endpoint"], EpisodeFilters(task_type=TaskType.DEBUGGING), 10
        )
        assert typed == []  # filters apply in SQL


async def test_learning_queue_learns_every_episode(backend: Backend) -> None:
    async with backend.open(queue={"enabled": True, "poll_interval_ms": 10}) as memory:
        ids = []
        for i in range(4):
            eid = await memory.start_episode(f"deploy service {i}", CTX, TaskType.CODE_GENERATION)
            for n, tool in enumerate(["build", "push", "deploy"], start=1):
                await memory.log_step(eid, step(n, tool))
            await memory.complete_episode(eid, SuccessOutcome(verdict="deployed"))
            ids.append(eid)
        store = primary(memory.storage)

        async def drained() -> bool:
            return await store.learning_queue_depth() == 0

        await poll_until(drained, timeout=15, message="the learning queue was not drained")
        learned = [await memory.get_episode(eid) for eid in ids]
        assert all(e.reward is not None and e.patterns for e in learned)


async def test_learning_jobs_are_claimed_once(backend: Backend) -> None:
    async with backend.open(queue={"enabled": False}) as memory:
        store = primary(memory.storage)
        # enqueue two jobs through the store's own completion path (mode "queued")
        from self_learning_memory.model.records import CompletionRecord
        from self_learning_memory.storage.codec import search_document

        for i in range(2):
            eid = await memory.start_episode(f"queued task {i}", CTX, TaskType.ANALYSIS)
            episode = await store.get_episode(eid)
            assert episode is not None
            done = episode.model_copy(
                update={"end_time": episode.start_time, "outcome": SuccessOutcome(verdict="ok")}
            )
            await store.commit_completion(
                CompletionRecord(episode=done, mode="queued", search=search_document(done))
            )
        assert await store.learning_queue_depth() == 2
        first, second = await asyncio.gather(
            store.claim_learning_job("a", 60), store.claim_learning_job("b", 60)
        )
        assert first is not None
        assert second is not None
        assert first != second
        assert await store.claim_learning_job("c", 60) is None  # both are claimed
        assert await store.fail_learning_job(first, "boom", max_attempts=3) is True
        assert await store.claim_learning_job("c", 60) == first  # released for another try
        assert await store.fail_learning_job(first, "boom", max_attempts=1) is False  # gave up
        assert await store.learning_queue_depth() == 1
        state = await store.get_episode_state(first)
        assert state is not None
        assert state.learning_status == "failed"


async def test_embeddings_are_stored_and_counted(backend: Backend) -> None:
    async with backend.open(embeddings={"provider": "hashing", "dimensions": 32}) as memory:
        ids = []
        for i, text in enumerate(["parse the yaml config", "resize the thumbnail images"]):
            eid = await memory.start_episode(text, CTX, TaskType.CODE_GENERATION)
            await memory.log_step(eid, step(1, "python"))
            await memory.complete_episode(eid, SuccessOutcome(verdict=f"done {i}"))
            ids.append(eid)
        assert memory.vectors is not None
        status = await memory.vectors.status()
        assert (status.embedded, status.missing, status.other_identities) == (2, 0, 0)
        store = primary(memory.storage)
        rows = await store.embeddings_since(status.identity, 0, 10)
        assert [r[1] for r in rows] == ids  # in write order
        assert all(len(r[2]) == 32 * 4 for r in rows)
        assert await store.embeddings_since(status.identity, rows[-1][0], 10) == []
        results = await memory.retrieve_relevant_context(
            "parse the yaml config", limit=2, mode="vector"
        )
        assert results[0].episode.episode_id == ids[0]


async def test_an_embedding_row_never_gets_a_number_given_before(backend: Backend) -> None:
    """Vector indexes load the rows numbered above the last they read: a row written after
    the newest row was deleted (with its episode) or replaced gets a higher number than every
    row before it (SQLite's implicit rowid gave the deleted row's number again)."""
    async with backend.open(embeddings={"provider": "hashing", "dimensions": 32}) as memory:
        assert memory.vectors is not None
        ids = []
        for text in ["parse the yaml config", "resize the thumbnail images"]:
            eid = await memory.start_episode(text, CTX, TaskType.CODE_GENERATION)
            await memory.log_step(eid, step(1, "python"))
            await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
            ids.append(eid)
        assert await memory.wait_for_embeddings(30)
        store = primary(memory.storage)
        identity = memory.vectors.identity
        seen = await store.embeddings_since(identity, 0, 10)
        assert [r[1] for r in seen] == ids
        assert await store.delete_episode(ids[1])  # the newest row goes with its episode
        eid = await memory.start_episode("rotate the logs", CTX, TaskType.CODE_GENERATION)
        await memory.log_step(eid, step(1, "python"))
        await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
        assert await memory.wait_for_embeddings(30)
        after = await store.embeddings_since(identity, seen[-1][0], 10)
        assert [r[1] for r in after] == [eid]
        assert after[0][0] > seen[-1][0]
        # replacing a row (reindex) gives it a new number too
        record = (await memory.vectors.embed_records([await memory.get_episode(ids[0])]))[0]
        await store.store_embeddings([record])
        again = await store.embeddings_since(identity, after[0][0], 10)
        assert [r[1] for r in again] == [ids[0]]
        assert again[0][0] > after[0][0]


async def test_episodes_missing_a_vector_are_those_without_one_of_that_identity(
    backend: Backend,
) -> None:
    """The background worker's and the coverage's queries: completed episodes only, in
    completion order, up to the limit; an embedding of another identity does not count (on
    SQLite the search reads indexes only, ``Dialect.vectors_in_every_row``, and the coverage
    the counts the store keeps, ``Dialect.counted_rows``)."""
    async with backend.open(embeddings={"provider": "hashing", "dimensions": 32}) as memory:
        assert memory.vectors is not None
        assert await memory.wait_for_embeddings(30)
        ids = []
        for text in ["parse the yaml config", "resize the thumbnails", "rotate the logs"]:
            eid = await memory.start_episode(text, CTX, TaskType.CODE_GENERATION)
            await memory.log_step(eid, step(1, "python"))
            await memory.complete_episode(eid, SuccessOutcome(verdict="done"))
            ids.append(eid)
        await memory.start_episode("still open", CTX, TaskType.CODE_GENERATION)
        assert await memory.wait_for_embeddings(30)
        store = primary(memory.storage)
        mine = memory.vectors.identity
        assert await store.episodes_missing_embedding(mine, 10) == []
        other = "another-model:v1:32"
        missing = await store.episodes_missing_embedding(other, 10)
        assert [e.episode_id for e in missing] == ids
        assert [e.episode_id for e in await store.episodes_missing_embedding(other, 2)] == ids[:2]
        status = await store.embedding_status(other)
        assert (status.embedded, status.missing, status.other_identities) == (0, 3, 3)
        status = await store.embedding_status(mine)
        assert (status.embedded, status.missing, status.other_identities) == (3, 0, 0)


async def test_data_version_grows_with_every_write(backend: Backend) -> None:
    async with backend.open() as memory:
        store = primary(memory.storage)
        v0 = await store.data_version()
        eid = await memory.start_episode("count the writes", CTX, TaskType.ANALYSIS)
        v1 = await store.data_version()
        await memory.log_step(eid, step(1, "wc"))
        await memory.complete_episode(eid, SuccessOutcome(verdict="counted"))
        v2 = await store.data_version()
        assert v0 < v1 < v2


async def test_stats_health_and_delete(backend: Backend) -> None:
    async with backend.open() as memory:
        eid = await memory.start_episode("measure the store", CTX, TaskType.ANALYSIS)
        await memory.log_step(eid, step(1, "du"))
        await memory.complete_episode(eid, SuccessOutcome(verdict="measured"))
        stats = await memory.stats()
        assert (stats.episodes, stats.completed, stats.steps) == (1, 1, 1)
        assert stats.outcomes == {"success": 1}
        assert stats.storage_bytes > 0
        health = await memory.health()
        report = health["primary_storage"]
        assert report.healthy, report.details
        if backend.engine == "postgres":
            assert report.details["vector_backend"] in ("bytea", "pgvector")
            assert report.details["schema"]
        await memory.delete_episode(eid)
        assert await memory.count_episodes() == 0
        assert await primary(memory.storage).get_episode(eid) is None
        assert (await memory.stats()).steps == 0
