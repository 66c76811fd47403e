"""Pattern and heuristic extraction from one completed episode (one extractor family)."""

from __future__ import annotations

from ...config import ExtractionConfig
from ...model.episode import Episode
from ...model.pattern import AnyPattern
from .context import context_features, extract_context_pattern
from .decision_point import extract_decision_points, is_decision_action
from .error_recovery import extract_error_recovery
from .heuristic import extract_heuristics
from .tool_sequence import extract_tool_sequence

__all__ = [
    "context_features",
    "extract_heuristics",
    "extract_patterns",
    "is_decision_action",
]


def extract_patterns(episode: Episode, config: ExtractionConfig) -> list[AnyPattern]:
    """All patterns of one completed episode, unique by similarity key, in a fixed order."""
    found: list[AnyPattern] = []
    sequence = extract_tool_sequence(episode, config)
    if sequence is not None:
        found.append(sequence)
    found.extend(extract_decision_points(episode, config))
    recovery = extract_error_recovery(episode, config)
    if recovery is not None:
        found.append(recovery)
    context = extract_context_pattern(episode)
    if context is not None:
        found.append(context)
    unique: dict[str, AnyPattern] = {}
    for pattern in found:
        unique.setdefault(pattern.similarity_key(), pattern)
    return list(unique.values())
