"""Heuristics: condition -> action rules, one observation per episode, aggregated over episodes.

Two kinds: after a decision-like step ("In web-api domain, using python, check the schema" ->
"Use pytest to run the tests"), and after a failed step that was recovered ("In web-api domain,
when 'pip' fails with: ..." -> "Recover with pip: install with --user").
"""

from __future__ import annotations

from ...config import ExtractionConfig
from ...model.episode import Episode, outcome_score
from ...model.pattern import Evidence, Heuristic
from .decision_point import is_decision_action
from .error_recovery import error_message

_MAX_PART = 160


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_PART else text[: _MAX_PART - 1] + "…"


def _prefix(episode: Episode) -> str:
    parts = [f"In {episode.context.domain} domain"]
    if episode.context.language:
        parts.append(f"using {episode.context.language}")
    return ", ".join(parts)


def extract_heuristics(episode: Episode, config: ExtractionConfig) -> list[Heuristic]:
    if episode.outcome is None or not episode.steps:
        return []
    success = outcome_score(episode.outcome) >= 0.5
    steps = episode.steps
    found: dict[str, Heuristic] = {}

    def add(condition: str, action: str) -> None:
        h = Heuristic(
            condition=condition,
            action=action,
            domain=episode.context.domain,
            evidence=Evidence(
                episode_ids=[episode.episode_id],
                success_rate=1.0 if success else 0.0,
                sample_size=1,
            ),
            confidence=1.0 if success else 0.0,
        )
        found.setdefault(h.similarity_key(), h)

    for i, step in enumerate(steps):
        nxt = steps[i + 1] if i + 1 < len(steps) else None
        if step.is_success() and is_decision_action(step.action):
            action = f"Use {nxt.tool} to {_clip(nxt.action)}" if nxt else f"Apply {step.tool}"
            add(f"{_prefix(episode)}, {_clip(step.action)}", action)
        if not step.is_success() and nxt is not None and nxt.is_success():
            condition = (
                f"{_prefix(episode)}, when '{step.tool}' fails with: {_clip(error_message(step))}"
            )
            add(condition, f"Recover with {nxt.tool}: {_clip(nxt.action)}")
    return list(found.values())
