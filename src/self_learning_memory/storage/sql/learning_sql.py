"""Learning programs: the completion transaction, pattern and heuristic aggregation, usage
bookkeeping and decay.

A completion (episode, patterns, heuristics, links, full-text entry, vector, queue job, the
agent's execution) is one
program run in one write transaction: written entirely or not at all. Aggregation never loses
an update: SQLite serialises whole write transactions, and on PostgreSQL every aggregate row is
read ``FOR UPDATE`` (or created with ``INSERT ... ON CONFLICT DO NOTHING`` and then locked), in
similarity-key order so two completions cannot deadlock on each other's rows. What a merge
changes is computed by :mod:`self_learning_memory.learning.merge`; these programs read the
aggregate and write the result.

A batch of completions (``batch_sql.py``) reads its aggregate rows once, up front, and hands
them in as :class:`KnownRows`; a completion then merges into those rows (kept as they stand
after each merge) instead of reading them again, and its episode's state comes from the batch
too (:class:`LockedEpisode`), so a completion costs no round trip for what it reads.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol, TypeVar

from ...errors import InvalidStateError, NotFoundError
from ...model.agents import execution_of
from ...model.episode import Episode, outcome_score, utc_now
from ...model.pattern import AnyPattern, Heuristic, context_of
from ...model.records import (
    CompletionRecord,
    EmbeddingRecord,
    EpisodeState,
    PatternMerge,
    SearchDocument,
)
from ...model.usage import DECAY_INTERVAL_DAYS, PatternUsage, effectiveness, record_use
from ..codec import dump_json, pattern_from_json
from . import agent_executions, feedback
from .dialect import Dialect
from .episodes import Announce
from .program import Op, Program, execute, many, one, rows
from .rows import HEURISTIC_COLUMNS, USAGE_COLUMNS, heuristic_from_row, usage_from_row

__all__ = [
    "HEURISTIC_ROW",
    "PATTERN_ROW",
    "FullText",
    "KnownRows",
    "LockedEpisode",
    "commit_completion",
    "decay",
    "record_pattern_use",
    "store_embeddings",
]

T = TypeVar("T")

PATTERN_ROW = f"pattern_id, pattern_data, {USAGE_COLUMNS}"  # a pattern row as merges read it
HEURISTIC_ROW = HEURISTIC_COLUMNS

Row = tuple[Any, ...]


@dataclass
class KnownRows:
    """Aggregate rows a batch has read (``FOR UPDATE`` where rows are locked), by similarity
    key, each as it stands after the batch's merges so far (``PATTERN_ROW`` and
    ``HEURISTIC_ROW``); ``None``: no such row when read. A key not in a dict is read as usual."""

    patterns: dict[str, Row | None] = field(default_factory=dict)
    heuristics: dict[str, Row | None] = field(default_factory=dict)
    # retrieval feedback not counted yet, per task episode id: (item kind, item id) links read
    # up front (``feedback.pending_uses``); None: each completion reads its own
    uses: dict[str, list[tuple[str, str]]] | None = None
    # each merged row's last UPDATE (it writes the row's whole merged state), by (table, id),
    # run once at ``flush`` instead of once per merge: a batch whose completions merge into
    # the same rows updates each once
    deferred: dict[tuple[str, str], Op] = field(default_factory=dict)
    # the patterns merges wrote, by the JSON text written (``pattern_data``): the next merge
    # into the row takes the pattern from here instead of decoding that text again
    decoded: dict[str, AnyPattern] = field(default_factory=dict)

    def flush(self) -> list[Op]:
        """The deferred UPDATEs, in key order (the rows are locked already), emptied."""
        ops = [self.deferred[key] for key in sorted(self.deferred)]
        self.deferred.clear()
        return ops

    def forget_patterns(self, pattern_ids: set[str]) -> None:
        """Drop the rows of ``pattern_ids`` (changed by something else than a merge)."""
        for key, row in list(self.patterns.items()):
            if row is not None and str(row[0]) in pattern_ids:
                del self.patterns[key]


class LockedEpisode(NamedTuple):
    """A completion's episode as read under its row lock: its full-text key
    (``FullText.key_column``), whether it is completed, its learning status and step count."""

    key: Any
    completed: bool
    learning_status: str | None
    step_count: int


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
    d: Dialect,
    pattern: AnyPattern,
    success: bool,
    now: datetime,
    merge: PatternMerge,
    known: dict[str, Row | None] | None = None,
    deferred: dict[tuple[str, str], Op] | None = None,
    decoded: dict[str, AnyPattern] | None = None,
) -> Program[str]:
    """Merge ``pattern`` into its stored row (or store it); ``known``: rows already read
    under lock, by key, updated here to what this merge writes; ``deferred``: where to leave
    the row's UPDATE instead of running it (``KnownRows.flush`` runs it); ``decoded``:
    patterns by the JSON text they were written as (``KnownRows.decoded``)."""
    key = pattern.similarity_key()
    select = f"SELECT {PATTERN_ROW} FROM patterns WHERE similarity_key = ?{d.lock}"
    row = yield from _read_row(select, key, known)
    if row is None:
        ctx = context_of(pattern)
        inserted = yield one(
            "INSERT INTO patterns (pattern_id, pattern_type, similarity_key, pattern_data, "
            "success_rate, occurrence_count, context_domain, context_language, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            f"ON CONFLICT (similarity_key) DO NOTHING RETURNING {PATTERN_ROW}",
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
            if known is not None:
                known[key] = tuple(inserted)
            return str(pattern.id)
        # Another transaction created it first (and has committed): merge into its row.
        row = yield from _read_row(select, key, None)
        if row is None:  # created and deleted again meanwhile: extremely unlikely
            raise InvalidStateError(f"Pattern {key!r} changed concurrently; complete it again.")
    stored = usage_from_row(row[2:], d)
    before = None if decoded is None else decoded.get(row[1])
    if before is None:
        before = pattern_from_json(row[1])
    merged = merge(before, stored, pattern, success=success, now=now)
    usage = merged.usage
    data = merged.pattern.model_dump_json()
    if decoded is not None:  # one per row: as the row stands now
        decoded.pop(row[1], None)
        decoded[data] = merged.pattern
    update = execute(
        "UPDATE patterns SET pattern_data = ?, success_rate = ?, occurrence_count = ?, "
        "application_count = ?, success_count = ?, failure_count = ?, last_applied = ?, "
        "effectiveness = ?, updated_at = ? WHERE pattern_id = ?",
        (
            data,
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
    if deferred is None:
        yield update
    else:
        deferred[("patterns", str(row[0]))] = update
    if known is not None:  # the row as the UPDATE left it (PATTERN_ROW: id, data, usage)
        known[key] = (
            row[0],
            data,
            row[2],  # retrieval_count
            usage.application_count,
            usage.success_count,
            usage.failure_count,
            row[6],  # last_retrieved
            d.to_time(now),
            row[8],  # created_at
            usage.effectiveness_score,
        )
    return str(row[0])


def _read_row(select: str, key: str, known: dict[str, Row | None] | None) -> Program[Row | None]:
    if known is not None and key in known:
        return known[key]
    row = yield one(select, (key,))
    return None if row is None else tuple(row)


def _upsert_heuristic(
    d: Dialect,
    heuristic: Heuristic,
    now: datetime,
    known: dict[str, Row | None] | None = None,
    deferred: dict[tuple[str, str], Op] | None = None,
) -> Program[str]:
    """Merge ``heuristic`` into its stored row (or store it); ``known`` and ``deferred`` as
    for patterns."""
    key = heuristic.similarity_key()
    select = f"SELECT {HEURISTIC_ROW} FROM heuristics WHERE similarity_key = ?{d.lock}"
    row = yield from _read_row(select, key, known)
    if row is None:
        inserted = yield one(
            "INSERT INTO heuristics (heuristic_id, similarity_key, condition_text, action_text, "
            "domain, confidence, sample_size, evidence, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            f"ON CONFLICT (similarity_key) DO NOTHING RETURNING {HEURISTIC_ROW}",
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
            if known is not None:
                known[key] = tuple(inserted)
            return str(heuristic.heuristic_id)
        row = yield from _read_row(select, key, None)
        if row is None:
            raise InvalidStateError(f"Heuristic {key!r} changed concurrently; complete it again.")
    stored = heuristic_from_row(row, d).merge(heuristic)
    evidence = stored.evidence.model_dump_json()
    update = execute(
        "UPDATE heuristics SET confidence = ?, sample_size = ?, evidence = ?, updated_at = ? "
        "WHERE heuristic_id = ?",
        (
            stored.confidence,
            stored.evidence.sample_size,
            evidence,
            d.to_time(now),
            row[0],
        ),
    )
    if deferred is None:
        yield update
    else:
        deferred[("heuristics", str(row[0]))] = update
    if known is not None:  # the row as the UPDATE left it (HEURISTIC_ROW)
        known[key] = (*row[:4], stored.confidence, evidence, row[6], d.to_time(now))
    return str(row[0])


def _check(record: CompletionRecord, state: LockedEpisode | None) -> None:
    episode = record.episode
    eid = str(episode.episode_id)
    if state is None:
        raise NotFoundError("episode", eid)
    _, completed, status, step_count = state
    if record.mode == "learned":
        if status != "queued":
            raise InvalidStateError(f"Episode {eid} has no pending learning job (it is {status}).")
    elif completed:
        raise InvalidStateError(
            f"Episode {eid} is already completed; it cannot be completed again."
        )
    if step_count != len(episode.steps):
        raise InvalidStateError(
            f"Episode {eid} gained steps while it was being completed ({step_count} stored, "
            f"{len(episode.steps)} seen); complete it again."
        )


def commit_completion(
    d: Dialect,
    search: FullText,
    announce: Announce,
    record: CompletionRecord,
    *,
    state: LockedEpisode | None = None,
    known: KnownRows | None = None,
    counted: EpisodeState | None = None,
) -> Program[Episode]:
    """The completion transaction. ``state``: the episode as the caller read it under its row
    lock (read here if ``None``); ``known``: aggregate rows the caller read under lock (see
    :class:`KnownRows`), kept up to date with this completion's merges; ``counted``: the
    step count and last step number to write with the completion (a batch's appends, whose
    count is written once, by the episode's next UPDATE)."""
    episode = record.episode
    eid = str(episode.episode_id)
    if state is None:
        row = yield one(
            f"SELECT {search.key_column}, end_time, learning_status, step_count FROM episodes "
            f"WHERE episode_id = ?{d.lock}",
            (eid,),
        )
        if row is not None:
            state = LockedEpisode(row[0], row[1] is not None, row[2], row[3])
    _check(record, state)
    assert state is not None
    merge = record.merge
    if record.patterns and merge is None:
        raise ValueError("a completion record with patterns needs the learning's merge")
    now = utc_now()
    known_patterns = None if known is None else known.patterns
    known_heuristics = None if known is None else known.heuristics
    deferred = None if known is None else known.deferred
    decoded = None if known is None else known.decoded
    # where rows are locked: aggregate rows in key order (no deadlocks); ids in episode order
    pattern_ids: dict[int, str] = {}
    for i in _in_lock_order(d, record.patterns, lambda p: p.similarity_key()):
        assert merge is not None
        pattern_ids[i] = yield from _upsert_pattern(
            d, record.patterns[i], record.success, now, merge, known_patterns, deferred, decoded
        )
    heuristic_ids: dict[int, str] = {}
    for i in _in_lock_order(d, record.heuristics, lambda h: h.similarity_key()):
        heuristic_ids[i] = yield from _upsert_heuristic(
            d, record.heuristics[i], now, known_heuristics, deferred
        )
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
    count_set, count_args = "", list[Any]()
    if counted is not None:
        count_set = ", step_count = ?, last_step_number = ?"
        count_args = [counted.step_count, counted.last_step_number]
    yield execute(
        "UPDATE episodes SET end_time = ?, outcome = ?, outcome_type = ?, reward = ?, "
        "reward_total = ?, reflection = ?, patterns = ?, heuristics = ?, metadata = ?, "
        f"tool_summary = ?, learning_status = ?, updated_at = ?{search_set}{count_set} "
        "WHERE episode_id = ?",
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
            *count_args,
            eid,
        ),
    )
    for op in search.completion_ops(state.key, record.search):
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
    if record.mode != "learned":  # the outcome is written now: so is the agent's execution
        execution = execution_of(final)
        if execution is not None:
            yield from agent_executions.record_execution(d, execution)
    # retrieval feedback: what the task used while it ran counts now, with its outcome
    pending = None if known is None or known.uses is None else known.uses.pop(eid, [])
    yield from feedback.apply_pending_uses(d, eid, outcome_score(final.outcome), pending)
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
