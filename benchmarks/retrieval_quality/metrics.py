"""Ranking metrics over one query's ranked ids and its relevance labels.

``ranked`` is the retrieved ids, best first. ``relevant`` maps each relevant id to its gain
(binary labels use 1; anything missing or 0 is not relevant).

- hit@1: 1 if the first result is relevant.
- reciprocal rank: 1 / rank of the first relevant result (0 if none was retrieved); its mean
  over queries is MRR.
- recall@k: relevant results in the top k / all relevant ids.
- nDCG@k: sum(gain_i / log2(i + 1)) over ranks i = 1..k, divided by the same sum for the ideal
  ordering (the relevant ids sorted by gain); linear gains.

Comparing two modes on the same queries (``a`` and ``b`` hold one value per query, aligned):

- ``paired_bootstrap_ci``: a percentile confidence interval of mean(a - b), resampling the
  queries with replacement (seeded, so a run repeats exactly).
- ``wins_ties_losses``: on how many queries ``a`` scored higher, the same, lower than ``b``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Mapping, Sequence
from typing import NamedTuple, TypeVar

__all__ = [
    "WinsTiesLosses",
    "hit_at_1",
    "mean_metrics",
    "ndcg_at_k",
    "paired_bootstrap_ci",
    "query_metrics",
    "recall_at_k",
    "reciprocal_rank",
    "wins_ties_losses",
]

K = TypeVar("K", bound=Hashable)


def hit_at_1(ranked: Sequence[K], relevant: Mapping[K, float]) -> float:
    return 1.0 if ranked and relevant.get(ranked[0], 0) > 0 else 0.0


def reciprocal_rank(ranked: Sequence[K], relevant: Mapping[K, float]) -> float:
    for rank, item in enumerate(ranked, start=1):
        if relevant.get(item, 0) > 0:
            return 1.0 / rank
    return 0.0


def recall_at_k(ranked: Sequence[K], relevant: Mapping[K, float], k: int) -> float:
    wanted = {item for item, gain in relevant.items() if gain > 0}
    if not wanted:
        return 0.0
    return len(wanted & set(ranked[:k])) / len(wanted)


def ndcg_at_k(ranked: Sequence[K], relevant: Mapping[K, float], k: int) -> float:
    dcg = sum(
        relevant.get(item, 0) / math.log2(rank + 1) for rank, item in enumerate(ranked[:k], start=1)
    )
    ideal_gains = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    ideal = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal_gains, start=1))
    return dcg / ideal if ideal > 0 else 0.0


def mean_metrics(
    runs: Sequence[tuple[Sequence[K], Mapping[K, float], Mapping[K, float]]], k: int = 10
) -> dict[str, float]:
    """Mean metrics over queries; each run is (ranked, binary labels, graded labels)."""
    if not runs:
        return {}
    n = len(runs)
    return {
        "hit_at_1": sum(hit_at_1(r, b) for r, b, _ in runs) / n,
        "mrr": sum(reciprocal_rank(r, b) for r, b, _ in runs) / n,
        f"recall_at_{k}": sum(recall_at_k(r, b, k) for r, b, _ in runs) / n,
        f"ndcg_at_{k}": sum(ndcg_at_k(r, b, k) for r, b, _ in runs) / n,
        f"ndcg_at_{k}_graded": sum(ndcg_at_k(r, g, k) for r, _, g in runs) / n,
    }


def query_metrics(
    ranked: Sequence[K], binary: Mapping[K, float], graded: Mapping[K, float], k: int = 10
) -> dict[str, float]:
    """One query's metrics (the values ``mean_metrics`` averages)."""
    return mean_metrics([(ranked, binary, graded)], k)


class WinsTiesLosses(NamedTuple):
    wins: int
    ties: int
    losses: int


def wins_ties_losses(
    a: Sequence[float], b: Sequence[float], tolerance: float = 1e-9
) -> WinsTiesLosses:
    """Per query: ``a`` higher than ``b`` (a win), within ``tolerance`` (a tie), or lower."""
    if len(a) != len(b):
        raise ValueError(f"paired values differ in length: {len(a)} and {len(b)}")
    wins = sum(1 for x, y in zip(a, b, strict=True) if x - y > tolerance)
    losses = sum(1 for x, y in zip(a, b, strict=True) if y - x > tolerance)
    return WinsTiesLosses(wins, len(a) - wins - losses, losses)


def paired_bootstrap_ci(
    a: Sequence[float],
    b: Sequence[float],
    *,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(a - b) over paired queries.

    Each resample draws len(a) queries with replacement (the same draw for a and b, so the
    pairing is kept) and takes the mean difference; the interval cuts (1 - confidence) / 2 of
    the sorted ``resamples`` means off each end (2000 and 95 %: the 51st and the 1950th)."""
    if len(a) != len(b):
        raise ValueError(f"paired values differ in length: {len(a)} and {len(b)}")
    if not a:
        raise ValueError("paired values are empty: need at least one query")
    if resamples < 1:
        raise ValueError(f"resamples is {resamples}: need at least 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence is {confidence}: need a value between 0 and 1")
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(diffs, k=n)) / n for _ in range(resamples))
    cut = min(math.floor((1.0 - confidence) / 2 * resamples + 1e-9), (resamples - 1) // 2)
    return means[cut], means[resamples - 1 - cut]
