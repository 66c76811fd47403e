"""Retrieval feedback: record_retrieval_feedback (which retrieved episodes and patterns a task
used, and whether they helped). ``query_memory`` and ``recommend_patterns`` already count as
used by the session's episode when it completes (``mcp/sessions.py``); this tool says so
explicitly, for another episode, or with a helpful / unhelpful mark."""

# No ``from __future__ import annotations``: the SDK reads these signatures at runtime.

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from ...model.limits import MAX_FEEDBACK_ITEMS
from .. import limits as L
from ..server import memory_tool

if TYPE_CHECKING:
    from ..server import MemoryMCPServer, MemoryService

__all__ = ["register"]

Id = Annotated[str, Field(min_length=1, max_length=L.MAX_ID)]
Ids = Annotated[list[Id] | None, Field(max_length=MAX_FEEDBACK_ITEMS)]


def register(server: "MemoryMCPServer", service: "MemoryService") -> None:
    @server.tool(
        name="record_retrieval_feedback",
        description=(
            "Say which retrieved episodes (episode_id from query_memory) and patterns (id from "
            "recommend_patterns) the task of episode_id used, and optionally whether they "
            "helped. When that task completes (at once if it already has) each used episode "
            "is counted with the task's outcome: episodes that keep helping rank higher "
            "(the usefulness score component). Recording an item again for the same task "
            f"counts it once. At most {MAX_FEEDBACK_ITEMS} ids per list."
        ),
    )
    @memory_tool
    async def record_retrieval_feedback(
        episode_id: Annotated[
            str,
            Field(
                min_length=1,
                max_length=L.MAX_ID,
                description="The episode of the task that used them (a UUID).",
            ),
        ],
        used_episode_ids: Annotated[Ids, Field(description="Episodes the task used.")] = None,
        used_pattern_ids: Annotated[Ids, Field(description="Patterns the task used.")] = None,
        helpful: Annotated[
            bool | None, Field(description="Whether they helped (omit: the outcome decides).")
        ] = None,
    ) -> dict[str, Any]:
        memory = await service.memory()
        counted = await memory.record_retrieval_feedback(
            episode_id, list(used_episode_ids or []), list(used_pattern_ids or []), helpful
        )
        return {
            "episode_id": episode_id,
            "used_episodes": len(set(used_episode_ids or [])),
            "used_patterns": len(set(used_pattern_ids or [])),
            "helpful": helpful,
            # uses counted with the task's outcome by this call (0 while the task is open: they
            # are counted when it completes; 0 too for items already counted for it)
            "counted_now": counted,
        }
