"""Retrieval feedback: which retrieved episodes and patterns a task used, and how it ended.

A task (an episode) *uses* what was retrieved for it: the library links a retrieval to a task
when the caller passes ``for_episode`` to ``retrieve_relevant_context`` or
``retrieve_relevant_patterns``, the MCP server links what a session's ``query_memory`` and
``recommend_patterns`` returned to the session's episode, and any caller can name them with
``record_retrieval_feedback`` (optionally marking them helpful or not). When the task completes,
in the completion's own transaction, every used episode's counters gain a use with the task's
outcome score and every used pattern an application (``storage/sql/feedback.py``); a link
made after the completion is counted at once. The ranking reads an episode's counters as its
``usefulness`` component (``retrieval/ranking.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from ..errors import ValidationError
from ..model.limits import MAX_FEEDBACK_ITEMS
from ..model.usage import EpisodeUsage
from ..model.validation import as_uuid
from .parts import MemoryParts

__all__ = ["RetrievalFeedback", "check_ids"]


def check_ids(values: Sequence[uuid.UUID | str] | None, field: str) -> list[uuid.UUID]:
    """``values`` as UUIDs (duplicates dropped), at most :data:`MAX_FEEDBACK_ITEMS`."""
    if values is None:
        return []
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ValidationError(field, "is not a list of ids", "a list")
    if len(values) > MAX_FEEDBACK_ITEMS:
        raise ValidationError(field, f"has {len(values)} ids", f"at most {MAX_FEEDBACK_ITEMS}")
    return list(dict.fromkeys(as_uuid(v, f"{field}[{n}]") for n, v in enumerate(values)))


class RetrievalFeedback:
    """The feedback operations of :class:`~.memory.SelfLearningMemory` (documented there)."""

    def __init__(self, parts: MemoryParts) -> None:
        self._parts = parts

    async def record(
        self,
        task_episode_id: uuid.UUID | str,
        used_episode_ids: Sequence[uuid.UUID | str] | None,
        used_pattern_ids: Sequence[uuid.UUID | str] | None,
        helpful: bool | None,
    ) -> int:
        with self._parts.monitor.timed("record_retrieval_feedback"):
            task = as_uuid(task_episode_id, "episode_id")
            episodes = check_ids(used_episode_ids, "used_episode_ids")
            patterns = check_ids(used_pattern_ids, "used_pattern_ids")
            if helpful is not None and not isinstance(helpful, bool):
                raise ValidationError("helpful", f"{helpful!r} is not a boolean", "true, false")
            if not episodes and not patterns:
                raise ValidationError(
                    "used_episode_ids", "names no episode and used_pattern_ids no pattern", ">= 1"
                )
            return await self.link(task, episodes, patterns, helpful)

    async def link(
        self,
        task: uuid.UUID,
        episodes: list[uuid.UUID],
        patterns: list[uuid.UUID],
        helpful: bool | None = None,
    ) -> int:
        """Checked ids: record the use (see :mod:`..storage.sql.feedback`)."""
        if not episodes and not patterns:
            return 0
        return await self._parts.storage.record_retrieval_use(task, episodes, patterns, helpful)

    async def usage(self, episode_id: uuid.UUID | str) -> EpisodeUsage:
        eid = as_uuid(episode_id, "episode_id")
        found = await self._parts.storage.episode_usage([eid])
        return found.get(eid, EpisodeUsage())
