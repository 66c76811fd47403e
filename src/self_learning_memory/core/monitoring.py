"""In-process operation metrics: counts, errors and latency percentiles per operation."""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic import BaseModel

__all__ = ["Monitor", "OperationStats"]

_WINDOW = 2048


class OperationStats(BaseModel):
    calls: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass
class _Series:
    calls: int = 0
    errors: int = 0
    samples: deque[float] = field(default_factory=lambda: deque(maxlen=_WINDOW))


class Monitor:
    """Counts every public operation of the memory; the MCP server and CLI report it."""

    def __init__(self) -> None:
        self.started = time.time()
        self._series: dict[str, _Series] = {}

    def record(self, operation: str, seconds: float, ok: bool) -> None:
        series = self._series.setdefault(operation, _Series())
        series.calls += 1
        series.errors += 0 if ok else 1
        series.samples.append(seconds * 1000)

    @contextlib.contextmanager
    def timed(self, operation: str) -> Iterator[None]:
        """Record the block's duration as one call of ``operation`` (an error if it raises)."""
        started = time.perf_counter()
        ok = False
        try:
            yield
            ok = True
        finally:
            self.record(operation, time.perf_counter() - started, ok)

    def snapshot(self) -> dict[str, OperationStats]:
        out = {}
        for name, series in sorted(self._series.items()):
            values = sorted(series.samples)
            out[name] = OperationStats(
                calls=series.calls,
                errors=series.errors,
                p50_ms=_percentile(values, 0.5),
                p95_ms=_percentile(values, 0.95),
                p99_ms=_percentile(values, 0.99),
                mean_ms=sum(values) / len(values) if values else 0.0,
            )
        return out

    def uptime_s(self) -> float:
        return time.time() - self.started
