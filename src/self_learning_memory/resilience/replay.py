"""Replaying the outbox into the primary, and the idempotent writes it (and retries) use.

An owned background task replays the outbox when the breaker lets calls through (and at start),
in order and idempotently: a create is skipped if the episode exists, steps already stored (by
step number) are skipped, a completion is skipped if the episode is already completed.

Entries go in batches of up to :data:`BATCH_SIZE` (the first of a replay: up to
:data:`FIRST_BATCH_SIZE`, so a replay attempt while the primary is down costs little). When the primary offers
:class:`~..storage.batch.BatchWriter` (the SQL stores), a batch is one primary transaction, and
its entries are deleted from the outbox together once it has committed: a crash in between
re-applies that batch, idempotently. A batch the primary refuses (not a connection failure) is
rolled back and its entries are applied one at a time, so only the entry refused for good is
moved to the dead-letter table and reported, never dropped silently. A batch ends after a
pattern-use entry (a count with no idempotent form), so a crash re-applies no other batch's
count. Only one process replays an outbox at a time (the outbox's replay lock).
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
from ..storage.batch import BatchedWrite
from .circuit_breaker import BreakerState
from .guard import recoverable
from .outbox import created_from_json, decode_embedding, record_from_json, steps_from_json

if TYPE_CHECKING:
    from ..model.episode import Episode, ExecutionStep
    from ..model.records import CompletionRecord, EpisodeState
    from ..storage.backend import StorageBackend
    from ..storage.lmdb_cache import EpisodeCache
    from .guard import Guard
    from .outbox import Outbox, OutboxEntry
    from .outbox_view import OutboxView

__all__ = [
    "BATCH_SIZE",
    "FIRST_BATCH_SIZE",
    "OutboxReplayer",
    "append_once",
    "complete_once",
    "create_once",
]

log = logging.getLogger(__name__)
BATCH_SIZE = 1000  # outbox entries per primary transaction
# the first batch of a replay is kept small: while the primary is down each replay attempt
# reads and decodes only that much, and once it is back the first commit comes sooner
FIRST_BATCH_SIZE = 50
_Read = tuple[list["OutboxEntry"], list[BatchedWrite] | None]  # a batch and its decoded writes


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
        self.batch_size = BATCH_SIZE
        self.first_batch_size = FIRST_BATCH_SIZE
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
            following: asyncio.Task[_Read] | None = None
            try:
                first = min(self.first_batch_size, self.batch_size)
                batch, writes = await asyncio.to_thread(self._read, 0, first)
                while batch:
                    # the next batch is read and decoded in a thread while this one is written
                    # (entries after it do not change: the outbox only grows at its end)
                    following = asyncio.ensure_future(asyncio.to_thread(self._read, batch[-1].seq))
                    applied = await self._apply_batch(batch, writes)
                    if applied is None:  # refused: find the refused entry one at a time
                        applied = await self._apply_each(batch)
                    done += applied
                    if applied < len(batch):
                        return done  # the primary is down again
                    batch, writes = await following
                    following = None
            finally:
                if following is not None:
                    with contextlib.suppress(Exception):
                        await following  # a thread cannot be cancelled: let it finish
                self.last_replay_at = time.time()
                await asyncio.to_thread(outbox.release_replay)
        return done

    def _read(self, after: int, limit: int | None = None) -> _Read:
        """(In a thread.) The next batch (up to ``limit`` entries, default the batch size)
        after outbox sequence number ``after`` and its
        decoded writes (None: the primary takes no batches, or a payload does not decode and
        the batch goes one entry at a time, which dead-letters that entry)."""
        batch = _batch(self.outbox.peek(limit or self.batch_size, after))
        if len(batch) < 2 or self.primary.capabilities.batch_writer is None:
            return batch, None
        try:
            return batch, [batched_write(entry) for entry in batch]
        except Exception:
            return batch, None

    async def _apply_batch(
        self, batch: list[OutboxEntry], writes: list[BatchedWrite] | None
    ) -> int | None:
        """Apply ``batch`` (decoded: ``writes``) in one primary transaction: its length, 0
        when the primary is down, or None when the primary refused it (or cannot take
        batches, or it did not decode)."""
        writer = self.primary.capabilities.batch_writer
        if writes is None or writer is None:
            return None
        try:
            await self.guard.call(
                f"replay {len(batch)} writes", functools.partial(writer.write_batch, writes)
            )
        except Exception as exc:
            if recoverable(exc):
                await asyncio.to_thread(self.outbox.note_failure, batch[0].seq, str(exc))
                return 0
            log.warning(
                "a batch of %d outbox entries was refused (%s): one at a time", len(batch), exc
            )
            return None
        await asyncio.to_thread(self.outbox.remove_many, [e.seq for e in batch])
        await self._applied(batch, writes)
        self.replayed += len(batch)
        return len(batch)

    async def _apply_each(self, batch: list[OutboxEntry]) -> int:
        """Apply ``batch`` one entry at a time: how many were applied or dead-lettered (fewer
        than its length when the primary is down)."""
        outbox = self.outbox
        done = 0
        for entry in batch:
            try:
                await self.guard.call(f"replay {entry.op}", functools.partial(self.apply, entry))
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
        return done

    async def _applied(self, batch: list[OutboxEntry], writes: list[BatchedWrite]) -> None:
        """After a batch (decoded: ``writes``) committed: forget its entries in the view,
        drop stale cache rows."""
        stale = []
        for entry, write in zip(batch, writes, strict=True):
            self.view.applied(entry, None if write.record is None else write.record.mode)
            if entry.op == "commit_completion" and entry.episode_id:
                stale.append(entry.episode_id)
        cache = self.cache
        if cache is not None and stale:  # one thread hop for the batch
            await asyncio.to_thread(lambda: [cache.invalidate(eid) for eid in stale])

    async def apply(self, entry: OutboxEntry) -> None:
        """Apply one entry to the primary, idempotently (safe to apply twice)."""
        primary, eid = self.primary, entry.episode_id
        if entry.op == "create_episode":
            await create_once(primary, created_from_json(entry.text))
        elif entry.op == "append_steps" and eid is not None:
            await append_once(primary, eid, steps_from_json(entry.text))
        elif entry.op == "commit_completion":
            await complete_once(primary, record_from_json(entry.text))
            if self.cache is not None and eid is not None:  # ids may differ from the offline view
                await asyncio.to_thread(self.cache.invalidate, eid)
        elif entry.op == "delete_episode" and eid is not None:
            await primary.delete_episode(eid)
        elif entry.op == "record_pattern_use":
            p = entry.payload
            ids = [uuid.UUID(i) for i in p["ids"]]
            await primary.record_pattern_use(ids, applied=p["applied"], success=p["success"])
        elif entry.op == "store_embeddings":
            rows = [(uuid.UUID(i), decode_embedding(e)) for i, e in entry.payload["rows"]]
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


def _batch(entries: list[OutboxEntry]) -> list[OutboxEntry]:
    """The leading run of ``entries`` to apply together: up to and including the first
    pattern-use entry (a count re-applied by a crash is kept to that entry's batch)."""
    for i, entry in enumerate(entries):
        if entry.op == "record_pattern_use":
            return entries[: i + 1]
    return entries


def batched_write(entry: OutboxEntry) -> BatchedWrite:
    """The journaled ``entry`` as a write for :meth:`~..storage.batch.BatchWriter.write_batch`."""
    eid = entry.episode_id
    if entry.op == "create_episode":
        return BatchedWrite("create_episode", episode=created_from_json(entry.text))
    if entry.op == "append_steps" and eid is not None:
        return BatchedWrite("append_steps", episode_id=eid, steps=steps_from_json(entry.text))
    if entry.op == "commit_completion":
        return BatchedWrite("commit_completion", record=record_from_json(entry.text))
    if entry.op == "delete_episode" and eid is not None:
        return BatchedWrite("delete_episode", episode_id=eid)
    p = entry.payload
    if entry.op == "record_pattern_use":
        return BatchedWrite(
            "record_pattern_use",
            pattern_ids=[uuid.UUID(i) for i in p["ids"]],
            applied=bool(p["applied"]),
            success=bool(p["success"]),
        )
    if entry.op == "store_embeddings":
        rows = [(uuid.UUID(i), decode_embedding(e)) for i, e in p["rows"]]
        return BatchedWrite("store_embeddings", embeddings=rows)
    raise SelfLearningMemoryError(f"Unknown outbox operation {entry.op!r}.")
