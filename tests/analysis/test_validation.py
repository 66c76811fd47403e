"""Bad input for advanced_pattern_analysis: a ValidationError naming field, problem and limit."""

from __future__ import annotations

import math

import pytest

from self_learning_memory.analysis.validation import (
    AnalysisConfig,
    validate_analysis_type,
    validate_config,
    validate_series,
)
from self_learning_memory.errors import ValidationError

CONFIG = AnalysisConfig()


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({}, "time_series_data", "empty"),
        ({"x": [1.0, 2.0]}, "time_series_data.x", "2 points"),
        ({"x": [1.0, math.nan, 2.0]}, "time_series_data.x", "point 1"),
        ({"x": [1.0, math.inf, 2.0]}, "time_series_data.x", "point 1"),
        ({"x": [1.0, "a", 2.0]}, "time_series_data.x", "not a number"),
        ({f"v{i}": [1.0, 2.0, 3.0] for i in range(11)}, "time_series_data", "11 variables"),
        ({"x": [1.0] * 10_001}, "time_series_data.x", "10001 points"),
    ],
)
def test_bad_series(data: dict[str, list[object]], field: str, text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_series(data, CONFIG)
    assert caught.value.field == field
    assert text in caught.value.problem


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"significance_level": 1.5}, "config.significance_level"),
        ({"significance_level": -0.1}, "config.significance_level"),
        ({"anomaly_sensitivity": math.nan}, "config.anomaly_sensitivity"),
        ({"forecast_horizon": 0}, "config.forecast_horizon"),
        ({"forecast_horizon": 101}, "config.forecast_horizon"),
        ({"max_data_points": 5}, "config.max_data_points"),
        ({"parallel_processing": "yes"}, "config.parallel_processing"),
        ({"bogus": 1}, "config.bogus"),
    ],
)
def test_bad_config(config: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_config(config)
    assert caught.value.field == field
    assert caught.value.limit is not None or "true or false" in caught.value.problem


def test_defaults_and_analysis_type() -> None:
    assert validate_config(None) == AnalysisConfig()
    assert validate_analysis_type("comprehensive") == "comprehensive"
    with pytest.raises(ValidationError):
        validate_analysis_type("magic")
