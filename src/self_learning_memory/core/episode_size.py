"""The running JSON size of open episodes, so ``log_step`` refuses the step that would take an
episode over its size limit instead of ``complete_episode`` failing for ever.

The size of an open episode (no outcome, no end time) is ``json_size(episode)``. Appending a
step of ``json_size(step)`` bytes to ``n`` steps adds that size plus one comma when ``n > 0``.
A process learns an episode's size once (from :meth:`start_episode`'s own episode, or by
loading the stored episode the first time it needs it, so another process's steps count) and
then adds each accepted step's size: one serialisation of the step, never of the episode.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict

from pydantic import BaseModel

from ..errors import ValidationError
from ..model.episode import ExecutionStep
from ..model.limits import MAX_EPISODE_SIZE, MAX_OPEN_EPISODE_SIZE

__all__ = ["EpisodeSizes", "json_size", "size_with_steps"]

_MAX_TRACKED = 10_000


def json_size(model: BaseModel) -> int:
    """Bytes of ``model.model_dump_json()`` (UTF-8), without decoding it to a str."""
    return len(type(model).__pydantic_serializer__.to_json(model))


def size_with_steps(size: int, count: int, steps: list[ExecutionStep]) -> int:
    """The JSON size of an episode of ``size`` bytes and ``count`` steps with ``steps`` added."""
    for step in steps:
        size += json_size(step) + (1 if count else 0)
        count += 1
    return size


class EpisodeSizes:
    """Open episodes' JSON sizes, steps accepted but not yet flushed included (bounded LRU)."""

    def __init__(self) -> None:
        self._sizes: OrderedDict[uuid.UUID, int] = OrderedDict()

    def get(self, eid: uuid.UUID) -> int | None:
        return self._sizes.get(eid)

    def set(self, eid: uuid.UUID, size: int) -> None:
        self._sizes[eid] = size
        self._sizes.move_to_end(eid)
        while len(self._sizes) > _MAX_TRACKED:
            self._sizes.popitem(last=False)

    def forget(self, eid: uuid.UUID) -> None:
        self._sizes.pop(eid, None)

    @staticmethod
    def grown(eid: uuid.UUID, size: int, count: int, step: ExecutionStep) -> int:
        """The size with ``step`` added to ``count`` steps; refuses the step (ValidationError
        naming the episode, the step, the size and the limit) when the open episode would go
        over :data:`~self_learning_memory.model.limits.MAX_OPEN_EPISODE_SIZE`, which keeps
        room for the outcome."""
        step_size = json_size(step)
        new = size + step_size + (1 if count else 0)
        if new > MAX_OPEN_EPISODE_SIZE:
            raise ValidationError(
                "episode",
                f"episode {eid} would be {new} bytes as JSON with step {step.step_number} "
                f"({step_size} bytes); it has {size} bytes in {count} steps, and the steps "
                f"may fill {MAX_OPEN_EPISODE_SIZE} bytes, the rest being kept for the "
                "outcome; complete the episode or record less in its steps",
                f"{MAX_EPISODE_SIZE} bytes",
            )
        return new
