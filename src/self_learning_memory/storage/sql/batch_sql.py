"""The program behind :meth:`~.store.SQLStore.write_batch`: several writes, each in its
idempotent form (``storage/batch.py``), in one transaction.

The checks match the one-at-a-time idempotent forms of ``resilience/replay.py``: a create is
skipped if the episode exists, steps numbered at or below the stored last step are skipped, and a
completion is skipped if the episode is completed (and, for a learned completion, its learning
job is no longer queued).

What a write reads is read for the whole batch up front, so that on PostgreSQL (pipeline mode)
a write waits for no answer of its own: the episodes' states (under the row lock a step append
takes) and the pattern and heuristic rows the batch's completions merge into (``FOR UPDATE``,
in similarity-key order, patterns before heuristics: the order a single completion locks them
in, ``learning_sql._in_lock_order``), and the retrieval feedback its completions count
(``feedback.pending_uses``). They are followed through the batch's writes. Only a
pattern or heuristic new to the store still costs a round trip (its ``INSERT ... RETURNING``),
and a completion of an episode created in the batch reads its full-text key where that is not
the episode id (SQLite's ``rowid``). What a write would update again later in the batch is
written once: an episode's step count after all its appends (with its completion's UPDATE, or
at the end), and each merged pattern or heuristic row in its final state
(``KnownRows.deferred``; before a pattern-use count, which adds to them). Such a new row is
inserted when its first completion comes, after the rows locked up front, so against a
concurrent completion creating the same rows in key order a deadlock is possible; PostgreSQL detects it and the connection layer reruns the batch.

Rows that nothing in the batch reads are inserted together: the new episodes' rows at the start
(a create that is the batch's first write of its episode), the steps and pattern links at the
end (before a delete, which could remove their episode), each a ``many`` INSERT, which
PostgreSQL runs as one statement (``program.recordset``): a batch of N episodes created,
extended and completed costs about one statement per episode (its completion's UPDATE), not one
per row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from ...errors import SelfLearningMemoryError
from ...model.episode import Episode
from ...model.records import EpisodeState
from ..batch import BatchedWrite
from . import episodes, feedback, learning_sql
from .dialect import Dialect
from .episodes import Announce
from .learning_sql import HEURISTIC_ROW, PATTERN_ROW, FullText, KnownRows, LockedEpisode, Row
from .program import Op, Program, many, rows

__all__ = ["write_batch"]

T = TypeVar("T")


def write_batch(
    d: Dialect, search: FullText, announce: Announce, writes: Sequence[BatchedWrite]
) -> Program[None]:
    """The writes in order. The states of the batch's episodes are read once, up front, under
    the row lock a step append takes, and followed through the batch's own writes, so neither
    an idempotency check nor an append's own state read costs a statement; then the aggregate
    rows its completions merge into, kept up to date as they merge."""
    ids = list(dict.fromkeys(eid for w in writes if (eid := _episode_of(w)) is not None))
    batch = _Batch(search)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found = yield rows(
            "SELECT episode_id, end_time, step_count, last_step_number, learning_status, "
            f"{search.key_column} "
            f"FROM episodes WHERE episode_id IN ({', '.join('?' * len(chunk))}){d.lock}",
            [str(eid) for eid in chunk],
        )
        batch.states.update(dict.fromkeys(chunk))
        for row in found:
            eid = uuid.UUID(str(row[0]))
            batch.states[eid] = EpisodeState(eid, row[1] is not None, row[2], row[3], row[4])
            batch.keys[eid] = row[5]
    records = [w.record for w in writes if w.op == "commit_completion" and w.record is not None]
    batch.rows.patterns = yield from _lock_aggregates(
        d, "patterns", PATTERN_ROW, {p.similarity_key() for r in records for p in r.patterns}
    )
    batch.rows.heuristics = yield from _lock_aggregates(
        d, "heuristics", HEURISTIC_ROW, {h.similarity_key() for r in records for h in r.heuristics}
    )
    if records:  # retrieval feedback the completions will count
        batch.rows.uses = yield from feedback.pending_uses(
            d, list(dict.fromkeys(str(r.episode.episode_id) for r in records))
        )
    # the new episodes' rows, in one statement (a create that is the batch's first write of
    # its episode: nothing before it in the batch could see the difference)
    first: dict[uuid.UUID, int] = {}
    for i, w in enumerate(writes):
        if (eid := _episode_of(w)) is not None:
            first.setdefault(eid, i)
    early = {
        i: e
        for eid, i in first.items()
        if (e := writes[i].episode) is not None
        and writes[i].op == "create_episode"
        and batch.states[eid] is None
    }
    if early:
        created = [episodes.create_row(d, e) for e in early.values()]
        yield many(created[0][0], [args for _, args in created])
        for e in early.values():
            batch.created(e.episode_id)
    for i, w in enumerate(writes):
        if i not in early:
            yield from _write_once(d, search, announce, w, batch)
    # once per episode and per merged row: the step counts and the merged rows' final states
    for state in batch.counts.values():
        yield episodes.step_count_update(d, state)
    yield from batch.rows.flush()
    yield from batch.flush_later()


class _Batch:
    """What a batch has read, followed through its writes."""

    def __init__(self, search: FullText) -> None:
        self.search = search
        self.states: dict[uuid.UUID, EpisodeState | None] = {}  # None: no such episode
        self.keys: dict[uuid.UUID, Any] = {}  # full-text keys (FullText.key_column)
        self.rows = KnownRows()
        # episodes whose appended steps are not counted in their row yet: written at the end
        self.counts: dict[uuid.UUID, EpisodeState] = {}
        # rows the batch's writes insert and nothing in the batch reads (steps, pattern
        # links), by statement: inserted together at the end (before a delete, which could
        # remove their episode)
        self.later: dict[str, list[Sequence[Any]]] = {}

    def flush_later(self) -> list[Op]:
        """The rows held back, one ``many`` per statement (PostgreSQL: one INSERT each)."""
        ops = [many(sql, arg_rows) for sql, arg_rows in self.later.items()]
        self.later.clear()
        return ops

    def locked(self, eid: uuid.UUID) -> LockedEpisode | None:
        """The episode as a completion checks it, or ``None`` if it must read it itself."""
        state = self.states[eid]
        key = self.keys.get(eid)
        if state is None or key is None:
            return None
        return LockedEpisode(key, state.completed, state.learning_status, state.step_count)

    def created(self, eid: uuid.UUID) -> None:
        self.states[eid] = EpisodeState(eid, False, 0, 0)
        # the key of a row inserted here is known only where it is the episode id
        if self.search.key_column == "episode_id":
            self.keys[eid] = str(eid)


def _lock_aggregates(
    d: Dialect, table: str, columns: str, keys: set[str]
) -> Program[dict[str, Row | None]]:
    """The rows of ``table`` with these similarity keys, locked in key order where rows are
    locked (``None`` for a key with no row)."""
    known: dict[str, Row | None] = dict.fromkeys(sorted(keys))
    if keys:
        found = yield rows(
            f"SELECT similarity_key, {columns} FROM {table} "
            f"WHERE {d.in_list('similarity_key')} "
            f"ORDER BY similarity_key{d.byte_order}{d.lock}",
            (d.list_arg(list(known)),),
        )
        for row in found:
            known[row[0]] = tuple(row[1:])
    return known


def _episode_of(w: BatchedWrite) -> uuid.UUID | None:
    if w.episode is not None:
        return w.episode.episode_id
    if w.record is not None:
        return w.record.episode.episode_id
    return w.episode_id


def _write_once(
    d: Dialect,
    search: FullText,
    announce: Announce,
    w: BatchedWrite,
    batch: _Batch,
) -> Program[None]:
    """One write in its idempotent form; ``batch`` holds what the batch read and is kept up
    to date."""
    known = batch.states
    if w.op == "create_episode" and w.episode is not None:
        eid = w.episode.episode_id
        if known[eid] is None:
            yield from episodes.create_episode(d, w.episode)
            batch.created(eid)
    elif w.op == "append_steps" and w.episode_id is not None:
        state = known[w.episode_id]
        steps = w.steps
        if state is not None:
            steps = [s for s in steps if s.step_number > state.last_step_number]
        if steps:
            known[w.episode_id] = batch.counts[w.episode_id] = yield from _rows_later(
                episodes.append_steps(d, announce, w.episode_id, steps, state, count_later=True),
                batch.later,
            )
    elif w.op == "commit_completion" and w.record is not None:
        record = w.record
        eid = record.episode.episode_id
        state = known[eid]
        if (
            state is not None
            and state.completed
            and (record.mode != "learned" or state.learning_status != "queued")
        ):
            return  # already stored
        counted = batch.counts.pop(eid, None)
        locked = batch.locked(eid)
        if counted is not None and locked is None:  # the completion reads the step count
            yield episodes.step_count_update(d, counted)
            counted = None
        final = yield from _rows_later(
            learning_sql.commit_completion(
                d, search, announce, record, state=locked, known=batch.rows, counted=counted
            ),
            batch.later,
        )
        status = "queued" if record.mode == "queued" else "done"
        known[eid] = EpisodeState(eid, True, len(final.steps), _last_step(final), status)
    elif w.op == "delete_episode" and w.episode_id is not None:
        yield from batch.flush_later()
        yield from episodes.delete_episode(announce, w.episode_id)
        known[w.episode_id] = None
        batch.counts.pop(w.episode_id, None)
        batch.keys.pop(w.episode_id, None)
    elif w.op == "record_pattern_use":
        if w.pattern_ids:
            yield from batch.rows.flush()
            yield from learning_sql.record_pattern_use(
                d, w.pattern_ids, applied=w.applied, success=w.success
            )
            batch.rows.forget_patterns({str(p) for p in w.pattern_ids})
    elif w.op == "store_embeddings":
        if w.embeddings:
            yield from learning_sql.store_embeddings(d, w.embeddings)
    else:
        raise SelfLearningMemoryError(f"Unknown or incomplete batched write {w.op!r}.")


def _rows_later(program: Program[T], later: dict[str, list[Sequence[Any]]]) -> Program[T]:
    """``program`` with the rows of its ``many`` INSERTs kept in ``later`` (by statement)
    instead of sent (the batch inserts them at its end: :meth:`_Batch.flush_later`)."""
    try:
        op = next(program)
        while True:
            result = None
            if op.kind == "many" and op.sql.startswith("INSERT INTO "):
                later.setdefault(op.sql, []).extend(op.args)
            else:
                result = yield op
            op = program.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _last_step(episode: Episode) -> int:
    return max((s.step_number for s in episode.steps), default=0)
