"""Bayesian online changepoint detection (Adams & MacKay 2007), hazard 1/250.

Gaussian observations with a known noise variance (estimated robustly) and a Normal prior on
each segment's mean. A change is reported when the most probable run length collapses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

HAZARD = 1.0 / 250.0


MAX_RUN = 500


def bocpd_changepoints(x: np.ndarray, sigma: float, min_gap: int = 3) -> list[dict[str, Any]]:
    """Changepoint at t - r_map(t) + 1 whenever the MAP run length drops; confidence = P(r near it).

    Run lengths are truncated at ``MAX_RUN`` so that time is O(n * MAX_RUN) and memory O(MAX_RUN).
    """
    noise_var = sigma**2
    prior_mean, prior_var = float(np.median(x)), float(np.var(x)) + noise_var
    probs = np.array([1.0])
    means = np.array([prior_mean])
    variances = np.array([prior_var])
    found: dict[int, float] = {}
    previous = 0
    for t, value in enumerate(x):
        pred_var = variances + noise_var
        like = np.exp(-0.5 * (value - means) ** 2 / pred_var) / np.sqrt(2 * np.pi * pred_var)
        growth = probs * like * (1 - HAZARD)
        change = float(np.sum(probs * like * HAZARD))
        probs = np.concatenate(([change], growth))[: MAX_RUN + 1]
        total = probs.sum()
        probs = probs / total if total > 0 else np.eye(1, len(probs)).ravel()
        new_var = 1.0 / (1.0 / variances + 1.0 / noise_var)
        new_mean = new_var * (means / variances + value / noise_var)
        means = np.concatenate(([prior_mean], new_mean))[: MAX_RUN + 1]
        variances = np.concatenate(([prior_var], new_var))[: MAX_RUN + 1]
        r = int(np.argmax(probs))
        if r + min_gap < previous:
            start = t - r + 1
            confidence = float(np.clip(probs[max(0, r - 2) : r + 3].sum(), 0.0, 1.0))
            if 0 < start < len(x):
                found[start] = max(found.get(start, 0.0), confidence)
        previous = r
    return [
        {"index": i, "confidence": c, "method": "BOCPD", "change_type": "MeanShift"}
        for i, c in sorted(found.items())
    ]
