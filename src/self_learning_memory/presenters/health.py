"""Health verdicts and store counts as the front ends return them.

The verdict's names are the MCP ``health_check``'s: ``overall`` (healthy, degraded or
unhealthy) and ``timestamp``; a component has ``status``, ``backend``, ``latency_ms`` and
``details`` in both. The counts of the store carry the names of ``health_check``'s
``memory_system.details`` (``in_progress``, ``learning_queue_depth``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.health import MemoryStats
    from ..core.health_status import HealthSummary

__all__ = ["health_payload", "store_counts"]


def health_payload(summary: HealthSummary) -> dict[str, Any]:
    """A verdict with each component (``memory-cli health check``): ``overall`` and
    ``timestamp``, also under the CLI's older names ``status`` and ``checked_at``, and the
    components as a list ``{name, backend, status, latency_ms, threshold_ms, reason,
    details}``."""
    data = summary.model_dump(mode="json")
    return {"overall": data["status"], "timestamp": data["checked_at"], **data}


def store_counts(stats: MemoryStats) -> dict[str, Any]:
    """What the store holds: episodes (completed, in progress, by outcome), steps (and steps
    still buffered in this process), patterns, heuristics, and the learning queue's depth."""
    queue = stats.learning_queue
    return {
        "episodes": stats.episodes,
        "completed": stats.completed,
        "in_progress": stats.in_progress,
        "outcomes": stats.outcomes,
        "steps": stats.steps,
        "buffered_steps": stats.buffered_steps,
        "patterns": stats.patterns,
        "heuristics": stats.heuristics,
        "learning_queue_depth": None if queue is None else queue.current_queue_size,
    }
