"""The read side of SelfLearningMemory: episodes, retrieval, patterns, heuristics, stats."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ..config import MemoryConfig, RetrievalMode
from ..errors import CapabilityUnavailableError, NotFoundError, ValidationError
from ..learning.queue import LearningQueue, QueueStats
from ..model import validation as v
from ..model.episode import Episode, TaskContext, TaskType, utc_now
from ..model.pattern import AnyPattern, ErrorRecovery, Heuristic, normalise_error
from ..model.records import EpisodeCandidate, EpisodeFilters, HealthReport, PatternFilters
from ..model.usage import MIN_EFFECTIVENESS, PatternUsage
from ..model.validation import as_task_type, as_uuid
from ..retrieval.known_failures import (
    FailureWarning,
    KnownFailure,
    failure_errors,
    is_similar_enough,
    recovery_applies,
    summarise,
    what_went_wrong,
)
from ..retrieval.lexical_trust import lexical_weight
from ..retrieval.patterns import HeuristicMatch, PatternMatch, rank_heuristics, rank_patterns
from ..retrieval.ranking import (
    RankMode,
    RetrievalResult,
    ScoreComponents,
    VectorSignals,
    legacy_rank,
    query_terms,
    rank_with_signals,
)
from ..storage.backend import StorageBackend
from ..storage.cache_loss import store_loss_details
from ..storage.lmdb_cache import CacheStats, EpisodeCache
from ..storage.sync import StorageSynchronizer
from .monitoring import Monitor, OperationStats
from .step_buffer import EpisodeBuffer

if TYPE_CHECKING:  # numpy-backed: imported only when an embedding provider is configured
    from ..retrieval.index import F32
    from ..retrieval.vectors import VectorSearch

__all__ = ["MAX_LIMIT", "MemoryReads", "MemoryStats"]

log = logging.getLogger(__name__)
MAX_LIMIT = 1000
QUERY_CACHE_SIZE = 1024
QUERY_CACHE_TTL_S = 60.0
CANDIDATE_CACHE_SIZE = 20_000  # vector candidate rows kept per store version (~1 KB each)
CachedRank = tuple[uuid.UUID, ScoreComponents, list[str]]


def _merge_vector_candidates(
    candidates: dict[uuid.UUID, EpisodeCandidate], found: list[EpisodeCandidate]
) -> set[uuid.UUID]:
    """Add candidates found by vector search (a known one gains the ``vector`` source)."""
    for c in found:
        known = candidates.get(c.episode_id)
        candidates[c.episode_id] = (
            c if known is None else dataclasses.replace(known, sources=(*known.sources, "vector"))
        )
    return {c.episode_id for c in found}


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


def check_limit(limit: int, field: str = "limit", maximum: int = MAX_LIMIT) -> None:
    if not 1 <= limit <= maximum:
        raise ValidationError(field, f"{limit} is out of range", f"1..{maximum}")


def check_offset(offset: int) -> None:
    if offset < 0:
        raise ValidationError("offset", f"{offset} is negative", ">= 0")


class MemoryReads:
    storage: StorageBackend
    cache: EpisodeCache | None
    config: MemoryConfig
    monitor: Monitor
    queue: LearningQueue | None
    synchronizer: StorageSynchronizer | None
    data_dir: Path | None
    _buffers: dict[uuid.UUID, EpisodeBuffer]
    vectors: VectorSearch | None
    _query_cache: dict[tuple[object, ...], tuple[float, list[CachedRank]]]
    _candidates: dict[uuid.UUID, EpisodeCandidate]  # vector candidates of one store version
    _candidates_version: int | None
    query_cache_hits: int

    @contextlib.contextmanager
    def _timed(self, operation: str) -> Iterator[None]:
        started = time.perf_counter()
        ok = False
        try:
            yield
            ok = True
        finally:
            self.monitor.record(operation, time.perf_counter() - started, ok)

    # -- episodes --------------------------------------------------------------------------
    async def get_episode(self, episode_id: uuid.UUID | str) -> Episode:
        """The episode with its steps, including steps this process has not flushed yet."""
        with self._timed("get_episode"):
            eid = as_uuid(episode_id)
            found = await self._load([eid])
            if not found:
                raise NotFoundError("episode", eid)
            episode = found[0]
            buffer = self._buffers.get(eid)
            if buffer is not None and buffer.steps:
                episode = episode.model_copy(update={"steps": [*episode.steps, *buffer.steps]})
            return episode

    async def _load(self, ids: list[uuid.UUID]) -> list[Episode]:
        """Cache first, then one query for the misses; completed, learned episodes are cached."""
        found: dict[uuid.UUID, Episode] = {}
        cache = self.cache
        if cache is not None:
            hits = await asyncio.to_thread(lambda: [cache.get(i) for i in ids])
            found = {e.episode_id: e for e in hits if e is not None}
        missing = [i for i in ids if i not in found]
        if missing:
            loaded = await self.storage.get_episodes(missing)
            found.update((e.episode_id, e) for e in loaded)
            if cache is not None:
                learned = [e for e in loaded if e.is_complete() and e.reward is not None]
                if learned:
                    await asyncio.to_thread(cache.put_many, learned)
        return [found[i] for i in ids if i in found]

    async def list_episodes(
        self, filters: EpisodeFilters | None = None, limit: int = 50, offset: int = 0
    ) -> list[Episode]:
        """Episodes, newest first, filtered in SQL."""
        with self._timed("list_episodes"):
            check_limit(limit)
            check_offset(offset)
            return await self.storage.list_episodes(filters or EpisodeFilters(), limit, offset)

    async def count_episodes(self, filters: EpisodeFilters | None = None) -> int:
        return await self.storage.count_episodes(filters or EpisodeFilters())

    # -- retrieval -------------------------------------------------------------------------
    async def retrieve_relevant_context(
        self,
        task_description: str,
        context: TaskContext | None = None,
        limit: int = 5,
        *,
        task_type: TaskType | str | None = None,
        filters: EpisodeFilters | None = None,
        mode: RetrievalMode | str | None = None,
    ) -> list[RetrievalResult]:
        """Past completed episodes that help with this task, best first, each with its score,
        the score's components and where it came from. ``filters`` are hard SQL filters;
        ``context`` and ``task_type`` are soft signals in the ranking."""
        with self._timed("retrieve_relevant_context"):
            v.check_description(task_description, "query")
            check_limit(limit)
            context = context or TaskContext()
            v.check_context(context)
            wanted_type = None if task_type is None else as_task_type(task_type)
            try:
                chosen = RetrievalMode(mode or self.config.retrieval.mode)
            except ValueError:
                allowed = ", ".join(m.value for m in RetrievalMode)
                raise ValidationError(
                    "mode", f"'{mode}' is not a retrieval mode", allowed
                ) from None
            filters = filters or EpisodeFilters()
            identity = self.vectors.identity if self.vectors is not None else "none"
            version = await self.storage.data_version()
            key = (
                task_description,
                context.model_dump_json(),
                limit,
                wanted_type,
                chosen,
                filters.model_dump_json(),
                identity,
                version,
            )
            cached = self._query_cache.get(key)
            if cached is not None and time.monotonic() - cached[0] < QUERY_CACHE_TTL_S:
                self.query_cache_hits += 1
                return await self._rehydrate(cached[1])
            results = await self._retrieve(
                task_description, context, limit, wanted_type, filters, chosen, version
            )
            ranking = [(r.episode.episode_id, r.components, list(r.provenance)) for r in results]
            self._query_cache[key] = (time.monotonic(), ranking)
            while len(self._query_cache) > QUERY_CACHE_SIZE:
                self._query_cache.pop(next(iter(self._query_cache)))
            return results

    async def _rehydrate(self, ranking: list[CachedRank]) -> list[RetrievalResult]:
        """Fresh result objects for a cached ranking (episodes reloaded, cheap from the cache)."""
        episodes = {e.episode_id: e for e in await self._load([i for i, _, _ in ranking])}
        return [
            RetrievalResult(
                episode=episodes[i], score=c.total, components=c.model_copy(), provenance=list(p)
            )
            for i, c, p in ranking
            if i in episodes
        ]

    async def _retrieve(
        self,
        query: str,
        context: TaskContext,
        limit: int,
        task_type: TaskType | None,
        filters: EpisodeFilters,
        mode: RetrievalMode,
        version: int,
    ) -> list[RetrievalResult]:
        pool = min(max(self.config.retrieval.candidate_limit, limit * 3), 2000)
        terms = query_terms(query)
        notes: list[str] = []
        candidates: dict[uuid.UUID, EpisodeCandidate] = {}
        query_vector = None
        if mode in (RetrievalMode.HYBRID, RetrievalMode.VECTOR):
            query_vector = await self._query_vector(query, context, mode, notes, version)
        searched = None
        if query_vector is not None and self.vectors is not None:
            searched = await self._vector_search(query_vector, limit, filters, version)
        # The full-text search runs unless its words cannot count: a hybrid query in plain
        # language (lexical weight 0, ``lexical_trust.py``) ranks by the vector signal alone,
        # so when every episode has a vector the vector candidates are all it needs. (Run
        # concurrently with the vector scan, the two hand the GIL back and forth row by row
        # and both got slower, so the order is sequential.)
        skip = (
            mode is RetrievalMode.HYBRID
            and searched is not None
            and self.vectors is not None
            and filters == EpisodeFilters()
            and lexical_weight(query, searched[4], self.config.retrieval) == 0.0
            and await self.vectors.covers_store(version)
        )
        if skip:
            notes.append("lexical:skipped")
        elif mode is not RetrievalMode.VECTOR:
            for c in await self.storage.lexical_candidates(terms, filters, pool):
                candidates[c.episode_id] = c
        signals = expanded = None
        if searched is not None and query_vector is not None and self.vectors is not None:
            index, settings = self.vectors.index, self.config.retrieval
            hits, guess, guessed, guessed_hits, rows = searched
            in_hits = set(hits)
            found = _merge_vector_candidates(
                candidates, [c for c in rows if c.episode_id in in_hits]
            )
            # pseudo-relevance feedback: move the query toward its nearest (filtered) episodes
            feedback = [i for i in hits if i in found][: settings.feedback_episodes]
            if feedback == guess:
                expanded = guessed
                more = {i for i in guessed_hits if i not in candidates}
                _merge_vector_candidates(candidates, [c for c in rows if c.episode_id in more])
            else:
                expanded = index.expand(query_vector, feedback, settings.feedback_weight)
                if expanded is not None:
                    wanted = max(limit * 4, 40)
                    later = [i for i, _ in index.search(expanded, wanted) if i not in candidates]
                    await self._add_vector_candidates(candidates, later, filters, version)
        if mode is not RetrievalMode.VECTOR and len(candidates) < limit * 2:
            for c in await self.storage.context_candidates(context, filters, pool):
                candidates.setdefault(c.episode_id, c)
        if query_vector is not None and self.vectors is not None:
            signals = self._vector_signals(list(candidates), query_vector, expanded)
        pool_list = list(candidates.values())
        if mode is RetrievalMode.LEGACY:
            ranked = legacy_rank(pool_list, query, context, limit)
        else:
            label: RankMode = "lexical" if signals is None else mode.value  # type: ignore[assignment]
            ranked = rank_with_signals(
                pool_list,
                terms,
                context,
                task_type,
                self.config.retrieval,
                utc_now(),
                limit,
                signals,
                label,
                query=query,
            )
        loaded = await self._load([r.candidate.episode_id for r in ranked])
        episodes = {e.episode_id: e for e in loaded}
        truncated = self.vectors.index.truncated if self.vectors is not None else set()
        return [
            RetrievalResult(
                episode=episodes[r.candidate.episode_id],
                score=r.components.total,
                components=r.components,
                provenance=[
                    *r.provenance,
                    *notes,
                    *(["vector:episode-truncated"] if r.candidate.episode_id in truncated else []),
                ],
            )
            for r in ranked
            if r.candidate.episode_id in episodes
        ]

    async def _vector_search(
        self, query_vector: F32, limit: int, filters: EpisodeFilters, version: int
    ) -> tuple[
        list[uuid.UUID], list[uuid.UUID] | None, F32 | None, list[uuid.UUID], list[EpisodeCandidate]
    ]:
        """The nearest episodes of the query and, guessing the feedback episodes (below), of the
        expanded query, with their candidate rows: (hits, guessed feedback, expanded vector,
        its hits, rows of both)."""
        assert self.vectors is not None
        index, wanted = self.vectors.index, max(limit * 4, 40)
        settings = self.config.retrieval
        # Without hard filters the nearest episodes are all candidates, so the feedback is
        # their first few: expand now and fetch both searches' episodes at once. If some were
        # missing after all, the caller expands again as usual.
        guess: list[uuid.UUID] | None = None
        guessed: F32 | None = None
        guessed_hits: list[uuid.UUID] = []
        if filters == EpisodeFilters():
            hits, guessed, guessed_hits = index.search_with_feedback(
                query_vector, wanted, settings.feedback_episodes, settings.feedback_weight
            )
            guess = hits[: settings.feedback_episodes]
        else:
            hits = [i for i, _ in index.search(query_vector, wanted)]
        ids = list(dict.fromkeys([*hits, *guessed_hits]))
        rows = await self._candidates_by_ids(ids, filters, version)
        return hits, guess, guessed, guessed_hits, rows

    async def _candidates_by_ids(
        self, ids: list[uuid.UUID], filters: EpisodeFilters, version: int
    ) -> list[EpisodeCandidate]:
        """``storage.candidates_by_ids`` for the vector search's ids. Without hard filters the
        rows are kept in memory until the store changes: any write, by any process, changes
        ``version`` (a degraded store gives a new one each time, so nothing is kept then)."""
        if filters != EpisodeFilters():
            return await self.storage.candidates_by_ids(ids, filters)
        known = self._candidates
        if version != self._candidates_version:
            known.clear()
            self._candidates_version = version
        missing = [i for i in ids if i not in known]
        if missing:
            for c in await self.storage.candidates_by_ids(missing, filters):
                known[c.episode_id] = c
            while len(known) > CANDIDATE_CACHE_SIZE:
                known.pop(next(iter(known)))
        return [known[i] for i in ids if i in known]

    def _vector_signals(
        self, ids: list[uuid.UUID], query_vector: F32, expanded: F32 | None
    ) -> VectorSignals:
        """Each candidate's cosine with the query (and the expanded query) and its vector,
        aligned with ``ids``; 0.0 and None for a candidate without a vector."""
        assert self.vectors is not None
        queries = [query_vector] if expanded is None else [query_vector, expanded]
        positions, scores, block = self.vectors.index.lookup(ids, queries)
        vectors: list[F32 | None] = [None] * len(ids)
        aligned = [[0.0] * len(ids) for _ in queries]
        for k, n in enumerate(positions):
            vectors[n] = block[k]
            for column, values in zip(aligned, scores, strict=True):
                column[n] = values[k]
        present = [False] * len(ids)
        for n in positions:
            present[n] = True
        return VectorSignals(aligned[0], None if expanded is None else aligned[1], vectors, present)

    async def _add_vector_candidates(
        self,
        candidates: dict[uuid.UUID, EpisodeCandidate],
        ids: list[uuid.UUID],
        filters: EpisodeFilters,
        version: int,
    ) -> set[uuid.UUID]:
        """Add the episodes found by vector search that pass the filters; returns their ids."""
        rows = await self._candidates_by_ids(ids, filters, version)
        return _merge_vector_candidates(candidates, rows)

    async def _query_vector(
        self, query: str, context: TaskContext, mode: RetrievalMode, notes: list[str], version: int
    ) -> F32 | None:
        """The query vector, or None with a note when hybrid must fall back to lexical."""
        if self.vectors is None:
            if mode is RetrievalMode.VECTOR:
                raise CapabilityUnavailableError(
                    "Vector retrieval needs an embedding provider: set embeddings.provider to "
                    "'local' (pip install 'self-learning-memory[local]') or 'openai'."
                )
            notes.append("vector:unavailable")
            return None
        try:
            vector, truncated = await self.vectors.query_vector(query, context)
            await self.vectors.refresh(version)
        except Exception as exc:
            if mode is RetrievalMode.VECTOR:
                raise
            log.warning("vector retrieval failed, falling back to lexical: %s", exc)
            notes.append("vector:error")
            return None
        if truncated:
            notes.append("vector:query-truncated")
        return vector

    async def check_known_failures(
        self,
        task_description: str,
        context: TaskContext | None = None,
        limit: int = 5,
        *,
        task_type: TaskType | str | None = None,
    ) -> FailureWarning:
        """Past failed or partial episodes similar to this task, what went wrong in each, and
        the error-recovery patterns and heuristics that address those errors."""
        with self._timed("check_known_failures"):
            check_limit(limit, maximum=100)
            found: list[RetrievalResult] = []
            for outcome in ("failure", "partial_success"):
                found += await self.retrieve_relevant_context(
                    task_description,
                    context,
                    limit,
                    task_type=task_type,
                    filters=EpisodeFilters(outcome=outcome),
                )
            found = sorted((r for r in found if is_similar_enough(r)), key=lambda r: -r.score)[
                :limit
            ]
            failures = [
                KnownFailure(
                    episode=r.episode,
                    score=r.score,
                    components=r.components,
                    provenance=r.provenance,
                    what_went_wrong=what_went_wrong(r.episode),
                )
                for r in found
            ]
            # errors hit in similar episodes of any outcome (a success may have recovered from one)
            similar = [
                r
                for r in await self.retrieve_relevant_context(
                    task_description, context, limit, task_type=task_type
                )
                if is_similar_enough(r)
            ]
            episodes = [f.episode for f in failures] + [r.episode for r in similar]
            errors = {normalise_error(m) for e in episodes for _, m in failure_errors(e)}
            ctx = context or TaskContext()
            pool = await self.storage.pattern_candidates(ctx, 200)
            recoveries = [
                m
                for m in rank_patterns([(p, u.effectiveness_score) for p, u in pool], ctx, 200)
                if isinstance(m.pattern, ErrorRecovery) and recovery_applies(m.pattern, errors)
            ][:limit]
            tools = {t for e in episodes for t, _ in failure_errors(e)}
            heuristics = [
                h
                for h in rank_heuristics(
                    await self.storage.heuristic_candidates(ctx, 200),
                    ctx,
                    200,
                    min_confidence=0.0,
                    min_sample_size=1,
                )
                if any(f"'{t}' fails with" in h.heuristic.condition for t in tools)
                and normalise_error(h.heuristic.condition.split("fails with:", 1)[-1]) in errors
            ][:limit]
            return FailureWarning(
                task_description=task_description,
                failures=failures,
                recoveries=recoveries,
                heuristics=heuristics,
                summary=summarise(failures, recoveries, heuristics),
            )

    async def retrieve_relevant_patterns(
        self, context: TaskContext | None = None, limit: int = 10
    ) -> list[PatternMatch]:
        """Learned patterns ranked for this context (success, evidence, context fit, type,
        effectiveness), one per similarity key. Counts as a retrieval for effectiveness."""
        with self._timed("retrieve_relevant_patterns"):
            check_limit(limit)
            context = context or TaskContext()
            v.check_context(context)
            pool = await self.storage.pattern_candidates(context, max(limit * 5, 100))
            ranked = rank_patterns([(p, u.effectiveness_score) for p, u in pool], context, limit)
            await self.storage.record_pattern_use(
                [m.pattern.id for m in ranked], applied=False, success=False
            )
            return ranked

    async def retrieve_heuristics(
        self, context: TaskContext | None = None, limit: int = 10
    ) -> list[HeuristicMatch]:
        """Heuristics seen at least ``heuristic_min_sample_size`` times with confidence at least
        ``heuristic_min_confidence``, ranked by confidence x relevance to the context."""
        with self._timed("retrieve_heuristics"):
            check_limit(limit)
            context = context or TaskContext()
            v.check_context(context)
            pool = await self.storage.heuristic_candidates(context, max(limit * 5, 100))
            ex = self.config.extraction
            return rank_heuristics(
                pool,
                context,
                limit,
                min_confidence=ex.heuristic_min_confidence,
                min_sample_size=ex.heuristic_min_sample_size,
            )

    # -- patterns and heuristics -----------------------------------------------------------
    async def get_pattern(self, pattern_id: uuid.UUID | str) -> tuple[AnyPattern, PatternUsage]:
        pid = as_uuid(pattern_id, "pattern_id")
        found = await self.storage.get_pattern(pid)
        if found is None:
            raise NotFoundError("pattern", pid)
        return found

    async def list_patterns(
        self, filters: PatternFilters | None = None, limit: int = 50, offset: int = 0
    ) -> list[tuple[AnyPattern, PatternUsage]]:
        check_limit(limit)
        check_offset(offset)
        return await self.storage.list_patterns(filters or PatternFilters(), limit, offset)

    async def pattern_evidence(
        self, pattern_ids: list[uuid.UUID], per_pattern: int = 5
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        """For each pattern, the newest episodes it was learned from (at most ``per_pattern``)."""
        check_limit(per_pattern, "per_pattern", 100)
        return await self.storage.pattern_episodes(pattern_ids, per_pattern)

    async def record_pattern_application(self, pattern_id: uuid.UUID | str, success: bool) -> None:
        """Feedback: a pattern was applied and worked (or not). Feeds its effectiveness."""
        pid = (await self.get_pattern(pattern_id))[0].id
        await self.storage.record_pattern_use([pid], applied=True, success=success)

    async def decay_patterns(self, *, force: bool = False) -> dict[str, int]:
        """Recompute effectiveness and remove patterns below 0.3 (weekly unless forced)."""
        return await self.storage.decay_patterns(force=force, min_effectiveness=MIN_EFFECTIVENESS)

    async def get_heuristic(self, heuristic_id: uuid.UUID | str) -> Heuristic:
        hid = as_uuid(heuristic_id, "heuristic_id")
        found = await self.storage.get_heuristic(hid)
        if found is None:
            raise NotFoundError("heuristic", hid)
        return found

    async def list_heuristics(self, limit: int = 50, offset: int = 0) -> list[Heuristic]:
        check_limit(limit)
        check_offset(offset)
        return await self.storage.list_heuristics(limit, offset)

    # -- operations ------------------------------------------------------------------------
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
            buffered_steps=sum(len(b.steps) for b in self._buffers.values()),
            outcomes=dict(s.outcomes),
            patterns=s.patterns,
            pattern_occurrences=s.pattern_occurrences,
            pattern_success_rate=s.pattern_success_rate,
            pattern_effectiveness=s.pattern_effectiveness,
            heuristics=s.heuristics,
            storage_bytes=s.size_bytes,
            learning_queue=None if self.queue is None else await self.queue.stats(),
            cache=cache,
            operations=self.monitor.snapshot(),
            uptime_s=self.monitor.uptime_s(),
            sync=None if self.synchronizer is None else self.synchronizer.report(),
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
        if self.synchronizer is not None:
            state = self.synchronizer.report()
            reports["synchronizer"] = HealthReport(
                "synchronizer",
                state["last_error"] is None or state["last_error_at"] < (state["last_sync"] or ""),
                0.0,
                state,
            )
        if self.vectors is not None:
            reports["embeddings"] = await self._embeddings_health(self.vectors)
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
                index_size=len(vectors.index),
                embedding_errors=vectors.errors,
            )
            if status.missing or status.other_identities:
                details["action"] = "run reindex_embeddings() to embed the missing episodes"
            if vectors.query_ms:
                details["query_embed_p50_ms"] = sorted(vectors.query_ms)[len(vectors.query_ms) // 2]
        except Exception as exc:
            healthy = False
            details["error"] = str(exc)
        return HealthReport("embeddings", healthy, (time.perf_counter() - started) * 1000, details)
