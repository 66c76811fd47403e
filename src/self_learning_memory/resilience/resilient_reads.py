"""The read side of :class:`~.resilient.ResilientStorage`: every read through the guard (retry,
breaker, timeout: ``guard.py``).

Episode reads (``get_episode``, ``get_episodes``, ``get_episode_state``) prefer the outbox view
for episodes with journaled writes (it is newer than the primary), and fall back to it when the
primary is down; an episode known neither locally nor to a reachable primary raises the
primary's recoverable error (never a false "not found"). Completed episodes are served from the
LMDB cache by the memory before the store is asked.

**Degraded mode.** With the LMDB cache (``local``), when the primary fails a read with a
recoverable error (breaker open, or retries exhausted), retrieval candidates, pattern and
heuristic candidates, stats and the data version are answered locally
(:class:`~.degraded.LocalReads`), each answer marked: candidates carry ``degraded:cache`` /
``degraded:outbox`` in their ``sources``, stats have ``degraded=True``, and
``resilience_status()`` reports ``degraded`` with the note of each read served so. Other reads
(listing and counting episodes, single patterns and heuristics, embeddings status) still raise
:class:`~self_learning_memory.errors.CircuitOpenError` or
:class:`~self_learning_memory.errors.StorageUnavailableError` while the primary is down, as do
all reads of a wrapper without a cache.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import CircuitOpenError
from ..model.records import HealthReport
from .circuit_breaker import BreakerState
from .guard import recoverable
from .retry import map_driver_error

if TYPE_CHECKING:
    from datetime import datetime

    from ..model.agents import AgentAggregates, AgentExecution
    from ..model.episode import Episode, TaskContext
    from ..model.pattern import AnyPattern, Heuristic
    from ..model.records import (
        EmbeddingStatus,
        EpisodeCandidate,
        EpisodeFilters,
        EpisodeState,
        PatternFilters,
        StorageStats,
    )
    from ..model.sandbox_run import SandboxRun, SandboxRunFilters
    from ..model.timeline import OutcomeWindow
    from ..model.usage import EpisodeUsage, PatternUsage
    from .degraded import LocalReads
    from .guard import Guard
    from .outbox_view import OutboxView

__all__ = ["ResilientReads"]

T = TypeVar("T")


class ResilientReads:
    """The reads of one primary store through a :class:`~.guard.Guard`, with the outbox view
    and (given the LMDB cache) degraded-mode answers."""

    def __init__(self, guard: Guard, view: OutboxView, local: LocalReads | None) -> None:
        self.guard = guard
        self.primary = guard.primary
        self.view = view
        self.local = local  # degraded-mode answers (needs the LMDB cache)
        self._local_version = 0

    async def _or_local(
        self,
        what: str,
        first: Callable[[], Awaitable[T]],
        local: Callable[[LocalReads], tuple[T, str]],
    ) -> T:
        """``first`` through the guard; if the primary is down, the local answer (degraded)."""
        try:
            return await self.guard.call(what, first)
        except Exception as exc:
            reads = self.local
            if reads is None or not recoverable(exc) or not reads.available:
                raise
            error = exc
        result, note = await asyncio.to_thread(local, reads)
        self.guard.served_locally(what, note, error)
        return result

    # -- episodes, with the local view -----------------------------------------------------
    async def get_episode_state(self, episode_id: uuid.UUID) -> EpisodeState | None:
        if self.view.is_deleted(episode_id):
            return None
        if self.view.has_pending(episode_id):
            local = self.view.state(episode_id)
            if local is not None:
                return local
        try:
            state = await self.guard.call(
                "get_episode_state", lambda: self.primary.get_episode_state(episode_id)
            )
        except Exception as exc:
            local = self.view.state(episode_id) if recoverable(exc) else None
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
                loaded = await self.guard.call(
                    "get_episodes", lambda: self.primary.get_episodes(ask)
                )
                found.update((e.episode_id, e) for e in loaded)
            except Exception as exc:
                if not recoverable(exc):
                    raise
                for i in ask:
                    episode = view.episode(i)
                    if episode is None:
                        raise
                    found[i] = episode
        return [found[i] for i in episode_ids if i in found]

    async def learning_queue_depth(self) -> int:
        try:
            return await self.guard.call("learning_queue_depth", self.primary.learning_queue_depth)
        except Exception as exc:
            if not recoverable(exc):
                raise
            return self.view.queued_jobs  # the jobs waiting in the outbox

    # -- plain reads through the breaker ---------------------------------------------------
    async def list_episodes(
        self, filters: EpisodeFilters, limit: int, offset: int
    ) -> list[Episode]:
        return await self.guard.call(
            "list_episodes", lambda: self.primary.list_episodes(filters, limit, offset)
        )

    async def count_episodes(self, filters: EpisodeFilters) -> int:
        return await self.guard.call("count_episodes", lambda: self.primary.count_episodes(filters))

    async def outcome_timeline(
        self, window: str, since: datetime | None, until: datetime | None
    ) -> list[OutcomeWindow]:
        return await self.guard.call(
            "outcome_timeline", lambda: self.primary.outcome_timeline(window, since, until)
        )

    async def lexical_candidates(
        self, terms: list[str], filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]:
        return await self._or_local(
            "lexical_candidates",
            lambda: self.primary.lexical_candidates(terms, filters, limit),
            lambda r: (r.lexical_candidates(terms, filters, limit), "degraded:cache-scan"),
        )

    async def context_candidates(
        self, context: TaskContext, filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]:
        return await self._or_local(
            "context_candidates",
            lambda: self.primary.context_candidates(context, filters, limit),
            lambda r: (r.context_candidates(context, filters, limit), "degraded:cache-scan"),
        )

    async def candidates_by_ids(
        self, episode_ids: list[uuid.UUID], filters: EpisodeFilters
    ) -> list[EpisodeCandidate]:
        return await self._or_local(
            "candidates_by_ids",
            lambda: self.primary.candidates_by_ids(episode_ids, filters),
            lambda r: (r.candidates_by_ids(episode_ids, filters), "degraded:cache-scan"),
        )

    async def episode_usage(self, episode_ids: list[uuid.UUID]) -> dict[uuid.UUID, EpisodeUsage]:
        """Degraded: no feedback counters (every episode's usefulness is neutral)."""
        return await self._or_local(
            "episode_usage",
            lambda: self.primary.episode_usage(episode_ids),
            lambda _: ({}, "degraded:no-feedback"),
        )

    async def data_version(self) -> int:
        """Degraded: a new negative number each time, so the memory's query cache never keeps
        a local answer nor confuses it with one of the primary's versions."""

        def local(_: LocalReads) -> tuple[int, str]:
            self._local_version -= 1
            return self._local_version, "degraded:local-version"

        return await self._or_local("data_version", self.primary.data_version, local)

    async def embeddings_since(
        self, identity: str, after: int, limit: int
    ) -> list[tuple[int, uuid.UUID, bytes, bool]]:
        return await self._or_local(
            "embeddings_since",
            lambda: self.primary.embeddings_since(identity, after, limit),
            lambda _: ([], "degraded:no-new-vectors (the in-memory index is used as it is)"),
        )

    async def vector_by_hash(self, identity: str, content_hash: str) -> bytes | None:
        return await self.guard.call(
            "vector_by_hash", lambda: self.primary.vector_by_hash(identity, content_hash)
        )

    async def embedding_status(self, identity: str) -> EmbeddingStatus:
        return await self.guard.call(
            "embedding_status", lambda: self.primary.embedding_status(identity)
        )

    async def episodes_missing_embedding(self, identity: str, limit: int) -> list[Episode]:
        return await self.guard.call(
            "episodes_missing_embedding",
            lambda: self.primary.episodes_missing_embedding(identity, limit),
        )

    async def pattern_candidates(
        self, context: TaskContext, limit: int
    ) -> list[tuple[AnyPattern, PatternUsage]]:
        return await self._or_local(
            "pattern_candidates",
            lambda: self.primary.pattern_candidates(context, limit),
            lambda r: r.pattern_candidates(context, limit),
        )

    async def get_pattern(self, pattern_id: uuid.UUID) -> tuple[AnyPattern, PatternUsage] | None:
        return await self.guard.call("get_pattern", lambda: self.primary.get_pattern(pattern_id))

    async def list_patterns(
        self, filters: PatternFilters, limit: int, offset: int
    ) -> list[tuple[AnyPattern, PatternUsage]]:
        return await self.guard.call(
            "list_patterns", lambda: self.primary.list_patterns(filters, limit, offset)
        )

    async def pattern_episodes(
        self, pattern_ids: list[uuid.UUID], per_pattern: int
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        return await self.guard.call(
            "pattern_episodes", lambda: self.primary.pattern_episodes(pattern_ids, per_pattern)
        )

    async def decay_patterns(self, *, force: bool, min_effectiveness: float) -> dict[str, int]:
        return await self.guard.call(
            "decay_patterns",
            lambda: self.primary.decay_patterns(force=force, min_effectiveness=min_effectiveness),
        )

    async def heuristic_candidates(self, context: TaskContext, limit: int) -> list[Heuristic]:
        return await self._or_local(
            "heuristic_candidates",
            lambda: self.primary.heuristic_candidates(context, limit),
            lambda r: r.heuristic_candidates(context, limit),
        )

    async def get_heuristic(self, heuristic_id: uuid.UUID) -> Heuristic | None:
        return await self.guard.call(
            "get_heuristic", lambda: self.primary.get_heuristic(heuristic_id)
        )

    async def list_heuristics(self, limit: int, offset: int) -> list[Heuristic]:
        return await self.guard.call(
            "list_heuristics", lambda: self.primary.list_heuristics(limit, offset)
        )

    async def claim_learning_job(self, worker: str, claim_timeout_s: float) -> uuid.UUID | None:
        return await self.guard.call(
            "claim_learning_job", lambda: self.primary.claim_learning_job(worker, claim_timeout_s)
        )

    async def fail_learning_job(self, episode_id: uuid.UUID, error: str, max_attempts: int) -> bool:
        return await self.guard.call(
            "fail_learning_job",
            lambda: self.primary.fail_learning_job(episode_id, error, max_attempts),
        )

    # -- the sandbox's audit trail (written in resilient.py) ---------------------------------
    async def list_sandbox_runs(self, filters: SandboxRunFilters, limit: int) -> list[SandboxRun]:
        return await self.guard.call(
            "list_sandbox_runs", lambda: self.primary.list_sandbox_runs(filters, limit)
        )

    async def count_sandbox_runs(self, filters: SandboxRunFilters) -> dict[str, dict[str, int]]:
        return await self.guard.call(
            "count_sandbox_runs", lambda: self.primary.count_sandbox_runs(filters)
        )

    async def agent_aggregates(
        self, since: datetime | None, window_us: int, series_from: datetime
    ) -> AgentAggregates:
        return await self.guard.call(
            "agent_aggregates",
            lambda: self.primary.agent_aggregates(since, window_us, series_from),
        )

    async def agent_executions_after(
        self, after: int, limit: int
    ) -> list[tuple[int, AgentExecution]]:
        return await self.guard.call(
            "agent_executions_after", lambda: self.primary.agent_executions_after(after, limit)
        )

    async def stats(self) -> StorageStats:
        return await self._or_local(
            "stats", self.primary.stats, lambda r: (r.stats(), "degraded:local-counts")
        )

    async def health_check(self, status: dict[str, Any]) -> HealthReport:
        """The primary's own check with the resilience ``status`` attached. Unhealthy while the
        breaker is open or the primary cannot be reached.

        The probe is an observation, not a call: it bypasses the breaker and the retries, so a
        health poll neither resets the breaker's failure count (a backend's check answers
        "unhealthy" without raising, which the breaker would count as a success and so keep a
        failing store's breaker closed) nor waits out the retry budget."""
        guard = self.guard
        started = time.perf_counter()
        try:
            if guard.breaker.current_state == BreakerState.OPEN:
                raise CircuitOpenError("The primary store's circuit breaker is open.")
            await guard.ensure_ready()
            async with asyncio.timeout(guard.call_timeout_s):
                report = await self.primary.health_check()
        except Exception as raw:
            exc = map_driver_error(raw, "health_check")
            if not recoverable(exc):
                raise
            return HealthReport(
                guard.name,
                False,
                (time.perf_counter() - started) * 1000,
                {"error": str(exc), "resilience": status},
            )
        details = dict(report.details)
        details["resilience"] = status
        return HealthReport(report.name, report.healthy, report.latency_ms, details)
