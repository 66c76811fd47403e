"""The program behind :meth:`~.store.SQLStore.write_batch`: several writes, each in its
idempotent form (``storage/batch.py``), in one transaction.

The checks match the one-at-a-time idempotent forms of ``resilience/replay.py``: a create is
skipped if the episode exists, steps numbered at or below the stored last step are skipped, and a
completion is skipped if the episode is completed (and, for a learned completion, its learning
job is no longer queued).
"""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import SelfLearningMemoryError
from ..batch import BatchedWrite
from . import episodes, learning_sql
from .dialect import Dialect
from .episodes import Announce
from .learning_sql import FullText
from .program import Program

__all__ = ["write_batch"]


def write_batch(
    d: Dialect, search: FullText, announce: Announce, writes: Sequence[BatchedWrite]
) -> Program[None]:
    for w in writes:
        yield from _write_once(d, search, announce, w)


def _write_once(d: Dialect, search: FullText, announce: Announce, w: BatchedWrite) -> Program[None]:
    if w.op == "create_episode" and w.episode is not None:
        if (yield from episodes.episode_state(w.episode.episode_id)) is None:
            yield from episodes.create_episode(d, w.episode)
    elif w.op == "append_steps" and w.episode_id is not None:
        state = yield from episodes.episode_state(w.episode_id)
        steps = w.steps
        if state is not None:
            steps = [s for s in steps if s.step_number > state.last_step_number]
        if steps:
            yield from episodes.append_steps(d, announce, w.episode_id, steps)
    elif w.op == "commit_completion" and w.record is not None:
        record = w.record
        state = yield from episodes.episode_state(record.episode.episode_id)
        if (
            state is not None
            and state.completed
            and (record.mode != "learned" or state.learning_status != "queued")
        ):
            return  # already stored
        yield from learning_sql.commit_completion(d, search, announce, record)
    elif w.op == "delete_episode" and w.episode_id is not None:
        yield from episodes.delete_episode(announce, w.episode_id)
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
