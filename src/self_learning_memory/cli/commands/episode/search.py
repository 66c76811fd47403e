"""`memory-cli episode search`, `known-failures`: what the memory retrieves for a task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ....presenters import arguments as A
from ...output import emit, table
from ...state import check_text, get_state, run_with_memory
from .arguments import LimitOpt, OutcomeArg, outcome_value, task_context

if TYPE_CHECKING:
    from rich.console import Console

    from ....core.memory import SelfLearningMemory

__all__ = ["known_failures", "search"]


def _render_results(console: Console, data: dict[str, Any]) -> None:
    rows = []
    for r in data["results"]:
        c = r["components"]
        rows.append(
            [
                f"{r['score']:.3f}",
                r["episode"]["outcome"],
                f"rel {c['relevance']:.2f} ctx {c['context']:.2f} out {c['outcome']:.2f} rec {c['recency']:.2f}",
                ",".join(r["provenance"]),
                r["episode"]["task_description"][:60],
            ]
        )
    table(console, f"{len(rows)} results", ["score", "outcome", "components", "why", "task"], rows)


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="The task, in your words.")],
    limit: LimitOpt = 10,
    domain: Annotated[str | None, typer.Option("--domain")] = None,
    language: Annotated[str | None, typer.Option("--language")] = None,
    framework: Annotated[str | None, typer.Option("--framework")] = None,
    task_type: Annotated[A.TaskTypeName | None, typer.Option("--task-type", "-t")] = None,
    outcome: Annotated[
        OutcomeArg | None, typer.Option("--outcome", help="Only episodes that ended so.")
    ] = None,
    mode: Annotated[
        A.RetrievalModeName | None,
        typer.Option("--mode", help="Ranking mode (default from config)."),
    ] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's.")] = None,
) -> None:
    """Past episodes relevant to a task, ranked, with their score components and provenance."""
    state = get_state(ctx)

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        from ....model.agents import check_agent
        from ....model.records import EpisodeFilters
        from ....presenters.episodes import episode_row, result_payload

        check_text("QUERY", query, A.MAX_TEXT)
        context = task_context(domain, language, framework, None, None, None)
        results = await memory.retrieve_relevant_context(
            query,
            context,
            limit,
            task_type=task_type,
            filters=EpisodeFilters(
                outcome=outcome_value(outcome),
                agent=None if agent is None else check_agent(agent, "--agent"),
            ),
            mode=mode,
        )
        return {
            "query": query,
            "results": [result_payload(r, episode_row(r.episode)) for r in results],
        }

    emit(state, run_with_memory(state, act), _render_results)


def known_failures(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(help="The task you are about to do.")],
    domain: Annotated[str | None, typer.Option("--domain")] = None,
    language: Annotated[str | None, typer.Option("--language")] = None,
    framework: Annotated[str | None, typer.Option("--framework")] = None,
    task_type: Annotated[A.TaskTypeName | None, typer.Option("--task-type", "-t")] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit", "-l", min=1, max=A.MAX_KNOWN_FAILURES, help=f"1..{A.MAX_KNOWN_FAILURES}."
        ),
    ] = A.DEFAULT_KNOWN_FAILURES,
) -> None:
    """What went wrong last time on similar tasks, and the recoveries and heuristics for it."""
    state = get_state(ctx)

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        from ....presenters.episodes import known_failures_payload

        check_text("TASK", task, A.MAX_TEXT)
        context = task_context(domain, language, framework, None, None, None)
        warning = await memory.check_known_failures(task, context, limit, task_type=task_type)
        return known_failures_payload(warning)

    def human(console: Console, warning: dict[str, Any]) -> None:
        if not warning["summary"]:
            console.print("No similar failures are known.")
        for line in warning["summary"]:
            console.print(f"- {line}")

    emit(state, run_with_memory(state, act), human)
