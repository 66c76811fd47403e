"""`memory-cli episode` (alias `ep`): create, list, view, log-step, complete, fail, search,
known-failures, delete. Every command opens the store, does one thing and closes it, so a
create, a log-step, a complete and a view can each run in their own process."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ...presenters import arguments as A
from ..choices import dashed
from ..output import emit, table
from ..state import CliState, check_text, dry_run_report, fail, get_state, run_with_memory

if TYPE_CHECKING:
    from rich.console import Console

    from ...core.memory import SelfLearningMemory

app = typer.Typer(
    help="Record and inspect episodes (alias: ep).",
    no_args_is_help=True,
)

# choices written with dashes on the command line; the others are the model's Literals
if TYPE_CHECKING:
    OutcomeArg = StrEnum
else:
    OutcomeArg = dashed("OutcomeArg", A.OutcomeName)  # success, partial-success, failure


class StatusArg(StrEnum):
    in_progress = "in-progress"
    completed = "completed"


def outcome_value(outcome: StrEnum | None) -> str | None:
    """The model's outcome type for ``--outcome`` (``partial-success`` -> ``partial_success``)."""
    return None if outcome is None else outcome.value.replace("-", "_")


LimitOpt = Annotated[
    int, typer.Option("--limit", "-l", min=1, max=A.MAX_LIMIT, help=f"1..{A.MAX_LIMIT}.")
]


def parse_since(text: str, flag: str = "--since") -> datetime:
    """``Nh``, ``Nd`` or ``Nm`` (minutes) before now (the library's one parser of a window)."""
    from ...analysis.memory_request import parse_ago

    return parse_ago(flag, text)


def _context(
    domain: str | None,
    language: str | None,
    framework: str | None,
    tags: list[str] | None,
    complexity: A.ComplexityName | None,
    context_file: Path | None,
) -> Any:
    from ...errors import ValidationError
    from ...model.episode import ComplexityLevel, TaskContext
    from ...model.validation import parse_model

    base: dict[str, Any] = {}
    if context_file is not None:
        try:
            text = context_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValidationError(
                "--context", f"cannot read {context_file}: {exc.strerror}"
            ) from exc
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError:
            import yaml

            try:
                loaded = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ValidationError(
                    "--context", f"{context_file} is neither JSON nor YAML: {exc}"
                ) from exc
        if not isinstance(loaded, dict):
            raise ValidationError(
                "--context", f"{context_file} must hold an object", "a TaskContext"
            )
        base = loaded
    context = parse_model(TaskContext, base, "--context")
    updates: dict[str, Any] = {}
    if domain is not None:
        updates["domain"] = domain
    if language is not None:
        updates["language"] = language
    if framework is not None:
        updates["framework"] = framework
    if tags:
        updates["tags"] = [*context.tags, *tags]
    if complexity is not None:
        updates["complexity"] = ComplexityLevel(complexity)
    return context.model_copy(update=updates)


def _render_detail(console: Console, data: dict[str, Any]) -> None:
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


