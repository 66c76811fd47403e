"""Known-failure warnings: "what went wrong last time on tasks like this?"

Given a task, find past failed or partial episodes that are really similar (not merely the best
of an unrelated lot: an episode is kept only when enough of the query's words occur in it, or its
vector is close enough), say what went wrong in each (the outcome's reason, the failed
subtasks, the errors of the failed steps), and attach the error-recovery patterns and heuristics
that address the errors seen in similar episodes, failed or successful (a success that hit an
error and recovered is a warning too). Every item says why it is there.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ..model.episode import Episode, ErrorResult, FailureOutcome, PartialSuccessOutcome
from ..model.pattern import ErrorRecovery, normalise_error
from .patterns import HeuristicMatch, PatternMatch
from .scores import RetrievalResult, ScoreComponents

__all__ = [
    "MIN_TERM_COVERAGE",
    "MIN_VECTOR_SIMILARITY",
    "FailureWarning",
    "KnownFailure",
    "failure_errors",
    "is_similar_enough",
    "what_went_wrong",
]

MIN_TERM_COVERAGE = 0.3  # share of the query's words found in the episode
MIN_VECTOR_SIMILARITY = 0.5  # cosine, when vectors are available


class KnownFailure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    episode: Episode
    score: float
    components: ScoreComponents
    provenance: list[str]
    what_went_wrong: list[str]


class FailureWarning(BaseModel):
    """The answer to check_known_failures; ``summary`` is written for an agent to act on."""

    model_config = ConfigDict(extra="forbid")

    task_description: str
    failures: list[KnownFailure]
    recoveries: list[PatternMatch]
    heuristics: list[HeuristicMatch]
    summary: list[str]


def is_similar_enough(result: RetrievalResult) -> bool:
    c = result.components
    return c.term_coverage >= MIN_TERM_COVERAGE or (c.vector or 0.0) >= MIN_VECTOR_SIMILARITY


def failure_errors(episode: Episode) -> list[tuple[str, str]]:
    """(tool, error message) of each failed step, in order."""
    out = []
    for step in episode.steps:
        if isinstance(step.result, ErrorResult):
            out.append((step.tool, step.result.message))
        elif step.result is not None and step.result.type == "timeout":
            out.append((step.tool, "Timeout"))
    return out


def what_went_wrong(episode: Episode) -> list[str]:
    lines: list[str] = []
    outcome = episode.outcome
    if isinstance(outcome, FailureOutcome):
        line = f"Failed: {outcome.reason}"
        if outcome.error_details:
            line += f" ({outcome.error_details})"
        lines.append(line)
    elif isinstance(outcome, PartialSuccessOutcome):
        lines.append(f"Partial success: {outcome.verdict}")
        if outcome.failed:
            lines.append(f"Not done: {', '.join(outcome.failed)}")
    for tool, message in failure_errors(episode)[:5]:
        lines.append(f"'{tool}' failed with: {message}")
    return lines


def recovery_applies(pattern: ErrorRecovery, errors: set[str]) -> bool:
    return normalise_error(pattern.error_type) in errors


def summarise(
    failures: list[KnownFailure], recoveries: list[PatternMatch], heuristics: list[HeuristicMatch]
) -> list[str]:
    lines = (
        [f"{len(failures)} similar past attempt(s) did not succeed:"]
        if failures
        else ["No similar past failures are recorded."]
    )
    for f in failures:
        status = f.episode.outcome.type if f.episode.outcome else "unknown"
        lines.append(
            f"- [{status}] {f.episode.task_description}: {'; '.join(f.what_went_wrong[:3])}"
        )
    for m in recoveries:
        p = m.pattern
        assert isinstance(p, ErrorRecovery)
        lines.append(
            f"Known recovery for '{p.error_type}': {'; '.join(p.recovery_steps)} "
            f"(seen {p.occurrence_count}x, success {m.success_rate:.0%})"
        )
    for h in heuristics:
        ev = h.heuristic.evidence
        lines.append(
            f"Heuristic: {h.heuristic.condition} => {h.heuristic.action} "
            f"(n={ev.sample_size}, success {ev.success_rate:.0%})"
        )
    return lines
