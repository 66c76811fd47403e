"""The small protocols a durable store is made of.

Each names one part of what the memory asks of a store: episodes and their steps, retrieval
candidates, patterns and heuristics, the durable learning queue, embeddings, and the sandbox's
audit trail, agent executions. :class:`~.backend.StorageBackend` is their combination plus the lifecycle,
operations and :attr:`~.backend.StorageBackend.capabilities`; a component that needs only one
part (the retriever reads candidates, the learning queue claims jobs) can ask for that part.
All methods are coroutines; all I/O runs off the event loop.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from datetime import datetime

    from ..model.agents import AgentAggregates, AgentExecution
    from ..model.episode import Episode, ExecutionStep, TaskContext
    from ..model.pattern import AnyPattern, Heuristic
    from ..model.records import (
        CompletionRecord,
        EmbeddingRecord,
        EmbeddingStatus,
        EpisodeCandidate,
        EpisodeFilters,
        EpisodeState,
        PatternFilters,
    )
    from ..model.sandbox_run import SandboxRun, SandboxRunFilters
    from ..model.timeline import OutcomeWindow
    from ..model.usage import EpisodeUsage, PatternUsage

__all__ = [
    "AgentExecutionStore",
    "CandidateSource",
    "EmbeddingStore",
    "EpisodeStore",
    "FeedbackStore",
    "LearningQueueStore",
    "PatternStore",
    "SandboxRunStore",
]


@runtime_checkable
class EpisodeStore(Protocol):
    """Episodes: created, extended by steps, completed in one transaction, read, deleted."""

    async def create_episode(self, episode: Episode) -> None: ...
    async def get_episode_state(self, episode_id: uuid.UUID) -> EpisodeState | None: ...
    async def append_steps(
        self, episode_id: uuid.UUID, steps: list[ExecutionStep]
    ) -> EpisodeState: ...
    async def commit_completion(self, record: CompletionRecord) -> Episode: ...
    async def get_episode(self, episode_id: uuid.UUID) -> Episode | None: ...
    async def get_episodes(self, episode_ids: list[uuid.UUID]) -> list[Episode]: ...
    async def list_episodes(
        self, filters: EpisodeFilters, limit: int, offset: int
    ) -> list[Episode]: ...
    async def count_episodes(self, filters: EpisodeFilters) -> int: ...
    async def outcome_timeline(
        self, window: str, since: datetime | None, until: datetime | None
    ) -> list[OutcomeWindow]:
        """Completed episodes per hour, day or week (by completion time) with their outcomes,
        aggregated in the database (the learning curve)."""
        ...

    async def delete_episode(self, episode_id: uuid.UUID) -> bool: ...


@runtime_checkable
class CandidateSource(Protocol):
    """Retrieval candidates: bounded, indexed reads (never a full scan), and the version that
    tells a cache of answers when they are stale."""

    async def lexical_candidates(
        self, terms: list[str], filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]: ...
    async def context_candidates(
        self, context: TaskContext, filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]: ...
    async def candidates_by_ids(
        self, episode_ids: list[uuid.UUID], filters: EpisodeFilters
    ) -> list[EpisodeCandidate]: ...
    async def data_version(self) -> int: ...
    async def episode_usage(self, episode_ids: list[uuid.UUID]) -> dict[uuid.UUID, EpisodeUsage]:
        """The retrieval-feedback counters of those episodes that have any (the ranking's
        usefulness component)."""
        ...


@runtime_checkable
class EmbeddingStore(Protocol):
    """Episode vectors, one per episode and embedding identity."""

    async def store_embeddings(self, rows: list[tuple[uuid.UUID, EmbeddingRecord]]) -> None: ...
    async def embeddings_since(
        self, identity: str, after: int, limit: int
    ) -> list[tuple[int, uuid.UUID, bytes, bool]]: ...
    async def vector_by_hash(self, identity: str, content_hash: str) -> bytes | None: ...
    async def embedding_status(self, identity: str) -> EmbeddingStatus: ...
    async def episodes_missing_embedding(self, identity: str, limit: int) -> list[Episode]: ...


@runtime_checkable
class PatternStore(Protocol):
    """Patterns with their usage, and heuristics (written by a completion, read here)."""

    async def pattern_candidates(
        self, context: TaskContext, limit: int
    ) -> list[tuple[AnyPattern, PatternUsage]]: ...
    async def get_pattern(
        self, pattern_id: uuid.UUID
    ) -> tuple[AnyPattern, PatternUsage] | None: ...
    async def list_patterns(
        self, filters: PatternFilters, limit: int, offset: int
    ) -> list[tuple[AnyPattern, PatternUsage]]: ...
    async def record_pattern_use(
        self, pattern_ids: list[uuid.UUID], *, applied: bool, success: bool
    ) -> None: ...
    async def pattern_episodes(
        self, pattern_ids: list[uuid.UUID], per_pattern: int
    ) -> dict[uuid.UUID, list[uuid.UUID]]: ...
    async def decay_patterns(self, *, force: bool, min_effectiveness: float) -> dict[str, int]: ...
    async def heuristic_candidates(self, context: TaskContext, limit: int) -> list[Heuristic]: ...
    async def get_heuristic(self, heuristic_id: uuid.UUID) -> Heuristic | None: ...
    async def list_heuristics(self, limit: int, offset: int) -> list[Heuristic]: ...


@runtime_checkable
class FeedbackStore(Protocol):
    """Retrieval feedback: which retrieved episodes and patterns a task used, counted with the
    task's outcome once it is completed (``storage/sql/feedback.py``)."""

    async def record_retrieval_use(
        self,
        task_id: uuid.UUID,
        episode_ids: list[uuid.UUID],
        pattern_ids: list[uuid.UUID],
        helpful: bool | None,
    ) -> int:
        """Link the task to what it used and, if it is completed, count every link not counted
        yet with its outcome; returns how many links were counted now."""
        ...


