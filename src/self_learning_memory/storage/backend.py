"""The StorageBackend protocol: what a durable store must do for the memory.

It combines the small protocols of ``storage/protocols.py`` (episodes, candidates, patterns and
heuristics, retrieval feedback, learning queue, embeddings, sandbox runs, agent executions);
what a store offers beyond them is in its ``capabilities`` (``storage/capabilities.py``).

The embedded SQLite store implements it; the PostgreSQL and Turso stores implement the same
protocol. A backend is an async context manager. Every method may raise
:class:`~self_learning_memory.errors.StorageError` subclasses; validation-type failures that
can only be detected inside a transaction (a step number already taken, an episode completed
by another process) raise the matching typed error and write nothing. The data it takes and
returns is in :mod:`..model.records`.
"""

from __future__ import annotations

from typing import Protocol, Self, runtime_checkable

from ..model.records import HealthReport, StorageStats
from .capabilities import Capabilities
from .protocols import (
    AgentExecutionStore,
    CandidateSource,
    EmbeddingStore,
    EpisodeStore,
    FeedbackStore,
    LearningQueueStore,
    PatternStore,
    SandboxRunStore,
)

__all__ = ["StorageBackend"]


@runtime_checkable
class StorageBackend(
    EpisodeStore,
    CandidateSource,
    EmbeddingStore,
    PatternStore,
    FeedbackStore,
    LearningQueueStore,
    SandboxRunStore,
    AgentExecutionStore,
    Protocol,
):
    """A durable store: the small protocols of ``storage/protocols.py`` together, plus the
    lifecycle, operations and the optional capabilities. All methods are coroutines; all I/O
    runs off the event loop."""

    name: str

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc_info: object) -> None: ...
    async def initialize(self) -> None: ...
    async def close(self) -> None: ...

    # operations
    async def stats(self) -> StorageStats: ...
    async def health_check(self) -> HealthReport: ...

    @property
    def capabilities(self) -> Capabilities:
        """The optional handles this store offers (``storage/capabilities.py``)."""
        ...
