"""Episodes as the front ends return them: whole, summarised, ranked, completed, and the
known-failure warning built from them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .patterns import heuristic_payload, pattern_payload

if TYPE_CHECKING:
    from ..model.episode import Episode, TaskContext
    from ..retrieval.known_failures import FailureWarning
    from ..retrieval.scores import RetrievalResult

__all__ = [
    "completion_payload",
    "created_payload",
    "deleted_payload",
    "episode_detail",
    "episode_payload",
    "episode_row",
    "known_failures_payload",
    "result_payload",
    "step_logged_payload",
]


def _tools(episode: Episode) -> list[str]:
    tools: list[str] = []
    for step in episode.steps:
        if step.tool not in tools:
            tools.append(step.tool)
    return tools


def _status(episode: Episode) -> str:
    return "completed" if episode.is_complete() else "in-progress"


def _duration_s(episode: Episode) -> float | None:
    duration = episode.duration()
    return None if duration is None else duration.total_seconds()


def episode_payload(episode: Episode, *, include_steps: bool) -> dict[str, Any]:
    """The episode as stored; without steps, a summary of them (``step_count``,
    ``successful_steps``, ``tools`` in first-use order). MCP: ``get_episode``,
    ``list_episodes``, the episodes of ``query_memory`` and ``check_known_failures``."""
    data: dict[str, Any] = episode.model_dump(
        mode="json", exclude={"steps"} if not include_steps else None
    )
    data["step_count"] = len(episode.steps)
    data["successful_steps"] = episode.successful_steps_count()
    data["tools"] = _tools(episode)
    data["completed"] = episode.is_complete()
    return data


def episode_detail(episode: Episode) -> dict[str, Any]:
    """The whole episode with its steps (:func:`episode_payload`) and what a person reads
    first: ``status``, start and end time, ``duration_s``, and how many patterns and
    heuristics it taught (``patterns_learned``, ``heuristics_learned``; ``patterns_count`` and
    ``heuristics_count`` are the same numbers under the CLI's older names)."""
    data = episode_payload(episode, include_steps=True)
    data.update(
        status=_status(episode),
        created_at=episode.start_time.isoformat(),
        completed_at=None if episode.end_time is None else episode.end_time.isoformat(),
        duration_s=_duration_s(episode),
        patterns_learned=len(episode.patterns),
        heuristics_learned=len(episode.heuristics),
        patterns_count=len(episode.patterns),
        heuristics_count=len(episode.heuristics),
    )
    return data


def episode_row(episode: Episode) -> dict[str, Any]:
    """One line of an episode list: id, task, status, outcome type, reward total, start time,
    duration, ``step_count`` and ``agent``."""
    return {
        "episode_id": str(episode.episode_id),
        "task_description": episode.task_description,
        "task_type": episode.task_type.value,
        "domain": episode.context.domain,
        "status": _status(episode),
        "outcome": episode.outcome.type if episode.outcome else None,
        "reward": None if episode.reward is None else round(episode.reward.total, 4),
        "created_at": episode.start_time.isoformat(),
        "duration_s": _duration_s(episode),
        "step_count": len(episode.steps),
        "agent": episode.agent,
    }


def created_payload(episode_id: object, task_type: str, context: TaskContext) -> dict[str, Any]:
    """A started episode (MCP ``create_episode``)."""
    return {
        "episode_id": str(episode_id),
        "task_type": task_type,
        "context": context.model_dump(mode="json"),
    }


def step_logged_payload(episode_id: object, step_number: int) -> dict[str, Any]:
    """A step written and flushed to the store (MCP ``add_episode_step``)."""
    return {"episode_id": str(episode_id), "step_number": step_number, "durable": True}


def deleted_payload(episode_id: object) -> dict[str, Any]:
    """A deleted episode (MCP ``delete_episode``)."""
    return {"episode_id": str(episode_id), "deleted": True}


def result_payload(result: RetrievalResult, episode: dict[str, Any]) -> dict[str, Any]:
    """A ranked episode: its score, the score's components, where it came from, and the
    episode as the caller presents it (:func:`episode_payload` or :func:`episode_row`)."""
    return {
        "score": round(result.score, 6),
        "components": result.components.model_dump(mode="json"),
        "provenance": list(result.provenance),
        "episode": episode,
    }


def completion_payload(episode: Episode) -> dict[str, Any]:
    """What completing an episode produced (MCP ``complete_episode``)."""
    return {
        "episode_id": str(episode.episode_id),
        "outcome": episode.outcome.model_dump(mode="json") if episode.outcome else None,
        "learning": "inline" if episode.reward is not None else "queued",
        "reward": episode.reward.model_dump(mode="json") if episode.reward else None,
        "reflection": episode.reflection.model_dump(mode="json") if episode.reflection else None,
        "patterns_learned": len(episode.patterns),
        "heuristics_learned": len(episode.heuristics),
        "step_count": len(episode.steps),
        "duration_s": _duration_s(episode),
    }


def known_failures_payload(warning: FailureWarning) -> dict[str, Any]:
    """Similar past failures, what went wrong in each, and the recoveries and heuristics for
    them (MCP ``check_known_failures``, ``memory-cli episode known-failures``)."""
    return {
        "task_description": warning.task_description,
        "summary": list(warning.summary),
        "failures": [
            {
                "score": round(f.score, 6),
                "components": f.components.model_dump(mode="json"),
                "provenance": list(f.provenance),
                "what_went_wrong": list(f.what_went_wrong),
                "episode": episode_payload(f.episode, include_steps=False),
            }
            for f in warning.failures
        ],
        "recoveries": [pattern_payload(m) for m in warning.recoveries],
        "heuristics": [heuristic_payload(h) for h in warning.heuristics],
    }
