"""`memory-cli episode create`, `log-step`, `complete`, `fail`, `delete`: the commands that
write an episode. Each opens the store, does one thing and closes it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ....presenters import arguments as A
from ...output import emit
from ...state import CliState, check_text, dry_run_report, fail, get_state, run_with_memory
from .arguments import OutcomeArg, outcome_value, task_context
from .read import render_detail

if TYPE_CHECKING:
    from rich.console import Console

    from ....core.memory import SelfLearningMemory

__all__ = ["complete", "create", "delete", "fail_episode", "log_step"]


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
    agent: Annotated[
        str | None,
        typer.Option(
            "--agent",
            help="Who runs the task (1-64 of A-Z a-z 0-9 . _ : @ / -); its completion is "
            "counted in `monitor agents`.",
        ),
    ] = None,
) -> None:
    """Start an episode; prints its id."""
    state = get_state(ctx)

    async def action(memory: SelfLearningMemory) -> dict[str, Any]:
        from ....presenters.episodes import created_payload

        check_text("--task", task, A.MAX_TEXT)
        context = task_context(domain, language, framework, tag, complexity, context_file)
        if state.dry_run:
            return {"dry_run": True, "would": "create an episode", "task": task}
        eid = await memory.start_episode(task, context, task_type, agent=agent)
        return {
            **created_payload(eid, task_type, context),
            "task": task,
            "status": "created",
            "agent": None if agent is None else agent.strip(),
        }

    result = run_with_memory(state, action)
    emit(state, result, lambda c, d: c.print(d.get("episode_id") or f"dry run: {d['would']}"))


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
        from ....errors import ValidationError
        from ....model.episode import ErrorResult, ExecutionStep, SuccessResult, TimeoutResult

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
        from ....presenters.episodes import step_logged_payload

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
                from ....errors import InvalidStateError

                raise InvalidStateError(f"Episode {episode.episode_id} is already completed.")
            return {
                "dry_run": True,
                "would": "complete the episode",
                "outcome": outcome.model_dump(mode="json"),
            }
        from ....presenters.episodes import episode_detail

        return episode_detail(await memory.complete_episode(episode_id, outcome))

    def human(console: Console, data: dict[str, Any]) -> None:
        if data.get("dry_run"):
            console.print(f"dry run: would complete with {data['outcome']['type']}")
        else:
            render_detail(console, data)

    emit(state, run_with_memory(state, act), human)


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
    from ....model.episode import FailureOutcome, PartialSuccessOutcome, SuccessOutcome

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


def fail_episode(
    ctx: typer.Context,
    episode_id: Annotated[str, typer.Argument(help="Episode id (UUID).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it failed.")] = "Task failed via CLI",
    error_details: Annotated[str | None, typer.Option("--error-details")] = None,
) -> None:
    """Finish an episode as a failure (same as `complete ID failure`)."""
    from ....model.episode import FailureOutcome

    _complete(
        get_state(ctx), episode_id, FailureOutcome(reason=reason, error_details=error_details)
    )


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
        from ....presenters.episodes import deleted_payload

        await memory.delete_episode(episode_id)
        return {**deleted_payload(episode_id), "status": "deleted"}

    emit(state, run_with_memory(state, act), lambda c, d: c.print(f"deleted {d['episode_id']}"))
