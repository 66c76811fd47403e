"""The write side of :class:`~.resilient.ResilientStorage`: through the guard, else journaled.

Every write goes to the primary through the :class:`~.guard.Guard`; a second attempt uses the
idempotent form of the write (``replay.py``), so a first attempt that committed but lost its
answer is not applied twice. While the primary is down (breaker open, or retries exhausted on a
recoverable error), a write is journaled in the :class:`~.outbox.Outbox` and acknowledged: the
caller gets success, the write is durable locally, and the outbox view answers reads of that
episode. While the outbox holds anything, new writes go behind it, so the primary sees every
write in the order it was acknowledged. Without an outbox, a write the primary cannot take
raises its recoverable error.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from .guard import recoverable
from .outbox import encode_embedding, encode_episode, encode_record, encode_steps
from .outbox_view import completed_view
from .replay import append_once, complete_once, create_once

if TYPE_CHECKING:
    from ..model.agents import AgentExecution
    from ..model.episode import Episode, ExecutionStep
    from ..model.records import CompletionRecord, EmbeddingRecord, EpisodeState
    from ..model.sandbox_run import SandboxRun
    from .guard import Guard
    from .outbox_view import OutboxView
    from .replay import OutboxReplayer

__all__ = ["ResilientWrites"]


class ResilientWrites:
    """The writes of one primary store, journaled by ``replayer``'s outbox while it is down."""

    def __init__(self, guard: Guard, view: OutboxView, replayer: OutboxReplayer | None) -> None:
        self.guard = guard
        self.primary = guard.primary
        self.view = view
        self.replayer = replayer
        self.queued = 0  # writes this process journaled

    async def _backlog(self, eid: uuid.UUID | None = None) -> bool:
        """Whether a new write must go behind journaled ones (to keep the order)."""
        if self.replayer is None:
            return False
        if eid is not None and self.view.has_pending(eid):
            return True
        return await asyncio.to_thread(self.replayer.outbox.pending) > 0

    def _queueable(self, exc: BaseException) -> bool:
        return self.replayer is not None and recoverable(exc)

    async def _enqueue(self, op: str, eid: uuid.UUID | None, payload: dict[str, Any]) -> None:
        assert self.replayer is not None
        await asyncio.to_thread(self.replayer.outbox.append, op, eid, payload)
        self.queued += 1
        self.replayer.wake()

    async def create_episode(self, episode: Episode) -> None:
        primary = self.primary
        if not await self._backlog(episode.episode_id):
            try:
                await self.guard.call(
                    "create_episode",
                    lambda: primary.create_episode(episode),
                    lambda: create_once(primary, episode),
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
        primary = self.primary
        if not await self._backlog(episode_id):
            try:
                state = await self.guard.call(
                    "append_steps",
                    lambda: primary.append_steps(episode_id, steps),
                    lambda: append_once(primary, episode_id, steps),
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
        primary = self.primary
        eid = record.episode.episode_id
        if not await self._backlog(eid):
            try:
                final = await self.guard.call(
                    "commit_completion",
                    lambda: primary.commit_completion(record),
                    lambda: complete_once(primary, record),
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
                deleted = await self.guard.call(
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
                await self.guard.call(
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
                await self.guard.call(
                    "store_embeddings", lambda: self.primary.store_embeddings(rows)
                )
                return
            except Exception as exc:
                if not self._queueable(exc):
                    raise
        payload = {"rows": [[str(eid), encode_embedding(emb)] for eid, emb in rows]}
        await self._enqueue("store_embeddings", None, payload)

    async def record_retrieval_use(
        self,
        task_id: uuid.UUID,
        episode_ids: list[uuid.UUID],
        pattern_ids: list[uuid.UUID],
        helpful: bool | None,
    ) -> int:
        """Through the breaker and retries, never journaled: it reads the task's state to
        validate the ids, so while the primary is down the caller gets the error."""
        return await self.guard.call(
            "record_retrieval_use",
            lambda: self.primary.record_retrieval_use(task_id, episode_ids, pattern_ids, helpful),
        )

    async def record_sandbox_run(self, run: SandboxRun, keep: int) -> int:
        """Through the breaker and retries like every write, but never journaled: while the
        primary is down an audit record is lost (the caller logs and counts it) rather than
        queued behind the episodes in the outbox."""
        return await self.guard.call(
            "record_sandbox_run", lambda: self.primary.record_sandbox_run(run, keep)
        )

    async def record_agent_execution(self, execution: AgentExecution) -> bool:
        """Through the breaker and retries (a retry inserts it once: it is keyed by its id),
        never journaled: while the primary is down the caller gets the error (an episode's
        execution is written by its completion, which is journaled)."""
        return await self.guard.call(
            "record_agent_execution", lambda: self.primary.record_agent_execution(execution)
        )
