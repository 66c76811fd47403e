"""Patterns and heuristics: what the memory learns from episodes."""

from .types import (
    ContextPattern,
    DecisionPoint,
    ErrorRecovery,
    Evidence,
    Heuristic,
    OutcomeStats,
    Pattern,
    ToolSequence,
)

__all__ = [
    "ContextPattern",
    "DecisionPoint",
    "ErrorRecovery",
    "Evidence",
    "Heuristic",
    "OutcomeStats",
    "Pattern",
    "ToolSequence",
]
