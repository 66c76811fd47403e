"""SelfLearningMemory: the async library every face of the system is built on.

    async with SelfLearningMemory.open(data_dir) as memory:
        episode_id = await memory.start_episode("Add a /health endpoint", context, "code_generation")
        await memory.log_step(episode_id, ExecutionStep(step_number=1, tool="editor", action="..."))
        episode = await memory.complete_episode(episode_id, SuccessOutcome(verdict="done"))
        results = await memory.retrieve_relevant_context("add a readiness probe", context)

Read path: cache -> durable store. Write path: durable store first (one transaction), then
cache. Steps are buffered per episode and appended as rows; nothing buffered is lost on close.

The memory is a facade: each operation is one call to the collaborator that does it, all
sharing one :class:`~.parts.MemoryParts` (store, cache, settings, vectors, monitor):

- :class:`~.step_writer.StepWriter`: start, log and flush steps, complete, delete;
- :class:`~.learner.Learner`: learning on completion (inline or queued), verify after write;
- :class:`~.retriever.Retriever`: retrieval (its query cache, the hybrid pipeline), known
  failures, patterns and heuristics for a context, re-embedding;
- :class:`~.reads.Reads`: get, list and count episodes, patterns and heuristics;
- :class:`~.feedback.RetrievalFeedback`: which retrieved episodes and patterns a task used;
- :class:`~.health.Health`: health reports and :class:`~.health.MemoryStats`;
- :class:`~.sandbox_audit.SandboxAudit`: the audit trail of sandboxed runs;
- :class:`~.agents.AgentMonitor`: agent executions and their metrics;
- :class:`~.lifecycle.Lifecycle`: start and close.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Self

from ..config import MemoryConfig, RetrievalMode
from ..embeddings import EmbeddingProvider, provider_from_config
from ..learning.queue import LearningQueue
from ..model.agents import AgentExecution, AgentMetrics
from ..model.episode import Episode, ExecutionStep, TaskContext, TaskOutcome, TaskType
from ..model.pattern import AnyPattern, Heuristic
from ..model.records import EpisodeFilters, HealthReport, PatternFilters
from ..model.sandbox_run import SandboxRun, SandboxRunCounts, SandboxRunFilters
from ..model.timeline import OutcomeWindow
from ..model.usage import EpisodeUsage, PatternUsage
from ..retrieval.known_failures import FailureWarning
from ..retrieval.patterns import HeuristicMatch, PatternMatch
from ..retrieval.scores import RetrievalResult
from ..storage.backend import StorageBackend
from ..storage.factory import open_store, resolve_data_dir
from ..storage.lmdb_cache import EpisodeCache
from ..storage.sync import StorageSynchronizer
from .agents import AgentMonitor
from .feedback import RetrievalFeedback
from .health import Health, MemoryStats
from .learner import Learner
from .lifecycle import Lifecycle
from .monitoring import Monitor
from .parts import MemoryParts
from .reads import Reads
from .retriever import CachedRank, Retriever
from .sandbox_audit import SandboxAudit
from .step_writer import StepWriter

if TYPE_CHECKING:  # numpy-backed: imported only when an embedding provider is configured
    from ..retrieval.vectors import VectorSearch

__all__ = ["SelfLearningMemory"]


class SelfLearningMemory:
    """An agent's memory of episodes, with learning on completion and ranked retrieval."""

    def __init__(
        self,
        storage: StorageBackend,
        *,
        config: MemoryConfig | None = None,
        cache: EpisodeCache | None = None,
        data_dir: Path | None = None,
        embedder: EmbeddingProvider | None = None,
    ) -> None:
        vectors = None
        if embedder is not None:
            from ..retrieval.threads import limit_blas_threads
            from ..retrieval.vectors import VectorSearch  # numpy: only with an embedding provider

            vectors = VectorSearch(embedder, storage)
            limit_blas_threads((config or MemoryConfig()).retrieval.blas_threads)
        parts = MemoryParts(storage, config or MemoryConfig(), cache, data_dir, vectors)
        self._parts = parts
        learner = Learner(parts)
        self._learner = learner
        self._writer = StepWriter(parts, learner)
        self._reads = Reads(parts, self._writer)
        self._feedback = RetrievalFeedback(parts)
        self._retriever = Retriever(parts, self._reads, self._feedback)
        self._health = Health(parts, self._writer)
        self._audit = SandboxAudit(parts)
        self._agents = AgentMonitor(parts)
        self._lifecycle = Lifecycle(parts, self._writer, learner)

    @classmethod
    def open(
        cls,
        data_dir: str | Path | None = None,
        *,
        config: MemoryConfig | None = None,
        embedder: EmbeddingProvider | None = None,
    ) -> Self:
        """A memory in ``data_dir`` (default ``$MEMORY_DATA_DIR`` or the user's data
        directory): embedded, or the durable store ``config.storage.url`` names (for example
        ``postgresql://...``) with the local cache in ``data_dir``. ``embedder``: an embedding
        provider of your own instead of the one ``config.embeddings`` names. Use it as
        ``async with SelfLearningMemory.open(...) as memory``."""
        config = config or MemoryConfig()
        directory = resolve_data_dir(data_dir)
        storage, cache = open_store(config.storage.url, directory, config)
        wanted = config.resilience.enabled
        if wanted or (wanted is None and storage.name != "sqlite"):  # automatic: remote only
            from ..resilience.resilient import resilient_from_config  # tenacity: only when used

            storage = resilient_from_config(storage, config.resilience, directory, cache)
        if embedder is None:
            embedder = provider_from_config(config.embeddings)
        return cls(storage, config=config, cache=cache, data_dir=directory, embedder=embedder)

    # -- what the memory is made of --------------------------------------------------------
    @property
    def storage(self) -> StorageBackend:
        return self._parts.storage

    @storage.setter
    def storage(self, storage: StorageBackend) -> None:
        self._parts.storage = storage  # every collaborator uses the new store from now on

    @property
    def config(self) -> MemoryConfig:
        return self._parts.config

    @property
    def cache(self) -> EpisodeCache | None:
        return self._parts.cache

    @property
    def data_dir(self) -> Path | None:
        return self._parts.data_dir

    @property
    def monitor(self) -> Monitor:
        return self._parts.monitor

    @property
    def vectors(self) -> VectorSearch | None:
        return self._parts.vectors

    @property
    def queue(self) -> LearningQueue | None:
        return self._parts.queue

    @property
    def synchronizer(self) -> StorageSynchronizer | None:
        return self._parts.synchronizer

    @property
    def query_cache_hits(self) -> int:
        return self._retriever.query_cache_hits

    @property
    def sandbox_audit_failures(self) -> int:
        return self._audit.failures

    @property
    def _query_cache(self) -> dict[tuple[object, ...], tuple[int, float, list[CachedRank]]]:
        """The retriever's result cache (metrics and benchmarks clear it to time retrieval)."""
        return self._retriever.query_cache

    # -- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        await self._lifecycle.start()

    async def close(self) -> None:
        """Flush every buffered step, stop the workers, close the stores."""
        await self._retriever.pipeline.stop()
        await self._lifecycle.close()

    async def retrieval_settled(self, timeout: float = 120.0) -> bool:
        """Wait up to ``timeout`` seconds for the retrieval's background reads (the candidate
        rows read after a search missed some: ``retrieval/hybrid.py``) and for the index's int8
        rows being packed (``retrieval/quantized.py``), if either runs: what a process's later
        searches find. Benchmarks and tests call it before timing; searches meanwhile give the
        same results. Whether nothing is left running."""
        try:
            await asyncio.wait_for(self._retriever.pipeline.settled(), timeout)
        except TimeoutError:
            return False
        if self._parts.vectors is None:
            return True
        return await asyncio.to_thread(self._parts.vectors.index.settled, timeout)

    # -- writing ---------------------------------------------------------------------------
    async def start_episode(
        self,
        task_description: str,
        context: TaskContext | None = None,
        task_type: TaskType | str = TaskType.OTHER,
        *,
        metadata: dict[str, str] | None = None,
        agent: str | None = None,
    ) -> uuid.UUID:
        """Record the start of a task; durable when this returns. ``agent``: who runs it
        (1..64 of ``[A-Za-z0-9._:@/-]``); its completion then records the agent's execution."""
        return await self._writer.start_episode(
            task_description, context, task_type, metadata, agent
        )

    async def log_step(self, episode_id: uuid.UUID | str, step: ExecutionStep) -> None:
        """Add one step. It is checked now (a bad step raises, it is never dropped) and
        buffered; it is durable after the next flush (size, idle timer, complete, close or
        :meth:`flush_steps`), or at once when batching is off."""
        await self._writer.log_step(episode_id, step)

    async def flush_steps(self, episode_id: uuid.UUID | str | None = None) -> int:
        """Write buffered steps now (of one episode, or all); returns how many were written."""
        return await self._writer.flush_steps(episode_id)

    async def complete_episode(self, episode_id: uuid.UUID | str, outcome: TaskOutcome) -> Episode:
        """Finish an episode: flush its steps, learn from it (patterns, heuristics, reward,
        reflection), write it all in one transaction and verify it. Returns the stored episode.
        With the learning queue on, returns after the outcome is durable; learning follows."""
        return await self._writer.complete_episode(episode_id, outcome)

    async def delete_episode(self, episode_id: uuid.UUID | str) -> None:
        await self._writer.delete_episode(episode_id)

    async def wait_for_learning(self, timeout: float = 30.0) -> bool:
        """With the learning queue on: wait until it is empty. True if it emptied in time."""
        return await self._learner.wait_for_learning(timeout)

    async def wait_for_embeddings(self, timeout: float = 30.0) -> bool:
        """With background embedding on: wait until this process's completed episodes have
        their vectors. True if that happened within ``timeout`` seconds."""
        worker = self._parts.embedding_worker
        return True if worker is None else await worker.wait_idle(timeout)

    async def reindex_embeddings(
        self, batch_size: int = 64, progress: Callable[[int, int], None] | None = None
    ) -> int:
        """Embed every completed episode that has no vector from the configured provider (after
        a model or dimension change, or failed embeddings). Returns how many were embedded."""
        return await self._retriever.reindex_embeddings(batch_size, progress)

    # -- episodes --------------------------------------------------------------------------
    async def get_episode(self, episode_id: uuid.UUID | str) -> Episode:
        """The episode with its steps, including steps this process has not flushed yet."""
        return await self._reads.get_episode(episode_id)

    async def list_episodes(
        self, filters: EpisodeFilters | None = None, limit: int = 50, offset: int = 0
    ) -> list[Episode]:
        """Episodes, newest first, filtered in SQL."""
        return await self._reads.list_episodes(filters, limit, offset)

    async def count_episodes(self, filters: EpisodeFilters | None = None) -> int:
        return await self._reads.count_episodes(filters)

    async def outcome_timeline(
        self, window: str = "day", since: datetime | None = None, until: datetime | None = None
    ) -> list[OutcomeWindow]:
        """The learning curve: episodes completed per ``window`` (hour, day or week, UTC;
        weeks start on Monday) in ``[since, until)`` with their outcomes, oldest first,
        aggregated in the store (windows without completions are left out)."""
        return await self._reads.outcome_timeline(window, since, until)

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
        for_episode: uuid.UUID | str | None = None,
    ) -> list[RetrievalResult]:
        """Past completed episodes that help with this task, best first, each with its score,
        the score's components and where it came from. ``filters`` are hard SQL filters;
        ``context`` and ``task_type`` are soft signals in the ranking. ``for_episode``: the
        episode of the task this retrieval is for; the results count as used by it, with its
        outcome when it completes (retrieval feedback, :meth:`record_retrieval_feedback`)."""
        return await self._retriever.retrieve_relevant_context(
            task_description,
            context,
            limit,
            task_type=task_type,
            filters=filters,
            mode=mode,
            for_episode=for_episode,
        )

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
        return await self._retriever.check_known_failures(
            task_description, context, limit, task_type=task_type
        )

    async def retrieve_relevant_patterns(
        self,
        context: TaskContext | None = None,
        limit: int = 10,
        *,
        for_episode: uuid.UUID | str | None = None,
    ) -> list[PatternMatch]:
        """Learned patterns ranked for this context (success, evidence, context fit, type,
        effectiveness), one per similarity key. Counts as a retrieval for effectiveness; with
        ``for_episode``, as used by that task (an application with its outcome)."""
        return await self._retriever.retrieve_relevant_patterns(context, limit, for_episode)

    # -- retrieval feedback ----------------------------------------------------------------
    async def record_retrieval_feedback(
        self,
        episode_id: uuid.UUID | str,
        used_episode_ids: list[uuid.UUID | str] | None = None,
        used_pattern_ids: list[uuid.UUID | str] | None = None,
        helpful: bool | None = None,
    ) -> int:
        """Say which retrieved episodes and patterns the task of ``episode_id`` used, and
        (``helpful``) whether they helped. When that task completes (or at once if it already
        has), each used episode gains a use with the task's outcome, which raises or lowers its
        ``usefulness`` in later rankings, and each used pattern an application. Recording the
        same item for the same task again counts it once (a new ``helpful`` replaces the old).
        Returns how many uses were counted now (0 while the task is open). At most 100 ids per
        list; unknown ids raise ``NotFoundError`` and record nothing."""
        return await self._feedback.record(episode_id, used_episode_ids, used_pattern_ids, helpful)

    async def episode_usage(self, episode_id: uuid.UUID | str) -> EpisodeUsage:
        """How the episode served the later tasks that used it (zero counts without any)."""
        return await self._feedback.usage(episode_id)

    async def retrieve_heuristics(
        self, context: TaskContext | None = None, limit: int = 10
    ) -> list[HeuristicMatch]:
        """Heuristics seen at least ``heuristic_min_sample_size`` times with confidence at least
        ``heuristic_min_confidence``, ranked by confidence x relevance to the context."""
        return await self._retriever.retrieve_heuristics(context, limit)

    # -- patterns and heuristics -----------------------------------------------------------
    async def get_pattern(self, pattern_id: uuid.UUID | str) -> tuple[AnyPattern, PatternUsage]:
        return await self._reads.get_pattern(pattern_id)

    async def list_patterns(
        self, filters: PatternFilters | None = None, limit: int = 50, offset: int = 0
    ) -> list[tuple[AnyPattern, PatternUsage]]:
        return await self._reads.list_patterns(filters, limit, offset)

    async def pattern_evidence(
        self, pattern_ids: list[uuid.UUID], per_pattern: int = 5
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        """For each pattern, the newest episodes it was learned from (at most ``per_pattern``)."""
        return await self._reads.pattern_evidence(pattern_ids, per_pattern)

    async def record_pattern_application(self, pattern_id: uuid.UUID | str, success: bool) -> None:
        """Feedback: a pattern was applied and worked (or not). Feeds its effectiveness."""
        await self._reads.record_pattern_application(pattern_id, success)

    async def decay_patterns(self, *, force: bool = False) -> dict[str, int]:
        """Recompute effectiveness and remove patterns below 0.3 (weekly unless forced)."""
        return await self._reads.decay_patterns(force)

    async def get_heuristic(self, heuristic_id: uuid.UUID | str) -> Heuristic:
        return await self._reads.get_heuristic(heuristic_id)

    async def list_heuristics(self, limit: int = 50, offset: int = 0) -> list[Heuristic]:
        return await self._reads.list_heuristics(limit, offset)

    # -- operations ------------------------------------------------------------------------
    async def stats(self) -> MemoryStats:
        return await self._health.stats()

    async def health(self) -> dict[str, HealthReport]:
        """Each component's real state and the latency of checking it."""
        return await self._health.health()

    # -- the sandbox's audit trail ---------------------------------------------------------
    async def record_sandbox_run(self, run: SandboxRun) -> int:
        """Store ``run`` and prune the trail to the newest ``sandbox_audit.keep`` records, in
        one write; returns how many old records were pruned."""
        return await self._audit.record_sandbox_run(run)

    async def try_record_sandbox_run(self, run: SandboxRun) -> bool:
        """:meth:`record_sandbox_run` for callers whose own work must not fail with it (the
        MCP tool, the CLI): a failure is logged and counted in ``sandbox_audit_failures``."""
        return await self._audit.try_record_sandbox_run(run)

    async def list_sandbox_runs(
        self, filters: SandboxRunFilters | None = None, limit: int = 50
    ) -> list[SandboxRun]:
        """The newest recorded runs first."""
        return await self._audit.list_sandbox_runs(filters, limit)

    async def sandbox_run_counts(
        self, filters: SandboxRunFilters | None = None
    ) -> SandboxRunCounts:
        return await self._audit.sandbox_run_counts(filters)

    # -- agent monitoring (core/agents.py) -------------------------------------------------
    async def record_agent_execution(
        self,
        agent: str,
        success: bool,
        duration_ms: float,
        *,
        task_type: TaskType | str | None = None,
        steps: int = 0,
        errors: int = 0,
        task_description: str | None = None,
        error_message: str | None = None,
        execution_id: uuid.UUID | str | None = None,
    ) -> AgentExecution:
        """Record one execution of ``agent`` that no episode describes (an episode started
        with an ``agent`` records its own when it completes). ``execution_id``: recording the
        same id again stores it once."""
        return await self._agents.record_agent_execution(
            agent,
            success,
            duration_ms,
            task_type=task_type,
            steps=steps,
            errors=errors,
            task_description=task_description,
            error_message=error_message,
            execution_id=execution_id,
        )

    async def agent_metrics(
        self, since: datetime | None = None, window: str = "day", top: int | None = None
    ) -> AgentMetrics:
        """Per agent: executions, successes, durations, steps, errors, streaks and a series of
        ``window`` (hour, day, week) windows, aggregated in SQL; the busiest ``top`` agents
        (default ``monitoring.top_agents``) one by one, the rest folded into ``other``."""
        return await self._agents.metrics(since, window, top)
