"""Pattern tools: analyze_patterns (statistics from the stored patterns), search_patterns
(patterns for a context, filtered) and recommend_patterns (what to do for a task)."""

# No ``from __future__ import annotations``: the SDK reads these signatures at runtime.

import re
from collections import Counter
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from ...presenters.patterns import heuristic_payload, pattern_payload, pattern_tools
from .. import limits as L
from ..server import memory_tool
from .retrieval import Domain, OptionalName, Query, Tags, context_of

if TYPE_CHECKING:
    from ...retrieval.patterns import PatternMatch
    from ..server import MemoryMCPServer, MemoryService

__all__ = ["register"]

Rate = Annotated[float, Field(ge=0.0, le=1.0)]
_WORD = re.compile(r"[a-z0-9_]+")


def _pattern_text(match: "PatternMatch") -> set[str]:
    return set(_WORD.findall(match.pattern.model_dump_json(exclude={"id"}).lower()))


def register(server: "MemoryMCPServer", service: "MemoryService") -> None:
    @server.tool(
        name="analyze_patterns",
        description=(
            "Patterns learned for a task type (or domain) with success rate at least "
            "min_success_rate, and statistics computed from them: count, mean success rate, "
            "mean effectiveness, occurrences, counts per pattern type, most common tools."
        ),
    )
    @memory_tool
    async def analyze_patterns(
        task_type: Annotated[
            str,
            Field(
                min_length=1,
                max_length=L.MAX_NAME,
                description="A task type (e.g. debugging) or a domain; used as the context.",
            ),
        ],
        min_success_rate: Rate = 0.7,
        limit: Annotated[int, Field(ge=1, le=L.MAX_LIMIT)] = L.DEFAULT_ANALYZE_LIMIT,
        domain: OptionalName = None,
    ) -> dict[str, Any]:
        memory = await service.memory()
        context = context_of(domain or task_type, None, None, [task_type])
        ranked = await memory.retrieve_relevant_patterns(context, min(2 * limit, L.MAX_LIMIT))
        kept = [m for m in ranked if m.success_rate >= min_success_rate][:limit]
        evidence = await memory.pattern_evidence([m.pattern.id for m in kept])
        tools: Counter[str] = Counter()
        for m in kept:
            for tool in pattern_tools(m.pattern):
                tools[tool] += m.pattern.occurrence_count
        n = len(kept)
        return {
            "patterns": [pattern_payload(m, evidence) for m in kept],
            "statistics": {
                "total_patterns": n,
                "considered": len(ranked),
                "avg_success_rate": sum(m.success_rate for m in kept) / n if n else 0.0,
                "avg_effectiveness": sum(m.effectiveness for m in kept) / n if n else 0.0,
                "total_occurrences": sum(m.pattern.occurrence_count for m in kept),
                "by_type": dict(Counter(m.pattern.type for m in kept)),
                "most_common_tools": [
                    {"tool": t, "occurrences": c} for t, c in tools.most_common(5)
                ],
            },
        }

    @server.tool(
        name="search_patterns",
        description=(
            "Learned patterns ranked for a context (success rate, evidence, context fit, type, "
            "effectiveness), optionally only of one type, above a success rate, or mentioning "
            "a word of query."
        ),
    )
    @memory_tool
    async def search_patterns(
        domain: Domain,
        query: Annotated[str | None, Field(max_length=L.MAX_TEXT)] = None,
        pattern_type: L.PatternTypeName | None = None,
        min_success_rate: Rate = 0.0,
        language: OptionalName = None,
        framework: OptionalName = None,
        tags: Tags = None,
        limit: Annotated[int, Field(ge=1, le=L.MAX_SEARCH_PATTERNS)] = L.DEFAULT_SEARCH_PATTERNS,
    ) -> dict[str, Any]:
        memory = await service.memory()
        context = context_of(domain, language, framework, tags)
        ranked = await memory.retrieve_relevant_patterns(context, L.MAX_LIMIT)
        words = set(_WORD.findall(query.lower())) if query else set()
        kept = [
            m
            for m in ranked
            if (pattern_type is None or m.pattern.type == pattern_type)
            and m.success_rate >= min_success_rate
            and (not words or words & _pattern_text(m))
        ][:limit]
        evidence = await memory.pattern_evidence([m.pattern.id for m in kept])
        return {
            "patterns": [pattern_payload(m, evidence) for m in kept],
            "total": len(kept),
        }

    @server.tool(
        name="recommend_patterns",
        description=(
            "What to do for a task: patterns (those learned from similar successful episodes "
            "first, then the best for the context) and heuristics, ranked, with their evidence."
        ),
    )
    @memory_tool
    async def recommend_patterns(
        task_description: Query,
        domain: Domain,
        task_type: L.TaskTypeName | None = None,
        language: OptionalName = None,
        framework: OptionalName = None,
        tags: Tags = None,
        limit: Annotated[int, Field(ge=1, le=L.MAX_RECOMMEND)] = L.DEFAULT_RECOMMEND,
        ctx: Context | None = None,
    ) -> dict[str, Any]:
        memory = await service.memory()
        context = context_of(domain, language, framework, tags)
        similar = await memory.retrieve_relevant_context(
            task_description, context, 5, task_type=task_type
        )
        learned_from = {
            pid: r.episode.episode_id
            for r in similar
            if r.episode.outcome is not None and r.episode.outcome.type == "success"
            for pid in r.episode.patterns
        }
        ranked = await memory.retrieve_relevant_patterns(context, 100)
        ranked.sort(key=lambda m: (m.pattern.id not in learned_from, -m.score))
        chosen = ranked[:limit]
        evidence = await memory.pattern_evidence([m.pattern.id for m in chosen])
        heuristics = await memory.retrieve_heuristics(context, limit)
        service.retrieved(
            ctx,
            [str(r.episode.episode_id) for r in similar],
            [str(m.pattern.id) for m in chosen],
        )
        patterns = []
        for m in chosen:
            item = pattern_payload(m, evidence)
            source = learned_from.get(m.pattern.id)
            item["from_similar_episode"] = None if source is None else str(source)
            patterns.append(item)
        return {
            "patterns": patterns,
            "heuristics": [heuristic_payload(h) for h in heuristics],
            "similar_episodes": [
                {
                    "episode_id": str(r.episode.episode_id),
                    "task_description": r.episode.task_description,
                    "outcome": r.episode.outcome.type if r.episode.outcome else None,
                    "score": round(r.score, 6),
                }
                for r in similar
            ],
        }
