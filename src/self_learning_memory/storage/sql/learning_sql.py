"""Learning programs: the completion transaction, pattern and heuristic aggregation, usage
bookkeeping and decay.

A completion (episode, patterns, heuristics, links, full-text entry, vector, queue job) is one
program run in one write transaction: written entirely or not at all. Aggregation never loses
an update: SQLite serialises whole write transactions, and on PostgreSQL every aggregate row is
read ``FOR UPDATE`` (or created with ``INSERT ... ON CONFLICT DO NOTHING`` and then locked), in
similarity-key order so two completions cannot deadlock on each other's rows. What a merge
changes is computed by :mod:`self_learning_memory.learning.merge`; these programs read the
aggregate and write the result.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from ...errors import InvalidStateError, NotFoundError
from ...model.episode import Episode, utc_now
from ...model.pattern import AnyPattern, Heuristic, context_of
from ...model.records import CompletionRecord, EmbeddingRecord, PatternMerge, SearchDocument
from ...model.usage import DECAY_INTERVAL_DAYS, PatternUsage, effectiveness, record_use
from ..codec import dump_json, pattern_from_json
from .dialect import Dialect
from .episodes import Announce
from .program import Op, Program, execute, many, one, rows
from .rows import HEURISTIC_COLUMNS, USAGE_COLUMNS, heuristic_from_row, usage_from_row

__all__ = [
    "FullText",
    "commit_completion",
    "decay",
    "record_pattern_use",
    "store_embeddings",
]

T = TypeVar("T")


class FullText(Protocol):
    """How a completion writes the episode's full-text entry."""

    key_column: str  # the episode column that identifies its entry

    def completion_set(self, doc: SearchDocument) -> tuple[str, tuple[Any, ...]]:
        """Extra ``, column = ...`` assignments for the completion's episode UPDATE."""
        ...

    def completion_ops(self, key: Any, doc: SearchDocument) -> list[Op]:
        """Statements after the UPDATE (``key`` is the episode's ``key_column``)."""
        ...


def _in_lock_order(d: Dialect, items: Sequence[T], key: Callable[[T], str]) -> list[int]:
    """The order to visit ``items`` in: by key where rows are locked (no deadlocks)."""
    order = list(range(len(items)))
    return sorted(order, key=lambda i: key(items[i])) if d.row_locks else order


def _upsert_pattern(
    d: Dialect, pattern: AnyPattern, success: bool, now: datetime, merge: PatternMerge
) -> Program[str]:
    key = pattern.similarity_key()
    select = (
        f"SELECT pattern_id, pattern_data, {USAGE_COLUMNS} FROM patterns "
        f"WHERE similarity_key = ?{d.lock}"
    )
    row = yield one(select, (key,))
    if row is None:
        ctx = context_of(pattern)
        inserted = yield one(
            "INSERT INTO patterns (pattern_id, pattern_type, similarity_key, pattern_data, "
            "success_rate, occurrence_count, context_domain, context_language, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (similarity_key) DO NOTHING RETURNING pattern_id",
            (
                str(pattern.id),
                pattern.type,
                key,
                pattern.model_dump_json(),
                pattern.rate(),
                pattern.occurrence_count,
                ctx.domain,
                ctx.language,
                d.to_time(now),
                d.to_time(now),
            ),
        )
        if inserted is not None:
            return str(pattern.id)
        # Another transaction created it first (and has committed): merge into its row.
        row = yield one(select, (key,))
        if row is None:  # created and deleted again meanwhile: extremely unlikely
            raise InvalidStateError(f"Pattern {key!r} changed concurrently; complete it again.")
    stored = usage_from_row(row[2:], d)
    merged = merge(pattern_from_json(row[1]), stored, pattern, success=success, now=now)
    usage = merged.usage
    yield execute(
        "UPDATE patterns SET pattern_data = ?, success_rate = ?, occurrence_count = ?, "
        "application_count = ?, success_count = ?, failure_count = ?, last_applied = ?, "
        "effectiveness = ?, updated_at = ? WHERE pattern_id = ?",
        (
            merged.pattern.model_dump_json(),
            merged.pattern.rate(),
            merged.pattern.occurrence_count,
            usage.application_count,
            usage.success_count,
            usage.failure_count,
            d.to_time(now),
            usage.effectiveness_score,
            d.to_time(now),
            row[0],
        ),
    )
    return str(row[0])


