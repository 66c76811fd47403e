"""The embedded store's candidate log (migration 10) and the retrieval rows kept with it: rows
stay across writes that do not change them, a change by this or another connection drops the
row it names, rows read before such a drop are not kept, and every indexed episode's row is
read in the background after a search. All on a real SQLite file; "another process" is a
second connection to it."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apsw
import pytest

from self_learning_memory import EpisodeFilters, RetrievalMode, SelfLearningMemory
from self_learning_memory.embeddings.hashing import HashingEmbedding
from self_learning_memory.errors import StorageUnavailableError
from self_learning_memory.model.episode import ExecutionStep, SuccessResult
from self_learning_memory.model.records import EpisodeCandidate
from self_learning_memory.retrieval import ranking
from self_learning_memory.retrieval.hybrid import HybridPipeline
from self_learning_memory.storage.capabilities import CandidateLog
from self_learning_memory.storage.sqlite import CANDIDATE_LOG_READ

from .test_hybrid import CTX, TASKS, record

pytestmark = pytest.mark.integration

MORE_TASKS = [
    "Rotate the signing keys of the orders service",
    "Cache the invoice totals in redis",
    "Paginate the customer search results",
    "Retry the webhook delivery with backoff",
]
QUERY = "pagination for the GET /orders endpoint"
PLAIN = "add pagination to the orders listing"


def open_memory(tmp_path: Path) -> SelfLearningMemory:
    return SelfLearningMemory.open(tmp_path / "data", embedder=HashingEmbedding(64))


def the_log(memory: SelfLearningMemory) -> CandidateLog:
    log = memory.storage.capabilities.candidate_log
    assert log is not None
    return log


@contextmanager
def another_process(tmp_path: Path) -> Iterator[apsw.Connection]:
    """A second connection to the store's file: what another process writes through."""
    conn = apsw.Connection(str(tmp_path / "data" / "memory.db"))
    conn.set_busy_timeout(10_000)
    try:
        yield conn
    finally:
        conn.close()


def set_uses(conn: apsw.Connection, episode_id: uuid.UUID, uses: int) -> None:
    with conn:
        conn.execute(
            "INSERT INTO episode_usage (episode_id, uses, success, updated_at) "
            "VALUES (?, ?, ?, 0) ON CONFLICT (episode_id) DO UPDATE SET uses = excluded.uses, "
            "success = excluded.success",
            (str(episode_id), uses, float(uses)),
        )


async def ids_by_task(memory: SelfLearningMemory) -> dict[str, uuid.UUID]:
    return {e.task_description: e.episode_id for e in await memory.list_episodes(limit=100)}


class CountedRows:
    """Counts the ids the store is asked candidate rows for (wraps the store's method)."""

    def __init__(self, memory: SelfLearningMemory) -> None:
        self.asked: list[uuid.UUID] = []
        self._rows = memory.storage.candidates_by_ids

        async def counted(ids: list[uuid.UUID], filters: EpisodeFilters) -> Any:
            self.asked += ids
            return await self._rows(ids, filters)

        memory.storage.candidates_by_ids = counted  # type: ignore[method-assign]


async def test_the_log_names_inserts_deletes_changes_of_completed_episodes_and_usage(
    tmp_path: Path,
) -> None:
    async with open_memory(tmp_path) as memory:
        log = the_log(memory)
        start, changed = await log.changed_since(None)
        assert changed is None  # no position: the log cannot tell
        assert await log.changed_since(start) == (start, [])
        await record(memory, TASKS[:1])
        assert await memory.wait_for_learning(30)  # the learner's writes come in between
        (done,) = (await ids_by_task(memory)).values()
        position, changed = await log.changed_since(start)
        assert changed == [done]  # its insert, and the learner's update once it was completed;
        # its step and its completion updated an episode still running, which no reader holds a
        # candidate row of
        running = await memory.start_episode("a task still running", CTX, "code_generation")
        step = ExecutionStep(step_number=1, tool="editor", action="edit", result=SuccessResult())
        await memory.log_step(running, step)
        await memory.flush_steps(running)
        position, changed = await log.changed_since(position)
        assert changed == [running]  # its insert only
        with another_process(tmp_path) as conn:
            set_uses(conn, done, 1)
            with conn:
                conn.execute(
                    "UPDATE episodes SET learning_status = 'failed' WHERE episode_id = ?",
                    (str(done),),
                )
                conn.execute(
                    "UPDATE episodes SET updated_at = 1 WHERE episode_id = ?", (str(running),)
                )
        position, changed = await log.changed_since(position)
        assert changed == [done]  # once, though logged twice; the running one not at all
        await memory.delete_episode(done)
        newest, changed = await log.changed_since(position)
        assert changed == [done]  # the episode, and its usage row with it
        assert await log.changed_since(newest + 1) == (newest, None)  # past the newest


