"""Known answers for the predictive analysis: Granger lag, seasonal ETS vs naive, anomaly sensitivity."""

from __future__ import annotations

import json

import numpy as np

from self_learning_memory.analysis import predictive


def test_granger_finds_x_leads_y_by_two_and_not_the_reverse() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=300)
    y = np.zeros(300)
    y[2:] = 0.8 * x[:-2] + rng.normal(scale=0.5, size=298)
    result = {
        (r["cause"], r["effect"]): r for r in predictive.granger({"x": list(x), "y": list(y)}, 0.05)
    }
    assert result[("x", "y")]["significant"] is True
    assert result[("x", "y")]["lag"] == 2
    assert result[("y", "x")]["significant"] is False
    assert "not proof of causation" in result[("x", "y")]["warning"]
    json.dumps(list(result.values()), allow_nan=False)


def test_seasonal_ets_beats_naive_and_has_intervals() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(120)
    series = 10 + 5 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.5, 120)
    result = predictive.forecast("s", list(series), horizon=12, alpha=0.05)
    assert result["seasonal_period"] == 12
    assert result["holdout"]["mae"] < result["holdout"]["naive_last_value_mae"]
    assert len(result["point_forecasts"]) == 12
    assert all(
        lo < mid < hi
        for lo, mid, hi in zip(
            result["lower_bounds"], result["point_forecasts"], result["upper_bounds"], strict=True
        )
    )
    json.dumps(result, allow_nan=False)


def test_anomaly_counts_rise_with_sensitivity() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=200)
    z[[20, 90, 150]] += [6, -5, 4]
    counts = [predictive.anomalies("z", list(z), s) for s in (0.0, 0.5, 1.0)]
    robust = [len(c["robust_z"]) for c in counts]
    dbscan = [len(c["dbscan"]) for c in counts]
    assert robust == sorted(robust)
    assert dbscan == sorted(dbscan)
    assert robust[-1] > robust[0]
    assert dbscan[-1] > dbscan[0]


def test_constant_series_gives_explicit_results() -> None:
    constant = [3.0] * 30
    assert predictive.forecast("c", constant, 5, 0.05)["reason"] == "constant series"
    assert "constant" in predictive.anomalies("c", constant, 0.5)["reason"]
    rows = predictive.granger({"c": constant, "x": list(np.arange(30.0) % 7)}, 0.05)
    assert all(row["significant"] is False for row in rows)
    json.dumps(rows, allow_nan=False)
