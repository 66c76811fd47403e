"""Error recoveries: a failed step followed by one that worked."""

from __future__ import annotations

import itertools

from ...config import ExtractionConfig
from ...model.episode import Episode, ErrorResult, ExecutionStep, outcome_score
from ...model.pattern import ErrorRecovery


def error_message(step: ExecutionStep) -> str:
    if isinstance(step.result, ErrorResult):
        return step.result.message or "Unknown error"
    if step.result is not None and step.result.type == "timeout":
        return "Timeout"
    return "Unknown error"


def extract_error_recovery(episode: Episode, config: ExtractionConfig) -> ErrorRecovery | None:
    """One pattern per episode: the first error and every ``"tool: action"`` that recovered."""
    steps = episode.steps
    if len(steps) < 2 or episode.outcome is None:
        return None
    if episode.step_success_rate() < config.error_recovery_threshold:
        return None
    pairs = [(a, b) for a, b in itertools.pairwise(steps) if not a.is_success() and b.is_success()]
    if not pairs:
        return None
    return ErrorRecovery(
        error_type=error_message(pairs[0][0]),
        recovery_steps=[f"{b.tool}: {b.action}" for _, b in pairs],
        success_rate=outcome_score(episode.outcome),
        context=episode.context,
    )
