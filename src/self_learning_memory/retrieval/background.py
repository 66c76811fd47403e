"""Episode embedding in the background (``embeddings.background``, on by default).

A completion is acknowledged once the episode is durable in the store, without its vector;
:class:`EmbeddingWorker` then embeds the completed episodes that have no vector of the current
identity, in batches (what accumulated while the previous batch was embedded), off the event
loop (the provider runs in a thread), and writes each batch in one transaction. Nothing
acknowledged can be lost: the work list is the store itself (completed episodes without a
vector), so an episode whose process died before its vector was written gets one when any
memory on that store starts (the worker looks at start-up) or completes an episode. After a
completion the worker reads this process's pending episodes by id, writes their vectors, then
counts the store (``embedding_status``: completed episodes against vectors of this identity)
and searches it for the others only if that count says some are missing: a completion costs
the store a count, not a search of every completed episode (at 100K episodes on SQLite 15-23
against 87 ms).

Until then retrieval still finds the episode lexically (the full-text search is not skipped
while vectors are pending: :meth:`~.vectors.VectorSearch.covers_store`), and says so: results
carry ``vector:pending:<n>`` (n episodes of this process wait for their vector) and an episode
without its vector yet ``vector:episode-pending``; health reports ``pending_vectors``.

A failed batch (provider down) is retried after ``RETRY_S`` or at the next completion; the
failure is counted in :attr:`~.vectors.VectorSearch.errors` and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from .vectors import VectorSearch

__all__ = ["EmbeddingWorker"]

log = logging.getLogger(__name__)
RETRY_S = 5.0  # after a failed batch
STOP_GRACE_S = 10.0  # close() lets the worker embed what is pending for this long


class EmbeddingWorker:
    """Owns one task that embeds pending episodes in batches of ``batch_size``; started and
    stopped by the memory's lifecycle."""

    def __init__(self, vectors: VectorSearch, batch_size: int) -> None:
        self._vectors = vectors
        self._batch_size = batch_size
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.embedded = 0  # episodes embedded by this worker
        self.batches = 0

    @property
    def pending(self) -> set[uuid.UUID]:
        """This process's acknowledged episodes whose vector is not written yet."""
        return self._vectors.pending

    def start(self) -> None:
        """Start the task; it looks for episodes without a vector at once (recovery)."""
        self._stopping = False
        self._idle.clear()
        self._wake.set()
        self._task = asyncio.create_task(self._run(), name="episode-embedding")

    def submit(self, episode_id: uuid.UUID) -> None:
        """A completed episode is durable without its vector: embed it soon."""
        self._vectors.pending.add(episode_id)
        self._idle.clear()
        self._wake.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is pending here; True if that happened within ``timeout`` s."""
        if self._task is None or self._task.done():
            return not self.pending
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        return self._idle.is_set() and not self.pending

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Embed what is pending (up to ``grace_s``), then stop. What is left is not lost: the
        next start embeds it."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), grace_s)
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                while await self._batch():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._vectors.errors += 1
                log.warning("background episode embedding failed (retrying): %s", exc)
                if self._stopping:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), RETRY_S)
                self._wake.set()
                continue
            # everything in the store has its vector now (episodes completed meanwhile woke us)
            if not self._wake.is_set():
                self._vectors.pending.clear()
                self._idle.set()
            if self._stopping:
                return

    async def _batch(self) -> bool:
        """Embed and write one batch of completed episodes without a vector; whether there may
        be more. This process's pending episodes are read by id; once they have their vectors
        the store is asked whether it lacks others (counts: on SQLite those its triggers keep),
        and only then searched for them (``embed_missing``; at start-up too, with nothing
        pending). A search that found fewer than a batch ends it (the store had no more then;
        an episode completed since woke the worker)."""
        vectors = self._vectors
        if vectors.pending:
            count = await vectors.embed_pending(self._batch_size)
            self._count(count)
            if vectors.pending:
                return True
            if await vectors.covered_after_writes():
                return False
        count = await vectors.embed_missing(self._batch_size)
        self._count(count)
        return count >= self._batch_size

    def _count(self, embedded: int) -> None:
        if embedded:
            self._vectors.vectors_added()
            self.embedded += embedded
            self.batches += 1
