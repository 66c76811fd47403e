"""Episode lifecycle tools: create, add steps, complete, get, list, delete.

Every write is durable when the tool answers: a step is flushed to the store before
``add_episode_step`` returns, so a server killed after acknowledging a call loses nothing.
"""

# No ``from __future__ import annotations``: the SDK reads these signatures at runtime.

from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, ConfigDict, Field

from ...model.agents import MAX_AGENT_LEN, check_agent
from ...presenters.episodes import (
    completion_payload,
    created_payload,
    deleted_payload,
    episode_payload,
    step_logged_payload,
)
from .. import limits as L
from ..server import client_agent, memory_tool

if TYPE_CHECKING:
    from ..server import MemoryMCPServer, MemoryService

__all__ = ["StepResultArg", "register"]

EpisodeId = Annotated[
    str,
    Field(min_length=1, max_length=L.MAX_ID, description="The episode's id (a UUID)."),
]
Name = Annotated[str, Field(min_length=1, max_length=L.MAX_NAME)]
Item = Annotated[str, Field(max_length=L.MAX_ITEM)]


class StepResultArg(BaseModel):
    """How a step ended. A step without a result counts as failed."""

    model_config = ConfigDict(extra="forbid")

    type: L.ResultName = Field(description="success, error or timeout.")
    output: str | None = Field(None, max_length=L.MAX_TEXT, description="For success.")
    message: str | None = Field(None, max_length=L.MAX_TEXT, description="For error: what failed.")


def _invalid(field: str, problem: str) -> ToolError:
    return ToolError(f"validation_error: Invalid '{field}': {problem}.")


def _step_result(result: StepResultArg | None) -> Any:
    from ...model.episode import ErrorResult, SuccessResult, TimeoutResult

    if result is None:
        return None
    if result.type == "success":
        return SuccessResult(output=result.output or "")
    if result.type == "error":
        if not result.message:
            raise _invalid("result.message", "is required when result.type is 'error'")
        return ErrorResult(message=result.message)
    return TimeoutResult()


def _outcome(
    outcome_type: str,
    verdict: str | None,
    artifacts: list[str] | None,
    completed: list[str] | None,
    failed: list[str] | None,
    reason: str | None,
    error_details: str | None,
) -> Any:
    from ...model.episode import FailureOutcome, PartialSuccessOutcome, SuccessOutcome

    given = {
        "verdict": verdict,
        "artifacts": artifacts,
        "completed": completed,
        "failed": failed,
        "reason": reason,
        "error_details": error_details,
    }
    allowed = {
        "success": {"verdict", "artifacts"},
        "partial_success": {"verdict", "completed", "failed"},
        "failure": {"reason", "error_details"},
    }[outcome_type]
    for name, value in given.items():
        if value is not None and name not in allowed:
            raise _invalid(name, f"does not apply to outcome_type '{outcome_type}'")
    if outcome_type == "success":
        return SuccessOutcome(verdict=verdict or "completed", artifacts=artifacts or [])
    if outcome_type == "partial_success":
        return PartialSuccessOutcome(
            verdict=verdict or "partially completed", completed=completed or [], failed=failed or []
        )
    return FailureOutcome(reason=reason or "failed", error_details=error_details)


