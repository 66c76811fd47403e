"""run_analysis end to end: output shape, measured performance, no NaN, errors on bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from self_learning_memory.analysis.engine import run_analysis
from self_learning_memory.errors import ValidationError


def test_comprehensive_shape_and_json() -> None:
    rng = np.random.default_rng(0)
    data = {
        "a": list(rng.normal(size=60)),
        "b": list(np.arange(60.0) + rng.normal(size=60)),
        "c": [1.0] * 60,
    }
    result = run_analysis("comprehensive", data, {"forecast_horizon": 5})
    assert set(result) == {"statistical_results", "predictive_results", "summary", "performance"}
    assert result["summary"]["variables_analyzed"] == 3
    assert 0 < result["summary"]["confidence_level"] <= 0.8
    assert result["performance"]["total_time_ms"] > 0
    performance = result["performance"]
    assert performance["peak_rss_bytes"] > 10 * 2**20  # this process's real peak, not a constant
    assert 0 <= performance["peak_rss_growth_bytes"] <= performance["peak_rss_bytes"]
    json.dumps(result, allow_nan=False)


def test_statistical_only_and_short_series_lowers_confidence() -> None:
    result = run_analysis("statistical", {"x": [1.0, 2.0, 3.5, 3.0, 5.0]}, None)
    assert "predictive_results" not in result
    assert result["summary"]["confidence_level"] == pytest.approx(0.72)
    assert any("Collect more data" in r for r in result["summary"]["recommendations"])


@pytest.mark.parametrize(
    ("data", "config"),
    [
        ({"x": [1.0, math.nan, 2.0]}, {}),
        ({"x": [1.0, 2.0]}, {}),
        ({"x": [1.0, 2.0, 3.0]}, {"significance_level": 2}),
        ({"x": [1.0, 2.0, 3.0]}, {"forecast_horizon": 1000}),
    ],
)
def test_bad_input_raises_validation_error(
    data: dict[str, list[float]], config: dict[str, object]
) -> None:
    with pytest.raises(ValidationError):
        run_analysis("comprehensive", data, config)


@pytest.mark.parametrize("seed", range(6))
def test_random_awkward_inputs_never_crash_nor_emit_nan(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    data = {
        "noise": list(rng.normal(size=n)),
        "steps": list(np.repeat(rng.integers(0, 3, size=n // 3 + 1), 3)[:n].astype(float)),
        "tiny": list(rng.normal(scale=1e-12, size=n)),
        "short": list(rng.normal(size=max(3, n // 2))),
    }
    result = run_analysis("comprehensive", data, {"anomaly_sensitivity": float(rng.random())})
    json.dumps(result, allow_nan=False)