def _upsert_heuristic(d: Dialect, heuristic: Heuristic, now: datetime) -> Program[str]:
    key = heuristic.similarity_key()
    select = f"SELECT {HEURISTIC_COLUMNS} FROM heuristics WHERE similarity_key = ?{d.lock}"
    row = yield one(select, (key,))
    if row is None:
        inserted = yield one(
            "INSERT INTO heuristics (heuristic_id, similarity_key, condition_text, action_text, "
            "domain, confidence, sample_size, evidence, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (similarity_key) DO NOTHING RETURNING heuristic_id",
            (
                str(heuristic.heuristic_id),
                key,
                heuristic.condition,
                heuristic.action,
                heuristic.domain,
                heuristic.confidence,
                heuristic.evidence.sample_size,
                heuristic.evidence.model_dump_json(),
                d.to_time(heuristic.created_at),
                d.to_time(now),
            ),
        )
        if inserted is not None:
            return str(heuristic.heuristic_id)
        row = yield one(select, (key,))
        if row is None:
            raise InvalidStateError(f"Heuristic {key!r} changed concurrently; complete it again.")
    stored = heuristic_from_row(row, d).merge(heuristic)
    yield execute(
        "UPDATE heuristics SET confidence = ?, sample_size = ?, evidence = ?, updated_at = ? "
        "WHERE heuristic_id = ?",
        (
            stored.confidence,
            stored.evidence.sample_size,
            stored.evidence.model_dump_json(),
            d.to_time(now),
            row[0],
        ),
    )
    return str(row[0])


def _check(record: CompletionRecord, state: tuple[Any, ...] | None) -> None:
    episode = record.episode
    eid = str(episode.episode_id)
    if state is None:
        raise NotFoundError("episode", eid)
    end_time, status, step_count = state
    if record.mode == "learned":
        if status != "queued":
            raise InvalidStateError(f"Episode {eid} has no pending learning job (it is {status}).")
    elif end_time is not None:
        raise InvalidStateError(
            f"Episode {eid} is already completed; it cannot be completed again."
        )
    if step_count != len(episode.steps):
        raise InvalidStateError(
            f"Episode {eid} gained steps while it was being completed ({step_count} stored, "
            f"{len(episode.steps)} seen); complete it again."
        )


def commit_completion(
    d: Dialect, search: FullText, announce: Announce, record: CompletionRecord
) -> Program[Episode]:
    episode = record.episode
    eid = str(episode.episode_id)
    row = yield one(
        f"SELECT {search.key_column}, end_time, learning_status, step_count FROM episodes "
        f"WHERE episode_id = ?{d.lock}",
        (eid,),
    )
    _check(record, None if row is None else row[1:])
    merge = record.merge
    if record.patterns and merge is None:
        raise ValueError("a completion record with patterns needs the learning's merge")
    now = utc_now()
    # where rows are locked: aggregate rows in key order (no deadlocks); ids in episode order
    pattern_ids: dict[int, str] = {}
    for i in _in_lock_order(d, record.patterns, lambda p: p.similarity_key()):
        assert merge is not None
        pattern_ids[i] = yield from _upsert_pattern(
            d, record.patterns[i], record.success, now, merge
        )
    heuristic_ids: dict[int, str] = {}
    for i in _in_lock_order(d, record.heuristics, lambda h: h.similarity_key()):
        heuristic_ids[i] = yield from _upsert_heuristic(d, record.heuristics[i], now)
    pids = [pattern_ids[i] for i in range(len(record.patterns))]
    hids = [heuristic_ids[i] for i in range(len(record.heuristics))]
    yield many(
        "INSERT INTO episode_patterns (episode_id, pattern_id) VALUES (?, ?) "
        "ON CONFLICT DO NOTHING",
        [(eid, pid) for pid in dict.fromkeys(pids)],
    )
    final = episode.model_copy(
        update={
            "patterns": [uuid.UUID(p) for p in pids],
            "heuristics": [uuid.UUID(h) for h in hids],
        }
    )
    assert final.end_time is not None
    assert final.outcome is not None
    tools = list(dict.fromkeys(s.tool for s in final.steps))
    search_set, search_args = search.completion_set(record.search)
    yield execute(
        "UPDATE episodes SET end_time = ?, outcome = ?, outcome_type = ?, reward = ?, "
        "reward_total = ?, reflection = ?, patterns = ?, heuristics = ?, metadata = ?, "
        f"tool_summary = ?, learning_status = ?, updated_at = ?{search_set} WHERE episode_id = ?",
        (
            d.to_time(final.end_time),
            final.outcome.model_dump_json(),
            final.outcome.type,
            None if final.reward is None else final.reward.model_dump_json(),
            None if final.reward is None else final.reward.total,
            None if final.reflection is None else final.reflection.model_dump_json(),
            dump_json([str(p) for p in final.patterns]),
            dump_json([str(h) for h in final.heuristics]),
            dump_json(final.metadata),
            dump_json(tools),
            "queued" if record.mode == "queued" else "done",
            d.to_time(now),
            *search_args,
            eid,
        ),
    )
    for op in search.completion_ops(row[0], record.search):
        yield op
    if record.embedding is not None:
        for op in d.store_embedding(eid, record.embedding, now):
            yield op
    if record.mode == "queued":
        yield execute(
            "INSERT INTO learning_jobs (episode_id, enqueued_at) VALUES (?, ?)",
            (eid, d.to_time(now)),
        )
    elif record.mode == "learned":
        yield execute("DELETE FROM learning_jobs WHERE episode_id = ?", (eid,))
    for op in announce("completed", eid):
        yield op
    return final


