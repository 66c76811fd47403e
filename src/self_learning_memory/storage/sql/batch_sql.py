"""The program behind :meth:`~.store.SQLStore.write_batch`: several writes, each in its
idempotent form (``storage/batch.py``), in one transaction.

The checks match the one-at-a-time idempotent forms of ``resilience/replay.py``: a create is
skipped if the episode exists, steps numbered at or below the stored last step are skipped, and a
completion is skipped if the episode is completed (and, for a learned completion, its learning
job is no longer queued).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from ...errors import SelfLearningMemoryError
from ...model.episode import Episode
from ...model.records import EpisodeState
from ..batch import BatchedWrite
from . import episodes, learning_sql
from .dialect import Dialect
from .episodes import Announce
from .learning_sql import FullText
from .program import Program, rows

__all__ = ["write_batch"]


def write_batch(
    d: Dialect, search: FullText, announce: Announce, writes: Sequence[BatchedWrite]
) -> Program[None]:
    """The writes in order. The states of the batch's episodes are read once, up front, under
    the row lock a step append takes, and followed through the batch's own writes, so neither
    an idempotency check nor an append's own state read costs a statement."""
    ids = list(dict.fromkeys(eid for w in writes if (eid := _episode_of(w)) is not None))
    known: dict[uuid.UUID, EpisodeState | None] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found = yield rows(
            "SELECT episode_id, end_time, step_count, last_step_number, learning_status "
            f"FROM episodes WHERE episode_id IN ({', '.join('?' * len(chunk))}){d.lock}",
            [str(eid) for eid in chunk],
        )
        known.update(dict.fromkeys(chunk))
        for row in found:
            eid = uuid.UUID(str(row[0]))
            known[eid] = EpisodeState(eid, row[1] is not None, row[2], row[3], row[4])
    for w in writes:
        yield from _write_once(d, search, announce, w, known)


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
    known: dict[uuid.UUID, EpisodeState | None],
) -> Program[None]:
    """One write in its idempotent form; ``known`` holds the states of the batch's episodes
    and is kept up to date."""
    if w.op == "create_episode" and w.episode is not None:
        eid = w.episode.episode_id
        if known[eid] is None:
            yield from episodes.create_episode(d, w.episode)
            known[eid] = EpisodeState(eid, False, 0, 0)
    elif w.op == "append_steps" and w.episode_id is not None:
        state = known[w.episode_id]
        steps = w.steps
        if state is not None:
            steps = [s for s in steps if s.step_number > state.last_step_number]
        if steps:
            known[w.episode_id] = yield from episodes.append_steps(
                d, announce, w.episode_id, steps, state
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
        final = yield from learning_sql.commit_completion(d, search, announce, record)
        status = "queued" if record.mode == "queued" else "done"
        known[eid] = EpisodeState(eid, True, len(final.steps), _last_step(final), status)
    elif w.op == "delete_episode" and w.episode_id is not None:
        yield from episodes.delete_episode(announce, w.episode_id)
        known[w.episode_id] = None
    elif w.op == "record_pattern_use":
        if w.pattern_ids:
            yield from learning_sql.record_pattern_use(
                d, w.pattern_ids, applied=w.applied, success=w.success
            )
    elif w.op == "store_embeddings":
        if w.embeddings:
            yield from learning_sql.store_embeddings(d, w.embeddings)
    else:
        raise SelfLearningMemoryError(f"Unknown or incomplete batched write {w.op!r}.")


def _last_step(episode: Episode) -> int:
    return max((s.step_number for s in episode.steps), default=0)
