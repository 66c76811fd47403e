"""A batch of writes (``storage/sql/batch_sql.py``) reads the pattern and heuristic rows its
completions merge into once, up front, and merges into those rows in memory: what it stores
must be what the same completions store applied one at a time. Real stores: SQLite and
PostgreSQL (the ``backend`` fixture)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from self_learning_memory import (
    Episode,
    ErrorResult,
    ExecutionStep,
    FailureOutcome,
    SuccessOutcome,
    SuccessResult,
    TaskContext,
    TaskType,
)
from self_learning_memory.config import ExtractionConfig
from self_learning_memory.learning.learner import learn
from self_learning_memory.model.records import CompletionRecord
from self_learning_memory.storage.batch import BatchedWrite
from self_learning_memory.storage.sql.store import SQLStore
from support.polling import poll_until

from .support import Backend, postgres_schema

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
CTX = TaskContext(domain="web-api", language="python")


def _step(n: int, tool: str, action: str, error: str | None = None) -> ExecutionStep:
    result = SuccessResult(output="ok") if error is None else ErrorResult(message=error)
    return ExecutionStep(step_number=n, tool=tool, action=action, result=result, timestamp=T0)


STEPS = [
    _step(1, "schema", "check the request schema"),
    _step(2, "pytest", "run the tests"),
    _step(3, "pip", "install x", error="No module named 'x'"),
    _step(4, "pip", "install --user x"),
]


def _record(i: int, *, success: bool) -> CompletionRecord:
    """A learned completion whose patterns and heuristics every other one here shares."""
    outcome = SuccessOutcome(verdict=f"done {i}") if success else FailureOutcome(reason=f"no {i}")
    done = Episode(
        task_type=TaskType.CODE_GENERATION,
        task_description=f"Add a health endpoint {i}",
        context=CTX,
        start_time=T0,
        end_time=T0 + timedelta(seconds=1),
        steps=STEPS,
        outcome=outcome,
    )
    return learn(done, ExtractionConfig())


def _started(record: CompletionRecord) -> Episode:
    return record.episode.model_copy(
        update={
            "steps": [],
            "end_time": None,
            "outcome": None,
            "reward": None,
            "reflection": None,
        }
    )


@asynccontextmanager
async def _two_stores(
    backend: Backend, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[SQLStore, SQLStore]]:
    """Two empty stores of the backend's kind: one for the batch, one for the reference."""
    async with AsyncExitStack() as stack:
        if backend.is_sqlite:
            from self_learning_memory.storage.sqlite import SQLiteStorage

            stores: list[SQLStore] = [
                SQLiteStorage(tmp_path / "batch.db"),
                SQLiteStorage(tmp_path / "one_at_a_time.db"),
            ]
        else:
            from self_learning_memory.storage.postgres import PostgresStorage

            server = (
                request.getfixturevalue("pgvector_server_dsn")
                if backend.kind == "postgres18"
                else None
            )
            assert backend.url is not None
            other = stack.enter_context(postgres_schema(server))
            stores = [
                PostgresStorage(backend.url, listen=False),
                PostgresStorage(other, listen=False),
            ]
        for store in stores:
            await stack.enter_async_context(store)
        yield stores[0], stores[1]


def _snapshot(store: SQLStore) -> Any:
    """What merges decide, as the store's own connection reads it (times, which are the moment
    of each write, left out)."""
    return store._read(_snapshot_program)


def _snapshot_program() -> Any:
    from self_learning_memory.storage.sql.program import rows

    patterns = yield rows(
        "SELECT pattern_id, pattern_type, similarity_key, pattern_data, success_rate, "
        "occurrence_count, context_domain, context_language, retrieval_count, "
        "application_count, success_count, failure_count, effectiveness "
        "FROM patterns ORDER BY pattern_id"
    )
    heuristics = yield rows(
        "SELECT heuristic_id, similarity_key, condition_text, action_text, domain, confidence, "
        "sample_size, evidence FROM heuristics ORDER BY heuristic_id"
    )
    links = yield rows(
        "SELECT episode_id, pattern_id FROM episode_patterns ORDER BY episode_id, pattern_id"
    )
    episodes = yield rows(
        "SELECT episode_id, patterns, heuristics, learning_status, reward_total, step_count "
        "FROM episodes ORDER BY episode_id"
    )
    volatile = ("created_at", "updated_at")
    return {
        "patterns": [
            (
                *r[:3],
                {k: v for k, v in json.loads(r[3]).items() if k not in volatile},
                *r[4:12],
                pytest.approx(r[12]),  # recency-weighted: the moment of the write counts
            )
            for r in patterns
        ],
        "heuristics": [tuple(r) for r in heuristics],
        "links": [tuple(r) for r in links],
        "episodes": [tuple(r) for r in episodes],
    }


