"""Decision points: steps whose action checks or decides something, matched on whole words."""

from __future__ import annotations

import re

from ...config import ExtractionConfig
from ...model.episode import Episode, outcome_score
from ...model.pattern import DecisionPoint, OutcomeStats

# Whole words anywhere ("check", "verify" ...), or a question-like opening ("is the", "has").
# The reference system matched substrings, so "analysis" and "this" counted as decisions.
_DECISION_WORDS = re.compile(
    r"\b(check|checks|checking|verify|verifies|validate|validates|ensure|ensures|if|when|whether"
    r"|decide|decides|determine|determines)\b|^\s*(is|has|does|should|can)\b",
    re.IGNORECASE,
)


def is_decision_action(action: str) -> bool:
    return _DECISION_WORDS.search(action) is not None


def extract_decision_points(episode: Episode, config: ExtractionConfig) -> list[DecisionPoint]:
    """One decision point per distinct (action, tool) of a mostly successful episode."""
    if episode.outcome is None or not episode.steps:
        return []
    if episode.step_success_rate() < config.success_threshold:
        return []
    success = outcome_score(episode.outcome) >= 0.5
    seen: dict[tuple[str, str], DecisionPoint] = {}
    for step in episode.steps:
        key = (step.action.strip().lower(), step.tool)
        if key in seen or not is_decision_action(step.action):
            continue
        seen[key] = DecisionPoint(
            condition=step.action.strip(),
            action=step.tool,
            outcome_stats=OutcomeStats(
                success_count=int(success),
                failure_count=int(not success),
                total_count=1,
                avg_duration_secs=step.latency_ms / 1000,
            ),
            context=episode.context,
        )
    return list(seen.values())
