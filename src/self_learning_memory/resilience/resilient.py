"""ResilientStorage: retries, a circuit breaker and an outbox around a primary store.

Every data operation of the primary goes through :func:`~.retry.retry_call` (recoverable errors
only, exponential backoff with jitter inside a total budget) and, per attempt, through the
:class:`~.circuit_breaker.CircuitBreaker` (threshold 5, recovery 30 s by default) and an
optional per-call timeout. Driver connection errors are mapped to our recoverable errors first.

While the primary is down (breaker open, or retries exhausted on a recoverable error), writes
are journaled in the :class:`~.outbox.Outbox` and acknowledged: the caller gets success, the
write is durable locally, and reads of those episodes are served from the local view. While
the outbox holds anything, new writes go behind it, so the primary sees every write in the
order it was acknowledged. An owned background task replays the outbox when the breaker lets
calls through (and at start), idempotently: a create is skipped if the episode exists, steps
already stored (by step number) are skipped, a completion is skipped if the episode is already
completed. A replayed entry is deleted only after the primary has it, so a crash re-applies
at most the last entry, idempotently. Entries the primary refuses for good (not a connection
failure) are moved to a dead-letter table and reported, never dropped silently.

With the LMDB cache, reads the primary cannot answer are served locally (degraded mode, see
``resilience/resilient_reads.py`` and ``resilience/degraded.py``) and marked as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar

from ..errors import SelfLearningMemoryError
from .circuit_breaker import BreakerState, CircuitBreaker
from .degraded import LocalReads
from .outbox import Outbox, OutboxEntry, encode_episode, encode_record, encode_steps
from .outbox_view import OutboxView, completed_view
from .resilient_reads import ResilientReads
from .retry import RetryPolicy, map_driver_error, retry_call

if TYPE_CHECKING:
    from ..config import ResilienceConfig
    from ..core.sandbox_audit import SandboxRun
    from ..core.types import Episode, ExecutionStep
    from ..storage.backend import CompletionRecord, EmbeddingRecord, EpisodeState, StorageBackend
    from ..storage.lmdb_cache import EpisodeCache

__all__ = ["ResilientStorage", "resilient_from_config"]

log = logging.getLogger(__name__)
T = TypeVar("T")
OUTBOX_FILENAME = "outbox.db"


def _recoverable(exc: BaseException) -> bool:
    return isinstance(exc, SelfLearningMemoryError) and exc.recoverable


class ResilientStorage(ResilientReads):
    """A :class:`~.backend.StorageBackend` wrapping another one."""

    def __init__(
        self,
        primary: StorageBackend,
        *,
        outbox: Outbox | None = None,
        policy: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        call_timeout_s: float | None = 30.0,
        replay_interval_s: float = 1.0,
        cache: EpisodeCache | None = None,
    ) -> None:
        self.primary = primary
        self.name = primary.name
        self.outbox = outbox
        self.policy = policy or RetryPolicy()
        self.breaker = breaker or CircuitBreaker()
        self.call_timeout_s = call_timeout_s
        self.replay_interval_s = replay_interval_s
        self.cache = cache
        self.view = OutboxView()
        self.local = None if cache is None else LocalReads(cache, self.view)
        self.degraded_since: float | None = None
        self.degraded_reads = 0
        self.degraded_notes: dict[str, str] = {}
        self._local_version = 0
        self.retries = 0
        self.operations = 0
        self.queued = 0  # writes this process journaled
        self.replayed = 0  # entries this process replayed
        self.dead_lettered = 0
        self.last_error: str | None = None
        self.last_replay_at: float | None = None
        self._ready = False
        self._ready_lock = asyncio.Lock()
        self._replay_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._replayer: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self.initialize()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def initialize(self) -> None:
        """Open the outbox and rebuild the local view from it, then the primary. With an
        outbox, an unreachable primary is not fatal: the store starts degraded."""
        if self.outbox is not None:
            outbox = self.outbox
            await asyncio.to_thread(outbox.open)
            after = 0
            while entries := await asyncio.to_thread(outbox.peek, 1000, after):
                for entry in entries:
                    self.view.load(entry)
                after = entries[-1].seq
        try:
            await self._call("initialize", _nothing)
        except Exception as exc:
            if self.outbox is None or not _recoverable(exc):
                await self._close_outbox()
                raise
            log.warning(
                "primary store %s unreachable at start, running degraded: %s", self.name, exc
            )
        if self.outbox is not None:
            self._replayer = asyncio.create_task(self._replay_loop(), name="outbox-replayer")
            self._wake.set()

    async def close(self) -> None:
        if self._replayer is not None:
            self._replayer.cancel()
            await asyncio.gather(self._replayer, return_exceptions=True)
            self._replayer = None
        await self._close_outbox()
        if self._ready:
            self._ready = False
            await self.primary.close()

    async def _close_outbox(self) -> None:
        if self.outbox is not None:
            await asyncio.to_thread(self.outbox.close)

    # -- the guarded call ----------------------------------------------------------------------
    async def _call(
        self,
        what: str,
        first: Callable[[], Awaitable[T]],
        again: Callable[[], Awaitable[T]] | None = None,
    ) -> T:
        """``first`` through retry, breaker and timeout; later attempts run ``again``."""

        def attempt(fn: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
            async def inner() -> T:
                try:
                    await self._ensure_ready()  # the backend's connect has its own timeout
                    async with asyncio.timeout(self.call_timeout_s):
                        return await fn()
                except Exception as exc:
                    mapped = map_driver_error(exc, what)
                    if mapped is exc:
                        raise
                    raise mapped from exc

            return lambda: self.breaker.run(inner)

        def on_retry(exc: BaseException) -> None:
            self.retries += 1
            self.last_error = f"{what}: {exc}"

        self.operations += 1
        try:
            result = await retry_call(
                self.policy, attempt(first), None if again is None else attempt(again), on_retry
            )
        except Exception as exc:
            if _recoverable(exc):
                self.last_error = f"{what}: {exc}"
            raise
        if self.degraded_since is not None:  # the primary answers again
            log.info("primary store %s answers again: reads come from it", self.name)
            self.degraded_since = None
            self.degraded_notes.clear()
        return result

    async def _ensure_ready(self) -> None:
        if self._ready:
            return
        async with self._ready_lock:
            if not self._ready:
                await self.primary.initialize()
                self._ready = True

    async def _backlog(self, eid: uuid.UUID | None = None) -> bool:
        """Whether a new write must go behind journaled ones (to keep the order)."""
        if self.outbox is None:
            return False
        if eid is not None and self.view.has_pending(eid):
            return True
        return await asyncio.to_thread(self.outbox.pending) > 0

    def _queueable(self, exc: BaseException) -> bool:
        return self.outbox is not None and _recoverable(exc)

    async def _enqueue(self, op: str, eid: uuid.UUID | None, payload: dict[str, Any]) -> None:
        assert self.outbox is not None
        await asyncio.to_thread(self.outbox.append, op, eid, payload)
        self.queued += 1
        self._wake.set()

    # -- writes --------------------------------------------------------------------------------
    async def create_episode(self, episode: Episode) -> None:
        if not await self._backlog(episode.episode_id):
            try:
                await self._call(
                    "create_episode",
                    lambda: self.primary.create_episode(episode),
                    lambda: self._create_once(episode),
                )
                self.view.remember_created(episode)
                return
            except Exception as exc:
                if not self._queueable(exc):
                    raise
        await self._enqueue(
            "create_episode", episode.episode_id, {"episode": encode_episode(episode)}
        )
        self.view.queued_create(episode)

    async def append_steps(self, episode_id: uuid.UUID, steps: list[ExecutionStep]) -> EpisodeState:
        if not await self._backlog(episode_id):
            try:
                state = await self._call(
                    "append_steps",
                    lambda: self.primary.append_steps(episode_id, steps),
                    lambda: self._append_once(episode_id, steps),
                )
                self.view.remember_steps(episode_id, steps, state)
                return state
            except Exception as exc:
                if not self._queueable(exc):
                    raise
        self.view.check_append(episode_id, steps)
        await self._enqueue("append_steps", episode_id, {"steps": encode_steps(steps)})
        return self.view.queued_steps(episode_id, steps)

    async def commit_completion(self, record: CompletionRecord) -> Episode:
        eid = record.episode.episode_id
        if not await self._backlog(eid):
            try:
                final = await self._call(
                    "commit_completion",
                    lambda: self.primary.commit_completion(record),
                    lambda: self._complete_once(record),
                )
                self.view.forget(eid)
                return final
            except Exception as exc:
                if not self._queueable(exc):
                    raise
        self.view.check_complete(eid, record.mode)
        await self._enqueue("commit_completion", eid, {"record": encode_record(record)})
        final = completed_view(record.episode, record)
        self.view.queued_completion(final, record.mode)
        return final

    async def delete_episode(self, episode_id: uuid.UUID) -> bool:
        if not await self._backlog(episode_id):
            try:
                deleted = await self._call(
                    "delete_episode", lambda: self.primary.delete_episode(episode_id)
                )
                self.view.forget(episode_id)
                return deleted
            except Exception as exc:
                if not self._queueable(exc):
                    raise
        await self._enqueue("delete_episode", episode_id, {})
        self.view.queued_delete(episode_id)
        return True  # as far as can be known now: the delete is queued

    async def record_pattern_use(
        self, pattern_ids: list[uuid.UUID], *, applied: bool, success: bool
    ) -> None:
        if not await self._backlog():
            try:
                await self._call(
                    "record_pattern_use",
                    lambda: self.primary.record_pattern_use(
                        pattern_ids, applied=applied, success=success
                    ),
                )
                return
            except Exception as exc:
                if not self._queueable(exc):
                    raise
        payload = {"ids": [str(p) for p in pattern_ids], "applied": applied, "success": success}
        await self._enqueue("record_pattern_use", None, payload)

    async def store_embeddings(self, rows: list[tuple[uuid.UUID, EmbeddingRecord]]) -> None:
        if not await self._backlog():
            try:
                await self._call("store_embeddings", lambda: self.primary.store_embeddings(rows))
                return
            except Exception as exc:
                if not self._queueable(exc):
                    raise
        from .outbox import encode_embedding

        payload = {"rows": [[str(eid), encode_embedding(emb)] for eid, emb in rows]}
        await self._enqueue("store_embeddings", None, payload)

    async def record_sandbox_run(self, run: SandboxRun, keep: int) -> int:
        """Through the breaker and retries like every write, but never journaled: while the
        primary is down an audit record is lost (the caller logs and counts it) rather than
        queued behind the episodes in the outbox."""
        return await self._call(
            "record_sandbox_run", lambda: self.primary.record_sandbox_run(run, keep)
        )

    # -- idempotent forms (second attempts and replay) ------------------------------------------
    async def _create_once(self, episode: Episode) -> None:
        if await self.primary.get_episode_state(episode.episode_id) is None:
            await self.primary.create_episode(episode)

    async def _append_once(self, eid: uuid.UUID, steps: list[ExecutionStep]) -> EpisodeState:
        state = await self.primary.get_episode_state(eid)
        if state is not None:
            steps = [s for s in steps if s.step_number > state.last_step_number]
            if not steps:
                return state
        return await self.primary.append_steps(eid, steps)

    async def _complete_once(self, record: CompletionRecord) -> Episode:
        eid = record.episode.episode_id
        state = await self.primary.get_episode_state(eid)
        if state is not None and state.completed:
            done = record.mode != "learned" or state.learning_status != "queued"
            stored = await self.primary.get_episode(eid) if done else None
            if stored is not None:
                return stored
        return await self.primary.commit_completion(record)

    # -- replay --------------------------------------------------------------------------------
    async def replay(self) -> int:
        """Replay the outbox into the primary, in order, until it is empty or the primary
        fails again. Returns how many entries were applied (or dead-lettered)."""
        outbox = self.outbox
        if outbox is None:
            return 0
        done = 0
        async with self._replay_lock:
            if not await asyncio.to_thread(outbox.try_acquire_replay):
                return 0  # another process is replaying this outbox
            try:
                while entries := await asyncio.to_thread(outbox.peek, 200):
                    for entry in entries:
                        try:
                            await self._call(
                                f"replay {entry.op}", functools.partial(self._apply, entry)
                            )
                        except Exception as exc:
                            if _recoverable(exc):
                                await asyncio.to_thread(outbox.note_failure, entry.seq, str(exc))
                                return done
                            log.error("outbox entry %d (%s) refused: %s", entry.seq, entry.op, exc)
                            await asyncio.to_thread(outbox.dead_letter, entry.seq, repr(exc))
                            self.dead_lettered += 1
                        else:
                            await asyncio.to_thread(outbox.remove, entry.seq)
                            self.replayed += 1
                        self.view.applied(entry)
                        done += 1
            finally:
                self.last_replay_at = time.time()
                await asyncio.to_thread(outbox.release_replay)
        return done

    async def _apply(self, entry: OutboxEntry) -> None:
        from .outbox import decode_embedding, decode_episode, decode_record, decode_steps

        eid, p = entry.episode_id, entry.payload
        if entry.op == "create_episode":
            await self._create_once(decode_episode(p["episode"]))
        elif entry.op == "append_steps" and eid is not None:
            await self._append_once(eid, decode_steps(p["steps"]))
        elif entry.op == "commit_completion":
            await self._complete_once(decode_record(p["record"]))
            if self.cache is not None and eid is not None:  # ids may differ from the offline view
                await asyncio.to_thread(self.cache.invalidate, eid)
        elif entry.op == "delete_episode" and eid is not None:
            await self.primary.delete_episode(eid)
        elif entry.op == "record_pattern_use":
            ids = [uuid.UUID(i) for i in p["ids"]]
            await self.primary.record_pattern_use(ids, applied=p["applied"], success=p["success"])
        elif entry.op == "store_embeddings":
            rows = [(uuid.UUID(i), decode_embedding(e)) for i, e in p["rows"]]
            await self.primary.store_embeddings(rows)
        else:
            raise SelfLearningMemoryError(f"Unknown outbox operation {entry.op!r}.")

    async def _replay_loop(self) -> None:
        assert self.outbox is not None
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow close()'s cancel
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.replay_interval_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                if self.breaker.current_state == BreakerState.OPEN:
                    continue
                if await asyncio.to_thread(self.outbox.pending) > 0:
                    await self.replay()
            except Exception:
                log.exception("outbox replay failed")

    async def wait_replayed(self, timeout: float) -> bool:
        """Wait until the outbox is empty (True) or ``timeout`` seconds pass (False)."""
        if self.outbox is None:
            return True
        deadline = time.monotonic() + timeout
        while await asyncio.to_thread(self.outbox.pending) > 0:
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            await asyncio.sleep(0.05)
        return True

    # -- status --------------------------------------------------------------------------------
    async def resilience_status(self) -> dict[str, Any]:
        outbox: dict[str, Any] = {"enabled": self.outbox is not None}
        if self.outbox is not None:
            outbox.update(await asyncio.to_thread(self.outbox.counts))
            outbox.update(
                path=str(self.outbox.path),
                queued_by_this_process=self.queued,
                replayed_by_this_process=self.replayed,
                dead_lettered_by_this_process=self.dead_lettered,
                last_replay_at=self.last_replay_at,
            )
        return {
            "primary": self.name,
            "primary_ready": self._ready,
            # reads are being answered locally (or would be: the breaker refuses every call)
            "degraded": self.degraded_since is not None
            or self.breaker.current_state == BreakerState.OPEN,
            "degraded_reads": self.degraded_status(),
            "breaker": self.breaker.status(),
            "retry": {
                "max_attempts": self.policy.max_attempts,
                "base_s": self.policy.base_s,
                "max_delay_s": self.policy.max_delay_s,
                "budget_s": self.policy.budget_s,
                "retries": self.retries,
                "operations": self.operations,
            },
            "outbox": outbox,
            "last_error": self.last_error,
        }


async def _nothing() -> None:
    return None


def resilient_from_config(
    storage: StorageBackend,
    config: ResilienceConfig,
    data_dir: Path,
    cache: EpisodeCache | None = None,
) -> StorageBackend:
    """``storage`` wrapped when resilience is on (automatic: on for a remote primary, off for
    the embedded SQLite file), else ``storage`` itself."""
    enabled = config.enabled if config.enabled is not None else storage.name != "sqlite"
    if not enabled:
        return storage
    outbox = None
    if config.outbox_enabled:
        path = Path(config.outbox_path) if config.outbox_path else data_dir / OUTBOX_FILENAME
        outbox = Outbox(path, max_entries=config.outbox_max_entries)
    return ResilientStorage(
        storage,
        outbox=outbox,
        policy=RetryPolicy(
            max_attempts=config.max_attempts,
            base_s=config.retry_base_ms / 1000,
            max_delay_s=config.retry_max_delay_ms / 1000,
            jitter_s=config.retry_jitter_ms / 1000,
            budget_s=config.retry_budget_ms / 1000,
        ),
        breaker=CircuitBreaker(
            failure_threshold=config.breaker_threshold,
            recovery_timeout_s=config.breaker_recovery_s,
            half_open_max_calls=config.half_open_max_calls,
        ),
        call_timeout_s=config.call_timeout_s,
        replay_interval_s=config.replay_interval_s,
        cache=cache,
    )
