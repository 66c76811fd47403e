"""Agent monitoring: record_agent_execution (an execution no episode describes; an episode
created with an agent, by default this client's name, records its own when it completes).
The metrics are in get_metrics' ``agents`` section (``system.py``)."""

# No ``from __future__ import annotations``: the SDK reads these signatures at runtime.

from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from ...model.agents import MAX_AGENT_LEN, MAX_DURATION_MS, MAX_ERROR_MESSAGE_CHARS, MAX_STEPS
from .. import limits as L
from ..server import client_agent, memory_tool

if TYPE_CHECKING:
    from ..server import MemoryMCPServer, MemoryService

__all__ = ["register"]


def register(server: "MemoryMCPServer", service: "MemoryService") -> None:
    @server.tool(
        name="record_agent_execution",
        description=(
            "Record one execution of an agent that no episode describes: whether it "
            "succeeded, how long it took (ms), its steps and failed steps. Counted in "
            "get_metrics' agents section. Episodes created with an agent (by default this "
            "client's name) record their execution when they complete: do not record those "
            "again. Agent names: 1-64 letters, digits and . _ : @ / -."
        ),
    )
    @memory_tool
    async def record_agent_execution(
        success: Annotated[bool, Field(description="Whether the execution succeeded.")],
        duration_ms: Annotated[
            float, Field(ge=0, le=MAX_DURATION_MS, description="How long it took (ms).")
        ],
        agent: Annotated[
            str | None,
            Field(
                min_length=1,
                max_length=MAX_AGENT_LEN,
                description="The agent (default: this MCP client's name).",
            ),
        ] = None,
        task_type: Annotated[L.TaskTypeName | None, Field(description="The kind of task.")] = None,
        steps: Annotated[int, Field(ge=0, le=MAX_STEPS)] = 0,
        errors: Annotated[int, Field(ge=0, le=MAX_STEPS, description="Failed steps.")] = 0,
        task_description: Annotated[
            str | None, Field(max_length=L.MAX_TEXT, description="Kept to 200 characters.")
        ] = None,
        error_message: Annotated[str | None, Field(max_length=MAX_ERROR_MESSAGE_CHARS)] = None,
        ctx: Context | None = None,
    ) -> dict[str, Any]:
        from ...errors import ValidationError

        who = agent if agent is not None else client_agent(ctx)
        if who is None:
            raise ValidationError("agent", "is required: this client sent no name")
        memory = await service.memory()
        done = await memory.record_agent_execution(
            who,
            success,
            duration_ms,
            task_type=task_type,
            steps=steps,
            errors=errors,
            task_description=task_description,
            error_message=error_message,
        )
        return {
            "execution_id": str(done.execution_id),
            "agent": done.agent,
            "agent_type": done.agent_type.value,
            "success": done.success,
            "recorded": True,
        }
