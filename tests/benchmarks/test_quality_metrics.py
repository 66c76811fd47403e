"""The retrieval-quality metrics on a 3-query toy case computed by hand, and the paired
comparison of two modes (bootstrap interval, wins / ties / losses) on tiny cases."""

from __future__ import annotations

import math

import pytest
from benchmarks.retrieval_quality.metrics import (
    WinsTiesLosses,
    hit_at_1,
    mean_metrics,
    ndcg_at_k,
    paired_bootstrap_ci,
    query_metrics,
    recall_at_k,
    reciprocal_rank,
    wins_ties_losses,
)

# query 1: relevant a and c, found at ranks 1 and 3
Q1 = (["a", "b", "c", "d"], {"a": 1.0, "c": 1.0})
# query 2: the only relevant id, z, at rank 3
Q2 = (["x", "y", "z"], {"z": 1.0})
# query 3: nothing relevant retrieved
Q3 = (["p", "q"], {"r": 1.0, "s": 1.0})


def test_hit_at_1() -> None:
    assert [hit_at_1(*q) for q in (Q1, Q2, Q3)] == [1.0, 0.0, 0.0]
    assert hit_at_1([], {"a": 1.0}) == 0.0


def test_reciprocal_rank() -> None:
    assert [reciprocal_rank(*q) for q in (Q1, Q2, Q3)] == [1.0, pytest.approx(1 / 3), 0.0]


def test_recall_at_k() -> None:
    assert recall_at_k(*Q1, k=2) == 0.5  # a of {a, c}
    assert recall_at_k(*Q1, k=3) == 1.0
    assert recall_at_k(*Q2, k=2) == 0.0
    assert recall_at_k(*Q2, k=3) == 1.0
    assert recall_at_k(*Q3, k=10) == 0.0
    assert recall_at_k(["a"], {}, k=1) == 0.0  # no relevant ids: 0, not a division by zero


def test_ndcg_at_k() -> None:
    # Q1: DCG = 1/log2(2) + 1/log2(4) = 1.5; ideal = 1 + 1/log2(3) = 1.6309...
    assert ndcg_at_k(*Q1, k=3) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(*Q1, k=3) == pytest.approx(0.91972, abs=1e-5)
    assert ndcg_at_k(*Q1, k=1) == 1.0  # only rank 1 counts, and it is relevant
    assert ndcg_at_k(*Q2, k=3) == pytest.approx(0.5)  # 1/log2(4) over an ideal of 1
    assert ndcg_at_k(*Q2, k=2) == 0.0
    assert ndcg_at_k(*Q3, k=10) == 0.0
    # graded: a has gain 2, c gain 1: DCG = 2 + 1/2; ideal = 2 + 1/log2(3)
    graded = ndcg_at_k(Q1[0], {"a": 2.0, "c": 1.0}, k=3)
    assert graded == pytest.approx(2.5 / (2 + 1 / math.log2(3)))
    # the same hits in the worse order score less
    assert ndcg_at_k(["c", "b", "a"], {"a": 2.0, "c": 1.0}, k=3) < graded


def test_means_over_the_three_queries() -> None:
    runs = [(ranked, labels, labels) for ranked, labels in (Q1, Q2, Q3)]
    means = mean_metrics(runs, k=3)
    assert means["hit_at_1"] == pytest.approx(1 / 3)
    assert means["mrr"] == pytest.approx((1 + 1 / 3 + 0) / 3)  # 4/9
    assert means["recall_at_3"] == pytest.approx((1 + 1 + 0) / 3)
    assert means["ndcg_at_3"] == pytest.approx((0.919720 + 0.5 + 0) / 3, abs=1e-5)
    assert means["ndcg_at_3_graded"] == means["ndcg_at_3"]  # same labels passed as grades
    assert mean_metrics([], k=3) == {}


def test_query_metrics_are_one_query_of_the_means() -> None:
    ranked, labels = Q2
    assert query_metrics(ranked, labels, labels, k=3) == {
        "hit_at_1": 0.0,
        "mrr": pytest.approx(1 / 3),
        "recall_at_3": 1.0,
        "ndcg_at_3": pytest.approx(0.5),
        "ndcg_at_3_graded": pytest.approx(0.5),
    }


def test_wins_ties_losses_counts_each_query() -> None:
    assert wins_ties_losses([1.0, 0.0, 1.0, 0.5], [0.0, 0.0, 1.0, 0.75]) == (1, 2, 1)
    assert wins_ties_losses([0.1 + 0.2], [0.3]) == WinsTiesLosses(0, 1, 0)  # rounding is a tie
    assert wins_ties_losses([0.5, 0.5], [0.5, 0.5])._asdict() == {
        "wins": 0,
        "ties": 2,
        "losses": 0,
    }
    assert wins_ties_losses([], []) == (0, 0, 0)
    with pytest.raises(ValueError, match="differ in length"):
        wins_ties_losses([1.0], [1.0, 0.0])


def test_bootstrap_of_identical_runs_is_zero() -> None:
    a = [1.0, 0.0, 0.5, 0.25]
    assert paired_bootstrap_ci(a, list(a)) == (0.0, 0.0)
    assert wins_ties_losses(a, list(a)) == (0, 4, 0)


def test_bootstrap_of_a_run_better_on_every_query_is_above_zero() -> None:
    # differences 1, 0.25 and 0.1: every resampled mean lies between 0.1 and 1
    low, high = paired_bootstrap_ci([1.0, 0.5, 0.8], [0.0, 0.25, 0.7])
    assert 0.1 - 1e-12 <= low < high <= 1.0 + 1e-12
    assert low > 0
    assert paired_bootstrap_ci([0.0, 0.25, 0.7], [1.0, 0.5, 0.8])[1] < 0  # and the reverse


def test_bootstrap_keeps_the_pairs() -> None:
    # b is a by 0.01 higher on every query; unpaired, the spread of a (0..19) would swamp it
    a = [float(i) for i in range(20)]
    b = [x + 0.01 for x in a]
    low, high = paired_bootstrap_ci(a, b)
    assert low == pytest.approx(-0.01)
    assert high == pytest.approx(-0.01)


def test_bootstrap_interval_cuts_the_tails() -> None:
    # differences +1 and -1: a mean of two draws is -1, 0 or 1 with probability 1/4, 1/2, 1/4,
    # so the 2.5 % and 97.5 % points of 2000 resamples are -1 and 1; at 40 % they are 0
    assert paired_bootstrap_ci([1.0, 0.0], [0.0, 1.0]) == (-1.0, 1.0)
    assert paired_bootstrap_ci([1.0, 0.0], [0.0, 1.0], confidence=0.4) == (0.0, 0.0)
    low, high = paired_bootstrap_ci([0.7], [0.2], resamples=1)
    assert low == high == pytest.approx(0.5)


def test_bootstrap_is_seeded() -> None:
    a, b = [1.0, 0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0, 1.0]
    assert paired_bootstrap_ci(a, b, seed=3) == paired_bootstrap_ci(a, b, seed=3)
    low, high = paired_bootstrap_ci(a, b)
    assert low <= sum(a) / 5 - sum(b) / 5 <= high


def test_bootstrap_rejects_what_it_cannot_resample() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap_ci([1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="empty"):
        paired_bootstrap_ci([], [])
    with pytest.raises(ValueError, match="resamples"):
        paired_bootstrap_ci([1.0], [0.0], resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap_ci([1.0], [0.0], confidence=1.0)
