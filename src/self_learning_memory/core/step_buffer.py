"""Per-episode step buffers (BatchConfig): flushed on size, on an idle timer, on complete, on
close, or on request. Each buffer has a lock so its flushes are serialised and in order.

A flush never loses the buffer's steps because one write failed (:func:`write_steps`):

- a recoverable error (the store unavailable, the circuit open, a timeout) keeps every step
  not yet written buffered, for the next flush, ``complete_episode`` or ``close``;
- any other error of the batch's transaction: the steps are written one at a time, in order,
  so one step the store rejects cannot take the others with it. A step whose own write fails
  is left out once a later step is written (it can never be written after it) or once it has
  failed alone :data:`MAX_LONE_FAILURES` flushes in a row; until then it stays buffered. The
  flush then raises a StorageError naming the steps left out and why;
- the episode deleted or completed meanwhile (NotFoundError, InvalidStateError): nothing
  can be written to it; the error is raised.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..errors import InvalidStateError, NotFoundError, SelfLearningMemoryError, StorageError
from ..model.episode import ExecutionStep
from ..model.records import EpisodeState

__all__ = ["MAX_LONE_FAILURES", "EpisodeBuffer", "WriteResult", "write_steps"]

MAX_LONE_FAILURES = 3
Append = Callable[[uuid.UUID, list[ExecutionStep]], Awaitable[EpisodeState]]


@dataclass
class WriteResult:
    written: int = 0
    state: EpisodeState | None = None  # the store's state after the last write that succeeded
    kept: list[ExecutionStep] = field(default_factory=list)  # to buffer again, in order
    dropped: list[tuple[ExecutionStep, BaseException]] = field(default_factory=list)
    error: BaseException | None = None  # why ``kept`` is not empty


def _recoverable(exc: BaseException) -> bool:
    return isinstance(exc, SelfLearningMemoryError) and exc.recoverable


async def write_steps(append: Append, eid: uuid.UUID, steps: list[ExecutionStep]) -> WriteResult:
    """Write ``steps`` in one transaction, or one at a time if that fails (see the module)."""
    try:
        return WriteResult(len(steps), await append(eid, steps))
    except (NotFoundError, InvalidStateError):
        raise
    except Exception as exc:
        if _recoverable(exc):
            return WriteResult(kept=steps, error=exc)
    result = WriteResult()
    failed: tuple[int, BaseException] | None = None  # a step whose own write failed
    for i, step in enumerate(steps):
        try:
            result.state = await append(eid, [step])
        except (NotFoundError, InvalidStateError):
            raise
        except Exception as exc:
            if _recoverable(exc) or failed is not None:  # unavailable, or two in a row
                start, error = failed if failed is not None else (i, exc)
                result.kept, result.error = steps[start:], error
                return result
            failed = (i, exc)
            continue
        result.written += 1
        if failed is not None:  # a later step is written: the failed one never can be
            result.dropped.append((steps[failed[0]], failed[1]))
            failed = None
    if failed is not None:
        result.kept, result.error = steps[failed[0] :], failed[1]
    return result


@dataclass
class EpisodeBuffer:
    steps: list[ExecutionStep] = field(default_factory=list)
    last_flush: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    writing: list[ExecutionStep] = field(default_factory=list)  # taken by a flush in flight
    lone_failures: int = 0  # flushes in a row that wrote nothing for a non-recoverable error

    def due(self, now: float, interval_s: float) -> bool:
        return bool(self.steps) and now - self.last_flush >= interval_s

    def take(self) -> list[ExecutionStep]:
        taken, self.steps = self.steps, []
        self.writing = taken
        self.last_flush = time.monotonic()
        return taken

    def pending(self) -> list[ExecutionStep]:
        """Every step accepted and not yet known to be stored, in order (those a flush is
        writing right now included: the next step must follow them and count them)."""
        return self.writing + self.steps if self.writing else self.steps

    def put_back(self, steps: list[ExecutionStep]) -> None:
        """Return steps that could not be written, ahead of any logged since."""
        self.steps[:0] = steps

    def settle(self, eid: uuid.UUID, result: WriteResult) -> SelfLearningMemoryError | None:
        """Buffer again what ``result`` kept; the error the flush must raise, if any."""
        if result.kept and result.error is not None and not _recoverable(result.error):
            if result.written or result.dropped:
                self.lone_failures = 0
            self.lone_failures += 1
            if self.lone_failures >= MAX_LONE_FAILURES:  # it is the step, not the store
                result.dropped.append((result.kept[0], result.error))
                result.kept, result.error = result.kept[1:], None
                self.lone_failures = 0
        else:
            self.lone_failures = 0
        self.put_back(result.kept)
        if result.dropped:
            left_out = ", ".join(
                f"step {step.step_number} ({type(exc).__name__}: {exc})"
                for step, exc in result.dropped
            )
            return StorageError(
                f"The store refused {left_out} of episode {eid}, so it was left out; "
                f"{result.written} other buffered step(s) were written and "
                f"{len(result.kept)} stay buffered."
            )
        if result.error is None:
            return None
        if isinstance(result.error, SelfLearningMemoryError):
            return result.error
        wrapped = StorageError(
            f"Writing the steps of episode {eid} failed ({type(result.error).__name__}: "
            f"{result.error}); {len(result.kept)} step(s) stay buffered for the next flush."
        )
        wrapped.__cause__ = result.error
        return wrapped
