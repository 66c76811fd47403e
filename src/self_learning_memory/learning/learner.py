"""Learning from one completed episode, in the order that makes every number real:
extract patterns and heuristics -> reward (with the real pattern count) -> reflection.

Pure and deterministic; the memory runs it in a worker thread and writes the result in one
durable transaction (where patterns and heuristics are aggregated across episodes).
"""

from __future__ import annotations

from ..config import ExtractionConfig
from ..model.episode import Episode, outcome_score
from ..model.records import CompletionRecord
from ..storage.codec import search_document
from .extractors import extract_heuristics, extract_patterns
from .merge import merge_observation
from .reflection import generate_reflection
from .reward import calculate_reward

__all__ = ["learn"]


def learn(episode: Episode, config: ExtractionConfig, *, mode: str = "inline") -> CompletionRecord:
    """Everything a completion writes. ``episode`` must carry its outcome and end time."""
    assert episode.outcome is not None
    assert episode.end_time is not None
    patterns = extract_patterns(episode, config)
    heuristics = extract_heuristics(episode, config)
    reward = calculate_reward(episode, pattern_count=len(patterns))
    reflection = generate_reflection(episode, pattern_count=len(patterns))
    scored = episode.model_copy(update={"reward": reward, "reflection": reflection})
    return CompletionRecord(
        episode=scored,
        mode="learned" if mode == "learned" else "inline",
        search=search_document(scored),
        patterns=patterns,
        heuristics=heuristics,
        success=outcome_score(episode.outcome) >= 0.5,
        merge=merge_observation,
    )