@app.command("create")
def create(
    ctx: typer.Context,
    task: Annotated[str, typer.Option("--task", "-t", help="What the task is.")],
    task_type: Annotated[
        A.TaskTypeName, typer.Option("--task-type", "-T", help="Kind of task.")
    ] = "other",
    domain: Annotated[
        str | None, typer.Option("--domain", help="e.g. web-api (default general).")
    ] = None,
    language: Annotated[str | None, typer.Option("--language")] = None,
    framework: Annotated[str | None, typer.Option("--framework")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Repeatable.")] = None,
    complexity: Annotated[A.ComplexityName | None, typer.Option("--complexity")] = None,
    context_file: Annotated[
        Path | None, typer.Option("--context", "-c", help="A TaskContext as a JSON or YAML file.")
    ] = None,
) -> None:
    """Start an episode; prints its id."""
    state = get_state(ctx)

    async def action(memory: SelfLearningMemory) -> dict[str, Any]:
        from ...presenters.episodes import created_payload

        check_text("--task", task, A.MAX_TEXT)
        context = _context(domain, language, framework, tag, complexity, context_file)
        if state.dry_run:
            return {"dry_run": True, "would": "create an episode", "task": task}
        eid = await memory.start_episode(task, context, task_type)
        return {**created_payload(eid, task_type, context), "task": task, "status": "created"}

    result = run_with_memory(state, action)
    emit(state, result, lambda c, d: c.print(d.get("episode_id") or f"dry run: {d['would']}"))


@app.command("list")
def list_episodes(
    ctx: typer.Context,
    task_type: Annotated[A.TaskTypeName | None, typer.Option("--task-type", "-t")] = None,
    status: Annotated[StatusArg | None, typer.Option("--status", "-s")] = None,
    outcome: Annotated[OutcomeArg | None, typer.Option("--outcome")] = None,
    domain: Annotated[str | None, typer.Option("--domain")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Nh, Nd or Nm, e.g. 24h.")] = None,
    limit: LimitOpt = 10,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
) -> None:
    """Episodes, newest first (filters run in SQL)."""
    state = get_state(ctx)

    async def action(memory: SelfLearningMemory) -> dict[str, Any]:
        from ...model.records import EpisodeFilters
        from ...presenters.episodes import episode_row

        filters = EpisodeFilters(
            task_type=task_type,
            completed=None if status is None else status is StatusArg.completed,
            outcome=outcome_value(outcome),
            domain=domain,
            since=None if since is None else parse_since(since),
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
        from ...presenters.episodes import episode_detail

        return episode_detail(await memory.get_episode(episode_id))

    emit(state, run_with_memory(state, action), _render_detail)


@app.command("view")
def view(
    ctx: typer.Context, episode_id: Annotated[str, typer.Argument(help="Episode id (UUID).")]
) -> None:
    """An episode with its steps, outcome, reward and reflection (alias: get)."""
    _view(ctx, episode_id)


@app.command("get", hidden=True)
def get(ctx: typer.Context, episode_id: Annotated[str, typer.Argument()]) -> None:
    """Alias of view."""
    _view(ctx, episode_id)


@app.command("log-step")
def log_step(
    ctx: typer.Context,
    episode_id: Annotated[str, typer.Argument(help="Episode id (UUID).")],
    tool: Annotated[str, typer.Option("--tool", "-t", help="The tool used.")],
    action_text: Annotated[str, typer.Option("--action", "-a", help="What it did.")],
    result: Annotated[
        A.ResultName, typer.Option("--result", "-r", help="How the step ended.")
    ] = "success",
    success: Annotated[
        bool | None,
        typer.Option("--success/--failure", help="Shorthand for --result success/error."),
    ] = None,
    observation: Annotated[
        str | None, typer.Option("--observation", "-o", help="Output, or the error message.")
    ] = None,
    latency_ms: Annotated[int, typer.Option("--latency-ms", min=0, max=A.MAX_LATENCY_MS)] = 0,
    tokens: Annotated[int | None, typer.Option("--tokens", min=0, max=A.MAX_TOKENS)] = None,
    params: Annotated[
        str | None, typer.Option("--params", help="Tool parameters as a JSON object.")
    ] = None,
    step_number: Annotated[
        int | None,
        typer.Option("--step-number", min=1, help="Default: the next one."),
    ] = None,
) -> None:
    """Add one step; it is durable when the command exits."""
    state = get_state(ctx)
    kind = result if success is None else ("success" if success else "error")

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        from ...errors import ValidationError
        from ...model.episode import ErrorResult, ExecutionStep, SuccessResult, TimeoutResult

        check_text("--tool", tool, A.MAX_TOOL_NAME)
        check_text("--action", action_text, A.MAX_TEXT)
        if observation is not None:
            check_text("--observation", observation, A.MAX_TEXT)
        parameters: dict[str, Any] = {}
        if params is not None:
            check_text("--params", params, A.MAX_PARAMETERS_BYTES)
            try:
                parameters = json.loads(params)
            except json.JSONDecodeError as exc:
                raise ValidationError(
                    "--params", f"is not JSON ({exc.msg})", "a JSON object"
                ) from exc
            if not isinstance(parameters, dict):
                raise ValidationError("--params", "is not a JSON object", "a JSON object")
        episode = await memory.get_episode(episode_id)
        number = step_number or (episode.steps[-1].step_number + 1 if episode.steps else 1)
        outcome: Any
        if kind == "success":
            outcome = SuccessResult(output=observation or "Step completed successfully")
        elif kind == "error":
            outcome = ErrorResult(message=observation or "Step failed")
        else:
            outcome = TimeoutResult()
        step = ExecutionStep(
            step_number=number,
            tool=tool,
            action=action_text,
            parameters=parameters,
            result=outcome,
            latency_ms=latency_ms,
            tokens_used=tokens,
        )
        if state.dry_run:
            return {"dry_run": True, "would": "log a step", "step": step.model_dump(mode="json")}
        from ...presenters.episodes import step_logged_payload

        await memory.log_step(episode.episode_id, step)
        await memory.flush_steps(episode.episode_id)
        logged = step_logged_payload(episode.episode_id, number)
        return {**logged, "result": kind, "status": "logged"}

    emit(
        state,
        run_with_memory(state, act),
        lambda c, d: c.print(
            f"step {d.get('step_number', d.get('step', {}).get('step_number'))} {d.get('status', 'dry run')}"
        ),
    )


def _complete(state: CliState, episode_id: str, outcome: Any) -> None:
    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        if state.dry_run:
            episode = await memory.get_episode(episode_id)
            if episode.is_complete():
                from ...errors import InvalidStateError

                raise InvalidStateError(f"Episode {episode.episode_id} is already completed.")
            return {
                "dry_run": True,
                "would": "complete the episode",
                "outcome": outcome.model_dump(mode="json"),
            }
        from ...presenters.episodes import episode_detail

        return episode_detail(await memory.complete_episode(episode_id, outcome))

    def human(console: Console, data: dict[str, Any]) -> None:
        if data.get("dry_run"):
            console.print(f"dry run: would complete with {data['outcome']['type']}")
        else:
            _render_detail(console, data)

    emit(state, run_with_memory(state, act), human)


@app.command("complete")
def complete(
    ctx: typer.Context,
    episode_id: Annotated[str, typer.Argument(help="Episode id (UUID).")],
    outcome: Annotated[OutcomeArg, typer.Argument(help="success, partial-success or failure.")],
    verdict: Annotated[str | None, typer.Option("--verdict", help="What was achieved.")] = None,
    artifact: Annotated[list[str] | None, typer.Option("--artifact", help="Repeatable.")] = None,
    completed: Annotated[
        list[str] | None, typer.Option("--completed", help="Repeatable (partial).")
    ] = None,
    failed: Annotated[
        list[str] | None, typer.Option("--failed", help="Repeatable (partial).")
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why it failed.")] = None,
    error_details: Annotated[str | None, typer.Option("--error-details")] = None,
) -> None:
    """Finish an episode: the memory scores it, reflects and learns patterns."""
    from ...model.episode import FailureOutcome, PartialSuccessOutcome, SuccessOutcome

    state = get_state(ctx)
    result: Any
    if outcome_value(outcome) == "success":
        result = SuccessOutcome(
            verdict=verdict or "Task completed successfully via CLI", artifacts=artifact or []
        )
    elif outcome_value(outcome) == "partial_success":
        result = PartialSuccessOutcome(
            verdict=verdict or "Partially completed via CLI",
            completed=completed or [],
            failed=failed or [],
        )
    else:
        result = FailureOutcome(reason=reason or "Task failed via CLI", error_details=error_details)
    _complete(state, episode_id, result)


@app.command("fail")
def fail_episode(
    ctx: typer.Context,
    episode_id: Annotated[str, typer.Argument(help="Episode id (UUID).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it failed.")] = "Task failed via CLI",
    error_details: Annotated[str | None, typer.Option("--error-details")] = None,
) -> None:
    """Finish an episode as a failure (same as `complete ID failure`)."""
    from ...model.episode import FailureOutcome

    _complete(
        get_state(ctx), episode_id, FailureOutcome(reason=reason, error_details=error_details)
    )


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


@app.command("search")
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
) -> None:
    """Past episodes relevant to a task, ranked, with their score components and provenance."""
    state = get_state(ctx)

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        from ...model.records import EpisodeFilters
        from ...presenters.episodes import episode_row, result_payload

        check_text("QUERY", query, A.MAX_TEXT)
        context = _context(domain, language, framework, None, None, None)
        results = await memory.retrieve_relevant_context(
            query,
            context,
            limit,
            task_type=task_type,
            filters=EpisodeFilters(outcome=outcome_value(outcome)),
            mode=mode,
        )
        return {
            "query": query,
            "results": [result_payload(r, episode_row(r.episode)) for r in results],
        }

    emit(state, run_with_memory(state, act), _render_results)


@app.command("known-failures")
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
        from ...presenters.episodes import known_failures_payload

        check_text("TASK", task, A.MAX_TEXT)
        context = _context(domain, language, framework, None, None, None)
        warning = await memory.check_known_failures(task, context, limit, task_type=task_type)
        return known_failures_payload(warning)

    def human(console: Console, warning: dict[str, Any]) -> None:
        if not warning["summary"]:
            console.print("No similar failures are known.")
        for line in warning["summary"]:
            console.print(f"- {line}")

    emit(state, run_with_memory(state, act), human)


@app.command("delete")
def delete(
    ctx: typer.Context,
    episode_id: Annotated[str, typer.Argument(help="Episode id (UUID).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an episode and its steps (learned patterns stay)."""
    state = get_state(ctx)
    if state.dry_run:

        async def check(memory: SelfLearningMemory) -> None:
            await memory.get_episode(episode_id)

        run_with_memory(state, check)
        dry_run_report(state, "delete the episode", episode_id=episode_id)
        return
    if not yes and not typer.confirm(f"Delete episode {episode_id}?", err=True):
        fail(state, KeyboardInterrupt())

    async def act(memory: SelfLearningMemory) -> dict[str, Any]:
        from ...presenters.episodes import deleted_payload

        await memory.delete_episode(episode_id)
        return {**deleted_payload(episode_id), "status": "deleted"}

    emit(state, run_with_memory(state, act), lambda c, d: c.print(f"deleted {d['episode_id']}"))
