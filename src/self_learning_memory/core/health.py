"""Health and statistics of a memory: each component's real state (the store, with the
acknowledged writes it lost; the resilience wrapper; the cache; the synchronizer; the embedding
provider) and the counts, queue, cache and per-operation latencies of :class:`MemoryStats`."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ..learning.queue import QueueStats
from ..model.records import HealthReport
from ..storage.backend import StorageBackend
from ..storage.cache_loss import store_loss_details
from ..storage.lmdb_cache import CacheStats, EpisodeCache
from .monitoring import OperationStats
from .parts import MemoryParts
from .step_writer import StepWriter

if TYPE_CHECKING:  # numpy-backed: imported only when an embedding provider is configured
    from ..retrieval.vectors import VectorSearch

__all__ = ["Health", "MemoryStats"]


class MemoryStats(BaseModel):
    episodes: int
    completed: int
    in_progress: int
    steps: int
    buffered_steps: int
    outcomes: dict[str, int]
    patterns: int
    pattern_occurrences: int
    pattern_success_rate: float
    pattern_effectiveness: float
    heuristics: int
    storage_bytes: int
    learning_queue: QueueStats | None
    cache: CacheStats | None
    operations: dict[str, OperationStats]
    sync: dict[str, Any] | None = None  # the StorageSynchronizer's state, when it runs
    resilience: dict[str, Any] | None = None  # breaker, retries and outbox, when configured
    uptime_s: float


class Health:
    def __init__(self, parts: MemoryParts, writer: StepWriter) -> None:
        self._parts = parts
        self._writer = writer

    @property
    def storage(self) -> StorageBackend:
        return self._parts.storage

    @property
    def cache(self) -> EpisodeCache | None:
        return self._parts.cache

    async def stats(self) -> MemoryStats:
        s = await self.storage.stats()
        cache = None
        if self.cache is not None:
            cache = await asyncio.to_thread(self.cache.snapshot_stats)
        return MemoryStats(
            episodes=s.episodes,
            completed=s.completed,
            in_progress=s.episodes - s.completed,
            steps=s.steps,
            buffered_steps=self._writer.buffered_count(),
            outcomes=dict(s.outcomes),
            patterns=s.patterns,
            pattern_occurrences=s.pattern_occurrences,
            pattern_success_rate=s.pattern_success_rate,
            pattern_effectiveness=s.pattern_effectiveness,
            heuristics=s.heuristics,
            storage_bytes=s.size_bytes,
            learning_queue=None if self._parts.queue is None else await self._parts.queue.stats(),
            cache=cache,
            operations=self._parts.monitor.snapshot(),
            uptime_s=self._parts.monitor.uptime_s(),
            sync=None if self._parts.synchronizer is None else self._parts.synchronizer.report(),
            resilience=await self._resilience(),
        )

    async def _resilience(self) -> dict[str, Any] | None:
        """The resilience wrapper's state (``resilience/resilient.py``), if the store has one."""
        wrapper = self.storage.capabilities.resilience
        return None if wrapper is None else dict(await wrapper.resilience_status())

    async def health(self) -> dict[str, HealthReport]:
        """Each component's real state and the latency of checking it."""
        reports = {"primary_storage": await self._lost_writes(await self.storage.health_check())}
        resilience = await self._resilience()
        if resilience is not None:
            closed = resilience["breaker"]["state"] == "closed"
            reports["resilience"] = HealthReport("resilience", closed, 0.0, resilience)
        if self.cache is not None:
            reports["cache_storage"] = await self._cache_health(self.cache)
        if self._parts.synchronizer is not None:
            state = self._parts.synchronizer.report()
            reports["synchronizer"] = HealthReport(
                "synchronizer",
                state["last_error"] is None or state["last_error_at"] < (state["last_sync"] or ""),
                0.0,
                state,
            )
        if self._parts.vectors is not None:
            reports["embeddings"] = await self._embeddings_health(self._parts.vectors)
        return reports

    async def _lost_writes(self, report: HealthReport) -> HealthReport:
        """The embedded store is unhealthy when it lost acknowledged writes: committed WAL
        frames a crash left damaged, or episodes the cache holds (``storage/cache_loss.py``);
        the report says how many and what to do."""
        if not report.healthy:
            return report
        found = await store_loss_details(self.storage, self.cache)
        if found is None:
            return report
        return HealthReport(report.name, False, report.latency_ms, {**report.details, **found})

    async def _cache_health(self, cache: EpisodeCache) -> HealthReport:
        """Healthy with its entry count; a disabled cache (damaged, unwritable: see
        ``storage/lmdb_cache.py``) says why and how to rebuild it."""
        started = time.perf_counter()
        try:
            entries = await asyncio.to_thread(cache.entries)  # a failure here disables it
        except Exception as exc:
            details: dict[str, object] = {"error": str(exc), "path": str(cache.path)}
        else:
            details = {"entries": entries, "path": str(cache.path)}
        if cache.disabled is not None:
            details = {
                "disabled": cache.disabled,
                "path": str(cache.path),
                "action": "`memory-cli storage sync` moves it aside and rebuilds it",
            }
        healthy = "entries" in details
        return HealthReport("lmdb", healthy, (time.perf_counter() - started) * 1000, details)

    async def _embeddings_health(self, vectors: VectorSearch) -> HealthReport:
        """The provider's real state: available, how many episodes have vectors, how many
        need re-embedding (missing, or made by another model or dimension)."""
        started = time.perf_counter()
        details: dict[str, object] = {
            "provider": vectors.provider.name,
            "identity": vectors.identity,
        }
        healthy = True
        try:
            check = getattr(vectors.provider, "check_available", None)
            if check is not None:
                await asyncio.to_thread(check)
            status = await vectors.status()
            details.update(
                embedded=status.embedded,
                missing=status.missing,
                other_identities=status.other_identities,
                index=vectors.where,
                vector_search=vectors.regime,
                index_size=len(vectors.index) if vectors.server is None else status.embedded,
                embedding_errors=vectors.errors,
                background=self._parts.embedding_worker is not None,
                pending_vectors=len(vectors.pending),
            )
            if status.other_identities or (status.missing and self._parts.embedding_worker is None):
                details["action"] = "run reindex_embeddings() to embed the missing episodes"
            backend = getattr(vectors.provider, "active_backend", None)
            if backend:  # the local model: onnx or numpy, once loaded
                details["backend"] = backend
            if vectors.query_ms:
                details["query_embed_p50_ms"] = sorted(vectors.query_ms)[len(vectors.query_ms) // 2]
        except Exception as exc:
            healthy = False
            details["error"] = str(exc)
        return HealthReport("embeddings", healthy, (time.perf_counter() - started) * 1000, details)