@pytest.mark.parametrize("stored_first", [True, False], ids=["rows-stored", "rows-new"])
async def test_a_batch_merges_as_completions_one_at_a_time_do(
    backend: Backend, request: pytest.FixtureRequest, tmp_path: Path, stored_first: bool
) -> None:
    """Two completions of one batch merge into the same patterns and heuristics (rows already
    stored, or created by the batch's first completion): the rows equal those of the same
    completions applied one at a time."""
    first = _record(0, success=True)
    batched = [_record(1, success=False), _record(2, success=True)]
    keys = {p.similarity_key() for p in first.patterns}
    assert len(first.patterns) >= 2  # several rows, locked in key order
    assert len(first.heuristics) >= 2
    for r in batched:  # the same rows: each merge meets the ones before it
        assert {p.similarity_key() for p in r.patterns} == keys
    async with _two_stores(backend, request, tmp_path) as (batch, one_at_a_time):
        # the batch's first episode is stored before it, its second created in it
        for store in (batch, one_at_a_time):
            for r in [first, batched[0]] if stored_first else batched[:1]:
                await store.create_episode(_started(r))
            if stored_first:
                await store.append_steps(first.episode.episode_id, STEPS)
                await store.commit_completion(first)
        await one_at_a_time.create_episode(_started(batched[1]))
        for r in batched:
            await one_at_a_time.append_steps(r.episode.episode_id, STEPS)
            await one_at_a_time.commit_completion(r)
        await batch.write_batch(
            [
                BatchedWrite("create_episode", episode=_started(batched[1])),
                *(
                    BatchedWrite("append_steps", episode_id=r.episode.episode_id, steps=STEPS)
                    for r in batched
                ),
                *(BatchedWrite("commit_completion", record=r) for r in batched),
            ]
        )

        expected = await _snapshot(one_at_a_time)
        got = await _snapshot(batch)
        merged = 3 if stored_first else 2
        assert [r[5] for r in expected["patterns"]] == [merged] * len(keys)  # occurrences
        assert {r[6] for r in expected["heuristics"]} == {merged}  # sample sizes
        assert got == expected
        assert len(got["links"]) == merged * len(keys)


def _counting(program: Any, reads: list[str]) -> Any:
    """``program`` passed through, the statements whose answer it reads noted in ``reads``."""
    try:
        op = next(program)
        while True:
            if op.kind in ("one", "all"):
                reads.append(op.sql)
            op = program.send((yield op))
    except StopIteration as done:
        return done.value


