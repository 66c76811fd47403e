"""Correlations (Pearson, Spearman, Benjamini-Hochberg), changepoints (PELT, BOCPD) and trends.

Every number in the output is finite or ``None`` with a ``reason`` beside it.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import numpy as np
import ruptures as rpt
from scipy import stats

from self_learning_memory.analysis.bocpd import bocpd_changepoints

MIN_CHANGEPOINT_POINTS = 10
MIN_TREND_POINTS = 5


def finite(value: float) -> float | None:
    """The value as a float, or None if it is NaN or infinite."""
    value = float(value)
    return value if math.isfinite(value) else None


def _fisher_ci(r: float, n: int, alpha: float) -> list[float] | None:
    if n <= 3 or not -1.0 < r < 1.0:
        return None
    z = math.atanh(r)
    half = float(stats.norm.ppf(1 - alpha / 2)) / math.sqrt(n - 3)
    return [math.tanh(z - half), math.tanh(z + half)]


def correlations(series: dict[str, list[float]], alpha: float) -> list[dict[str, Any]]:
    """Pearson and Spearman for every pair; BH-adjusted p-values over all defined tests."""
    results: list[dict[str, Any]] = []
    for a, b in combinations(series, 2):
        x, y = np.asarray(series[a]), np.asarray(series[b])
        for method in ("pearson", "spearman"):
            item: dict[str, Any] = {"variables": [a, b], "method": method, "n": len(x)}
            if len(x) != len(y):
                item.update(
                    coefficient=None, p_value=None, reason=f"lengths differ ({len(x)} vs {len(y)})"
                )
            elif np.ptp(x) == 0 or np.ptp(y) == 0:
                constant = a if np.ptp(x) == 0 else b
                item.update(
                    coefficient=None,
                    p_value=None,
                    reason=f"correlation undefined: '{constant}' is constant",
                )
            else:
                res = stats.pearsonr(x, y) if method == "pearson" else stats.spearmanr(x, y)
                r, p = finite(res.statistic), finite(res.pvalue)
                item.update(coefficient=r, p_value=p)
                if r is not None:
                    item["confidence_interval"] = _fisher_ci(r, len(x), alpha)
            results.append(item)
    defined = [item for item in results if item.get("p_value") is not None]
    if defined:
        adjusted = stats.false_discovery_control([item["p_value"] for item in defined], method="bh")
        for item, q in zip(defined, adjusted, strict=True):
            item["p_value_adjusted"] = float(q)
            item["significant"] = bool(item["p_value"] < alpha)
            item["significant_after_correction"] = bool(q < alpha)
    for item in results:
        item.setdefault("significant", False)
        item.setdefault("significant_after_correction", False)
        item.setdefault("p_value_adjusted", None)
        item.setdefault("confidence_interval", None)
    return results


def noise_sigma(x: np.ndarray) -> float:
    """Robust noise scale from first differences (MAD), insensitive to mean shifts."""
    diffs = np.diff(x)
    mad = float(np.median(np.abs(diffs - np.median(diffs))))
    sigma = mad / (0.6745 * math.sqrt(2.0))
    return sigma if sigma > 0 else float(np.std(x)) or 1e-9


def _shift_confidence(x: np.ndarray, index: int) -> float:
    left, right = x[max(0, index - 50) : index], x[index : index + 50]
    if len(left) < 2 or len(right) < 2 or (np.ptp(left) == 0 and np.ptp(right) == 0):
        return 1.0 if left.mean() != right.mean() else 0.0
    p = finite(stats.ttest_ind(left, right, equal_var=False).pvalue)
    return 0.0 if p is None else 1.0 - p


class _CumulativeL2(rpt.base.BaseCost):  # type: ignore[misc]  # ruptures has no type hints
    """ruptures' l2 cost of a 1-D series (the segment's sum of squared deviations from its
    mean) from running sums: O(1) per segment instead of a numpy variance per call (PELT asks
    ~200K times for 1,000 points). Same cost, same breakpoints."""

    model = "l2_cumulative"
    min_size = 1

    def fit(self, signal: np.ndarray) -> _CumulativeL2:
        self.signal = np.asarray(signal, dtype=float).reshape(-1, 1)
        x = self.signal[:, 0]
        self._sum: list[float] = np.concatenate([[0.0], np.cumsum(x)]).tolist()
        self._squares: list[float] = np.concatenate([[0.0], np.cumsum(x * x)]).tolist()
        return self

    def error(self, start: int, end: int) -> float:
        part = self._sum[end] - self._sum[start]
        return max(self._squares[end] - self._squares[start] - part * part / (end - start), 0.0)


def pelt_changepoints(x: np.ndarray) -> list[dict[str, Any]]:
    """PELT (l2 cost) with a penalty of 4·sigma²·ln(n) (twice the BIC-like 2·sigma²·ln(n));
    confidence = 1 - Welch p."""
    sigma = noise_sigma(x)
    penalty = 2.0 * sigma**2 * math.log(len(x)) * 2.0
    breaks = rpt.Pelt(custom_cost=_CumulativeL2(), min_size=3, jump=1).fit(x).predict(pen=penalty)
    return [
        {
            "index": int(b),
            "confidence": _shift_confidence(x, b),
            "method": "PELT",
            "change_type": "MeanShift",
        }
        for b in breaks[:-1]
    ]


def changepoints(series: dict[str, list[float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, values in series.items():
        x = np.asarray(values)
        if len(x) < MIN_CHANGEPOINT_POINTS:
            out[name] = {"points": [], "reason": f"fewer than {MIN_CHANGEPOINT_POINTS} points"}
        elif np.ptp(x) == 0:
            out[name] = {"points": [], "reason": "constant series: no changepoint"}
        else:
            out[name] = {"points": pelt_changepoints(x) + bocpd_changepoints(x, noise_sigma(x))}
    return out


def trends(series: dict[str, list[float]], alpha: float) -> dict[str, Any]:
    """OLS slope with its p-value, and the Mann-Kendall test (Kendall's tau against time)."""
    out: dict[str, Any] = {}
    for name, values in series.items():
        x = np.asarray(values)
        if len(x) < MIN_TREND_POINTS:
            out[name] = {"direction": None, "reason": f"fewer than {MIN_TREND_POINTS} points"}
            continue
        if np.ptp(x) == 0:
            out[name] = {
                "direction": "Stationary",
                "slope": 0.0,
                "p_value": None,
                "reason": "constant series",
                "significant": False,
            }
            continue
        t = np.arange(len(x), dtype=float)
        ols = stats.linregress(t, x)
        mk = stats.kendalltau(t, x)
        p_ols, p_mk = finite(ols.pvalue), finite(mk.pvalue)
        significant = p_ols is not None and p_ols < alpha
        direction = (
            "Stationary" if not significant else ("Increasing" if ols.slope > 0 else "Decreasing")
        )
        out[name] = {
            "direction": direction,
            "slope": finite(ols.slope),
            "p_value": p_ols,
            "r_squared": finite(ols.rvalue**2),
            "significant": significant,
            "mann_kendall": {
                "tau": finite(mk.statistic),
                "p_value": p_mk,
                "significant": p_mk is not None and p_mk < alpha,
            },
        }
    return out
