"""The StorageBackend protocol: what a durable store must do for the memory.

The embedded SQLite store implements it; the PostgreSQL and Turso stores implement the same
protocol. A backend is an async context manager. Every method may raise
:class:`~self_learning_memory.errors.StorageError` subclasses; validation-type failures that
can only be detected inside a transaction (a step number already taken, an episode completed
by another process) raise the matching typed error and write nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict

from ..core.sandbox_audit import SandboxRun, SandboxRunFilters
from ..core.types import Episode, ExecutionStep, TaskContext, TaskType
from ..patterns.effectiveness import PatternUsage
from ..patterns.types import AnyPattern, Heuristic

__all__ = [
    "CompletionRecord",
    "EmbeddingRecord",
    "EmbeddingStatus",
    "EpisodeCandidate",
    "EpisodeFilters",
    "EpisodeState",
    "HealthReport",
    "PatternFilters",
    "SearchDocument",
    "StorageBackend",
    "StorageStats",
]

OutcomeType = Literal["success", "partial_success", "failure"]


class EpisodeFilters(BaseModel):
    """Filters applied in SQL. ``None`` means "any"."""

    model_config = ConfigDict(extra="forbid")

    task_type: TaskType | None = None
    domain: str | None = None
    language: str | None = None
    framework: str | None = None
    outcome: OutcomeType | None = None
    completed: bool | None = None
    tag: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class PatternFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pattern_type: (
        Literal["tool_sequence", "decision_point", "error_recovery", "context_pattern"] | None
    ) = None
    domain: str | None = None
    min_success_rate: float = 0.0
    min_occurrences: int = 1
    min_confidence: float = 0.0  # success rate x sqrt(sample size)


@dataclass(frozen=True)
class EpisodeState:
    """What the memory needs to validate a step without loading the episode."""

    episode_id: uuid.UUID
    completed: bool
    step_count: int
    last_step_number: int
    learning_status: str | None = None


@dataclass(frozen=True)
class EpisodeCandidate:
    """A completed episode as retrieval sees it before loading it whole."""

    episode_id: uuid.UUID
    task_description: str
    task_type: TaskType
    context: TaskContext
    outcome_type: str | None
    reward_total: float | None
    end_time: datetime | None
    tools: tuple[str, ...]
    lexical: float | None = None  # bm25 relevance, higher is better; None if not a text match
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchDocument:
    """The text of an episode as the full-text index sees it."""

    description: str
    steps: str
    outcome: str
    reflection: str


@dataclass(frozen=True)
class EmbeddingRecord:
    """An episode's vector under one embedding identity (float32 bytes, L2-normalised)."""

    identity: str
    content_hash: str
    dimensions: int
    vector: bytes
    truncated: bool = False


@dataclass(frozen=True)
class EmbeddingStatus:
    identity: str
    embedded: int  # completed episodes with a vector of this identity
    missing: int  # completed episodes without one
    other_identities: int  # vectors of another model or dimension (need re-embedding)


@dataclass
class CompletionRecord:
    """Everything one completion writes, in one transaction.

    mode ``inline``: outcome, reward, reflection, patterns and heuristics at once.
    mode ``queued``: only the outcome, plus a durable learning job.
    mode ``learned``: a queued episode's reward, reflection, patterns and heuristics.
    """

    episode: Episode
    mode: Literal["inline", "queued", "learned"]
    search: SearchDocument
    patterns: list[AnyPattern] = field(default_factory=list)
    heuristics: list[Heuristic] = field(default_factory=list)
    success: bool = False  # whether the outcome counts as an application success
    embedding: EmbeddingRecord | None = None


@dataclass(frozen=True)
class StorageStats:
    episodes: int
    completed: int
    steps: int
    patterns: int
    heuristics: int
    learning_queue_depth: int
    size_bytes: int
    pattern_occurrences: int = 0  # sum of occurrence counts: how often patterns were seen
    pattern_success_rate: float = 0.0  # mean over stored patterns
    pattern_effectiveness: float = 0.0  # mean over stored patterns
    outcomes: dict[str, int] = field(default_factory=dict)  # completed episodes per outcome type
    degraded: bool = False  # counted from local copies while the primary was unreachable


@dataclass(frozen=True)
class HealthReport:
    name: str
    healthy: bool
    latency_ms: float
    details: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class StorageBackend(Protocol):
    """A durable store. All methods are coroutines; all I/O runs off the event loop."""

    name: str

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc_info: object) -> None: ...
    async def initialize(self) -> None: ...
    async def close(self) -> None: ...

    # episodes
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
    async def delete_episode(self, episode_id: uuid.UUID) -> bool: ...

    # retrieval candidates (bounded, indexed; never a full scan)
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

    # embeddings
    async def store_embeddings(self, rows: list[tuple[uuid.UUID, EmbeddingRecord]]) -> None: ...
    async def embeddings_since(
        self, identity: str, after: int, limit: int
    ) -> list[tuple[int, uuid.UUID, bytes, bool]]: ...
    async def vector_by_hash(self, identity: str, content_hash: str) -> bytes | None: ...
    async def embedding_status(self, identity: str) -> EmbeddingStatus: ...
    async def episodes_missing_embedding(self, identity: str, limit: int) -> list[Episode]: ...

    # patterns and heuristics
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

    # durable learning queue
    async def claim_learning_job(self, worker: str, claim_timeout_s: float) -> uuid.UUID | None: ...
    async def fail_learning_job(
        self, episode_id: uuid.UUID, error: str, max_attempts: int
    ) -> bool: ...
    async def learning_queue_depth(self) -> int: ...

    # the code sandbox's audit trail (core/sandbox_audit.py)
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

    # operations
    async def stats(self) -> StorageStats: ...
    async def health_check(self) -> HealthReport: ...
