"""Store-level metrics of a memory, measured now, and their export formats.

A process that opens the store (the CLI, a scraper) has no counters of its own history, so the
numbers come from the store itself: counts from the durable store, uptime since the first
episode (else since the database file was created), the error rate of the steps in a recent
window, the learning queue's depth, and retrieval latency measured by running a few real
retrievals (probes) built from recently completed tasks. The cache hit rate is that of the
probes' episode loads in this process (the LMDB cache keeps no cross-process counters).

Exports: Prometheus text exposition format (gauges and a latency summary), InfluxDB line
protocol and JSON.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, Field

from ..errors import ValidationError
from ..model.agents import AgentSummary

if TYPE_CHECKING:
    from ..storage.step_queries import StepActivity
    from .memory import SelfLearningMemory

__all__ = [
    "BREAKER_NOT_CONFIGURED",
    "CacheMetrics",
    "LatencyMetrics",
    "MemoryMetrics",
    "StepSource",
    "collect_metrics",
    "label_value",
    "to_influx",
    "to_prometheus",
]

BREAKER_NOT_CONFIGURED = "not configured"
MAX_PROBES = 50
FALLBACK_QUERIES = (
    "fix a failing test",
    "add an API endpoint",
    "refactor a module",
    "debug a connection error",
    "write documentation",
)


class StepSource(Protocol):
    """What metrics need from the step log (``storage.step_queries.StepQueries``)."""

    async def activity(self, since: datetime) -> StepActivity: ...
    async def first_episode_time(self) -> datetime | None: ...
    async def recent_descriptions(self, limit: int) -> list[tuple[uuid.UUID, str]]: ...


class LatencyMetrics(BaseModel):
    samples: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    sum_ms: float
    source: str


class CacheMetrics(BaseModel):
    enabled: bool
    entries: int
    hits: int
    misses: int
    hit_rate: float
    scope: str


class MemoryMetrics(BaseModel):
    timestamp: datetime
    data_dir: str | None
    uptime_seconds: float | None
    uptime_since: datetime | None
    uptime_source: Literal["first_episode", "database_file", "none"]
    episodes: int
    completed_episodes: int
    in_progress_episodes: int
    steps: int
    patterns: int
    heuristics: int
    storage_bytes: int
    outcomes: dict[str, int]
    pattern_success_rate: float
    pattern_effectiveness: float
    retrieval_latency: LatencyMetrics
    cache: CacheMetrics
    error_window: str
    window_steps: int
    failed_steps: int
    error_rate: float
    learning_queue_depth: int
    circuit_breaker: str
    # the busiest ``monitoring.max_agent_labels`` agents, the rest folded into ``other``
    agents: list[AgentSummary] = Field(default_factory=list)


def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _latency(samples: list[float], source: str) -> LatencyMetrics:
    ordered = sorted(samples)
    total = sum(ordered)
    return LatencyMetrics(
        samples=len(ordered),
        p50_ms=round(_percentile(ordered, 0.5), 3),
        p95_ms=round(_percentile(ordered, 0.95), 3),
        p99_ms=round(_percentile(ordered, 0.99), 3),
        mean_ms=round(total / len(ordered), 3) if ordered else 0.0,
        max_ms=round(ordered[-1], 3) if ordered else 0.0,
        sum_ms=round(total, 3),
        source=source,
    )


def _file_created(path: str | os.PathLike[str]) -> datetime | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    born = getattr(st, "st_birthtime", None)
    return datetime.fromtimestamp(born if born is not None else st.st_ctime, UTC)


async def probe_retrieval(
    memory: SelfLearningMemory, steps: StepSource, probes: int
) -> list[float]:
    """Run ``probes`` real retrievals (queries from recent tasks) and return their times in ms.
    The in-process query cache is emptied before each, so every probe runs the full path."""
    recent = [text[:200] for _, text in await steps.recent_descriptions(min(probes, 100))]
    queries = [*recent, *FALLBACK_QUERIES]
    samples = []
    for i in range(probes):
        memory._query_cache.clear()
        started = time.perf_counter()
        await memory.retrieve_relevant_context(queries[i % len(queries)], limit=5)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def collect_metrics(
    memory: SelfLearningMemory,
    steps: StepSource,
    *,
    probes: int = 5,
    window: timedelta = timedelta(hours=24),
    window_label: str = "24h",
) -> MemoryMetrics:
    """Measure the memory now (see the module docstring for where each number comes from)."""
    if not 0 <= probes <= MAX_PROBES:
        raise ValidationError("probes", f"{probes} is out of range", f"0..{MAX_PROBES}")
    now = datetime.now(UTC)
    samples = await probe_retrieval(memory, steps, probes) if probes else []
    stats = await memory.stats()
    activity = await steps.activity(now - window)
    first = await steps.first_episode_time()
    source: Literal["first_episode", "database_file", "none"] = "none"
    since = None
    if first is not None:
        since, source = first, "first_episode"
    else:
        db_path = memory.storage.capabilities.local_file
        created = None if db_path is None else _file_created(db_path)
        if created is not None:
            since, source = created, "database_file"
    cache = stats.cache
    return MemoryMetrics(
        timestamp=now,
        data_dir=None if memory.data_dir is None else str(memory.data_dir),
        uptime_seconds=None if since is None else round(max(0.0, (now - since).total_seconds()), 3),
        uptime_since=since,
        uptime_source=source,
        episodes=stats.episodes,
        completed_episodes=stats.completed,
        in_progress_episodes=stats.in_progress,
        steps=stats.steps + stats.buffered_steps,
        patterns=stats.patterns,
        heuristics=stats.heuristics,
        storage_bytes=stats.storage_bytes,
        outcomes=stats.outcomes,
        pattern_success_rate=round(stats.pattern_success_rate, 4),
        pattern_effectiveness=round(stats.pattern_effectiveness, 4),
        retrieval_latency=_latency(samples, f"{len(samples)} retrieval probes in this process"),
        cache=CacheMetrics(
            enabled=cache is not None,
            entries=0 if cache is None else cache.entries,
            hits=0 if cache is None else cache.hits,
            misses=0 if cache is None else cache.misses,
            hit_rate=0.0 if cache is None else round(cache.hit_rate, 4),
            scope="episode loads of this process (the probes)",
        ),
        error_window=window_label,
        window_steps=activity.total_steps,
        failed_steps=activity.failed_steps,
        error_rate=round(activity.error_rate, 4),
        learning_queue_depth=await memory.storage.learning_queue_depth(),
        circuit_breaker=await _breaker_state(memory),
        agents=(await memory.agent_metrics(top=memory.config.monitoring.max_agent_labels)).agents,
    )


async def _breaker_state(memory: SelfLearningMemory) -> str:
    """The primary store's circuit breaker state (closed, open, half_open), if it has one."""
    wrapper = memory.storage.capabilities.resilience
    if wrapper is None:
        return BREAKER_NOT_CONFIGURED
    return str((await wrapper.resilience_status())["breaker"]["state"])