@runtime_checkable
class LearningQueueStore(Protocol):
    """The durable learning queue: a queued completion's job, claimed by one worker at a time."""

    async def claim_learning_job(self, worker: str, claim_timeout_s: float) -> uuid.UUID | None: ...
    async def fail_learning_job(
        self, episode_id: uuid.UUID, error: str, max_attempts: int
    ) -> bool: ...
    async def learning_queue_depth(self) -> int: ...


@runtime_checkable
class SandboxRunStore(Protocol):
    """The code sandbox's audit trail (``core/sandbox_audit.py``)."""

    async def record_sandbox_run(self, run: SandboxRun, keep: int) -> int:
        """Insert ``run`` and prune to the newest ``keep`` runs in one transaction; returns
        how many were pruned."""
        ...

    async def list_sandbox_runs(
        self, filters: SandboxRunFilters, limit: int
    ) -> list[SandboxRun]: ...
    async def count_sandbox_runs(self, filters: SandboxRunFilters) -> dict[str, dict[str, int]]:
        """Runs per backend and outcome: ``{backend: {outcome: n}}``."""
        ...


@runtime_checkable
class AgentExecutionStore(Protocol):
    """Agent executions (``core/agents.py``): recorded one by one (and by the completion of an
    episode with an agent), aggregated in SQL."""

    async def record_agent_execution(self, execution: AgentExecution) -> bool:
        """Insert it unless its ``execution_id`` is stored; whether it was inserted."""
        ...

    async def agent_aggregates(
        self, since: datetime | None, window_us: int, series_from: datetime
    ) -> AgentAggregates:
        """Per agent totals and streaks since ``since`` and the series from ``series_from``
        in windows of ``window_us`` microseconds, read in one snapshot."""
        ...

    async def agent_executions_after(
        self, after: int, limit: int
    ) -> list[tuple[int, AgentExecution]]:
        """Up to ``limit`` executions after insertion number ``after``, oldest first, each with
        its number (``storage migrate`` copies them in order)."""
        ...
