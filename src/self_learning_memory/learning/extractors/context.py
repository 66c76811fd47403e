"""Context patterns: how tasks of one type fare in one context (language, framework, domain)."""

from __future__ import annotations

from ...model.episode import Episode, TaskContext, outcome_score
from ...model.pattern import ContextPattern


def context_features(context: TaskContext) -> list[str]:
    features = []
    if context.language:
        features.append(f"language:{context.language}")
    if context.framework:
        features.append(f"framework:{context.framework}")
    features.append(f"domain:{context.domain}")
    features.append(f"complexity:{context.complexity.value}")
    return features


def extract_context_pattern(episode: Episode) -> ContextPattern | None:
    """Every completed episode is one observation of its context and task type.

    The reference system kept only episodes above the success threshold, so the rate of a
    context could never fall; here failures count too.
    """
    if episode.outcome is None:
        return None
    return ContextPattern(
        context_features=context_features(episode.context),
        recommended_approach=episode.task_type.value,
        evidence=[episode.episode_id],
        success_rate=outcome_score(episode.outcome),
    )
