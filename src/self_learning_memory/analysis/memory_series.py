"""Trends over the memory itself: "is my agent getting better at debugging?" in numbers.

``analyze_memory_trends(memory, ...)`` reads the completed episodes that match the filters
(newest first, at most ``max_episodes``), buckets them by day or by N episodes, builds one series
per metric (mean reward, mean duration, mean step count, success rate, mean tokens) and tests each
for a trend: OLS slope with its confidence interval and p-value, Mann-Kendall, changepoints and an
ETS forecast once there are enough buckets. Lower is better for duration, steps and tokens.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from scipy import stats

from self_learning_memory.analysis import predictive, statistical
from self_learning_memory.analysis.memory_request import (
    BETTER,
    MIN_BUCKETS,
    TrendRequest,
    validate_request,
)

if TYPE_CHECKING:
    from self_learning_memory.model.episode import Episode
    from self_learning_memory.model.records import EpisodeFilters


class EpisodeSource(Protocol):
    """What the trend analysis reads: the memory's own episode listing (``SelfLearningMemory``)."""

    async def count_episodes(self, filters: EpisodeFilters | None = None) -> int: ...

    async def list_episodes(
        self, filters: EpisodeFilters | None = None, limit: int = 50, offset: int = 0
    ) -> list[Episode]: ...


__all__ = [
    "EpisodePoint",
    "EpisodeSource",
    "analyze_memory_trends",
    "analyze_points",
    "episode_point",
]

PAGE = 1000
FORECAST_HORIZON = 3
UNITS = {
    "reward": "reward",
    "success_rate": "fraction",
    "duration": "seconds",
    "steps": "steps",
    "tokens": "tokens",
}


@dataclass(frozen=True, slots=True)
class EpisodePoint:
    """The numbers of one completed episode that the trends use."""

    start: datetime
    reward: float | None
    duration: float | None
    steps: float
    success: float
    tokens: float | None

    def value(self, metric: str) -> float | None:
        return {
            "reward": self.reward,
            "success_rate": self.success,
            "duration": self.duration,
            "steps": self.steps,
            "tokens": self.tokens,
        }[metric]


def episode_point(episode: Episode) -> EpisodePoint:
    used = [s.tokens_used for s in episode.steps if s.tokens_used is not None]
    span = episode.duration()
    return EpisodePoint(
        start=episode.start_time,
        reward=None if episode.reward is None else float(episode.reward.total),
        duration=None if span is None else span.total_seconds(),
        steps=float(len(episode.steps)),
        success=1.0 if episode.outcome is not None and episode.outcome.type == "success" else 0.0,
        tokens=float(sum(used)) if used else None,
    )


@dataclass
class _Bucket:
    label: str
    position: float  # x for the regression: days since the first bucket, or the bucket index
    points: list[EpisodePoint]


def _buckets(points: list[EpisodePoint], request: TrendRequest) -> tuple[list[_Bucket], int]:
    """Chronological buckets, and how many episodes a trailing partial bucket left out."""
    points = sorted(points, key=lambda p: p.start)
    if not points:
        return [], 0
    if request.bucket == "day":
        first = points[0].start.date()
        by_index: dict[int, _Bucket] = {}
        for p in points:
            index = (p.start.date() - first).days // request.bucket_size
            if index not in by_index:
                day = first.toordinal() + index * request.bucket_size
                label = datetime.fromordinal(day).date().isoformat()
                by_index[index] = _Bucket(label, float(index * request.bucket_size), [])
            by_index[index].points.append(p)
        return [by_index[i] for i in sorted(by_index)], 0
    size = request.bucket_size
    full = len(points) // size
    out = [
        _Bucket(
            f"{i * size + 1}-{(i + 1) * size}",
            float(i),
            points[i * size : (i + 1) * size],
        )
        for i in range(full)
    ]
    return out, len(points) - full * size


def _fmt(value: float) -> str:
    return f"{value:+.4g}"


