"""Tool sequences: the first tools of a cleanly executed episode, scored by the task's outcome."""

from __future__ import annotations

from ...config import ExtractionConfig
from ...model.episode import Episode, outcome_score
from ...model.pattern import ToolSequence


def extract_tool_sequence(episode: Episode, config: ExtractionConfig) -> ToolSequence | None:
    """The first ``max_sequence_length`` tools (failures included) when the steps mostly worked.

    The success rate is the episode's outcome score (success 1, partial its completed share,
    failure 0), so a sequence that keeps leading to failed tasks loses rate as evidence grows.
    """
    steps = episode.steps
    if (
        not steps
        or episode.outcome is None
        or episode.step_success_rate() < config.success_threshold
    ):
        return None
    return ToolSequence(
        tools=[s.tool for s in steps[: config.max_sequence_length]],
        context=episode.context,
        success_rate=outcome_score(episode.outcome),
        avg_latency=sum(s.latency_ms for s in steps) / len(steps),
        last_seen_episode=episode.episode_id,
    )
