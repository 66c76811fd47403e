"""ETS forecasting (statsmodels, AIC selection), robust anomalies and true Granger tests.

``anomaly_sensitivity`` s in [0, 1] maps to: robust z threshold 5 - 3·s (5.0 at 0, 3.5 at 0.5,
2.0 at 1) and DBSCAN eps = (2 - 1.5·s)·robust sigma with min_samples = max(3, n/10), so a higher sensitivity flags more points.
"""

from __future__ import annotations

import math
import warnings
from itertools import permutations
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import DBSCAN
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.stattools import acf, adfuller, grangercausalitytests

from self_learning_memory.analysis.statistical import finite

MIN_FORECAST_POINTS = 10
MIN_GRANGER_POINTS = 20
GRANGER_WARNING = (
    "Granger causality is predictive (X's past improves the forecast of Y), not proof of causation."
)


def detect_period(x: np.ndarray) -> int | None:
    """The lag in 2..min(n/3, 24) with the highest autocorrelation, if it exceeds 0.3."""
    max_lag = min(len(x) // 3, 24)
    if max_lag < 2 or np.ptp(x) == 0:
        return None
    values = acf(
        x - np.polyval(np.polyfit(np.arange(len(x)), x, 1), np.arange(len(x))), nlags=max_lag
    )
    lag = int(np.argmax(values[2:]) + 2)
    return lag if values[lag] > 0.3 else None


def _fit(x: np.ndarray, error: str, trend: str | None, damped: bool, period: int | None) -> Any:
    model = ETSModel(
        pd.Series(x),
        error=error,
        trend=trend,
        damped_trend=damped,
        seasonal="add" if period else None,
        seasonal_periods=period,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(disp=False, maxiter=200)


def _specs(x: np.ndarray, period: int | None) -> list[tuple[str, str | None, bool, int | None]]:
    errors = ["add", "mul"] if float(np.min(x)) > 0 else ["add"]
    trends: list[tuple[str | None, bool]] = [(None, False), ("add", False), ("add", True)]
    seasons = [None, period] if period and len(x) >= 2 * period + 2 else [None]
    return [(e, t, d, s) for e in errors for t, d in trends for s in seasons]


def select_model(
    x: np.ndarray, period: int | None
) -> tuple[tuple[str, str | None, bool, int | None], Any]:
    best: tuple[float, Any, Any] | None = None
    for spec in _specs(x, period):
        try:
            fitted = _fit(x, *spec)
        except (ValueError, np.linalg.LinAlgError):
            continue
        aic = float(fitted.aic)
        if math.isfinite(aic) and (best is None or aic < best[0]):
            best = (aic, spec, fitted)
    if best is None:
        raise ValueError("no ETS model could be fitted")
    return best[1], best[2]


def _name(spec: tuple[str, str | None, bool, int | None]) -> str:
    error, trend, damped, period = spec
    t = "N" if trend is None else ("Ad" if damped else "A")
    return f"ETS({error[0].upper()},{t},{'A' if period else 'N'})"


def forecast(name: str, values: list[float], horizon: int, alpha: float) -> dict[str, Any]:
    x = np.asarray(values, dtype=float)
    if len(x) < MIN_FORECAST_POINTS or np.ptp(x) == 0:
        reason = "constant series" if np.ptp(x) == 0 else f"fewer than {MIN_FORECAST_POINTS} points"
        return {"variable": name, "point_forecasts": None, "reason": reason}
    period = detect_period(x)
    holdout = max(1, min(horizon, len(x) // 5))
    spec, selected = select_model(x[:-holdout], period)  # fitted on the points before the holdout
    held = np.asarray(selected.forecast(holdout), dtype=float)
    actual = x[-holdout:]
    naive_source = x[:-holdout]
    naive = np.full(holdout, naive_source[-1])
    fitted = _fit(x, *spec)
    frame = fitted.get_prediction(start=len(x), end=len(x) + horizon - 1).summary_frame(alpha=alpha)
    mae, naive_mae = float(np.mean(np.abs(held - actual))), float(np.mean(np.abs(naive - actual)))
    return {
        "variable": name,
        "method": _name(spec),
        "seasonal_period": period,
        "aic": finite(fitted.aic),
        "point_forecasts": [finite(v) for v in frame["mean"]],
        "lower_bounds": [finite(v) for v in frame["pi_lower"]],
        "upper_bounds": [finite(v) for v in frame["pi_upper"]],
        "interval_level": 1 - alpha,
        "residual_std": finite(np.std(fitted.resid, ddof=1)),
        "holdout": {
            "points": holdout,
            "mae": finite(mae),
            "naive_last_value_mae": finite(naive_mae),
        },
        "fit_quality": finite(max(0.0, 1.0 - mae / naive_mae)) if naive_mae > 0 else None,
    }


def anomalies(name: str, values: list[float], sensitivity: float) -> dict[str, Any]:
    x = np.asarray(values, dtype=float)
    median = float(np.median(x))
    sigma = 1.4826 * float(np.median(np.abs(x - median)))
    if sigma == 0:
        sigma = float(np.std(x))
    if sigma == 0:
        return {
            "variable": name,
            "robust_z": [],
            "dbscan": [],
            "reason": "constant series: no anomaly",
        }
    threshold = 5.0 - 3.0 * sensitivity
    z = (x - median) / sigma
    robust = [
        {"index": int(i), "value": float(x[i]), "score": float(abs(z[i]))}
        for i in np.flatnonzero(abs(z) > threshold)
    ]
    labels = DBSCAN(
        eps=(2.0 - 1.5 * sensitivity) * sigma, min_samples=max(3, len(x) // 10)
    ).fit_predict(x.reshape(-1, 1))
    noise = [
        {"index": int(i), "value": float(x[i]), "score": float(abs(z[i]))}
        for i in np.flatnonzero(labels == -1)
    ]
    return {
        "variable": name,
        "robust_z": robust,
        "dbscan": noise,
        "z_threshold": threshold,
        "method": "robust z-score (median/MAD) and DBSCAN",
    }


def _stationary(x: np.ndarray) -> tuple[np.ndarray, int]:
    for d in range(3):
        if np.ptp(x) == 0 or len(x) < 10:
            return x, d
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p_value = float(adfuller(x, autolag="AIC", result_object=False)[1])
        if p_value < 0.05:
            return x, d
        x = np.diff(x)
    return x, 2


def granger(series: dict[str, list[float]], alpha: float, max_lag: int = 5) -> list[dict[str, Any]]:
    """For each ordered pair (cause, effect): ssr F-tests for lags 1..k, the best lag reported."""
    prepared = {}
    for name, values in series.items():
        x, d = _stationary(np.asarray(values, dtype=float))
        prepared[name] = (x, d)
    out: list[dict[str, Any]] = []
    for cause, effect in permutations(series, 2):
        item: dict[str, Any] = {"cause": cause, "effect": effect}
        xc, dc = prepared[cause]
        xe, de = prepared[effect]
        n = min(len(xc), len(xe))
        if len(series[cause]) != len(series[effect]):
            item.update(significant=False, reason="lengths differ")
        elif n < MIN_GRANGER_POINTS or np.ptp(xc) == 0 or np.ptp(xe) == 0:
            item.update(
                significant=False,
                reason=f"constant series or fewer than {MIN_GRANGER_POINTS} points",
            )
        else:
            k = max(1, min(max_lag, n // 5))
            data = np.column_stack([xe[-n:], xc[-n:]])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tests = grangercausalitytests(data, maxlag=k)
            per_lag = [
                {
                    "lag": lag,
                    "f": finite(tests[lag][0]["ssr_ftest"][0]),
                    "p_value": finite(tests[lag][0]["ssr_ftest"][1]),
                }
                for lag in range(1, k + 1)
            ]
            best = min(per_lag, key=lambda row: 1.0 if row["p_value"] is None else row["p_value"])
            item.update(
                lag=best["lag"],
                f_statistic=best["f"],
                p_value=best["p_value"],
                significant=best["p_value"] is not None and best["p_value"] < alpha,
                differencing={cause: dc, effect: de},
                lags_tested=per_lag,
            )
        item["warning"] = GRANGER_WARNING
        out.append(item)
    return out
