"""One health verdict from the components' reports (what ``health check`` prints).

A component that answered within its latency threshold is *healthy*, slower is *degraded*, an
error (or a failed self-check) is *unhealthy*; one that answers but says it runs ``degraded`` (a
Turso store serving its local file while the remote is away) is *degraded*. Optional components
only degrade: retrieval falls back to lexical without embeddings, and every read goes to the
primary store without the cache (a damaged cache is disabled: ``disabled: <why>``). Overall: any
unhealthy -> unhealthy, else any degraded -> degraded, else healthy.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from ..model.episode import utc_now
from ..model.records import HealthReport

__all__ = ["LATENCY_THRESHOLDS_MS", "ComponentHealth", "HealthSummary", "summarise_health"]

Status = Literal["healthy", "degraded", "unhealthy"]
LATENCY_THRESHOLDS_MS: dict[str, float] = {"primary_storage": 100.0, "cache_storage": 10.0}
OPTIONAL_COMPONENTS = frozenset({"embeddings", "cache_storage"})
_ORDER: dict[Status, int] = {"healthy": 0, "degraded": 1, "unhealthy": 2}


class ComponentHealth(BaseModel):
    name: str
    backend: str
    status: Status
    latency_ms: float
    threshold_ms: float | None
    reason: str | None = None
    details: dict[str, object] = Field(default_factory=dict)


class HealthSummary(BaseModel):
    status: Status
    checked_at: datetime
    components: list[ComponentHealth]

    @property
    def healthy(self) -> bool:
        return self.status == "healthy"


def _component(name: str, report: HealthReport) -> ComponentHealth:
    threshold = LATENCY_THRESHOLDS_MS.get(name)
    status: Status = "healthy"
    reason = None
    if not report.healthy:
        status = "degraded" if name in OPTIONAL_COMPONENTS else "unhealthy"
        error = report.details.get("error") or report.details.get("quick_check")
        reason = f"check failed: {error}" if error else "check failed"
        if report.details.get("disabled"):
            reason = f"disabled: {report.details['disabled']}"
    elif report.details.get("degraded") is True:  # answering, but not as configured
        status = "degraded"
        why = report.details.get("last_remote_error") or report.details.get("serving")
        reason = f"degraded: {why}" if why else "degraded"
    elif threshold is not None and report.latency_ms >= threshold:
        status = "degraded"
        reason = f"answered in {report.latency_ms:.1f} ms (threshold {threshold:.0f} ms)"
    return ComponentHealth(
        name=name,
        backend=report.name,
        status=status,
        latency_ms=round(report.latency_ms, 3),
        threshold_ms=threshold,
        reason=reason,
        details=dict(report.details),
    )


def summarise_health(reports: dict[str, HealthReport]) -> HealthSummary:
    components = [_component(name, report) for name, report in reports.items()]
    worst: Status = "healthy"
    for c in components:
        if _ORDER[c.status] > _ORDER[worst]:
            worst = c.status
    return HealthSummary(status=worst, checked_at=utc_now(), components=components)
