"""The asynchronous learning queue: completion returns after the durable write of the outcome,
and owned workers run extraction, reward and reflection afterwards.

Jobs live in the durable store (``learning_jobs``), written in the same transaction as the
outcome, so queued work survives a crash or restart: any process with workers picks it up.
A claimed job whose worker died is reclaimed after ``claim_timeout_s``. A job that keeps failing
is given up after ``max_attempts`` and the episode is marked so. Backpressure: when the queue
holds ``max_queue_size`` jobs, completion learns inline instead (the caller does the work), so
the queue never grows without bound and nothing is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Awaitable, Callable

from pydantic import BaseModel

from ..config import QueueConfig
from ..storage.backend import StorageBackend

__all__ = ["LearningQueue", "QueueStats"]

log = logging.getLogger(__name__)
STOP_GRACE_S = 10.0


class QueueStats(BaseModel):
    enabled: bool
    total_enqueued: int
    total_processed: int
    total_failed: int
    total_inline_backpressure: int
    current_queue_size: int
    active_workers: int


class LearningQueue:
    def __init__(
        self,
        storage: StorageBackend,
        config: QueueConfig,
        process: Callable[[uuid.UUID], Awaitable[None]],
    ) -> None:
        self._storage = storage
        self._config = config
        self._process = process
        self._workers: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self._stopping = False
        self._name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.enqueued = self.processed = self.failed = self.inline = 0

    def start(self) -> None:
        for i in range(self._config.worker_count):
            task = asyncio.create_task(self._worker(f"{self._name}-{i}"), name=f"learning-{i}")
            self._workers.append(task)

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Claim no new job, let the jobs in flight finish (up to ``grace_s``), then cancel.

        Cancelling a worker mid-job would leave its claim in the store, and no process could
        learn from that episode until ``claim_timeout_s`` had passed."""
        self._stopping = True
        self._wake.set()
        if self._workers:
            _done, pending = await asyncio.wait(self._workers, timeout=grace_s)
            for task in pending:
                task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()

    def notify(self) -> None:
        self.enqueued += 1
        self._wake.set()

    async def has_room(self) -> bool:
        return await self._storage.learning_queue_depth() < self._config.max_queue_size

    async def _worker(self, name: str) -> None:
        poll = self._config.poll_interval_ms / 1000
        while not self._stopping:
            try:
                episode_id = await self._storage.claim_learning_job(
                    name, self._config.claim_timeout_s
                )
            except Exception:
                log.exception("learning worker %s could not claim a job", name)
                episode_id = None
            if episode_id is None:
                if self._stopping:
                    break
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=poll)
                continue
            try:
                await self._process(episode_id)
                self.processed += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failed += 1
                log.exception("learning from episode %s failed", episode_id)
                retry = await self._storage.fail_learning_job(
                    episode_id, f"{type(exc).__name__}: {exc}", self._config.max_attempts
                )
                if not retry:
                    log.error("gave up learning from episode %s", episode_id)
            async with self._progress:
                self._progress.notify_all()

    async def wait_until_empty(self, timeout: float) -> bool:
        """Wait until no job is queued; True if that happened within ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await self._storage.learning_queue_depth() > 0:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            async with self._progress:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._progress.wait(), timeout=min(remaining, 0.25))
        return True

    async def stats(self) -> QueueStats:
        return QueueStats(
            enabled=True,
            total_enqueued=self.enqueued,
            total_processed=self.processed,
            total_failed=self.failed,
            total_inline_backpressure=self.inline,
            current_queue_size=await self._storage.learning_queue_depth(),
            active_workers=sum(1 for t in self._workers if not t.done()),
        )
