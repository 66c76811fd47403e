"""SelfLearningMemory: the async library every face of the system is built on.

    async with SelfLearningMemory.open(data_dir) as memory:
        episode_id = await memory.start_episode("Add a /health endpoint", context, "code_generation")
        await memory.log_step(episode_id, ExecutionStep(step_number=1, tool="editor", action="..."))
        episode = await memory.complete_episode(episode_id, SuccessOutcome(verdict="done"))
        results = await memory.retrieve_relevant_context("add a readiness probe", context)

Read path: cache -> durable store. Write path: durable store first (one transaction), then
cache. Steps are buffered per episode and appended as rows; nothing buffered is lost on close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from ..config import MemoryConfig
from ..embeddings import EmbeddingProvider, provider_from_config
from ..errors import (
    CapabilityUnavailableError,
    DataIntegrityError,
    InvalidStateError,
    NotFoundError,
    SelfLearningMemoryError,
    ValidationError,
)
from ..learning.learner import learn
from ..learning.queue import LearningQueue
from ..model import validation as v
from ..model.episode import Episode, ExecutionStep, TaskContext, TaskOutcome, TaskType, utc_now
from ..model.records import CompletionRecord, EpisodeState
from ..model.validation import as_task_type, as_uuid
from ..storage.backend import StorageBackend
from ..storage.codec import search_document
from ..storage.factory import open_store, resolve_data_dir
from ..storage.lmdb_cache import EpisodeCache
from ..storage.sync import StorageSynchronizer
from .episode_size import EpisodeSizes, json_size, size_with_steps
from .memory_reads import MemoryReads
from .monitoring import Monitor
from .sandbox_audit import SandboxAudit
from .step_buffer import EpisodeBuffer, write_steps

__all__ = ["SelfLearningMemory"]

log = logging.getLogger(__name__)
_MAX_STATES = 10_000


class SelfLearningMemory(MemoryReads, SandboxAudit):
    """An agent's memory of episodes, with learning on completion and ranked retrieval."""

    def __init__(
        self,
        storage: StorageBackend,
        *,
        config: MemoryConfig | None = None,
        cache: EpisodeCache | None = None,
        data_dir: Path | None = None,
        embedder: EmbeddingProvider | None = None,
    ) -> None:
        self.config = config or MemoryConfig()
        self.storage = storage
        self.cache = cache
        self.data_dir = data_dir
        self.monitor = Monitor()
        self._buffers: dict[uuid.UUID, EpisodeBuffer] = {}
        self._states: OrderedDict[uuid.UUID, EpisodeState] = OrderedDict()
        self._sizes = EpisodeSizes()  # open episodes' JSON sizes, buffered steps included
        self._flush_wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self.queue: LearningQueue | None = None
        self.synchronizer: StorageSynchronizer | None = None
        self.vectors = None
        if embedder is not None:
            from ..retrieval.vectors import VectorSearch  # numpy: only with an embedding provider

            self.vectors = VectorSearch(embedder, storage)
        self._query_cache = {}
        self._candidates = {}
        self._candidates_version = None
        self.query_cache_hits = 0
        self._started = False
        self._cache_open = False  # guarded by _cache_guard: change callbacks vs close()
        self._cache_guard = threading.Lock()

    @classmethod
    def open(
        cls, data_dir: str | Path | None = None, *, config: MemoryConfig | None = None
    ) -> Self:
        """A memory in ``data_dir`` (default ``$MEMORY_DATA_DIR`` or the user's data
        directory): embedded, or the durable store ``config.storage.url`` names (for example
        ``postgresql://...``) with the local cache in ``data_dir``. Use it as
        ``async with SelfLearningMemory.open(...) as memory``."""
        config = config or MemoryConfig()
        directory = resolve_data_dir(data_dir)
        storage, cache = open_store(config.storage.url, directory, config)
        wanted = config.resilience.enabled
        if wanted or (wanted is None and storage.name != "sqlite"):  # automatic: remote only
            from ..resilience.resilient import resilient_from_config  # tenacity: only when used

            storage = resilient_from_config(storage, config.resilience, directory, cache)
        embedder = provider_from_config(config.embeddings)
        return cls(storage, config=config, cache=cache, data_dir=directory, embedder=embedder)

    # -- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self._started:
            return
        await self._refuse_a_lost_store()
        try:
            await self.storage.initialize()
        except BaseException:
            if self.cache is not None and self._cache_open:  # opened by the check above
                await asyncio.to_thread(self.cache.close)
                self._cache_open = False
            raise
        if self.cache is not None:
            if not self._cache_open:
                try:
                    await asyncio.to_thread(self.cache.open)
                except BaseException:
                    await self.storage.close()  # do not leak the open database
                    raise
                self._cache_open = True
            # shared stores: other processes' changes evict entries (also behind a wrapper)
            feed = self.storage.capabilities.change_feed
            if feed is not None:
                feed.subscribe_episode_changes(self._evict_changed)
        batch = self.config.batch
        if batch is not None and batch.auto_flush:
            self._flusher = asyncio.create_task(self._flush_loop(), name="step-flusher")
        if self.config.queue.enabled:
            self.queue = LearningQueue(self.storage, self.config.queue, self._learn_queued)
            self.queue.start()
        await self._start_synchronizer()
        self._started = True

    async def _refuse_a_lost_store(self) -> None:
        """An embedded store file that is missing or empty while the cache holds episodes was
        deleted, truncated or replaced: opening it would create an empty store next to the
        cache's last copies. Refuse before anything is created."""
        path = self.storage.capabilities.local_file
        if self.cache is None or self.storage.name != "sqlite" or path is None:
            return
        try:
            if path.stat().st_size > 0:
                return
        except FileNotFoundError:
            pass
        except OSError:  # not a path to a file at all: the store's own open says which and why
            return
        await asyncio.to_thread(self.cache.open)
        self._cache_open = True
        held = await asyncio.to_thread(self.cache.entries)
        if held:
            await asyncio.to_thread(self.cache.close)
            self._cache_open = False
            raise DataIntegrityError(
                f"The store {path} is missing or empty, but the cache {self.cache.path} holds "
                f"{held} episode(s): the store was deleted, truncated or replaced, and nothing "
                "was created. Back up the data directory, then run `memory-cli storage "
                "rebuild-from-cache` to rebuild the store from the cache's copies (or restore it "
                "from a backup); to start an empty memory instead, move the cache directory aside."
            )

    async def _evict_changed(self, change: Any) -> None:
        """Another process changed an episode: drop our cached copy (deleted: for good).
        A change that arrives after the cache was closed is ignored."""
        cache = self.cache
        if cache is None:
            return
        drop = cache.delete if change.op == "deleted" else cache.invalidate

        def run() -> None:
            with self._cache_guard:
                if self._cache_open:
                    drop(change.episode_id)

        await asyncio.to_thread(run)

    async def _stop_listening(self) -> None:
        """No more episode-change callbacks (they write to the cache close() is about to close)."""
        feed = self.storage.capabilities.change_feed
        if feed is not None:
            await feed.stop_listening()

    def _close_cache(self) -> None:
        with self._cache_guard:  # waits for a callback already dropping an entry
            self._cache_open = False
            if self.cache is not None:
                self.cache.close()

    async def _start_synchronizer(self) -> None:
        """The periodic cache sync: on when configured, or (automatic) for a remote primary."""
        sync = self.config.sync
        enabled = sync.enabled if sync.enabled is not None else self.storage.name != "sqlite"
        if self.cache is None or not enabled:
            return
        self.synchronizer = StorageSynchronizer(
            self.storage,
            self.cache,
            strategy=sync.strategy,
            interval_s=sync.interval_s,
            window_s=sync.window_s,
            index_limit=sync.index_limit,
        )
        await self.synchronizer.start()

    async def close(self) -> None:
        """Flush every buffered step, stop the workers, close the stores."""
        if not self._started:
            return
        self._started = False
        await self._stop_listening()
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        errors: list[BaseException] = []
        for episode_id in list(self._buffers):
            try:
                await self._flush(episode_id)
            except SelfLearningMemoryError as exc:
                log.error("could not flush steps of episode %s at close: %s", episode_id, exc)
                errors.append(exc)
        if self.queue is not None:
            await self.queue.stop()
        if self.synchronizer is not None:
            await self.synchronizer.stop()
        if self.vectors is not None:
            await self.vectors.provider.close()
        # the store first: a resilient store's outbox replayer may still touch the cache
        await self.storage.close()
        if self.cache is not None:
            await asyncio.to_thread(self._close_cache)
        if errors:
            raise errors[0]

    # -- writing ---------------------------------------------------------------------------
    async def start_episode(
        self,
        task_description: str,
        context: TaskContext | None = None,
        task_type: TaskType | str = TaskType.OTHER,
        *,
        metadata: dict[str, str] | None = None,
    ) -> uuid.UUID:
        """Record the start of a task; durable when this returns."""
        with self._timed("start_episode"):
            v.check_description(task_description)
            context = context or TaskContext()
            v.check_context(context)
            v.check_metadata("metadata", metadata or {})
            episode = Episode(
                task_type=as_task_type(task_type),
                task_description=task_description,
                context=context,
                metadata=dict(metadata or {}),
            )
            await self.storage.create_episode(episode)
            self._remember(EpisodeState(episode.episode_id, False, 0, 0))
            self._sizes.set(episode.episode_id, json_size(episode))
            return episode.episode_id

    async def log_step(self, episode_id: uuid.UUID | str, step: ExecutionStep) -> None:
        """Add one step. It is checked now (a bad step raises, it is never dropped) and
        buffered; it is durable after the next flush (size, idle timer, complete, close or
        :meth:`flush_steps`), or at once when batching is off."""
        with self._timed("log_step"):
            eid = as_uuid(episode_id)
            v.check_step(step)
            state = await self._state(eid)
            if state.completed:
                raise InvalidStateError(f"Episode {eid} is completed; steps cannot be added to it.")
            buffer = self._buffers.get(eid)
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
            size = self._sizes.get(eid)
            if size is None:
                size = await self._stored_size(eid, buffer)
            size = self._sizes.grown(eid, size, count, step)  # refuses a step too big for it
            self._sizes.set(eid, size)  # before any await: a concurrent log_step sees it
            batch = self.config.batch
            if batch is None:
                before = state.step_count
                try:
                    state = await self.storage.append_steps(eid, [step])
                except BaseException:
                    self._sizes.forget(eid)  # not written: learn it again from the store
                    raise
                self._remember(state)
                self._check_size(eid, state.step_count == before + 1)
                return
            if buffer is None:
                buffer = self._buffers[eid] = EpisodeBuffer()
            buffer.steps.append(step)
            if batch.auto_flush and len(buffer.steps) >= batch.max_batch_size:
                await self._flush(eid)
            elif len(buffer.steps) == 1:
                self._flush_wake.set()

    async def flush_steps(self, episode_id: uuid.UUID | str | None = None) -> int:
        """Write buffered steps now (of one episode, or all); returns how many were written."""
        with self._timed("flush_steps"):
            ids = [as_uuid(episode_id)] if episode_id is not None else list(self._buffers)
            return sum([await self._flush(eid) for eid in ids])

    async def complete_episode(self, episode_id: uuid.UUID | str, outcome: TaskOutcome) -> Episode:
        """Finish an episode: flush its steps, learn from it (patterns, heuristics, reward,
        reflection), write it all in one transaction and verify it. Returns the stored episode.
        With the learning queue on, returns after the outcome is durable; learning follows."""
        with self._timed("complete_episode"):
            eid = as_uuid(episode_id)
            v.check_outcome(outcome)
            await self._flush(eid)
            episode = await self.storage.get_episode(eid)
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
            queue = self.queue
            if queue is not None and await queue.has_room():
                record = CompletionRecord(done, mode="queued", search=search_document(done))
                final = await self.storage.commit_completion(record)
                queue.notify()
            else:
                if queue is not None:
                    queue.inline += 1
                record = await asyncio.to_thread(learn, done, self.config.extraction)
                await self._attach_embedding(record)
                final = await self.storage.commit_completion(record)
            await self._verify(final)
            self._buffers.pop(eid, None)
            self._sizes.forget(eid)
            self._remember(EpisodeState(eid, True, len(final.steps), self._last_number(final)))
            if final.reward is not None and self.cache is not None:
                await asyncio.to_thread(self.cache.put, final)
            return final

    async def delete_episode(self, episode_id: uuid.UUID | str) -> None:
        with self._timed("delete_episode"):
            eid = as_uuid(episode_id)
            self._buffers.pop(eid, None)
            self._states.pop(eid, None)
            self._sizes.forget(eid)
            deleted = await self.storage.delete_episode(eid)
            if self.cache is not None:
                await asyncio.to_thread(self.cache.delete, eid)
            if deleted and self.vectors is not None:
                self.vectors.forget_coverage()  # its vector went too: rebuild the index
            if not deleted:
                raise NotFoundError("episode", eid)

    async def wait_for_learning(self, timeout: float = 30.0) -> bool:
        """With the learning queue on: wait until it is empty. True if it emptied in time."""
        if self.queue is None:
            return True
        return await self.queue.wait_until_empty(timeout)

    # -- internals -------------------------------------------------------------------------
    @staticmethod
    def _last_number(episode: Episode) -> int:
        return episode.steps[-1].step_number if episode.steps else 0

    def _remember(self, state: EpisodeState) -> None:
        self._states[state.episode_id] = state
        self._states.move_to_end(state.episode_id)
        while len(self._states) > _MAX_STATES:
            self._states.popitem(last=False)

    async def _state(self, eid: uuid.UUID) -> EpisodeState:
        state = self._states.get(eid)
        if state is None:
            state = await self.storage.get_episode_state(eid)
            if state is None:
                raise NotFoundError("episode", eid)
            self._remember(state)
        return state

    async def _stored_size(self, eid: uuid.UUID, buffer: EpisodeBuffer | None) -> int:
        """The open episode's JSON size as stored (other processes' steps included), plus the
        steps buffered here; learnt once per process and episode, then kept up to date.
        Under the buffer's lock, so no flush is half-way between the buffer and the store."""
        async with buffer.lock if buffer is not None else contextlib.nullcontext():
            stored = await self.storage.get_episode(eid)
            if stored is None:
                raise NotFoundError("episode", eid)
            pending = buffer.steps if buffer is not None else []
            return size_with_steps(json_size(stored), len(stored.steps), pending)

    def _check_size(self, eid: uuid.UUID, as_expected: bool) -> None:
        """Keep the running size if the store holds the steps this process expected; if not
        (another process added steps, or a step was left out) learn it again from the store."""
        if not as_expected:
            self._sizes.forget(eid)

    async def _flush(self, eid: uuid.UUID) -> int:
        """Write an episode's buffered steps; never loses them for one failed write (see
        :func:`~.step_buffer.write_steps`): what was not written stays buffered or is named
        in the error raised."""
        buffer = self._buffers.get(eid)
        if buffer is None:
            return 0
        async with buffer.lock:
            steps = buffer.take()
            if not steps:
                return 0
            known = self._states.get(eid)
            try:
                result = await write_steps(self.storage.append_steps, eid, steps)
            except BaseException:  # deleted or completed elsewhere, or cancelled
                buffer.writing = []
                self._states.pop(eid, None)  # another process changed it: reload next time
                self._sizes.forget(eid)
                raise
            buffer.writing = []
            if result.state is not None:
                self._remember(result.state)
                grown = known.step_count + result.written if known is not None else -1
                self._check_size(eid, result.state.step_count == grown)
            error = buffer.settle(eid, result)
            if result.dropped:
                self._sizes.forget(eid)
            if error is not None:
                raise error
            return result.written

    async def _flush_loop(self) -> None:
        batch = self.config.batch
        assert batch is not None
        interval = batch.flush_interval_ms / 1000
        while True:
            now = time.monotonic()
            for eid, buffer in list(self._buffers.items()):
                if buffer.due(now, interval):
                    try:
                        await self._flush(eid)
                    except Exception:
                        log.exception("background flush of episode %s failed", eid)
            deadlines = [b.last_flush + interval for b in self._buffers.values() if b.steps]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            self._flush_wake.clear()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that arrives
            # just after the event fired, and close() would then wait for this loop forever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._flush_wake.wait()

    async def _verify(self, expected: Episode) -> None:
        """Read the episode back from the durable store and compare what completion wrote."""
        stored = await self.storage.get_episode(expected.episode_id)
        problems = []
        if stored is None:
            problems.append("it is missing")
        else:
            for name in ("outcome", "end_time", "reward", "reflection", "patterns", "heuristics"):
                if getattr(stored, name) != getattr(expected, name):
                    problems.append(f"its {name} differs")
            if len(stored.steps) != len(expected.steps):
                problems.append(f"it has {len(stored.steps)} steps, not {len(expected.steps)}")
        if problems:
            raise DataIntegrityError(
                f"Verify-after-write failed for episode {expected.episode_id}: {', '.join(problems)}."
            )

    async def _attach_embedding(self, record: CompletionRecord) -> None:
        if self.vectors is not None:
            record.embedding = await self.vectors.embed_episode(record.episode)

    async def reindex_embeddings(
        self, batch_size: int = 64, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Embed every completed episode that has no vector from the configured provider (after
        a model or dimension change, or failed embeddings). Returns how many were embedded."""
        if self.vectors is None:
            raise CapabilityUnavailableError(
                "No embedding provider is configured (embeddings.provider is 'none')."
            )
        return await self.vectors.reindex(batch_size, progress)

    async def _learn_queued(self, eid: uuid.UUID) -> None:
        episode = await self.storage.get_episode(eid)
        if episode is None:
            return  # deleted while queued: the job went with it
        record = await asyncio.to_thread(learn, episode, self.config.extraction, mode="learned")
        await self._attach_embedding(record)
        final = await self.storage.commit_completion(record)
        if self.cache is not None:
            await asyncio.to_thread(self.cache.put, final)
