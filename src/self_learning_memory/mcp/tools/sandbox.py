"""execute_agent_code: run JavaScript/TypeScript in the sandbox (QuickJS on wasmtime by default;
Node or the hybrid router when ``sandbox.backend`` says so).

Fail closed: the family registers only when ``sandbox.enabled`` is on and every configured
backend passes its self-test (a real run and limit checks); otherwise the tool is absent from tools/list, a direct call is refused and
health_check says why. A sandbox *result* (timeout, error in the code, violation) is a normal
result with its variant; a tool error (isError) is for bad arguments only.

Every call is recorded in the store's audit trail after its result (code hash and size, limits,
backend, duration, outcome; never the code or output). A record that cannot be written does not
fail the call: it is logged and counted (``get_metrics`` ``sandbox.audit_write_failures``)."""

# No ``from __future__ import annotations``: the SDK reads these signatures at runtime.

import logging
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ...sandbox import MAX_CODE_BYTES, PRESETS, CodeSandbox, ExecutionContext, ExecutionResult
from ...sandbox.audit import audit_record
from .. import limits as L
from ..server import memory_tool

if TYPE_CHECKING:
    from ..server import MemoryMCPServer, MemoryService

__all__ = ["TOOL", "register", "self_test"]

TOOL = "execute_agent_code"
log = logging.getLogger("self_learning_memory.mcp")


DISABLED = "disabled by configuration (sandbox.enabled = false)"


def self_test(service: "MemoryService | None" = None) -> str | None:
    """None when the configured sandbox really enforces its limits here, else why not."""
    config = service.settings.sandbox if service is not None else None
    if config is not None and not config.enabled:
        return DISABLED
    if service is None:
        probe = CodeSandbox.from_limits(PRESETS["restrictive"], pool_size=1)
        try:
            return probe.self_test()
        finally:
            probe.close()
    sandbox = sandbox_of(service)
    reason = sandbox.self_test()
    if reason is not None:
        service.sandbox = None
        sandbox.close()
    return reason


def sandbox_of(service: "MemoryService") -> CodeSandbox:
    if service.sandbox is None:
        config = service.settings.sandbox
        service.sandbox = (
            CodeSandbox.from_settings(config)
            if config is not None
            else CodeSandbox.from_limits(PRESETS["restrictive"])
        )
    return service.sandbox


async def record_run(
    service: "MemoryService", code: str, result: ExecutionResult, task: str
) -> bool:
    """Record one run in the audit trail; a failure is logged and counted, never raised."""
    sandbox = sandbox_of(service)
    preset = None if service.settings.sandbox is None else service.settings.sandbox.preset
    try:
        run = audit_record(code, result, sandbox.limits, caller="mcp", task=task, preset=preset)
        memory = await service.memory()
    except Exception as exc:
        service.sandbox_audit_failures += 1
        log.warning("sandbox run not recorded in the audit trail: %s", exc)
        return False
    if await memory.try_record_sandbox_run(run):
        return True
    service.sandbox_audit_failures += 1
    return False


class CodeContext(BaseModel):
    """The tool's ``context`` argument (the original schema: task required, input an object)."""

    model_config = ConfigDict(extra="forbid")

    task: Annotated[str, Field(max_length=L.MAX_TEXT, description="What the code is for.")]
    input: Annotated[
        dict[str, Any], Field(description="Data for the code, visible as context.input.")
    ] = Field(default_factory=dict)


def register(server: "MemoryMCPServer", service: "MemoryService") -> None:
    sandbox = sandbox_of(service)

    @server.tool(
        name=TOOL,
        description=(
            f"{sandbox.summary()} The code is a function body: "
            "`context` = {task, input, env, metadata} is in scope, `return` gives `output`, "
            "console.log/error are captured. Limits: "
            f"{sandbox.limits.time_ms} ms, {sandbox.limits.memory_mb} MB, "
            f"{sandbox.limits.output_bytes} bytes of output, {MAX_CODE_BYTES} bytes of code. "
            "Returns one variant: success (output, stdout, stderr, execution_time_ms), error "
            "(message, error_type syntax|runtime|permission|resource|unknown), timeout "
            "(elapsed, partial_output) or security_violation (message, violation_type)."
        ),
    )
    @memory_tool
    async def execute_agent_code(
        code: Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_CODE_BYTES,
                description="JavaScript/TypeScript function body; `return` sets the output.",
            ),
        ],
        context: CodeContext,
    ) -> dict[str, Any]:
        result = await sandbox.execute_code(
            code, ExecutionContext(task=context.task, input=context.input)
        )
        await record_run(service, code, result, context.task)
        return result.as_dict()
