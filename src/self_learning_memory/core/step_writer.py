"""The write path of episodes: start, log steps into per-episode buffers (:mod:`.step_buffer`),
flush them (on size, on the idle timer, on request, at completion and close), complete and
delete. Keeps what it knows of each open episode so ``log_step`` checks a step without a read:
its state (completed, step count, last step number) and its running JSON size
(:mod:`.episode_size`). Completion's learning and verification are the :class:`~.learner.Learner`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict

from ..errors import InvalidStateError, NotFoundError, SelfLearningMemoryError, ValidationError
from ..model import validation as v
from ..model.agents import check_agent
from ..model.episode import Episode, ExecutionStep, TaskContext, TaskOutcome, TaskType, utc_now
from ..model.records import EpisodeState
from ..model.validation import as_task_type, as_uuid
from .episode_size import EpisodeSizes, json_size, size_with_steps
from .learner import Learner
from .parts import MemoryParts
from .step_buffer import EpisodeBuffer, write_steps

__all__ = ["StepWriter"]

log = logging.getLogger(__name__)
_MAX_STATES = 10_000


class StepWriter:
    def __init__(self, parts: MemoryParts, learner: Learner) -> None:
        self._parts = parts
        self._learner = learner
        self.buffers: dict[uuid.UUID, EpisodeBuffer] = {}
        self.states: OrderedDict[uuid.UUID, EpisodeState] = OrderedDict()
        self.sizes = EpisodeSizes()  # open episodes' JSON sizes, buffered steps included
        self._flush_wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    # -- the background flusher ------------------------------------------------------------
    def start(self) -> None:
        """Start the idle-timer flusher when batching with auto-flush is configured."""
        batch = self._parts.config.batch
        if batch is not None and batch.auto_flush:
            self._flusher = asyncio.create_task(self._flush_loop(), name="step-flusher")

    async def stop(self) -> list[BaseException]:
        """Stop the flusher and flush every buffer; returns the flushes' errors (each logged)."""
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        errors: list[BaseException] = []
        for episode_id in list(self.buffers):
            try:
                await self._flush(episode_id)
            except SelfLearningMemoryError as exc:
                log.error("could not flush steps of episode %s at close: %s", episode_id, exc)
                errors.append(exc)
        return errors

    # -- writing ---------------------------------------------------------------------------
    async def start_episode(
        self,
        task_description: str,
        context: TaskContext | None,
        task_type: TaskType | str,
        metadata: dict[str, str] | None,
        agent: str | None = None,
    ) -> uuid.UUID:
        with self._parts.monitor.timed("start_episode"):
            v.check_description(task_description)
            name = None if agent is None else check_agent(agent)
            context = context or TaskContext()
            v.check_context(context)
            v.check_metadata("metadata", metadata or {})
            episode = Episode(
                task_type=as_task_type(task_type),
                task_description=task_description,
                context=context,
                metadata=dict(metadata or {}),
                agent=name,
            )
            await self._parts.storage.create_episode(episode)
            self._remember(EpisodeState(episode.episode_id, False, 0, 0))
            self.sizes.set(episode.episode_id, json_size(episode))
            return episode.episode_id

    async def log_step(self, episode_id: uuid.UUID | str, step: ExecutionStep) -> None:
        with self._parts.monitor.timed("log_step"):
            eid = as_uuid(episode_id)
            v.check_step(step)
            state = await self._state(eid)
            if state.completed:
                raise InvalidStateError(f"Episode {eid} is completed; steps cannot be added to it.")
            buffer = self.buffers.get(eid)
            pending = buffer.pending() if buffer is not None else []
            last = pending[-1].step_number if pending else state.last_step_number
            if step.step_number <= last:
                raise ValidationError(
                    "step.step_number",
                    f"{step.step_number} is not after the last step {last}",
                    f"> {last}",
                )
            count = state.step_count + len(pending)
            if count >= v.MAX_STEP_COUNT:
                raise ValidationError(
                    "steps", f"episode {eid} already has {count} steps", f"{v.MAX_STEP_COUNT} steps"
                )
            size = self.sizes.get(eid)
            if size is None:
                size = await self._stored_size(eid, buffer)
            size = self.sizes.grown(eid, size, count, step)  # refuses a step too big for it
            self.sizes.set(eid, size)  # before any await: a concurrent log_step sees it
            batch = self._parts.config.batch
            if batch is None:
                before = state.step_count
                try:
                    state = await self._parts.storage.append_steps(eid, [step])
                except BaseException:
                    self.sizes.forget(eid)  # not written: learn it again from the store
                    raise
                self._remember(state)
                self._check_size(eid, state.step_count == before + 1)
                return
            if buffer is None:
                buffer = self.buffers[eid] = EpisodeBuffer()
            buffer.steps.append(step)
            if batch.auto_flush and len(buffer.steps) >= batch.max_batch_size:
                await self._flush(eid)
            elif len(buffer.steps) == 1:
                self._flush_wake.set()

    async def flush_steps(self, episode_id: uuid.UUID | str | None) -> int:
        with self._parts.monitor.timed("flush_steps"):
            ids = [as_uuid(episode_id)] if episode_id is not None else list(self.buffers)
            return sum([await self._flush(eid) for eid in ids])

    async def complete_episode(self, episode_id: uuid.UUID | str, outcome: TaskOutcome) -> Episode:
        with self._parts.monitor.timed("complete_episode"):
            eid = as_uuid(episode_id)
            v.check_outcome(outcome)
            await self._flush(eid)
            episode = await self._parts.storage.get_episode(eid)
            if episode is None:
                raise NotFoundError("episode", eid)
            if episode.is_complete():
                raise InvalidStateError(f"Episode {eid} is already completed.")
            done = episode.model_copy(update={"outcome": outcome, "end_time": utc_now()})
            size = len(done.model_dump_json().encode())
            if size > v.MAX_EPISODE_SIZE:
                raise ValidationError(
                    "episode", f"is {size} bytes as JSON", f"{v.MAX_EPISODE_SIZE} bytes"
                )
            final = await self._learner.commit(done)
            self.buffers.pop(eid, None)
            self.sizes.forget(eid)
            self._remember(EpisodeState(eid, True, len(final.steps), self._last_number(final)))
            cache = self._parts.cache
            if final.reward is not None and cache is not None:
                await asyncio.to_thread(cache.put, final)
            return final

    async def delete_episode(self, episode_id: uuid.UUID | str) -> None:
        with self._parts.monitor.timed("delete_episode"):
            eid = as_uuid(episode_id)
            self.buffers.pop(eid, None)
            self.states.pop(eid, None)
            self.sizes.forget(eid)
            deleted = await self._parts.storage.delete_episode(eid)
            cache = self._parts.cache
            if cache is not None:
                await asyncio.to_thread(cache.delete, eid)
            vectors = self._parts.vectors
            if deleted and vectors is not None:
                vectors.forget_coverage()  # its vector went too: rebuild the index
            if not deleted:
                raise NotFoundError("episode", eid)

    # -- what readers see of the buffers ---------------------------------------------------
    def buffered(self, eid: uuid.UUID) -> list[ExecutionStep]:
        """The episode's steps logged here and not flushed yet, in order."""
        buffer = self.buffers.get(eid)
        return buffer.steps if buffer is not None else []

    def buffered_count(self) -> int:
        return sum(len(b.steps) for b in self.buffers.values())

    # -- internals -------------------------------------------------------------------------
    @staticmethod
    def _last_number(episode: Episode) -> int:
        return episode.steps[-1].step_number if episode.steps else 0

    def _remember(self, state: EpisodeState) -> None:
        self.states[state.episode_id] = state
        self.states.move_to_end(state.episode_id)
        while len(self.states) > _MAX_STATES:
            self.states.popitem(last=False)

    async def _state(self, eid: uuid.UUID) -> EpisodeState:
        state = self.states.get(eid)
        if state is None:
            state = await self._parts.storage.get_episode_state(eid)
            if state is None:
                raise NotFoundError("episode", eid)
            self._remember(state)
        return state

    async def _stored_size(self, eid: uuid.UUID, buffer: EpisodeBuffer | None) -> int:
        """The open episode's JSON size as stored (other processes' steps included), plus the
        steps buffered here; learnt once per process and episode, then kept up to date.
        Under the buffer's lock, so no flush is half-way between the buffer and the store."""
        async with buffer.lock if buffer is not None else contextlib.nullcontext():
            stored = await self._parts.storage.get_episode(eid)
            if stored is None:
                raise NotFoundError("episode", eid)
            pending = buffer.steps if buffer is not None else []
            return size_with_steps(json_size(stored), len(stored.steps), pending)

    def _check_size(self, eid: uuid.UUID, as_expected: bool) -> None:
        """Keep the running size if the store holds the steps this process expected; if not
        (another process added steps, or a step was left out) learn it again from the store."""
        if not as_expected:
            self.sizes.forget(eid)

    async def _flush(self, eid: uuid.UUID) -> int:
        """Write an episode's buffered steps; never loses them for one failed write (see
        :func:`~.step_buffer.write_steps`): what was not written stays buffered or is named
        in the error raised."""
        buffer = self.buffers.get(eid)
        if buffer is None:
            return 0
        async with buffer.lock:
            steps = buffer.take()
            if not steps:
                return 0
            known = self.states.get(eid)
            try:
                result = await write_steps(self._parts.storage.append_steps, eid, steps)
            except BaseException:  # deleted or completed elsewhere, or cancelled
                buffer.writing = []
                self.states.pop(eid, None)  # another process changed it: reload next time
                self.sizes.forget(eid)
                raise
            buffer.writing = []
            if result.state is not None:
                self._remember(result.state)
                grown = known.step_count + result.written if known is not None else -1
                self._check_size(eid, result.state.step_count == grown)
            error = buffer.settle(eid, result)
            if result.dropped:
                self.sizes.forget(eid)
            if error is not None:
                raise error
            return result.written

    async def _flush_loop(self) -> None:
        batch = self._parts.config.batch
        assert batch is not None
        interval = batch.flush_interval_ms / 1000
        while True:
            now = time.monotonic()
            for eid, buffer in list(self.buffers.items()):
                if buffer.due(now, interval):
                    try:
                        await self._flush(eid)
                    except Exception:
                        log.exception("background flush of episode %s failed", eid)
            deadlines = [b.last_flush + interval for b in self.buffers.values() if b.steps]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            self._flush_wake.clear()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that arrives
            # just after the event fired, and close() would then wait for this loop forever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._flush_wake.wait()
