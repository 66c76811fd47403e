"""Patterns and heuristics as the front ends return them.

A pattern's numbers have one name each: ``occurrences`` is how many episodes produced it
(``occurrence_count``), ``sample_size`` the observations its success rate rests on (a decision
point's outcome count; for the other kinds the occurrences), ``success_rate`` and
``effectiveness`` as ranked or stored.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..model.pattern import AnyPattern
    from ..model.usage import PatternUsage
    from ..retrieval.patterns import HeuristicMatch, PatternMatch

__all__ = ["heuristic_payload", "pattern_payload", "pattern_row", "pattern_tools"]


def pattern_payload(
    match: PatternMatch, evidence: dict[uuid.UUID, list[uuid.UUID]] | None = None
) -> dict[str, Any]:
    """A ranked pattern: the pattern, its score and what the score is made of, its evidence
    (the newest episodes it was learned from, when ``evidence`` has them)."""
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


def pattern_row(pattern: AnyPattern, usage: PatternUsage) -> dict[str, Any]:
    """A stored pattern with its usage counters, flat (one line of ``memory-cli pattern list``)."""
    from ..learning.analysis import describe
    from ..model.pattern import context_of

    return {
        "pattern_id": str(pattern.id),
        "pattern_type": pattern.type,
        "description": describe(pattern),
        "domain": context_of(pattern).domain,
        "success_rate": round(pattern.rate(), 6),
        "occurrences": pattern.occurrence_count,
        "sample_size": pattern.sample_size(),
        "confidence": round(pattern.confidence(), 6),
        "effectiveness": round(usage.effectiveness_score, 6),
        "applications": usage.application_count,
        "retrievals": usage.retrieval_count,
        "updated_at": pattern.updated_at.isoformat(),
    }


def heuristic_payload(match: HeuristicMatch) -> dict[str, Any]:
    """A ranked heuristic: ``{heuristic, score, relevance}``."""
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
