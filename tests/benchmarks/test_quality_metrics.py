"""The retrieval-quality metrics on a 3-query toy case computed by hand."""

from __future__ import annotations

import math

import pytest
from benchmarks.retrieval_quality.metrics import (
    hit_at_1,
    mean_metrics,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
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