# -- exports ---------------------------------------------------------------------------------
def _gauges(m: MemoryMetrics) -> list[tuple[str, str, float]]:
    return [
        (
            "memory_uptime_seconds",
            "Seconds since the store's first episode.",
            m.uptime_seconds or 0,
        ),
        ("memory_episodes_total", "Episodes in the store.", m.episodes),
        ("memory_episodes_completed", "Completed episodes.", m.completed_episodes),
        ("memory_episodes_in_progress", "Episodes not completed yet.", m.in_progress_episodes),
        ("memory_steps_total", "Steps in the store.", m.steps),
        ("memory_patterns_total", "Learned patterns.", m.patterns),
        ("memory_heuristics_total", "Learned heuristics.", m.heuristics),
        ("memory_storage_bytes", "Size of the database file.", m.storage_bytes),
        ("memory_cache_entries", "Episodes in the LMDB cache.", m.cache.entries),
        ("memory_cache_hit_rate", "Cache hit rate of the probes' loads.", m.cache.hit_rate),
        ("memory_error_rate", f"Failed steps / steps in the last {m.error_window}.", m.error_rate),
        ("memory_learning_queue_depth", "Episodes waiting for learning.", m.learning_queue_depth),
        (
            "memory_circuit_breaker_configured",
            "1 if a circuit breaker guards the store.",
            0 if m.circuit_breaker == BREAKER_NOT_CONFIGURED else 1,
        ),
    ]


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def label_value(value: str) -> str:
    """A Prometheus label value, escaped (backslash, double quote, line feed)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_AGENT_SERIES = (
    ("memory_agent_executions_total", "counter", "Executions recorded per agent.", "executions"),
    ("memory_agent_success_total", "counter", "Successful executions per agent.", "successes"),
    ("memory_agent_success_rate", "gauge", "Successes / executions per agent.", "success_rate"),
    (
        "memory_agent_duration_ms_avg",
        "gauge",
        "Mean execution time per agent (ms).",
        "avg_duration_ms",
    ),
    (
        "memory_agent_duration_ms_max",
        "gauge",
        "Longest execution per agent (ms).",
        "max_duration_ms",
    ),
    ("memory_agent_steps_total", "counter", "Steps of the executions per agent.", "steps"),
    ("memory_agent_errors_total", "counter", "Failed steps of the executions per agent.", "errors"),
    (
        "memory_agent_current_streak",
        "gauge",
        "Successes in a row up to the newest execution.",
        "current_streak",
    ),
)


def _agent_lines(m: MemoryMetrics) -> list[str]:
    """Per-agent series; label values are the validated agent names (at most
    ``monitoring.max_agent_labels`` of them plus ``other``), escaped all the same."""
    lines: list[str] = []
    if not m.agents:  # no family without samples
        return lines
    for name, kind, help_text, attr in _AGENT_SERIES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for a in m.agents:
            labels = f'agent="{label_value(a.agent)}",agent_type="{label_value(a.agent_type)}"'
            lines.append(f"{name}{{{labels}}} {_number(getattr(a, attr))}")
    return lines


def to_prometheus(m: MemoryMetrics) -> str:
    """Prometheus text exposition format 0.0.4."""
    lines: list[str] = []
    for name, help_text, value in _gauges(m):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {_number(value)}"]
    name = "memory_retrieval_latency_ms"
    lat = m.retrieval_latency
    lines += [
        f"# HELP {name} Retrieval latency of the probes, milliseconds.",
        f"# TYPE {name} summary",
        f'{name}{{quantile="0.5"}} {_number(lat.p50_ms)}',
        f'{name}{{quantile="0.95"}} {_number(lat.p95_ms)}',
        f'{name}{{quantile="0.99"}} {_number(lat.p99_ms)}',
        f"{name}_sum {_number(lat.sum_ms)}",
        f"{name}_count {lat.samples}",
    ]
    name = "memory_episodes_by_outcome"
    lines += [f"# HELP {name} Completed episodes per outcome.", f"# TYPE {name} gauge"]
    for outcome in ("success", "partial_success", "failure"):
        lines.append(f'{name}{{outcome="{outcome}"}} {m.outcomes.get(outcome, 0)}')
    lines += _agent_lines(m)
    return "\n".join(lines) + "\n"


def to_influx(m: MemoryMetrics, measurement: str = "memory_stats") -> str:
    """One InfluxDB line-protocol point (integers with ``i``, nanosecond timestamp)."""
    ints = {
        "episodes": m.episodes,
        "completed_episodes": m.completed_episodes,
        "in_progress_episodes": m.in_progress_episodes,
        "steps": m.steps,
        "patterns": m.patterns,
        "heuristics": m.heuristics,
        "storage_bytes": m.storage_bytes,
        "cache_entries": m.cache.entries,
        "window_steps": m.window_steps,
        "failed_steps": m.failed_steps,
        "learning_queue_depth": m.learning_queue_depth,
        "retrieval_samples": m.retrieval_latency.samples,
    }
    floats = {
        "uptime_seconds": m.uptime_seconds or 0.0,
        "cache_hit_rate": m.cache.hit_rate,
        "error_rate": m.error_rate,
        "retrieval_p50_ms": m.retrieval_latency.p50_ms,
        "retrieval_p95_ms": m.retrieval_latency.p95_ms,
        "retrieval_p99_ms": m.retrieval_latency.p99_ms,
        "pattern_success_rate": m.pattern_success_rate,
    }
    fields = [f"{k}={v}i" for k, v in ints.items()]
    fields += [f"{k}={float(v)!r}" for k, v in floats.items()]
    breaker = m.circuit_breaker.replace(" ", "_")
    ns = int(m.timestamp.timestamp() * 1_000_000) * 1000
    return f"{measurement},store=sqlite,circuit_breaker={breaker} {','.join(fields)} {ns}\n"
