"""The read side of :class:`~.resilient.ResilientStorage`: every read through retry and breaker.

Episode reads (``get_episode``, ``get_episodes``, ``get_episode_state``) prefer the outbox view
for episodes with journaled writes (it is newer than the primary), and fall back to it when the
primary is down; an episode known neither locally nor to a reachable primary raises the
primary's recoverable error (never a false "not found"). Completed episodes are served from the
LMDB cache by the memory before the store is asked. Other reads (retrieval candidates,
patterns, stats) need the primary and raise :class:`~self_learning_memory.errors.CircuitOpenError`
or :class:`~self_learning_memory.errors.StorageUnavailableError` while it is down.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import SelfLearningMemoryError
from .backend import HealthReport

if TYPE_CHECKING:
    from ..core.types import Episode, TaskContext
    from ..patterns.effectiveness import PatternUsage
    from ..patterns.types import AnyPattern, Heuristic
    from .backend import (
        EmbeddingStatus,
        EpisodeCandidate,
        EpisodeFilters,
        EpisodeState,
        PatternFilters,
        StorageBackend,
        StorageStats,
    )
    from .circuit_breaker import CircuitBreaker
    from .outbox_view import OutboxView

__all__ = ["ResilientReads"]

T = TypeVar("T")


def _down(exc: BaseException) -> bool:
    return isinstance(exc, SelfLearningMemoryError) and exc.recoverable


class ResilientReads:
    primary: StorageBackend
    name: str
    view: OutboxView
    breaker: CircuitBreaker

    async def _call(
        self,
        what: str,
        first: Callable[[], Awaitable[T]],
        again: Callable[[], Awaitable[T]] | None = None,
    ) -> T:
        raise NotImplementedError

    async def resilience_status(self) -> dict[str, Any]:
        raise NotImplementedError

    # -- episodes, with the local view -----------------------------------------------------
    async def get_episode_state(self, episode_id: uuid.UUID) -> EpisodeState | None:
        if self.view.is_deleted(episode_id):
            return None
        if self.view.has_pending(episode_id):
            local = self.view.state(episode_id)
            if local is not None:
                return local
        try:
            state = await self._call(
                "get_episode_state", lambda: self.primary.get_episode_state(episode_id)
            )
        except Exception as exc:
            local = self.view.state(episode_id) if _down(exc) else None
            if local is None:
                raise
            return local
        if state is not None and not state.completed:
            self.view.note_state(state)
        return state

    async def get_episode(self, episode_id: uuid.UUID) -> Episode | None:
        found = await self.get_episodes([episode_id])
        return found[0] if found else None

    async def get_episodes(self, episode_ids: list[uuid.UUID]) -> list[Episode]:
        view = self.view
        local = {i: view.episode(i) for i in episode_ids if view.has_pending(i)}
        ask = [i for i in episode_ids if i not in local and not view.is_deleted(i)]
        found: dict[uuid.UUID, Episode] = {i: e for i, e in local.items() if e is not None}
        if ask:
            try:
                loaded = await self._call("get_episodes", lambda: self.primary.get_episodes(ask))
                found.update((e.episode_id, e) for e in loaded)
            except Exception as exc:
                if not _down(exc):
                    raise
                for i in ask:
                    episode = view.episode(i)
                    if episode is None:
                        raise
                    found[i] = episode
        return [found[i] for i in episode_ids if i in found]

    async def learning_queue_depth(self) -> int:
        try:
            return await self._call("learning_queue_depth", self.primary.learning_queue_depth)
        except Exception as exc:
            if not _down(exc):
                raise
            return self.view.queued_jobs  # the jobs waiting in the outbox

    # -- plain reads through the breaker ---------------------------------------------------
    async def list_episodes(
        self, filters: EpisodeFilters, limit: int, offset: int
    ) -> list[Episode]:
        return await self._call(
            "list_episodes", lambda: self.primary.list_episodes(filters, limit, offset)
        )

    async def count_episodes(self, filters: EpisodeFilters) -> int:
        return await self._call("count_episodes", lambda: self.primary.count_episodes(filters))

    async def lexical_candidates(
        self, terms: list[str], filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]:
        return await self._call(
            "lexical_candidates", lambda: self.primary.lexical_candidates(terms, filters, limit)
        )

    async def context_candidates(
        self, context: TaskContext, filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]:
        return await self._call(
            "context_candidates", lambda: self.primary.context_candidates(context, filters, limit)
        )

    async def candidates_by_ids(
        self, episode_ids: list[uuid.UUID], filters: EpisodeFilters
    ) -> list[EpisodeCandidate]:
        return await self._call(
            "candidates_by_ids", lambda: self.primary.candidates_by_ids(episode_ids, filters)
        )

    async def data_version(self) -> int:
        return await self._call("data_version", self.primary.data_version)

    async def embeddings_since(
        self, identity: str, after: int, limit: int
    ) -> list[tuple[int, uuid.UUID, bytes, bool]]:
        return await self._call(
            "embeddings_since", lambda: self.primary.embeddings_since(identity, after, limit)
        )

    async def vector_by_hash(self, identity: str, content_hash: str) -> bytes | None:
        return await self._call(
            "vector_by_hash", lambda: self.primary.vector_by_hash(identity, content_hash)
        )

    async def embedding_status(self, identity: str) -> EmbeddingStatus:
        return await self._call("embedding_status", lambda: self.primary.embedding_status(identity))

    async def episodes_missing_embedding(self, identity: str, limit: int) -> list[Episode]:
        return await self._call(
            "episodes_missing_embedding",
            lambda: self.primary.episodes_missing_embedding(identity, limit),
        )

    async def pattern_candidates(
        self, context: TaskContext, limit: int
    ) -> list[tuple[AnyPattern, PatternUsage]]:
        return await self._call(
            "pattern_candidates", lambda: self.primary.pattern_candidates(context, limit)
        )

    async def get_pattern(self, pattern_id: uuid.UUID) -> tuple[AnyPattern, PatternUsage] | None:
        return await self._call("get_pattern", lambda: self.primary.get_pattern(pattern_id))

    async def list_patterns(
        self, filters: PatternFilters, limit: int, offset: int
    ) -> list[tuple[AnyPattern, PatternUsage]]:
        return await self._call(
            "list_patterns", lambda: self.primary.list_patterns(filters, limit, offset)
        )

    async def pattern_episodes(
        self, pattern_ids: list[uuid.UUID], per_pattern: int
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        return await self._call(
            "pattern_episodes", lambda: self.primary.pattern_episodes(pattern_ids, per_pattern)
        )

    async def decay_patterns(self, *, force: bool, min_effectiveness: float) -> dict[str, int]:
        return await self._call(
            "decay_patterns",
            lambda: self.primary.decay_patterns(force=force, min_effectiveness=min_effectiveness),
        )

    async def heuristic_candidates(self, context: TaskContext, limit: int) -> list[Heuristic]:
        return await self._call(
            "heuristic_candidates", lambda: self.primary.heuristic_candidates(context, limit)
        )

    async def get_heuristic(self, heuristic_id: uuid.UUID) -> Heuristic | None:
        return await self._call("get_heuristic", lambda: self.primary.get_heuristic(heuristic_id))

    async def list_heuristics(self, limit: int, offset: int) -> list[Heuristic]:
        return await self._call(
            "list_heuristics", lambda: self.primary.list_heuristics(limit, offset)
        )

    async def claim_learning_job(self, worker: str, claim_timeout_s: float) -> uuid.UUID | None:
        return await self._call(
            "claim_learning_job", lambda: self.primary.claim_learning_job(worker, claim_timeout_s)
        )

    async def fail_learning_job(self, episode_id: uuid.UUID, error: str, max_attempts: int) -> bool:
        return await self._call(
            "fail_learning_job",
            lambda: self.primary.fail_learning_job(episode_id, error, max_attempts),
        )

    async def stats(self) -> StorageStats:
        return await self._call("stats", self.primary.stats)

    async def health_check(self) -> HealthReport:
        """The primary's own check through the breaker, with the resilience state attached.
        Unhealthy while the breaker is open or the primary cannot be reached."""
        status = await self.resilience_status()
        started = time.perf_counter()
        try:
            report = await self._call("health_check", self.primary.health_check)
        except Exception as exc:
            if not _down(exc):
                raise
            return HealthReport(
                self.name,
                False,
                (time.perf_counter() - started) * 1000,
                {"error": str(exc), "resilience": status},
            )
        details = dict(report.details)
        details["resilience"] = status
        return HealthReport(report.name, report.healthy, report.latency_ms, details)

    def __getattr__(self, name: str) -> Any:
        """Backend-specific extras (maintenance, migrations) reach the primary directly."""
        if name.startswith("_") or name == "primary":
            raise AttributeError(name)
        return getattr(self.primary, name)
