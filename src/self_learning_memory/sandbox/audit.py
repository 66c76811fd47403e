"""The audit record of a sandboxed run (``core/sandbox_audit.py``), as the MCP tool and the CLI
build it: the code's hash and size, the limits it ran under (with the preset's name), the
result's backend, duration, outcome and error or violation type. Never the code or output."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..model.names import SandboxCaller
from ..model.sandbox_run import SandboxRun
from .result import ExecutionResult, SandboxLimits

__all__ = ["audit_limits", "audit_record"]


def audit_limits(limits: SandboxLimits, preset: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"preset": preset} if preset else {}
    data.update(dataclasses.asdict(limits))
    return data


def audit_record(
    code: str,
    result: ExecutionResult,
    limits: SandboxLimits,
    *,
    caller: SandboxCaller,
    task: str | None = None,
    preset: str | None = None,
) -> SandboxRun:
    return SandboxRun.of(
        code, result, limits=audit_limits(limits, preset), caller=caller, task=task
    )
