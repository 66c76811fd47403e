"""The learning side of completion: what :meth:`~.memory.SelfLearningMemory.complete_episode`
writes once the outcome is checked.

Inline, the episode's patterns, heuristics, reward and reflection (:func:`~..learning.learner.learn`)
and its embedding are written with the outcome in one transaction. With the learning queue on and
room in it, the outcome and a learning job are written first and the queue's worker learns later
(:meth:`Learner.learn_queued`). Either way the write is read back and compared (verify after
write). With ``embeddings.background`` on (the default) the vector is not part of it: the
background worker (``retrieval/background.py``) embeds the episode once it is durable.
"""

from __future__ import annotations

import asyncio
import uuid

from ..errors import DataIntegrityError
from ..learning.learner import learn
from ..learning.queue import LearningQueue
from ..model.episode import Episode
from ..model.records import CompletionRecord
from ..storage.codec import search_document
from .parts import MemoryParts

__all__ = ["Learner"]


class Learner:
    def __init__(self, parts: MemoryParts) -> None:
        self._parts = parts

    def start(self) -> None:
        """Start the learning queue's worker when the queue is enabled."""
        parts = self._parts
        if parts.config.queue.enabled:
            parts.queue = LearningQueue(parts.storage, parts.config.queue, self.learn_queued)
            parts.queue.start()

    async def stop(self) -> None:
        if self._parts.queue is not None:
            await self._parts.queue.stop()

    async def commit(self, done: Episode) -> Episode:
        """Write the completed episode ``done``: queued when the queue has room, else learned
        inline; then verify it. Returns the stored episode."""
        storage = self._parts.storage
        queue = self._parts.queue
        if queue is not None and await queue.has_room():
            record = CompletionRecord(done, mode="queued", search=search_document(done))
            final = await storage.commit_completion(record)
            queue.notify()
        else:
            if queue is not None:
                queue.inline += 1
            record = await asyncio.to_thread(learn, done, self._parts.config.extraction)
            await self._attach_embedding(record)
            final = await storage.commit_completion(record)
        await self._verify(final, learned_later=record.mode == "queued")
        self._embed_later(record)
        return final

    async def wait_for_learning(self, timeout: float) -> bool:
        if self._parts.queue is None:
            return True
        return await self._parts.queue.wait_until_empty(timeout)

    async def learn_queued(self, eid: uuid.UUID) -> None:
        """The queue worker's job: learn from a completed episode and write what it learned."""
        storage = self._parts.storage
        episode = await storage.get_episode(eid)
        if episode is None:
            return  # deleted while queued: the job went with it
        record = await asyncio.to_thread(
            learn, episode, self._parts.config.extraction, mode="learned"
        )
        await self._attach_embedding(record)
        final = await storage.commit_completion(record)
        self._embed_later(record)
        cache = self._parts.cache
        if cache is not None:
            await asyncio.to_thread(cache.put, final)

    async def _attach_embedding(self, record: CompletionRecord) -> None:
        """Embed the episode now, unless the background worker will (after the commit)."""
        vectors = self._parts.vectors
        if vectors is not None and self._parts.embedding_worker is None:
            record.embedding = await vectors.embed_episode(record.episode)

    def _embed_later(self, record: CompletionRecord) -> None:
        """The episode is durable without its vector: hand it to the background worker."""
        worker = self._parts.embedding_worker
        if worker is not None and record.embedding is None:
            worker.submit(record.episode.episode_id)

    async def _verify(self, expected: Episode, *, learned_later: bool = False) -> None:
        """Read the episode back from the durable store and compare what completion wrote.
        A queued completion wrote no learning results (reward, reflection, patterns,
        heuristics): a learning worker, of this process or another, may already have added
        them by the time of the read, so only the outcome, end time and steps are compared."""
        stored = await self._parts.storage.get_episode(expected.episode_id)
        problems = []
        names = ["outcome", "end_time"]
        if not learned_later:
            names += ["reward", "reflection", "patterns", "heuristics"]
        if stored is None:
            problems.append("it is missing")
        else:
            for name in names:
                if getattr(stored, name) != getattr(expected, name):
                    problems.append(f"its {name} differs")
            if len(stored.steps) != len(expected.steps):
                problems.append(f"it has {len(stored.steps)} steps, not {len(expected.steps)}")
        if problems:
            raise DataIntegrityError(
                f"Verify-after-write failed for episode {expected.episode_id}: {', '.join(problems)}."
            )
