"""Retrieval tools: query_memory (past episodes that help, with reasons) and
check_known_failures (what went wrong last time on tasks like this)."""

# No ``from __future__ import annotations``: the SDK reads these signatures at runtime.

from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from ...presenters.episodes import episode_payload, known_failures_payload, result_payload
from ...presenters.patterns import pattern_payload
from .. import limits as L
from ..server import memory_tool

if TYPE_CHECKING:
    from ...model.episode import TaskContext
    from ..server import MemoryMCPServer, MemoryService

__all__ = ["register"]

Query = Annotated[
    str,
    Field(min_length=1, max_length=L.MAX_TEXT, description="The task, in your own words."),
]
Domain = Annotated[
    str,
    Field(
        min_length=1,
        max_length=L.MAX_NAME,
        description="Where the task happens, e.g. web-api, data-processing.",
    ),
]
Name = Annotated[str, Field(min_length=1, max_length=L.MAX_NAME)]
OptionalName = Annotated[str | None, Field(max_length=L.MAX_NAME)]
Tags = Annotated[list[Name] | None, Field(max_length=L.MAX_TAGS)]


def context_of(
    domain: str, language: str | None, framework: str | None, tags: list[str] | None
) -> "TaskContext":
    from ...model.episode import TaskContext

    return TaskContext(domain=domain, language=language, framework=framework, tags=list(tags or []))


def register(server: "MemoryMCPServer", service: "MemoryService") -> None:
    @server.tool(
        name="query_memory",
        description=(
            "Past episodes that help with a task, best first: each with its score, the score's "
            "components (relevance, context, outcome, recency, usefulness, diversity) and "
            "provenance, plus the learned patterns for the context. task_type, language, "
            "framework and tags are ranking signals; outcome filters. What it returns counts as "
            "used by the episode you create in this session, with its outcome, when you "
            "complete it (see record_retrieval_feedback)."
        ),
    )
    @memory_tool
    async def query_memory(
        query: Query,
        domain: Domain,
        task_type: L.TaskTypeName | None = None,
        limit: Annotated[int, Field(ge=1, le=L.MAX_LIMIT)] = L.DEFAULT_QUERY_LIMIT,
        language: OptionalName = None,
        framework: OptionalName = None,
        tags: Tags = None,
        outcome: L.OutcomeName | None = None,
        mode: Annotated[
            L.RetrievalModeName | None,
            Field(description="Ranking mode; default from the server's configuration."),
        ] = None,
        include_steps: Annotated[
            bool, Field(description="Return every step of each episode (default: a summary).")
        ] = False,
        ctx: Context | None = None,
    ) -> dict[str, Any]:
        from ...model.records import EpisodeFilters

        memory = await service.memory()
        context = context_of(domain, language, framework, tags)
        results = await memory.retrieve_relevant_context(
            query,
            context,
            limit,
            task_type=task_type,
            filters=EpisodeFilters(outcome=outcome),
            mode=mode,
        )
        patterns = await memory.retrieve_relevant_patterns(context, min(limit, L.MAX_RECOMMEND))
        evidence = await memory.pattern_evidence([m.pattern.id for m in patterns])
        service.retrieved(
            ctx,
            [str(r.episode.episode_id) for r in results],
            [str(m.pattern.id) for m in patterns],
        )
        successes = sum(
            1
            for r in results
            if r.episode.outcome is not None and r.episode.outcome.type == "success"
        )
        return {
            "episodes": [
                result_payload(r, episode_payload(r.episode, include_steps=include_steps))
                for r in results
            ],
            "patterns": [pattern_payload(m, evidence) for m in patterns],
            "insights": {
                "total_episodes": len(results),
                "relevant_patterns": len(patterns),
                "success_rate": successes / len(results) if results else 0.0,
                "mode": results[0].components.mode if results else (mode or None),
            },
        }

    @server.tool(
        name="check_known_failures",
        description=(
            "Before acting: past failed or partially failed episodes similar to this task, what "
            "went wrong in each, and the error-recovery patterns and heuristics that address "
            "those errors, with a short summary to act on."
        ),
    )
    @memory_tool
    async def check_known_failures(
        task_description: Query,
        domain: Domain,
        task_type: L.TaskTypeName | None = None,
        limit: Annotated[int, Field(ge=1, le=L.MAX_KNOWN_FAILURES)] = L.DEFAULT_KNOWN_FAILURES,
        language: OptionalName = None,
        framework: OptionalName = None,
        tags: Tags = None,
    ) -> dict[str, Any]:
        memory = await service.memory()
        context = context_of(domain, language, framework, tags)
        warning = await memory.check_known_failures(
            task_description, context, limit, task_type=task_type
        )
        return known_failures_payload(warning)
