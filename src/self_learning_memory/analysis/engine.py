"""``run_analysis``: validate, run the statistical and predictive parts, summarize, measure.

Synchronous and CPU-heavy: async callers run it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from self_learning_memory.analysis import predictive, statistical
from self_learning_memory.analysis.summary import summarize
from self_learning_memory.analysis.validation import (
    AnalysisConfig,
    validate_analysis_type,
    validate_config,
    validate_series,
)

T = TypeVar("T")


def _map(config: AnalysisConfig, func: Callable[[str], T], names: list[str]) -> list[T]:
    if config.parallel_processing and len(names) > 1:
        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(func, names))
    return [func(name) for name in names]


def _statistical(series: dict[str, list[float]], config: AnalysisConfig) -> dict[str, Any]:
    start = time.perf_counter()
    alpha = config.significance_level
    return {
        "correlations": statistical.correlations(series, alpha),
        "changepoints": statistical.changepoints(series),
        "trends": statistical.trends(series, alpha),
        "metadata": {
            "data_points": sum(len(v) for v in series.values()),
            "duration_ms": (time.perf_counter() - start) * 1000,
            "methods_used": [
                "pearson",
                "spearman",
                "benjamini-hochberg",
                "PELT",
                "BOCPD",
                "OLS",
                "mann-kendall",
            ],
        },
    }


def _predictive(series: dict[str, list[float]], config: AnalysisConfig) -> dict[str, Any]:
    start = time.perf_counter()
    names = list(series)
    alpha = config.significance_level
    forecasts = _map(
        config, lambda n: predictive.forecast(n, series[n], config.forecast_horizon, alpha), names
    )
    anomalies = [predictive.anomalies(n, series[n], config.anomaly_sensitivity) for n in names]
    causal = (
        predictive.granger(series, alpha)
        if config.enable_causal_inference and len(names) > 1
        else []
    )
    return {
        "forecasts": forecasts,
        "anomalies": anomalies,
        "causal_relationships": causal,
        "metadata": {
            "variables_analyzed": len(names),
            "duration_ms": (time.perf_counter() - start) * 1000,
            "methods_used": ["ETS (AIC)", "robust z-score", "DBSCAN", "granger (ssr F-test)"],
        },
    }


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


def run_analysis(
    analysis_type: object,
    time_series_data: Mapping[str, Sequence[object]] | None,
    config: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    """The ``advanced_pattern_analysis`` result; raises ValidationError on bad input."""
    kind = validate_analysis_type(analysis_type)
    cfg = validate_config(config)
    series = validate_series(time_series_data, cfg)
    rss_before = _peak_rss_bytes()
    start = time.perf_counter()
    result: dict[str, Any] = {}
    if kind in ("statistical", "comprehensive"):
        result["statistical_results"] = _statistical(series, cfg)
    if kind in ("predictive", "comprehensive"):
        result["predictive_results"] = _predictive(series, cfg)
    rss_after = _peak_rss_bytes()
    result["summary"] = summarize(series, result, cfg)
    result["performance"] = {
        "total_time_ms": (time.perf_counter() - start) * 1000,
        # the process's peak resident memory, and how much this analysis raised it (0 when it
        # fit under an earlier peak); tracemalloc would cost 4-5x the analysis time
        "peak_rss_bytes": rss_after,
        "peak_rss_growth_bytes": rss_after - rss_before,
        "parallel_processing": cfg.parallel_processing,
    }
    return result