def _metric(metric: str, buckets: list[_Bucket], request: TrendRequest, per: str) -> dict[str, Any]:
    xs: list[float] = []
    ys: list[float] = []
    labels: list[str] = []
    counts: list[int] = []
    for b in buckets:
        values = [v for v in (p.value(metric) for p in b.points) if v is not None]
        if values:
            xs.append(b.position)
            ys.append(sum(values) / len(values))
            labels.append(b.label)
            counts.append(len(values))
    n = len(ys)
    base: dict[str, Any] = {
        "metric": metric,
        "unit": UNITS[metric],
        "better": "higher" if BETTER[metric] > 0 else "lower",
        "buckets_used": n,
        "episodes_used": sum(counts),
        "series": [
            {"bucket": label, "value": y, "episodes": c}
            for label, y, c in zip(labels, ys, counts, strict=True)
        ],
    }
    if n < MIN_BUCKETS:
        reason = f"not enough data: {n} buckets, need {MIN_BUCKETS}"
        return {**base, "status": "not_enough_data", "direction": None, "reason": reason,
                "answer": f"{metric}: {reason}"}  # fmt: skip
    x, y = np.asarray(xs), np.asarray(ys)
    window = max(1, n // 3)
    first, last = float(y[:window].mean()), float(y[-window:].mean())
    alpha = request.significance_level
    out: dict[str, Any] = {
        **base,
        "status": "ok",
        "slope_per": per,
        "window_buckets": window,
        "first_window_mean": first,
        "last_window_mean": last,
        "change": last - first,
    }
    if np.ptp(y) == 0:
        out.update(
            direction="no significant trend",
            slope=0.0,
            confidence_interval=[0.0, 0.0],
            p_value=None,
            mann_kendall=None,
            reason="constant series",
            answer=f"{metric}: constant at {first:.4g} over {n} buckets",
        )
        return out
    ols = stats.linregress(x, y)
    half = float(stats.t.ppf(1 - alpha / 2, n - 2)) * float(ols.stderr) if n > 2 else math.nan
    p = statistical.finite(ols.pvalue)
    mk = stats.kendalltau(x, y)
    significant = p is not None and p < alpha
    if not significant:
        direction = "no significant trend"
    else:
        direction = "improving" if ols.slope * BETTER[metric] > 0 else "declining"
    level = round((1 - alpha) * 100, 6)
    ci = [statistical.finite(ols.slope - half), statistical.finite(ols.slope + half)]
    out.update(
        direction=direction,
        significant=significant,
        slope=statistical.finite(ols.slope),
        confidence_interval=ci,
        confidence_level=1 - alpha,
        p_value=p,
        r_squared=statistical.finite(ols.rvalue**2),
        mann_kendall={
            "tau": statistical.finite(mk.statistic),
            "p_value": statistical.finite(mk.pvalue),
            "significant": bool(mk.pvalue < alpha),
        },
    )
    ci_text = "" if None in ci else f" ({level:g}% CI {_fmt(ci[0] or 0)}..{_fmt(ci[1] or 0)})"
    p_text = "p n/a" if p is None else f"p = {p:.2g}"
    out["answer"] = (
        f"{metric} ({out['better']} is better): {direction}, {_fmt(ols.slope)} per {per}"
        f"{ci_text}, {p_text}; first {window} buckets mean {first:.4g}, last {window} buckets "
        f"mean {last:.4g}; {n} buckets, {sum(counts)} episodes"
    )
    if n >= statistical.MIN_CHANGEPOINT_POINTS:
        points = statistical.changepoints({metric: ys})[metric]["points"]
        out["changepoints"] = [{**c, "bucket": labels[c["index"]]} for c in points]
    else:
        out["changepoints"] = []
    if n >= predictive.MIN_FORECAST_POINTS:
        try:
            out["forecast"] = predictive.forecast(metric, ys, FORECAST_HORIZON, alpha)
        except ValueError as exc:  # no ETS model could be fitted
            out["forecast"] = {"point_forecasts": None, "reason": str(exc)}
    else:
        out["forecast"] = {
            "point_forecasts": None,
            "reason": f"fewer than {predictive.MIN_FORECAST_POINTS} buckets",
        }
    return out


def analyze_points(points: Sequence[EpisodePoint], request: TrendRequest) -> dict[str, Any]:
    """The trends of the given episodes (synchronous, CPU-bound: run it in a thread)."""
    buckets, left_out = _buckets(list(points), request)
    # day buckets sit at their day offset, so the slope is per day whatever the bucket size
    per = "day" if request.bucket == "day" else f"bucket of {request.bucket_size} episodes"
    metrics = {m: _metric(m, buckets, request, per) for m in request.metrics}
    return {
        "episodes_analyzed": len(points),
        "buckets": len(buckets),
        "partial_bucket_episodes_left_out": left_out,
        "metrics": metrics,
        "answer": [m["answer"] for m in metrics.values()],
    }


async def read_points(
    memory: EpisodeSource, request: TrendRequest
) -> tuple[list[EpisodePoint], int]:
    """The newest ``request.max_episodes`` completed episodes matching the filters, and how many
    matched in all."""
    from self_learning_memory.model.episode import TaskType
    from self_learning_memory.model.records import EpisodeFilters

    filters = EpisodeFilters(
        task_type=None if request.task_type is None else TaskType(request.task_type),
        domain=request.domain,
        completed=True,
        since=request.since,
        until=request.until,
    )
    total = await memory.count_episodes(filters)
    points: list[EpisodePoint] = []
    offset = 0
    while offset < min(total, request.max_episodes):
        want = min(PAGE, request.max_episodes - offset)
        page = await memory.list_episodes(filters, want, offset)
        offset += len(page)
        points += [episode_point(e) for e in page if e.is_complete()]
        if len(page) < want:
            break
    return points, total


async def analyze_memory_trends(
    memory: EpisodeSource, request: TrendRequest | None = None, /, **arguments: object
) -> dict[str, Any]:
    """Trend of each metric over the stored episodes. Pass a validated ``TrendRequest`` or the
    arguments of ``validate_request`` (task_type, domain, since, until, bucket, bucket_size,
    metrics, max_episodes, significance_level); raises ValidationError on bad arguments."""
    if request is None:
        request = validate_request(**arguments)
    elif arguments:
        raise TypeError("pass either a TrendRequest or keyword arguments, not both")
    started = time.perf_counter()
    points, total = await read_points(memory, request)
    read_ms = (time.perf_counter() - started) * 1000
    result = await asyncio.to_thread(analyze_points, points, request)
    return {
        "filters": {
            "task_type": request.task_type,
            "domain": request.domain,
            "since": None if request.since is None else request.since.isoformat(),
            "until": None if request.until is None else request.until.isoformat(),
            "completed": True,
        },
        "bucket": request.bucket,
        "bucket_size": request.bucket_size,
        "significance_level": request.significance_level,
        "episodes_matching": total,
        "max_episodes": request.max_episodes,
        "truncated": total > len(points),
        **result,
        "performance": {
            "read_ms": read_ms,
            "total_ms": (time.perf_counter() - started) * 1000,
        },
    }
