"""Known answers for the statistical analysis: scipy's correlations, planted shifts, trends."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from self_learning_memory.analysis import statistical


def _rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_correlations_equal_scipy_and_fisher_interval() -> None:
    rng = _rng()
    a = rng.normal(size=40)
    b = 0.5 * a + rng.normal(size=40)
    result = statistical.correlations({"a": list(a), "b": list(b)}, alpha=0.05)
    pearson = next(item for item in result if item["method"] == "pearson")
    spearman = next(item for item in result if item["method"] == "spearman")
    expected_p = stats.pearsonr(a, b)
    assert pearson["coefficient"] == pytest.approx(expected_p.statistic, abs=1e-12)
    assert pearson["p_value"] == pytest.approx(expected_p.pvalue, rel=1e-9)
    expected_s = stats.spearmanr(a, b)
    assert spearman["coefficient"] == pytest.approx(expected_s.statistic, abs=1e-12)
    assert spearman["p_value"] == pytest.approx(expected_s.pvalue, rel=1e-9)
    z, half = math.atanh(expected_p.statistic), 1.959963984540054 / math.sqrt(37)
    assert pearson["confidence_interval"] == pytest.approx(
        [math.tanh(z - half), math.tanh(z + half)]
    )
    assert pearson["significant"] is bool(expected_p.pvalue < 0.05)


def test_benjamini_hochberg_adjusted_p_values_are_reported() -> None:
    rng = _rng()
    data = {f"v{i}": list(rng.normal(size=30)) for i in range(5)}
    result = statistical.correlations(data, alpha=0.05)
    ps = [item["p_value"] for item in result]
    expected = stats.false_discovery_control(ps, method="bh")
    assert [item["p_value_adjusted"] for item in result] == pytest.approx(list(expected))
    assert all(item["p_value_adjusted"] >= item["p_value"] for item in result)


def test_constant_series_and_unequal_lengths_give_explicit_results() -> None:
    result = statistical.correlations(
        {"a": [1.0, 2.0, 4.0, 3.0], "c": [5.0] * 4, "d": [1.0, 2.0, 3.0]}, 0.05
    )
    by_pair = {(tuple(item["variables"]), item["method"]): item for item in result}
    assert by_pair[(("a", "c"), "pearson")]["coefficient"] is None
    assert "constant" in by_pair[(("a", "c"), "pearson")]["reason"]
    assert "lengths differ" in by_pair[(("a", "d"), "spearman")]["reason"]
    json.dumps(result, allow_nan=False)


@pytest.mark.parametrize("method", ["PELT", "BOCPD"])
def test_planted_mean_shifts_are_found_within_a_few_points(method: str) -> None:
    rng = _rng()
    x = np.concatenate([rng.normal(0, 1, 120), rng.normal(3, 1, 80), rng.normal(-1, 1, 100)])
    found = statistical.changepoints({"x": list(x)})["x"]["points"]
    indices = [point["index"] for point in found if point["method"] == method]
    for planted in (120, 200):
        assert any(abs(i - planted) <= 3 for i in indices), (method, indices)
    assert len(indices) <= 4
    assert all(0.0 <= point["confidence"] <= 1.0 for point in found)


def test_no_changepoint_in_pure_noise_by_pelt() -> None:
    x = _rng().normal(0, 1, 300)
    found = statistical.changepoints({"x": list(x)})["x"]["points"]
    assert [p for p in found if p["method"] == "PELT"] == []


def test_trends_ols_and_mann_kendall() -> None:
    rng = _rng()
    up = np.arange(60) * 0.2 + rng.normal(0, 1, 60)
    flat = rng.normal(0, 1, 60)
    result = statistical.trends({"up": list(up), "flat": list(flat), "c": [2.0] * 60}, alpha=0.05)
    assert result["up"]["direction"] == "Increasing"
    assert result["up"]["p_value"] == pytest.approx(stats.linregress(np.arange(60), up).pvalue)
    assert result["up"]["mann_kendall"]["significant"] is True
    assert result["flat"]["direction"] == "Stationary"
    assert result["c"]["p_value"] is None
    assert result["c"]["reason"] == "constant series"
    json.dumps(result, allow_nan=False)