async def test_a_batch_reads_its_rows_once_whatever_its_number_of_completions(
    backend: Backend, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Statements whose answer the batch waits for: the episodes' states, the patterns, the
    heuristics and the retrieval feedback to count, once each; none per completion once the
    rows exist (one at a time: a state read and one locked read per pattern and per
    heuristic)."""
    from self_learning_memory.storage.sql import batch_sql

    first, *batched = [_record(i, success=i % 2 == 0) for i in range(4)]
    per_completion = 1 + len(first.patterns) + len(first.heuristics)
    async with _two_stores(backend, request, tmp_path) as (store, _):
        for r in [first, *batched]:
            await store.create_episode(_started(r))
            await store.append_steps(r.episode.episode_id, STEPS)
        await store.commit_completion(first)  # the aggregate rows exist
        writes = [BatchedWrite("commit_completion", record=r) for r in batched]
        reads: list[str] = []
        await store._write(
            lambda: _counting(
                batch_sql.write_batch(store.dialect, store.search, store._announce, writes),
                reads,
            )
        )
        assert [sql.split(" FROM ")[1].split()[0] for sql in reads] == [
            "episodes",
            "patterns",
            "heuristics",
            "retrieval_uses",
        ]
        # one at a time: a state read and a locked read per pattern and heuristic, each
        assert per_completion * len(batched) == 3 * (1 + 4 + 2)
        again: list[str] = []
        await store._write(
            lambda: _counting(
                batch_sql.write_batch(store.dialect, store.search, store._announce, writes),
                again,
            )
        )
        assert len(again) == 4  # applied again: every completion skipped, the same reads
        stored = await store.get_pattern(first.patterns[0].id)
        assert stored is not None
        assert stored[0].occurrence_count == 1 + len(batched)


def _noting(program: Any, statements: list[str]) -> Any:
    """``program`` passed through, every statement it sends noted in ``statements``."""
    try:
        op = next(program)
        while True:
            statements.append(op.sql)
            op = program.send((yield op))
    except StopIteration as done:
        return done.value


async def test_a_batch_updates_each_merged_row_and_step_count_once(
    backend: Backend, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Three episodes (two step appends each) completed in one batch that merges into the
    same patterns and heuristics, with a pattern-use count between the second and the third
    completion: each merged row is updated once before the count and once after it (its
    final state), each episode's step count once (with its completion), and the stored rows
    equal those of the same writes applied one at a time."""
    from self_learning_memory.storage.sql import batch_sql

    first, *batched = [_record(i, success=i % 2 == 0) for i in range(4)]
    async with _two_stores(backend, request, tmp_path) as (store, reference):
        for target in (store, reference):
            await target.create_episode(_started(first))
            await target.append_steps(first.episode.episode_id, STEPS)
            await target.commit_completion(first)  # the aggregate rows exist
            for r in batched:
                await target.create_episode(_started(r))
        used = first.patterns[0].id
        writes: list[BatchedWrite] = []
        for n, r in enumerate(batched):
            eid = r.episode.episode_id
            writes += [
                BatchedWrite("append_steps", episode_id=eid, steps=STEPS[:2]),
                BatchedWrite("append_steps", episode_id=eid, steps=STEPS[2:]),
                BatchedWrite("commit_completion", record=r),
            ]
            if n == 1:
                writes.append(
                    BatchedWrite(
                        "record_pattern_use", pattern_ids=[used], applied=True, success=True
                    )
                )
        for r in batched:  # the reference: one at a time
            eid = r.episode.episode_id
            await reference.append_steps(eid, STEPS[:2])
            await reference.append_steps(eid, STEPS[2:])
            await reference.commit_completion(r)
            if r is batched[1]:
                await reference.record_pattern_use([used], applied=True, success=True)
        statements: list[str] = []
        await store._write(
            lambda: _noting(
                batch_sql.write_batch(store.dialect, store.search, store._announce, writes),
                statements,
            )
        )

        def updates(table: str, column: str) -> int:
            return sum(s.startswith(f"UPDATE {table} SET {column}") for s in statements)

        rows = len(first.patterns) + len(first.heuristics)
        merges = len(batched) * rows
        assert merges == 3 * rows  # one at a time: an UPDATE per merge
        assert updates("patterns", "pattern_data") == 2 * len(first.patterns)
        assert updates("heuristics", "confidence") == 2 * len(first.heuristics)
        # 6 appends: each episode's count written once, by its completion's UPDATE
        assert updates("episodes", "step_count") == 0
        completions = [s for s in statements if s.startswith("UPDATE episodes SET end_time")]
        assert len(completions) == len(batched)
        assert all("step_count = ?" in s for s in completions)
        assert updates("patterns", "retrieval_count") == 1  # the pattern-use count
        assert await _snapshot(store) == await _snapshot(reference)
        stored, expected = await store.get_pattern(used), await reference.get_pattern(used)
        assert stored is not None
        assert expected is not None
        assert stored[0].occurrence_count == 1 + len(batched)
        assert stored[1].application_count == expected[1].application_count >= 1


async def test_a_batched_completion_counts_the_retrieval_feedback_of_its_episode(
    backend: Backend, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The links read up front are counted by the batch's completion, once (a batch applied
    again counts nothing more), as a completion on its own counts them."""
    used, *tasks = [_record(i, success=i != 2) for i in range(3)]
    async with _two_stores(backend, request, tmp_path) as (store, _):
        for r in [used, *tasks]:
            await store.create_episode(_started(r))
            await store.append_steps(r.episode.episode_id, STEPS)
        await store.commit_completion(used)
        for r in tasks:
            await store.record_retrieval_use(
                r.episode.episode_id, [used.episode.episode_id], [], None
            )
        writes = [BatchedWrite("commit_completion", record=r) for r in tasks]
        await store.write_batch(writes)
        await store.write_batch(writes)
        usage = (await store.episode_usage([used.episode.episode_id]))[used.episode.episode_id]
        assert (usage.uses, usage.success) == (2, 1.0)  # one success, one failure


@pytest.mark.postgres
@pytest.mark.integration
async def test_a_batchs_changes_are_announced_to_other_processes(pg_url: str) -> None:
    """A PostgreSQL batch sends its episode announcements together at its end: another
    process's listener still hears each change of each episode, in order."""
    from self_learning_memory.storage.postgres import PostgresStorage
    from self_learning_memory.storage.postgres.notify import EpisodeChange

    heard: list[EpisodeChange] = []

    async def note(change: EpisodeChange) -> None:
        heard.append(change)

    records = [_record(i, success=True) for i in range(2)]
    listening = PostgresStorage(pg_url)
    listening.subscribe_episode_changes(note)
    async with listening, PostgresStorage(pg_url, listen=False) as writer:
        assert listening.listener is not None
        await asyncio.wait_for(listening.listener.connected.wait(), 10)
        await writer.write_batch(
            [
                w
                for r in records
                for w in (
                    BatchedWrite("create_episode", episode=_started(r)),
                    BatchedWrite("append_steps", episode_id=r.episode.episode_id, steps=STEPS),
                    BatchedWrite("commit_completion", record=r),
                )
            ]
        )
        expected = [(op, r.episode.episode_id) for r in records for op in ("steps", "completed")]

        async def all_heard() -> bool:
            return len(heard) >= len(expected)

        await poll_until(all_heard, timeout=10, message="the batch's changes were not announced")
        assert [(c.op, c.episode_id) for c in heard] == expected