async def test_the_log_keeps_its_newest_entries_and_cannot_tell_past_its_oldest(
    tmp_path: Path,
) -> None:
    async with open_memory(tmp_path) as memory:
        log = the_log(memory)
        with another_process(tmp_path) as conn:
            with conn:
                conn.execute(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                    "WHERE i < 70000) INSERT INTO candidate_changes (episode_id) "
                    "SELECT printf('%08x-0000-4000-8000-%012x', i, i) FROM n"
                )
            oldest, count = conn.execute(
                "SELECT min(seq), count(*) FROM candidate_changes"
            ).fetchone()
        # dropped at every 1,024th entry, the newest 65,536 kept: the last drop was at 69,632
        assert (oldest, count) == (69_632 - 65_536 + 1, 70_000 - 4_096)
        newest, changed = await log.changed_since(70_000 - 3)
        assert newest == 70_000
        assert changed == [
            uuid.UUID(f"{i:08x}-0000-4000-8000-{i:012x}") for i in (69_998, 69_999, 70_000)
        ]
        assert (await log.changed_since(oldest - 2))[1] is None  # entries it dropped
        assert (await log.changed_since(0))[1] is None
        with another_process(tmp_path) as conn, conn:  # entries gone below the newest 100
            conn.execute("DELETE FROM candidate_changes WHERE seq <= ?", (newest - 100,))
        assert (await log.changed_since(newest - 101))[1] is None
        assert len((await log.changed_since(newest - 100))[1] or []) == 100
        with another_process(tmp_path) as conn, conn:
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                f"WHERE i < {CANDIDATE_LOG_READ + 1}) INSERT INTO candidate_changes "
                "(episode_id) SELECT printf('%08x-0000-4000-8000-%012x', i, i) FROM n"
            )
        newest = (await log.changed_since(None))[0]
        read = (await log.changed_since(newest - CANDIDATE_LOG_READ))[1]
        assert read is not None
        assert len(read) == CANDIDATE_LOG_READ
        assert (await log.changed_since(newest - CANDIDATE_LOG_READ - 1))[1] is None  # too many


async def test_rows_stay_across_writes_and_a_change_drops_the_row_it_names(
    tmp_path: Path,
) -> None:
    async with open_memory(tmp_path) as memory:
        await record(memory, TASKS + MORE_TASKS)
        assert await memory.wait_for_embeddings(30)
        assert await memory.wait_for_learning(30)  # its writes would drop the rows too
        ids = await ids_by_task(memory)
        await memory.retrieve_relevant_context(QUERY, CTX, 3)
        assert await memory.retrieval_settled()
        rows = CountedRows(memory)
        # a write that changes no candidate row (a new episode): no row is read again
        await record(memory, ["Document the deployment checklist"])
        assert await memory.wait_for_embeddings(30)
        assert await memory.wait_for_learning(30)
        new = (await ids_by_task(memory))["Document the deployment checklist"]
        first = await memory.retrieve_relevant_context(QUERY, CTX, 8)
        assert await memory.retrieval_settled()
        assert set(rows.asked) <= {new}
        assert all(r.components.uses == 0 for r in first)
        # another process gives the best match uses: its row is read again, and shows them
        best = first[0].episode.episode_id
        assert best == ids[TASKS[0]]
        with another_process(tmp_path) as conn:
            set_uses(conn, best, 3)
        rows.asked.clear()
        again = await memory.retrieve_relevant_context(QUERY + " again", CTX, 8)
        assert rows.asked == [best]
        assert {r.episode.episode_id: r.components.uses for r in again}[best] == 3
        with another_process(tmp_path) as conn:
            set_uses(conn, best, 4)  # its counters changed again (an update this time)
        plain = await memory.retrieve_relevant_context(PLAIN, CTX, 8)  # vector rows alone
        assert "lexical:skipped" in plain[0].provenance
        assert {r.episode.episode_id: r.components.uses for r in plain}[best] == 4
        # and this process's own change: the memory's delete
        rows.asked.clear()
        await memory.delete_episode(ids[TASKS[1]])
        after = await memory.retrieve_relevant_context(QUERY + " once more", CTX, 8)
        assert ids[TASKS[1]] not in {r.episode.episode_id for r in after}
        # its row was dropped, and read once more while the index still held its vector: gone
        assert rows.asked == [ids[TASKS[1]]]
        assert await memory.retrieval_settled()
        rows.asked.clear()
        await memory.retrieve_relevant_context(QUERY + " at last", CTX, 8)
        assert rows.asked == []