def register(server: "MemoryMCPServer", service: "MemoryService") -> None:
    @server.tool(
        name="create_episode",
        description=(
            "Start recording a task. Returns its episode_id; add a step per tool call with "
            "add_episode_step, then finish with complete_episode."
        ),
    )
    @memory_tool
    async def create_episode(
        task_description: Annotated[
            str,
            Field(min_length=1, max_length=L.MAX_TEXT, description="What the task is."),
        ],
        domain: Annotated[
            str,
            Field(
                min_length=1,
                max_length=L.MAX_NAME,
                description="Where it happens, e.g. web-api, data-processing.",
            ),
        ],
        task_type: Annotated[L.TaskTypeName, Field(description="The kind of task.")],
        language: Annotated[str | None, Field(max_length=L.MAX_NAME)] = None,
        framework: Annotated[str | None, Field(max_length=L.MAX_NAME)] = None,
        tags: Annotated[list[Name] | None, Field(max_length=L.MAX_TAGS)] = None,
        complexity: Annotated[
            L.ComplexityName, Field(description="Default moderate.")
        ] = "moderate",
        agent: Annotated[
            str | None,
            Field(
                min_length=1,
                max_length=MAX_AGENT_LEN,
                description="Who runs the task (letters, digits and . _ : @ / -); default: "
                "this MCP client's name. Its completion is counted in the agent's metrics.",
            ),
        ] = None,
        ctx: Context | None = None,
    ) -> dict[str, Any]:
        from ...model.episode import ComplexityLevel, TaskContext

        memory = await service.memory()
        context = TaskContext(
            domain=domain,
            language=language,
            framework=framework,
            tags=list(tags or []),
            complexity=ComplexityLevel(complexity),
        )
        who = check_agent(agent) if agent is not None else client_agent(ctx)
        episode_id = await memory.start_episode(task_description, context, task_type, agent=who)
        service.created(ctx, str(episode_id))
        return {**created_payload(episode_id, task_type, context), "agent": who}

    @server.tool(
        name="add_episode_step",
        description=(
            "Record one tool call of an episode. step_number must grow (1, 2, 3 ...). The step "
            "is durable when this returns. An episode's JSON is limited to "
            f"{L.MAX_EPISODE_BYTES:,} bytes: its steps may fill {L.MAX_STEPS_BYTES:,} bytes "
            "(the rest is kept for the outcome), and a step that would go over is refused."
        ),
    )
    @memory_tool
    async def add_episode_step(
        episode_id: EpisodeId,
        step_number: Annotated[int, Field(ge=1, le=L.MAX_STEP_NUMBER)],
        tool: Annotated[str, Field(min_length=1, max_length=L.MAX_TOOL_NAME)],
        action: Annotated[str, Field(min_length=1, max_length=L.MAX_TEXT)],
        parameters: Annotated[
            dict[str, Any] | None,
            Field(
                max_length=L.MAX_PARAMETER_KEYS,
                description="The tool's arguments (JSON object, at most 1 MB as JSON).",
            ),
        ] = None,
        result: StepResultArg | None = None,
        latency_ms: Annotated[int, Field(ge=0, le=L.MAX_LATENCY_MS)] = 0,
        tokens_used: Annotated[int | None, Field(ge=0, le=L.MAX_TOKENS)] = None,
    ) -> dict[str, Any]:
        from ...model.episode import ExecutionStep

        memory = await service.memory()
        step = ExecutionStep(
            step_number=step_number,
            tool=tool,
            action=action,
            parameters=dict(parameters or {}),
            result=_step_result(result),
            latency_ms=latency_ms,
            tokens_used=tokens_used,
        )
        await memory.log_step(episode_id, step)
        await memory.flush_steps(episode_id)
        return step_logged_payload(episode_id, step_number)

    @server.tool(
        name="complete_episode",
        description=(
            "Finish an episode with its outcome. The memory scores it (reward), reflects on it "
            "and learns patterns and heuristics; returns what it learned. What query_memory and "
            "recommend_patterns returned in this session since its last completed episode "
            "counts as used by this episode (the session's latest created), with this outcome. "
            "success takes verdict "
            "and artifacts; partial_success verdict, completed and failed; failure reason and "
            f"error_details. The outcome is at most {L.MAX_OUTCOME_BYTES:,} bytes as JSON."
        ),
    )
    @memory_tool
    async def complete_episode(
        episode_id: EpisodeId,
        outcome_type: Annotated[L.OutcomeName, Field(description="How the task ended.")],
        verdict: Annotated[str | None, Field(max_length=L.MAX_TEXT)] = None,
        artifacts: Annotated[list[Item] | None, Field(max_length=L.MAX_LIST_ITEMS)] = None,
        completed: Annotated[list[Item] | None, Field(max_length=L.MAX_LIST_ITEMS)] = None,
        failed: Annotated[list[Item] | None, Field(max_length=L.MAX_LIST_ITEMS)] = None,
        reason: Annotated[str | None, Field(max_length=L.MAX_TEXT)] = None,
        error_details: Annotated[str | None, Field(max_length=L.MAX_TEXT)] = None,
        ctx: Context | None = None,
    ) -> dict[str, Any]:
        memory = await service.memory()
        outcome = _outcome(
            outcome_type, verdict, artifacts, completed, failed, reason, error_details
        )
        used = await service.link_session_uses(ctx, memory, episode_id)
        payload = completion_payload(await memory.complete_episode(episode_id, outcome))
        if used is not None:
            payload["retrieval_feedback"] = {
                "used_episodes": len(used[0]),
                "used_patterns": len(used[1]),
            }
        return payload

    @server.tool(name="get_episode", description="One episode with all its steps.")
    @memory_tool
    async def get_episode(episode_id: EpisodeId) -> dict[str, Any]:
        memory = await service.memory()
        return episode_payload(await memory.get_episode(episode_id), include_steps=True)

    @server.tool(
        name="list_episodes",
        description="Episodes, newest first, filtered; with the total that match the filters.",
    )
    @memory_tool
    async def list_episodes(
        limit: Annotated[int, Field(ge=1, le=L.MAX_LIMIT)] = L.DEFAULT_LIST_LIMIT,
        offset: Annotated[int, Field(ge=0, le=L.MAX_OFFSET)] = 0,
        task_type: L.TaskTypeName | None = None,
        domain: Annotated[str | None, Field(max_length=L.MAX_NAME)] = None,
        outcome: L.OutcomeName | None = None,
        completed: bool | None = None,
        include_steps: bool = False,
    ) -> dict[str, Any]:
        from ...model.records import EpisodeFilters

        memory = await service.memory()
        filters = EpisodeFilters(
            task_type=task_type, domain=domain, outcome=outcome, completed=completed
        )
        episodes = await memory.list_episodes(filters, limit, offset)
        return {
            "total": await memory.count_episodes(filters),
            "limit": limit,
            "offset": offset,
            "episodes": [episode_payload(e, include_steps=include_steps) for e in episodes],
        }

    @server.tool(
        name="delete_episode",
        description="Delete an episode, its steps and its links to patterns (patterns stay).",
    )
    @memory_tool
    async def delete_episode(episode_id: EpisodeId) -> dict[str, Any]:
        memory = await service.memory()
        await memory.delete_episode(episode_id)
        return deleted_payload(episode_id)
