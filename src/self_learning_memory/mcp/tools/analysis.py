"""advanced_pattern_analysis: statistical, predictive and causal analysis of given series.

An optional family: ``self_test`` only checks that the analysis extra is installed
(``importlib.util.find_spec``, no import), so server start does not pay for scipy, statsmodels,
pandas or scikit-learn; they are imported on the first call, in a worker thread.
"""

# No ``from __future__ import annotations``: the SDK reads these signatures at runtime.

import asyncio
import importlib.util
import os
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from ..server import memory_tool

if TYPE_CHECKING:
    from ..server import MemoryMCPServer, MemoryService

__all__ = ["REQUIRED_MODULES", "register", "self_test"]

REQUIRED_MODULES = ("numpy", "scipy", "statsmodels", "ruptures", "sklearn", "pandas")
# Set to simulate a build without the extra (used by the startup benchmark and a test).
DISABLE_ENV = "MEMORY_DISABLE_ANALYSIS"


def self_test(service: object = None) -> str | None:
    """None when every module of the analysis extra is installed, else which one is missing."""
    if os.environ.get(DISABLE_ENV):
        return f"disabled by {DISABLE_ENV}"
    missing = [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]
    return (
        f"the analysis extra is not installed (missing: {', '.join(missing)})" if missing else None
    )


def _run(
    analysis_type: str, data: dict[str, list[float]], config: dict[str, Any] | None
) -> dict[str, Any]:
    from ...analysis.engine import run_analysis

    return run_analysis(analysis_type, data, config)


def register(server: "MemoryMCPServer", service: "MemoryService") -> None:
    @server.tool(
        name="advanced_pattern_analysis",
        description=(
            "Statistical (Pearson/Spearman with exact p-values, Fisher-z intervals and "
            "Benjamini-Hochberg; PELT and Bayesian online changepoints; OLS and Mann-Kendall "
            "trends) and predictive (ETS forecasts selected by AIC with prediction intervals; "
            "robust z-score and DBSCAN anomalies; Granger tests, which are predictive, not "
            "causal) analysis of the given series: at most 10 variables, each of at least 3 "
            "finite numbers and at most config.max_data_points."
        ),
    )
    @memory_tool
    async def advanced_pattern_analysis(
        analysis_type: Literal["statistical", "predictive", "comprehensive"],
        time_series_data: Annotated[
            dict[str, list[float]],
            Field(description="Variable name -> its values (equal lengths for pair tests)."),
        ],
        config: Annotated[
            dict[str, Any] | None,
            Field(
                description=(
                    "significance_level 0..1 (0.05), forecast_horizon 1..100 (10), "
                    "anomaly_sensitivity 0..1 (0.5), enable_causal_inference (true), "
                    "max_data_points 10..100000 (10000), parallel_processing (true)."
                )
            ),
        ] = None,
    ) -> dict[str, Any]:
        return await asyncio.to_thread(_run, analysis_type, time_series_data, config)