async def test_without_a_log_every_row_is_read_again_after_a_write(tmp_path: Path) -> None:
    """The pipeline with no log (PostgreSQL's case): rows are kept per store version only."""
    async with open_memory(tmp_path) as memory:
        await record(memory, TASKS + MORE_TASKS)
        assert await memory.wait_for_embeddings(30)
        storage = memory.storage
        pipeline = HybridPipeline(lambda: storage, lambda: memory.config.retrieval, memory.vectors)
        filters = EpisodeFilters()

        async def ranked(query: str) -> None:
            version = await storage.data_version()
            await pipeline.rank(query, CTX, 3, None, filters, RetrievalMode.HYBRID, version)

        await ranked(QUERY)
        rows = CountedRows(memory)
        await ranked(QUERY + " again")
        assert rows.asked == []  # the same version: kept
        await record(memory, ["Document the deployment checklist"])
        await ranked(QUERY + " once more")
        assert len(rows.asked) >= len(TASKS + MORE_TASKS)  # every hit read again
        await pipeline.settled()  # nothing warms without a log


async def test_rows_read_before_a_change_is_seen_are_not_kept(tmp_path: Path) -> None:
    """A search's rows read before another process's write, delivered after a later search
    dropped the row that write changed, must not be kept in its place. (Plain-language
    queries: they skip the full-text search, whose fresh rows would hide a stale kept one.)"""
    async with open_memory(tmp_path) as memory:
        await record(memory, TASKS + MORE_TASKS)
        assert await memory.wait_for_embeddings(30)
        assert await memory.wait_for_learning(30)  # its writes would drop the rows too
        best = (await ids_by_task(memory))[TASKS[0]]
        storage = memory.storage
        rows = storage.candidates_by_ids
        read, release = asyncio.Event(), asyncio.Event()
        held = True

        async def held_back(ids: list[uuid.UUID], filters: EpisodeFilters) -> Any:
            nonlocal held
            found = await rows(ids, filters)
            if held:  # the first read only: read now, delivered later
                held = False
                read.set()
                await release.wait()
            return found

        storage.candidates_by_ids = held_back  # type: ignore[method-assign]
        first = asyncio.ensure_future(memory.retrieve_relevant_context(PLAIN, CTX, 8))
        await asyncio.wait_for(read.wait(), 30)  # its rows are read, uses 0
        with another_process(tmp_path) as conn:
            set_uses(conn, best, 5)
        second = await memory.retrieve_relevant_context(PLAIN + " again", CTX, 8)
        assert "lexical:skipped" in second[0].provenance
        assert {r.episode.episode_id: r.components.uses for r in second}[best] == 5
        release.set()
        await first
        storage.candidates_by_ids = rows  # type: ignore[method-assign]
        third = await memory.retrieve_relevant_context(PLAIN + " once more", CTX, 8)
        assert "lexical:skipped" in third[0].provenance
        assert {r.episode.episode_id: r.components.uses for r in third}[best] == 5


async def test_every_indexed_row_is_read_after_a_search_and_a_later_search_reads_none(
    tmp_path: Path,
) -> None:
    async with open_memory(tmp_path) as memory:
        many = [f"{task} (variant {n})" for n in range(15) for task in TASKS + MORE_TASKS]
        await record(memory, many)  # 105: more than a search reads (40 and its expansion's)
        assert await memory.wait_for_embeddings(30)
        assert await memory.wait_for_learning(30)
        rows = CountedRows(memory)
        await memory.retrieve_relevant_context(QUERY, CTX, 1)
        assert memory.vectors is not None
        assert await memory.retrieval_settled()
        assert set(rows.asked) == set(memory.vectors.index.ids())
        rows.asked.clear()
        for query in ("signing keys rotation", "webhook retries", "invoice totals cache"):
            await memory.retrieve_relevant_context(query, CTX, 3)
        assert rows.asked == []


