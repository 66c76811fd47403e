"""Ranking metrics over one query's ranked ids and its relevance labels.

``ranked`` is the retrieved ids, best first. ``relevant`` maps each relevant id to its gain
(binary labels use 1; anything missing or 0 is not relevant).

- hit@1: 1 if the first result is relevant.
- reciprocal rank: 1 / rank of the first relevant result (0 if none was retrieved); its mean
  over queries is MRR.
- recall@k: relevant results in the top k / all relevant ids.
- nDCG@k: sum(gain_i / log2(i + 1)) over ranks i = 1..k, divided by the same sum for the ideal
  ordering (the relevant ids sorted by gain); linear gains.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

__all__ = ["hit_at_1", "mean_metrics", "ndcg_at_k", "recall_at_k", "reciprocal_rank"]

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
