"""ResilientStorage: retries, a circuit breaker and an outbox around a primary store.

The wrapper is a :class:`~self_learning_memory.storage.backend.StorageBackend` composed of parts,
one responsibility each:

- :class:`~.guard.Guard` (``guard.py``): every call of the primary through retry (recoverable
  errors only, exponential backoff with jitter inside a total budget), the
  :class:`~.circuit_breaker.CircuitBreaker` (threshold 5, recovery 30 s by default) and an
  optional per-call timeout;
- :class:`~.writes.ResilientWrites` (``writes.py``): writes through the guard, journaled in the
  :class:`~.outbox.Outbox` and acknowledged while the primary is down;
- :class:`~.replay.OutboxReplayer` (``replay.py``): the owned background task that replays the
  outbox into the primary, in order and idempotently, dead-lettering what it refuses for good;
- :class:`~.resilient_reads.ResilientReads` (``resilient_reads.py``): reads through the guard,
  from the outbox view for episodes with journaled writes, and with the LMDB cache answered
  locally while the primary is down (degraded mode, ``degraded.py``), marked as such.

Here they are built, started and stopped together, and every method of the store is handed to
the part that owns it. The primary's optional capabilities pass through unchanged, with this
wrapper as the ``resilience`` handle (``storage/capabilities.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from ..storage.capabilities import Capabilities, KeptCapabilities
from .circuit_breaker import CircuitBreaker
from .degraded import LocalReads
from .guard import Guard, recoverable
from .outbox import Outbox
from .outbox_view import OutboxView
from .replay import OutboxReplayer
from .resilient_reads import ResilientReads
from .retry import RetryPolicy
from .writes import ResilientWrites

if TYPE_CHECKING:
    from datetime import datetime

    from ..config import ResilienceConfig
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
        HealthReport,
        PatternFilters,
        StorageStats,
    )
    from ..model.sandbox_run import SandboxRun, SandboxRunFilters
    from ..model.timeline import OutcomeWindow
    from ..model.usage import EpisodeUsage, PatternUsage
    from ..storage.backend import StorageBackend
    from ..storage.lmdb_cache import EpisodeCache

__all__ = ["ResilientStorage", "resilient_from_config"]

log = logging.getLogger(__name__)
OUTBOX_FILENAME = "outbox.db"


class ResilientStorage:
    """A :class:`~self_learning_memory.storage.backend.StorageBackend` wrapping another one."""

    def __init__(
        self,
        primary: StorageBackend,
        *,
        outbox: Outbox | None = None,
        policy: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        call_timeout_s: float | None = 30.0,
        replay_interval_s: float = 1.0,
        cache: EpisodeCache | None = None,
    ) -> None:
        self.primary = primary
        self._capabilities = KeptCapabilities()
        self.name = primary.name
        self.outbox = outbox
        self.cache = cache
        self.guard = Guard(
            primary,
            policy=policy or RetryPolicy(),
            breaker=breaker or CircuitBreaker(),
            call_timeout_s=call_timeout_s,
        )
        self.breaker = self.guard.breaker
        self.view = OutboxView()
        self.replayer = (
            None
            if outbox is None
            else OutboxReplayer(
                self.guard, outbox, self.view, cache=cache, interval_s=replay_interval_s
            )
        )
        self.writes = ResilientWrites(self.guard, self.view, self.replayer)
        local = None if cache is None else LocalReads(cache, self.view)
        self.reads = ResilientReads(self.guard, self.view, local)

    @property
    def capabilities(self) -> Capabilities:
        """The primary's handles, with this wrapper's status as ``resilience`` (kept while the
        primary hands out the same ones)."""
        primary = self.primary.capabilities
        return self._capabilities.of(
            (primary,), lambda: dataclasses.replace(primary, resilience=self)
        )

    # -- lifecycle -----------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self.initialize()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def initialize(self) -> None:
        """Open the outbox and rebuild the local view from it, then the primary. With an
        outbox, an unreachable primary is not fatal: the store starts degraded."""
        if self.outbox is not None:
            outbox = self.outbox
            await asyncio.to_thread(outbox.open)
            after = 0
            while entries := await asyncio.to_thread(outbox.peek, 1000, after):
                for entry in entries:
                    self.view.load(entry)
                after = entries[-1].seq
        try:
            await self.guard.call("initialize", _nothing)
        except Exception as exc:
            if self.outbox is None or not recoverable(exc):
                await self._close_outbox()
                raise
            log.warning(
                "primary store %s unreachable at start, running degraded: %s", self.name, exc
            )
        if self.replayer is not None:
            self.replayer.start()

    async def close(self) -> None:
        if self.replayer is not None:
            await self.replayer.stop()
        await self._close_outbox()
        await self.guard.close_primary()

    async def _close_outbox(self) -> None:
        if self.outbox is not None:
            await asyncio.to_thread(self.outbox.close)

    # -- the outbox ----------------------------------------------------------------------------
    async def replay(self) -> int:
        """Replay the outbox into the primary now (see ``replay.py``); how many entries were
        applied or dead-lettered."""
        return 0 if self.replayer is None else await self.replayer.replay()

    async def wait_replayed(self, timeout: float) -> bool:
        """Wait until the outbox is empty (True) or ``timeout`` seconds pass (False)."""
        return True if self.replayer is None else await self.replayer.wait_replayed(timeout)

    # -- status --------------------------------------------------------------------------------
    @property
    def retries(self) -> int:
        """Retries of primary calls made by this process."""
        return self.guard.retries

    async def resilience_status(self) -> dict[str, Any]:
        outbox: dict[str, Any] = {"enabled": False}
        if self.replayer is not None:
            outbox = await self.replayer.status(queued=self.writes.queued)
        return {**self.guard.status(), "outbox": outbox, "last_error": self.guard.last_error}

    async def health_check(self) -> HealthReport:
        """The primary's own check with :meth:`resilience_status` attached (see
        :meth:`~.resilient_reads.ResilientReads.health_check`)."""
        return await self.reads.health_check(await self.resilience_status())

    async def stats(self) -> StorageStats:
        return await self.reads.stats()

    # -- writes (writes.py) --------------------------------------------------------------------
    async def create_episode(self, episode: Episode) -> None:
        await self.writes.create_episode(episode)

    async def append_steps(self, episode_id: uuid.UUID, steps: list[ExecutionStep]) -> EpisodeState:
        return await self.writes.append_steps(episode_id, steps)

    async def commit_completion(self, record: CompletionRecord) -> Episode:
        return await self.writes.commit_completion(record)

    async def delete_episode(self, episode_id: uuid.UUID) -> bool:
        return await self.writes.delete_episode(episode_id)

    async def record_pattern_use(
        self, pattern_ids: list[uuid.UUID], *, applied: bool, success: bool
    ) -> None:
        await self.writes.record_pattern_use(pattern_ids, applied=applied, success=success)

    async def store_embeddings(self, rows: list[tuple[uuid.UUID, EmbeddingRecord]]) -> None:
        await self.writes.store_embeddings(rows)

    async def record_sandbox_run(self, run: SandboxRun, keep: int) -> int:
        return await self.writes.record_sandbox_run(run, keep)

    async def record_agent_execution(self, execution: AgentExecution) -> bool:
        return await self.writes.record_agent_execution(execution)

    async def record_retrieval_use(
        self,
        task_id: uuid.UUID,
        episode_ids: list[uuid.UUID],
        pattern_ids: list[uuid.UUID],
        helpful: bool | None,
    ) -> int:
        return await self.writes.record_retrieval_use(task_id, episode_ids, pattern_ids, helpful)

    # -- reads (resilient_reads.py) ------------------------------------------------------------
    async def get_episode_state(self, episode_id: uuid.UUID) -> EpisodeState | None:
        return await self.reads.get_episode_state(episode_id)

    async def get_episode(self, episode_id: uuid.UUID) -> Episode | None:
        return await self.reads.get_episode(episode_id)

    async def get_episodes(self, episode_ids: list[uuid.UUID]) -> list[Episode]:
        return await self.reads.get_episodes(episode_ids)

    async def list_episodes(
        self, filters: EpisodeFilters, limit: int, offset: int
    ) -> list[Episode]:
        return await self.reads.list_episodes(filters, limit, offset)

    async def count_episodes(self, filters: EpisodeFilters) -> int:
        return await self.reads.count_episodes(filters)

    async def outcome_timeline(
        self, window: str, since: datetime | None, until: datetime | None
    ) -> list[OutcomeWindow]:
        return await self.reads.outcome_timeline(window, since, until)

    async def lexical_candidates(
        self, terms: list[str], filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]:
        return await self.reads.lexical_candidates(terms, filters, limit)

    async def context_candidates(
        self, context: TaskContext, filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]:
        return await self.reads.context_candidates(context, filters, limit)

    async def candidates_by_ids(
        self, episode_ids: list[uuid.UUID], filters: EpisodeFilters
    ) -> list[EpisodeCandidate]:
        return await self.reads.candidates_by_ids(episode_ids, filters)

    async def data_version(self) -> int:
        return await self.reads.data_version()

    async def episode_usage(self, episode_ids: list[uuid.UUID]) -> dict[uuid.UUID, EpisodeUsage]:
        return await self.reads.episode_usage(episode_ids)

    async def embeddings_since(
        self, identity: str, after: int, limit: int
    ) -> list[tuple[int, uuid.UUID, bytes, bool]]:
        return await self.reads.embeddings_since(identity, after, limit)

    async def vector_by_hash(self, identity: str, content_hash: str) -> bytes | None:
        return await self.reads.vector_by_hash(identity, content_hash)

    async def embedding_status(self, identity: str) -> EmbeddingStatus:
        return await self.reads.embedding_status(identity)

    async def episodes_missing_embedding(self, identity: str, limit: int) -> list[Episode]:
        return await self.reads.episodes_missing_embedding(identity, limit)

    async def pattern_candidates(
        self, context: TaskContext, limit: int
    ) -> list[tuple[AnyPattern, PatternUsage]]:
        return await self.reads.pattern_candidates(context, limit)

    async def get_pattern(self, pattern_id: uuid.UUID) -> tuple[AnyPattern, PatternUsage] | None:
        return await self.reads.get_pattern(pattern_id)

    async def list_patterns(
        self, filters: PatternFilters, limit: int, offset: int
    ) -> list[tuple[AnyPattern, PatternUsage]]:
        return await self.reads.list_patterns(filters, limit, offset)

    async def pattern_episodes(
        self, pattern_ids: list[uuid.UUID], per_pattern: int
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        return await self.reads.pattern_episodes(pattern_ids, per_pattern)

    async def decay_patterns(self, *, force: bool, min_effectiveness: float) -> dict[str, int]:
        return await self.reads.decay_patterns(force=force, min_effectiveness=min_effectiveness)

    async def heuristic_candidates(self, context: TaskContext, limit: int) -> list[Heuristic]:
        return await self.reads.heuristic_candidates(context, limit)

    async def get_heuristic(self, heuristic_id: uuid.UUID) -> Heuristic | None:
        return await self.reads.get_heuristic(heuristic_id)

    async def list_heuristics(self, limit: int, offset: int) -> list[Heuristic]:
        return await self.reads.list_heuristics(limit, offset)

    async def claim_learning_job(self, worker: str, claim_timeout_s: float) -> uuid.UUID | None:
        return await self.reads.claim_learning_job(worker, claim_timeout_s)

    async def fail_learning_job(self, episode_id: uuid.UUID, error: str, max_attempts: int) -> bool:
        return await self.reads.fail_learning_job(episode_id, error, max_attempts)

    async def learning_queue_depth(self) -> int:
        return await self.reads.learning_queue_depth()

    async def list_sandbox_runs(self, filters: SandboxRunFilters, limit: int) -> list[SandboxRun]:
        return await self.reads.list_sandbox_runs(filters, limit)

    async def count_sandbox_runs(self, filters: SandboxRunFilters) -> dict[str, dict[str, int]]:
        return await self.reads.count_sandbox_runs(filters)

    async def agent_aggregates(
        self, since: datetime | None, window_us: int, series_from: datetime
    ) -> AgentAggregates:
        return await self.reads.agent_aggregates(since, window_us, series_from)

    async def agent_executions_after(
        self, after: int, limit: int
    ) -> list[tuple[int, AgentExecution]]:
        return await self.reads.agent_executions_after(after, limit)


async def _nothing() -> None:
    return None


def resilient_from_config(
    storage: StorageBackend,
    config: ResilienceConfig,
    data_dir: Path,
    cache: EpisodeCache | None = None,
) -> StorageBackend:
    """``storage`` wrapped when resilience is on (automatic: on for a remote primary, off for
    the embedded SQLite file), else ``storage`` itself."""
    enabled = config.enabled if config.enabled is not None else storage.name != "sqlite"
    if not enabled:
        return storage
    outbox = None
    if config.outbox_enabled:
        path = Path(config.outbox_path) if config.outbox_path else data_dir / OUTBOX_FILENAME
        outbox = Outbox(path, max_entries=config.outbox_max_entries)
    return ResilientStorage(
        storage,
        outbox=outbox,
        policy=RetryPolicy(
            max_attempts=config.max_attempts,
            base_s=config.retry_base_ms / 1000,
            max_delay_s=config.retry_max_delay_ms / 1000,
            jitter_s=config.retry_jitter_ms / 1000,
            budget_s=config.retry_budget_ms / 1000,
        ),
        breaker=CircuitBreaker(
            failure_threshold=config.breaker_threshold,
            recovery_timeout_s=config.breaker_recovery_s,
            half_open_max_calls=config.half_open_max_calls,
        ),
        call_timeout_s=config.call_timeout_s,
        replay_interval_s=config.replay_interval_s,
        cache=cache,
    )