def store_embeddings(
    d: Dialect, embeddings: list[tuple[uuid.UUID, EmbeddingRecord]]
) -> Program[None]:
    now = utc_now()
    for episode_id, record in embeddings:
        yield from d.store_embedding(str(episode_id), record, now)


def record_pattern_use(
    d: Dialect, pattern_ids: list[uuid.UUID], *, applied: bool, success: bool
) -> Program[None]:
    now = utc_now()
    ids = sorted({str(p) for p in pattern_ids}) if d.row_locks else [str(p) for p in pattern_ids]
    for pid in ids:
        row = yield one(
            f"SELECT {USAGE_COLUMNS} FROM patterns WHERE pattern_id = ?{d.lock}", (pid,)
        )
        if row is None:
            continue
        usage = record_use(usage_from_row(row, d), applied=applied, success=success, now=now)
        yield execute(
            "UPDATE patterns SET retrieval_count = ?, application_count = ?, success_count = ?, "
            "failure_count = ?, last_retrieved = ?, last_applied = ?, effectiveness = ? "
            "WHERE pattern_id = ?",
            (
                usage.retrieval_count,
                usage.application_count,
                usage.success_count,
                usage.failure_count,
                None if usage.last_retrieved is None else d.to_time(usage.last_retrieved),
                None if usage.last_applied is None else d.to_time(usage.last_applied),
                usage.effectiveness_score,
                pid,
            ),
        )


def decay(d: Dialect, *, force: bool, min_effectiveness: float) -> Program[dict[str, int]]:
    """Recompute every effectiveness score and remove patterns below the cut (at most once per
    ``DECAY_INTERVAL_DAYS`` unless forced; one process at a time)."""
    now = utc_now()
    yield from d.exclusive("decay")
    row = yield one("SELECT value FROM meta WHERE key = 'last_decay'")
    interval = timedelta(days=DECAY_INTERVAL_DAYS)
    if not force and row is not None and now - d.unstamp(row[0]) < interval:
        return {"evaluated": 0, "removed": 0, "skipped": 1}
    evaluated = removed = 0
    for pid, *usage_row in (
        yield rows(f"SELECT pattern_id, {USAGE_COLUMNS} FROM patterns{d.lock}")
    ):
        evaluated += 1
        usage: PatternUsage = usage_from_row(tuple(usage_row), d)
        score = effectiveness(usage, now)
        if score < min_effectiveness:
            yield execute("DELETE FROM patterns WHERE pattern_id = ?", (pid,))
            removed += 1
        else:
            yield execute(
                "UPDATE patterns SET effectiveness = ? WHERE pattern_id = ?", (score, pid)
            )
    yield execute(
        "INSERT INTO meta (key, value) VALUES ('last_decay', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (d.stamp(now),),
    )
    return {"evaluated": evaluated, "removed": removed, "skipped": 0}
