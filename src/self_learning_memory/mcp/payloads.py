"""JSON shapes the tools return: episodes (whole or summarised), ranked results, patterns."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..model.episode import Episode
    from ..model.pattern import AnyPattern
    from ..retrieval.patterns import HeuristicMatch, PatternMatch
    from ..retrieval.ranking import RetrievalResult

__all__ = [
    "episode_payload",
    "heuristic_payload",
    "pattern_payload",
    "pattern_tools",
    "result_payload",
]


def episode_payload(episode: Episode, *, include_steps: bool) -> dict[str, Any]:
    """The episode as stored; without steps, a summary of them (count, successes, tools)."""
    data: dict[str, Any] = episode.model_dump(
        mode="json", exclude={"steps"} if not include_steps else None
    )
    tools: list[str] = []
    for step in episode.steps:
        if step.tool not in tools:
            tools.append(step.tool)
    data["step_count"] = len(episode.steps)
    data["successful_steps"] = episode.successful_steps_count()
    data["tools"] = tools
    data["completed"] = episode.is_complete()
    return data


def result_payload(result: RetrievalResult, *, include_steps: bool) -> dict[str, Any]:
    return {
        "score": round(result.score, 6),
        "components": result.components.model_dump(mode="json"),
        "provenance": list(result.provenance),
        "episode": episode_payload(result.episode, include_steps=include_steps),
    }


def pattern_payload(
    match: PatternMatch, evidence: dict[uuid.UUID, list[uuid.UUID]] | None = None
) -> dict[str, Any]:
    """A ranked pattern: the pattern, its score and what the score is made of, its evidence."""
    data = match.model_dump(mode="json")
    pid = match.pattern.id
    data["evidence"] = {
        "occurrences": match.pattern.occurrence_count,
        "success_rate": round(match.success_rate, 6),
        "sample_size": match.sample_size,
        "effectiveness": round(match.effectiveness, 6),
        "episode_ids": [str(e) for e in (evidence or {}).get(pid, [])],
    }
    return data


def heuristic_payload(match: HeuristicMatch) -> dict[str, Any]:
    return match.model_dump(mode="json")


def pattern_tools(pattern: AnyPattern) -> list[str]:
    """The tools a pattern names: a sequence's tools, a recovery's ``tool: action`` steps, a
    decision's action tool."""
    kind = pattern.type
    if kind == "tool_sequence":
        return list(getattr(pattern, "tools", []))
    if kind == "error_recovery":
        return [s.split(":", 1)[0].strip() for s in getattr(pattern, "recovery_steps", []) if s]
    if kind == "decision_point":
        action = str(getattr(pattern, "action", ""))
        return [action.split(":", 1)[0].strip()] if ":" in action else []
    return []
