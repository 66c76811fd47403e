"""Validation of the ``advanced_pattern_analysis`` input (standard library only)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from self_learning_memory.errors import ValidationError

MIN_POINTS = 3
MAX_VARIABLES = 10
MAX_POINTS_LIMIT = 100_000
ANALYSIS_TYPES = ("statistical", "predictive", "comprehensive")


@dataclass(frozen=True)
class AnalysisConfig:
    """The validated ``config`` object."""

    significance_level: float = 0.05
    forecast_horizon: int = 10
    anomaly_sensitivity: float = 0.5
    enable_causal_inference: bool = True
    max_data_points: int = 10_000
    parallel_processing: bool = True


def _unit_interval(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"config.{name}", "must be a finite number", "[0, 1]")
    if not 0.0 <= float(value) <= 1.0:
        raise ValidationError(f"config.{name}", f"{value} is outside [0, 1]", "[0, 1]")
    return float(value)


def _int_in(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"config.{name}", "must be an integer", f"{low}..{high}")
    if not low <= value <= high:
        raise ValidationError(
            f"config.{name}", f"{value} is outside {low}..{high}", f"{low}..{high}"
        )
    return value


def validate_config(raw: Mapping[str, object] | None) -> AnalysisConfig:
    """Check every bound of the schema; unknown keys are rejected."""
    raw = raw or {}
    known = set(AnalysisConfig.__dataclass_fields__)
    for key in raw:
        if key not in known:
            raise ValidationError(f"config.{key}", "unknown option", ", ".join(sorted(known)))
    default = AnalysisConfig()
    flags = {}
    for name in ("enable_causal_inference", "parallel_processing"):
        value = raw.get(name, getattr(default, name))
        if not isinstance(value, bool):
            raise ValidationError(f"config.{name}", "must be true or false")
        flags[name] = value
    return AnalysisConfig(
        significance_level=_unit_interval(
            "significance_level", raw.get("significance_level", default.significance_level)
        ),
        forecast_horizon=_int_in("forecast_horizon", raw.get("forecast_horizon", 10), 1, 100),
        anomaly_sensitivity=_unit_interval(
            "anomaly_sensitivity", raw.get("anomaly_sensitivity", default.anomaly_sensitivity)
        ),
        max_data_points=_int_in(
            "max_data_points", raw.get("max_data_points", 10_000), 10, MAX_POINTS_LIMIT
        ),
        **flags,
    )


def validate_series(
    data: Mapping[str, Sequence[object]] | None, config: AnalysisConfig
) -> dict[str, list[float]]:
    """Return the series as float lists, or raise naming the variable, the problem and the limit."""
    if not data:
        raise ValidationError("time_series_data", "is empty", f"1..{MAX_VARIABLES} variables")
    if len(data) > MAX_VARIABLES:
        raise ValidationError("time_series_data", f"has {len(data)} variables", MAX_VARIABLES)
    series: dict[str, list[float]] = {}
    for name, values in data.items():
        field = f"time_series_data.{name}"
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise ValidationError(field, "must be a list of numbers")
        if len(values) < MIN_POINTS:
            raise ValidationError(field, f"has {len(values)} points", f"at least {MIN_POINTS}")
        if len(values) > config.max_data_points:
            raise ValidationError(
                field,
                f"has {len(values)} points",
                f"config.max_data_points = {config.max_data_points}",
            )
        floats: list[float] = []
        for index, value in enumerate(values):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValidationError(field, f"point {index} is not a number")
            if not math.isfinite(value):
                raise ValidationError(field, f"point {index} is {value}", "finite numbers only")
            floats.append(float(value))
        series[str(name)] = floats
    return series


def validate_analysis_type(value: object) -> str:
    if value not in ANALYSIS_TYPES:
        raise ValidationError(
            "analysis_type", f"{value!r} is not supported", " / ".join(ANALYSIS_TYPES)
        )
    return str(value)
