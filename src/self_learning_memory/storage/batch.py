"""Several writes in one transaction: what a store offers to replay a journal quickly.

The outbox replayer (``resilience/replay.py``) hands a store whose capabilities offer a
:class:`BatchWriter` a run of journaled writes at once. Each :class:`BatchedWrite` is applied in
its idempotent form (a create is skipped if the episode exists, steps already stored are
skipped, a completion is skipped if the episode is already completed), in the order given, all
in one transaction: the batch is stored whole or not at all, and applying it twice stores each
write once (a pattern-use count, which has no idempotent form, is the exception, as it is for
the one-at-a-time replay). A write the store refuses raises and rolls the whole batch back; the
caller then applies its writes one at a time to find the refused one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from ..model.episode import Episode, ExecutionStep
    from ..model.records import CompletionRecord, EmbeddingRecord

__all__ = ["BatchWriter", "BatchedWrite", "WriteOp"]

WriteOp = Literal[
    "create_episode",
    "append_steps",
    "commit_completion",
    "delete_episode",
    "record_pattern_use",
    "store_embeddings",
]


@dataclass(frozen=True)
class BatchedWrite:
    """One write of a batch: ``op`` says which fields it uses."""

    op: WriteOp
    episode_id: uuid.UUID | None = None
    episode: Episode | None = None  # create_episode
    steps: list[ExecutionStep] = field(default_factory=list)  # append_steps
    record: CompletionRecord | None = None  # commit_completion
    pattern_ids: list[uuid.UUID] = field(default_factory=list)  # record_pattern_use
    applied: bool = False
    success: bool = False
    embeddings: list[tuple[uuid.UUID, EmbeddingRecord]] = field(default_factory=list)


class BatchWriter(Protocol):
    """A store that applies several writes, idempotently and in order, in one transaction."""

    async def write_batch(self, writes: Sequence[BatchedWrite]) -> None: ...