async def test_the_rows_read_ahead_have_their_ranking_word_sets_computed_too(
    tmp_path: Path,
) -> None:
    async with open_memory(tmp_path) as memory:
        many = [f"{task} (variant {n})" for n in range(15) for task in TASKS + MORE_TASKS]
        await record(memory, many)
        assert await memory.wait_for_embeddings(30)
        assert await memory.wait_for_learning(30)
        ranking._doc_tokens.cache_clear()
        await memory.retrieve_relevant_context(QUERY, CTX, 1)
        assert await memory.retrieval_settled()
        kept = list(memory._retriever.pipeline._candidates.values())
        assert len(kept) == len(many)
        misses = ranking._doc_tokens.cache_info().misses
        for row in kept:  # every episode's word set is there already
            ranking._doc_tokens(row.task_description, row.tools)
        for query in ("signing keys rotation", "webhook retries", "invoice totals cache"):
            await memory.retrieve_relevant_context(query, CTX, 3)
        assert ranking._doc_tokens.cache_info().misses == misses


class UnreadableLog:
    owner = object()

    async def changed_since(self, position: int | None) -> tuple[int, list[uuid.UUID] | None]:
        raise StorageUnavailableError("The store is unreachable.")


async def test_a_log_that_cannot_be_read_drops_every_row(tmp_path: Path) -> None:
    async with open_memory(tmp_path) as memory:
        await record(memory, TASKS + MORE_TASKS)
        assert await memory.wait_for_embeddings(30)
        storage = memory.storage
        pipeline = HybridPipeline(
            lambda: storage, lambda: memory.config.retrieval, memory.vectors, UnreadableLog
        )
        filters = EpisodeFilters()

        async def ranked(query: str) -> list[EpisodeCandidate]:
            version = await storage.data_version()
            found, _, _ = await pipeline.rank(
                query, CTX, 3, None, filters, RetrievalMode.HYBRID, version
            )
            return [r.candidate for r in found]

        assert await ranked(QUERY)
        await record(memory, ["Document the deployment checklist"])
        rows = CountedRows(memory)
        assert await ranked(QUERY + " again")
        assert len(rows.asked) >= len(TASKS + MORE_TASKS)  # all dropped, all read again


async def test_usage_counters_asked_apart_are_kept_until_the_log_names_their_episode(
    tmp_path: Path,
) -> None:
    """Rows without their usage counters (pgvector's nearest rows come so): the counters are
    asked for once and kept, as the rows are, until the log names the episode."""
    async with open_memory(tmp_path) as memory:
        await record(memory, TASKS + MORE_TASKS)
        assert await memory.wait_for_embeddings(30)
        assert await memory.wait_for_learning(30)
        storage = memory.storage
        asked: list[uuid.UUID] = []
        sources = {
            name: getattr(storage, name)
            for name in ("candidates_by_ids", "lexical_candidates", "context_candidates")
        }
        usage_of = storage.episode_usage

        def without_usage(read: Any) -> Any:
            async def rows(*args: Any) -> list[EpisodeCandidate]:
                found = await read(*args)
                return [dataclasses.replace(c, usage=None, usage_known=False) for c in found]

            return rows

        async def counted(ids: list[uuid.UUID]) -> Any:
            asked.extend(ids)
            return await usage_of(ids)

        for name, read in sources.items():
            setattr(storage, name, without_usage(read))
        storage.episode_usage = counted  # type: ignore[method-assign]
        first = await memory.retrieve_relevant_context(QUERY, CTX, 8)
        assert await memory.retrieval_settled()
        assert asked  # asked apart, as the rows did not carry them
        assert all(r.components.uses == 0 for r in first)
        asked.clear()
        await memory.retrieve_relevant_context(QUERY + " again", CTX, 8)
        assert asked == []  # kept
        best = first[0].episode.episode_id
        with another_process(tmp_path) as conn:
            set_uses(conn, best, 3)
        again = await memory.retrieve_relevant_context(QUERY + " once more", CTX, 8)
        assert asked == [best]  # the one the log named
        assert {r.episode.episode_id: r.components.uses for r in again}[best] == 3
