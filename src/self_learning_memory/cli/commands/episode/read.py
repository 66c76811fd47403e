"""`memory-cli episode list`, `view` (alias `get`): read episodes from the store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ....presenters import arguments as A
from ...output import emit, table
from ...state import get_state, run_with_memory
from .arguments import LimitOpt, OutcomeArg, StatusArg, outcome_value, parse_since

if TYPE_CHECKING:
    from rich.console import Console

    from ....core.memory import SelfLearningMemory

__all__ = ["get", "list_episodes", "render_detail", "view"]


def render_detail(console: Console, data: dict[str, Any]) -> None:
    console.print(f"[bold]{data['task_description']}[/bold]")
    console.print(
        f"id {data['episode_id']}  type {data['task_type']}  domain {data['context']['domain']}  "
        f"status {data['status']}"
    )
    if data.get("outcome"):
        outcome = data["outcome"]
        text = outcome.get("verdict") or outcome.get("reason") or ""
        console.print(f"outcome: {outcome['type']} {text}")
    if data.get("reward"):
        r = data["reward"]
        console.print(
            f"reward {r['total']:.3f} = base {r['base']:.2f} x efficiency {r['efficiency']:.2f} "
            f"x complexity {r['complexity_bonus']:.2f} x quality {r['quality_multiplier']:.2f} "
            f"+ learning {r['learning_bonus']:.2f}"
        )
    rows = []
    for s in data["steps"]:
        result = s.get("result") or {"type": "none"}
        text = result.get("output") or result.get("message") or ""
        rows.append(
            [s["step_number"], s["tool"], s["action"], result["type"], s["latency_ms"], text[:60]]
        )
    if rows:
        table(console, "steps", ["#", "tool", "action", "result", "ms", "output"], rows)
    reflection = data.get("reflection")
    if reflection:
        labels = {"successes": "success", "improvements": "improve", "insights": "insight"}
        for key, label in labels.items():
            for line in reflection.get(key, []):
                console.print(f"  {label}: {line}")


def list_episodes(
    ctx: typer.Context,
    task_type: Annotated[A.TaskTypeName | None, typer.Option("--task-type", "-t")] = None,
    status: Annotated[StatusArg | None, typer.Option("--status", "-s")] = None,
    outcome: Annotated[OutcomeArg | None, typer.Option("--outcome")] = None,
    domain: Annotated[str | None, typer.Option("--domain")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Nh, Nd or Nm, e.g. 24h.")] = None,
    limit: LimitOpt = 10,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's.")] = None,
) -> None:
    """Episodes, newest first (filters run in SQL)."""
    state = get_state(ctx)

    async def action(memory: SelfLearningMemory) -> dict[str, Any]:
        from ....model.agents import check_agent
        from ....model.records import EpisodeFilters
        from ....presenters.episodes import episode_row

        filters = EpisodeFilters(
            task_type=task_type,
            completed=None if status is None else status is StatusArg.completed,
            outcome=outcome_value(outcome),
            domain=domain,
            since=None if since is None else parse_since(since),
            agent=None if agent is None else check_agent(agent, "--agent"),
        )
        episodes = await memory.list_episodes(filters, limit, offset)
        total = await memory.count_episodes(filters)
        return {
            "total": total,
            "limit": limit,
            "offset": offset,
            "episodes": [episode_row(e) for e in episodes],
            "total_count": total,
        }

    def human(console: Console, data: dict[str, Any]) -> None:
        rows = [
            [
                e["episode_id"][:8],
                e["status"],
                e["outcome"],
                e["reward"],
                e["step_count"],
                e["task_description"][:60],
            ]
            for e in data["episodes"]
        ]
        table(
            console,
            f"{len(rows)} of {data['total_count']} episodes",
            ["id", "status", "outcome", "reward", "steps", "task"],
            rows,
        )

    emit(state, run_with_memory(state, action), human)


def _view(ctx: typer.Context, episode_id: str) -> None:
    state = get_state(ctx)

    async def action(memory: SelfLearningMemory) -> dict[str, Any]:
        from ....presenters.episodes import episode_detail

        return episode_detail(await memory.get_episode(episode_id))

    emit(state, run_with_memory(state, action), render_detail)


def view(
    ctx: typer.Context, episode_id: Annotated[str, typer.Argument(help="Episode id (UUID).")]
) -> None:
    """An episode with its steps, outcome, reward and reflection (alias: get)."""
    _view(ctx, episode_id)


def get(ctx: typer.Context, episode_id: Annotated[str, typer.Argument()]) -> None:
    """Alias of view."""
    _view(ctx, episode_id)
