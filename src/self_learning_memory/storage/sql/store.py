"""The :class:`~self_learning_memory.storage.backend.StorageBackend` methods the SQL stores
share, written once over a :class:`~.dialect.Dialect`.

A concrete store is this class plus a connection (how a program runs: :meth:`SQLStore._read`,
:meth:`SQLStore._snapshot`, :meth:`SQLStore._write`), a schema (its migrations), its full-text
index (:class:`~.learning_sql.FullText`, and its own ``lexical_candidates``) and what only it
has (health details, PostgreSQL's change notifications).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Self, TypeVar

from ...model.agents import AgentAggregates, AgentExecution
from ...model.episode import Episode, ExecutionStep, TaskContext
from ...model.pattern import AnyPattern, Heuristic
from ...model.records import (
    CompletionRecord,
    EmbeddingRecord,
    EmbeddingStatus,
    EpisodeCandidate,
    EpisodeFilters,
    EpisodeState,
    PatternFilters,
    StorageStats,
)
from ...model.sandbox_run import SandboxRun, SandboxRunFilters
from ...model.timeline import OutcomeWindow
from ...model.usage import EpisodeUsage, PatternUsage
from ..batch import BatchedWrite
from . import (
    agent_executions,
    batch_sql,
    episodes,
    feedback,
    learning_sql,
    queries,
    sandbox_runs,
    timeline,
)
from .dialect import Dialect
from .learning_sql import FullText
from .program import Op, ProgramFactory

__all__ = ["SQLStore"]

T = TypeVar("T")


class SQLStore:
    """The shared store logic; subclasses supply the connection and what differs."""

    name: str
    dialect: Dialect
    search: FullText

    # -- the connection (provided by the concrete store) ----------------------------------
    async def _read(self, program: ProgramFactory[T]) -> T:
        """Run a program outside a write transaction (each statement sees the latest commits)."""
        raise NotImplementedError

    async def _snapshot(self, program: ProgramFactory[T]) -> T:
        """Run a program in one read snapshot (its statements agree with each other)."""
        raise NotImplementedError

    async def _write(self, program: ProgramFactory[T], *, retrieval: bool = True) -> T:
        """Run a program in one write transaction (all of it or nothing); reruns build a fresh
        program. ``retrieval=False``: the write changes nothing retrieval reads (an audit
        record), so a store that counts data versions itself need not count it."""
        raise NotImplementedError

    def _announce(self, op: str, episode_id: str) -> list[Op]:
        """Statements announcing an episode change to other processes (none by default)."""
        return []

    async def initialize(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.initialize()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- episodes ------------------------------------------------------------------------
    async def create_episode(self, episode: Episode) -> None:
        await self._write(lambda: episodes.create_episode(self.dialect, episode))

    async def get_episode_state(self, episode_id: uuid.UUID) -> EpisodeState | None:
        return await self._read(lambda: episodes.episode_state(episode_id))

    async def append_steps(self, episode_id: uuid.UUID, steps: list[ExecutionStep]) -> EpisodeState:
        return await self._write(
            lambda: episodes.append_steps(self.dialect, self._announce, episode_id, steps)
        )

    async def commit_completion(self, record: CompletionRecord) -> Episode:
        return await self._write(
            lambda: learning_sql.commit_completion(
                self.dialect, self.search, self._announce, record
            )
        )

    async def write_batch(self, writes: Sequence[BatchedWrite]) -> None:
        """Apply ``writes`` in order, each in its idempotent form, in one transaction
        (``storage/batch.py``)."""
        if writes:
            await self._write(
                lambda: batch_sql.write_batch(self.dialect, self.search, self._announce, writes)
            )

    async def get_episode(self, episode_id: uuid.UUID) -> Episode | None:
        found = await self.get_episodes([episode_id])
        return found[0] if found else None

    async def get_episodes(self, episode_ids: list[uuid.UUID]) -> list[Episode]:
        return await self._snapshot(lambda: episodes.get_episodes(self.dialect, episode_ids))

    async def list_episodes(
        self, filters: EpisodeFilters, limit: int, offset: int
    ) -> list[Episode]:
        return await self._snapshot(
            lambda: episodes.list_episodes(self.dialect, filters, limit, offset)
        )

    async def count_episodes(self, filters: EpisodeFilters) -> int:
        return await self._read(lambda: episodes.count_episodes(self.dialect, filters))

    async def outcome_timeline(
        self, window: str, since: datetime | None, until: datetime | None
    ) -> list[OutcomeWindow]:
        return await self._read(
            lambda: timeline.outcome_timeline(self.dialect, window, since, until)
        )

    async def delete_episode(self, episode_id: uuid.UUID) -> bool:
        return await self._write(lambda: episodes.delete_episode(self._announce, episode_id))

    # -- retrieval candidates ------------------------------------------------------------
    async def context_candidates(
        self, context: TaskContext, filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]:
        return await self._read(
            lambda: queries.context_candidates(self.dialect, context, filters, limit)
        )

    async def candidates_by_ids(
        self, episode_ids: list[uuid.UUID], filters: EpisodeFilters
    ) -> list[EpisodeCandidate]:
        return await self._read(
            lambda: queries.candidates_by_ids(self.dialect, episode_ids, filters)
        )

    # -- patterns and heuristics ---------------------------------------------------------
    async def pattern_candidates(
        self, context: TaskContext, limit: int
    ) -> list[tuple[AnyPattern, PatternUsage]]:
        return await self._read(lambda: queries.pattern_candidates(self.dialect, context, limit))

    async def get_pattern(self, pattern_id: uuid.UUID) -> tuple[AnyPattern, PatternUsage] | None:
        return await self._read(lambda: queries.get_pattern(self.dialect, pattern_id))

    async def pattern_episodes(
        self, pattern_ids: list[uuid.UUID], per_pattern: int
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        """The episodes each pattern was extracted from (its evidence), newest first."""
        return await self._read(
            lambda: queries.pattern_episodes(self.dialect, pattern_ids, per_pattern)
        )

    async def list_patterns(
        self, filters: PatternFilters, limit: int, offset: int
    ) -> list[tuple[AnyPattern, PatternUsage]]:
        return await self._read(lambda: queries.list_patterns(self.dialect, filters, limit, offset))

    async def record_pattern_use(
        self, pattern_ids: list[uuid.UUID], *, applied: bool, success: bool
    ) -> None:
        if pattern_ids:
            await self._write(
                lambda: learning_sql.record_pattern_use(
                    self.dialect, pattern_ids, applied=applied, success=success
                )
            )

    async def decay_patterns(self, *, force: bool, min_effectiveness: float) -> dict[str, int]:
        return await self._write(
            lambda: learning_sql.decay(
                self.dialect, force=force, min_effectiveness=min_effectiveness
            )
        )

    async def heuristic_candidates(self, context: TaskContext, limit: int) -> list[Heuristic]:
        return await self._read(lambda: queries.heuristic_candidates(self.dialect, context, limit))

    async def get_heuristic(self, heuristic_id: uuid.UUID) -> Heuristic | None:
        return await self._read(lambda: queries.get_heuristic(self.dialect, heuristic_id))

    async def list_heuristics(self, limit: int, offset: int) -> list[Heuristic]:
        return await self._read(lambda: queries.list_heuristics(self.dialect, limit, offset))

    # -- learning queue ------------------------------------------------------------------
    async def claim_learning_job(self, worker: str, claim_timeout_s: float) -> uuid.UUID | None:
        return await self._write(
            lambda: queries.claim_learning_job(self.dialect, worker, claim_timeout_s)
        )

    async def fail_learning_job(self, episode_id: uuid.UUID, error: str, max_attempts: int) -> bool:
        """Release a failed job for another try; give up (and say so) after ``max_attempts``."""
        return await self._write(
            lambda: queries.fail_learning_job(self.dialect, episode_id, error, max_attempts)
        )

    async def learning_queue_depth(self) -> int:
        return await self._read(lambda: queries.count("SELECT count(*) FROM learning_jobs"))

    # -- vectors -------------------------------------------------------------------------
    async def store_embeddings(self, rows: list[tuple[uuid.UUID, EmbeddingRecord]]) -> None:
        """Write a batch of vectors in one transaction (all of them or none)."""
        if rows:
            await self._write(lambda: learning_sql.store_embeddings(self.dialect, rows))

    async def embeddings_since(
        self, identity: str, after: int, limit: int
    ) -> list[tuple[int, uuid.UUID, bytes, bool]]:
        return await self._read(
            lambda: queries.embeddings_since(self.dialect, identity, after, limit)
        )

    async def vector_by_hash(self, identity: str, content_hash: str) -> bytes | None:
        return await self._read(
            lambda: queries.vector_by_hash(self.dialect, identity, content_hash)
        )

    async def embedding_status(self, identity: str) -> EmbeddingStatus:
        return await self._read(lambda: queries.embedding_status(self.dialect, identity))

    async def episodes_missing_embedding(self, identity: str, limit: int) -> list[Episode]:
        return await self._snapshot(
            lambda: queries.episodes_missing_embedding(self.dialect, identity, limit)
        )

    # -- statistics ----------------------------------------------------------------------
    async def stats(self) -> StorageStats:
        return await self._snapshot(lambda: queries.stats(self.dialect))

    # -- retrieval feedback ----------------------------------------------------------------
    async def record_retrieval_use(
        self,
        task_id: uuid.UUID,
        episode_ids: list[uuid.UUID],
        pattern_ids: list[uuid.UUID],
        helpful: bool | None,
    ) -> int:
        return await self._write(
            lambda: feedback.record_retrieval_use(
                self.dialect, task_id, episode_ids, pattern_ids, helpful
            )
        )

    async def episode_usage(self, episode_ids: list[uuid.UUID]) -> dict[uuid.UUID, EpisodeUsage]:
        return await self._read(lambda: feedback.episode_usage(self.dialect, episode_ids))

    # -- the code sandbox's audit trail ----------------------------------------------------
    async def record_sandbox_run(self, run: SandboxRun, keep: int) -> int:
        return await self._write(
            lambda: sandbox_runs.record_sandbox_run(self.dialect, run, keep), retrieval=False
        )

    async def list_sandbox_runs(self, filters: SandboxRunFilters, limit: int) -> list[SandboxRun]:
        return await self._read(
            lambda: sandbox_runs.list_sandbox_runs(self.dialect, filters, limit)
        )

    async def count_sandbox_runs(self, filters: SandboxRunFilters) -> dict[str, dict[str, int]]:
        return await self._read(lambda: sandbox_runs.count_sandbox_runs(self.dialect, filters))

    # -- agent executions ------------------------------------------------------------------
    async def record_agent_execution(self, execution: AgentExecution) -> bool:
        return await self._write(
            lambda: agent_executions.record_execution(self.dialect, execution), retrieval=False
        )

    async def agent_aggregates(
        self, since: datetime | None, window_us: int, series_from: datetime
    ) -> AgentAggregates:
        return await self._snapshot(
            lambda: agent_executions.aggregate(self.dialect, since, window_us, series_from)
        )

    async def agent_executions_after(
        self, after: int, limit: int
    ) -> list[tuple[int, AgentExecution]]:
        return await self._read(
            lambda: agent_executions.executions_after(self.dialect, after, limit)
        )
