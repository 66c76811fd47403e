"""Findings, recommendations and confidence, following the original rules (base 0.8)."""

from __future__ import annotations

from typing import Any

from self_learning_memory.analysis.validation import AnalysisConfig

SHORT_SERIES = 10


def summarize(
    series: dict[str, list[float]], result: dict[str, Any], config: AnalysisConfig
) -> dict[str, Any]:
    findings: list[str] = []
    recommendations: list[str] = []
    confidence = 0.8
    stat = result.get("statistical_results")
    if stat:
        strong = [c for c in stat["correlations"] if c["significant_after_correction"]]
        if strong:
            findings.append(f"{len(strong)} significant correlations (after Benjamini-Hochberg)")
        points = sum(len(v["points"]) for v in stat["changepoints"].values())
        if points:
            findings.append(f"{points} changepoints detected")
        for name, trend in stat["trends"].items():
            if trend.get("significant") and trend["direction"] in ("Increasing", "Decreasing"):
                findings.append(
                    f"'{name}' is {trend['direction'].lower()} (p = {trend['p_value']:.3g})"
                )
    pred = result.get("predictive_results")
    if pred:
        flagged = sum(len(a["robust_z"]) for a in pred["anomalies"])
        if flagged:
            findings.append(f"{flagged} anomalous points (robust z-score)")
            recommendations.append("Investigate the anomalous points")
        links = [c for c in pred["causal_relationships"] if c["significant"]]
        if links:
            findings.append(
                f"{len(links)} significant Granger-causal links (predictive, not proof of causation)"
            )
        qualities = [
            f["fit_quality"] for f in pred["forecasts"] if f.get("fit_quality") is not None
        ]
        if qualities:
            average = sum(qualities) / len(qualities)
            if average > 0.7:
                findings.append("High-quality forecasts")
            elif average < 0.5:
                findings.append("Low-quality forecasts")
                recommendations.append(
                    "Forecasts barely beat the naive one: collect more data or add features"
                )
                confidence *= 0.8
    if any(len(v) < SHORT_SERIES for v in series.values()):
        confidence *= 0.9
        recommendations.append(
            f"Collect more data: some series have fewer than {SHORT_SERIES} points"
        )
    return {
        "variables_analyzed": len(series),
        "key_findings": findings,
        "recommendations": recommendations,
        "confidence_level": confidence,
    }
