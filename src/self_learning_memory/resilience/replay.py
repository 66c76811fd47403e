"""Replaying the outbox into the primary, and the idempotent writes it (and retries) use.

An owned background task replays the outbox when the breaker lets calls through (and at start),
in order and idempotently: a create is skipped if the episode exists, steps already stored (by
step number) are skipped, a completion is skipped if the episode is already completed. A
replayed entry is deleted only after the primary has it, so a crash re-applies at most the last
entry, idempotently. Entries the primary refuses for good (not a connection failure) are moved
to a dead-letter table and reported, never dropped silently. Only one process replays an outbox
at a time (the outbox's replay lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from ..errors import SelfLearningMemoryError
from .circuit_breaker import BreakerState
from .guard import recoverable
from .outbox import decode_embedding, decode_episode, decode_record, decode_steps

if TYPE_CHECKING:
    from ..model.episode import Episode, ExecutionStep
    from ..model.records import CompletionRecord, EpisodeState
    from ..storage.backend import StorageBackend
    from ..storage.lmdb_cache import EpisodeCache
    from .guard import Guard
    from .outbox import Outbox, OutboxEntry
    from .outbox_view import OutboxView

__all__ = ["OutboxReplayer", "append_once", "complete_once", "create_once"]

log = logging.getLogger(__name__)


# -- idempotent forms (second attempts and replay) ----------------------------------------------
async def create_once(primary: StorageBackend, episode: Episode) -> None:
    if await primary.get_episode_state(episode.episode_id) is None:
        await primary.create_episode(episode)


async def append_once(
    primary: StorageBackend, eid: uuid.UUID, steps: list[ExecutionStep]
) -> EpisodeState:
    state = await primary.get_episode_state(eid)
    if state is not None:
        steps = [s for s in steps if s.step_number > state.last_step_number]
        if not steps:
            return state
    return await primary.append_steps(eid, steps)


async def complete_once(primary: StorageBackend, record: CompletionRecord) -> Episode:
    eid = record.episode.episode_id
    state = await primary.get_episode_state(eid)
    if state is not None and state.completed:
        done = record.mode != "learned" or state.learning_status != "queued"
        stored = await primary.get_episode(eid) if done else None
        if stored is not None:
            return stored
    return await primary.commit_completion(record)


class OutboxReplayer:
    """Applies an outbox's entries to the primary, from an owned background task."""

    def __init__(
        self,
        guard: Guard,
        outbox: Outbox,
        view: OutboxView,
        *,
        cache: EpisodeCache | None,
        interval_s: float,
    ) -> None:
        self.guard = guard
        self.primary = guard.primary
        self.outbox = outbox
        self.view = view
        self.cache = cache
        self.interval_s = interval_s
        self.replayed = 0  # entries this process replayed
        self.dead_lettered = 0
        self.last_replay_at: float | None = None
        self.task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()

    # -- the owned task ----------------------------------------------------------------------
    def start(self) -> None:
        self.task = asyncio.create_task(self._loop(), name="outbox-replayer")
        self._wake.set()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None

    def wake(self) -> None:
        """A new entry was journaled: replay soon."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow close()'s cancel
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await self._wake.wait()
            self._wake.clear()
            try:
                if self.guard.breaker.current_state == BreakerState.OPEN:
                    continue
                if await asyncio.to_thread(self.outbox.pending) > 0:
                    await self.replay()
            except Exception:
                log.exception("outbox replay failed")

    async def wait_replayed(self, timeout: float) -> bool:
        """Wait until the outbox is empty (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while await asyncio.to_thread(self.outbox.pending) > 0:
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            await asyncio.sleep(0.05)
        return True

    # -- replay ------------------------------------------------------------------------------
    async def replay(self) -> int:
        """Replay the outbox into the primary, in order, until it is empty or the primary
        fails again. Returns how many entries were applied (or dead-lettered)."""
        outbox = self.outbox
        done = 0
        async with self._lock:
            if not await asyncio.to_thread(outbox.try_acquire_replay):
                return 0  # another process is replaying this outbox
            try:
                while entries := await asyncio.to_thread(outbox.peek, 200):
                    for entry in entries:
                        try:
                            await self.guard.call(
                                f"replay {entry.op}", functools.partial(self.apply, entry)
                            )
                        except Exception as exc:
                            if recoverable(exc):
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

    async def apply(self, entry: OutboxEntry) -> None:
        """Apply one entry to the primary, idempotently (safe to apply twice)."""
        primary, eid, p = self.primary, entry.episode_id, entry.payload
        if entry.op == "create_episode":
            await create_once(primary, decode_episode(p["episode"]))
        elif entry.op == "append_steps" and eid is not None:
            await append_once(primary, eid, decode_steps(p["steps"]))
        elif entry.op == "commit_completion":
            await complete_once(primary, decode_record(p["record"]))
            if self.cache is not None and eid is not None:  # ids may differ from the offline view
                await asyncio.to_thread(self.cache.invalidate, eid)
        elif entry.op == "delete_episode" and eid is not None:
            await primary.delete_episode(eid)
        elif entry.op == "record_pattern_use":
            ids = [uuid.UUID(i) for i in p["ids"]]
            await primary.record_pattern_use(ids, applied=p["applied"], success=p["success"])
        elif entry.op == "store_embeddings":
            rows = [(uuid.UUID(i), decode_embedding(e)) for i, e in p["rows"]]
            await primary.store_embeddings(rows)
        else:
            raise SelfLearningMemoryError(f"Unknown outbox operation {entry.op!r}.")

    async def status(self, queued: int) -> dict[str, Any]:
        """The outbox's part of ``resilience_status()``; ``queued``: writes this process
        journaled."""
        outbox: dict[str, Any] = {"enabled": True}
        outbox.update(await asyncio.to_thread(self.outbox.counts))
        outbox.update(
            path=str(self.outbox.path),
            queued_by_this_process=queued,
            replayed_by_this_process=self.replayed,
            dead_lettered_by_this_process=self.dead_lettered,
            last_replay_at=self.last_replay_at,
        )
        return outbox
