"""What a sandboxed run returns: one result type with the four variants of the reference
behaviour (success, error, timeout, security violation), the context the code sees, and the
limits it runs under (the presets of the ``[sandbox]`` config section)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from ..model.limits import MAX_CODE_BYTES
from ..model.names import SandboxOutcome

__all__ = [
    "MAX_CODE_BYTES",
    "PRESETS",
    "ErrorType",
    "ExecutionContext",
    "ExecutionResult",
    "SandboxBackend",
    "SandboxLimits",
    "ViolationType",
]

ErrorType = Literal["syntax", "runtime", "permission", "resource", "unknown"]
ViolationType = Literal["code_too_large", "invalid_code"]
Variant = SandboxOutcome


@dataclass(frozen=True)
class SandboxLimits:
    """Hard limits of one run. Memory is the JS heap; the WASM store gets a little more for
    the engine itself, so a run can never grow past ``memory_mb + ENGINE_OVERHEAD_MB``."""

    time_ms: int = 3000
    memory_mb: int = 64
    stack_kb: int = 512
    output_bytes: int = 1_000_000
    code_bytes: int = MAX_CODE_BYTES


PRESETS: dict[str, SandboxLimits] = {
    "default": SandboxLimits(time_ms=5000, memory_mb=128),
    "restrictive": SandboxLimits(time_ms=3000, memory_mb=64, output_bytes=256_000),
    "permissive": SandboxLimits(time_ms=10000, memory_mb=256, stack_kb=1024),
}


@dataclass(frozen=True)
class ExecutionContext:
    """What the code sees as ``context``."""

    task: str = ""
    input: Any = None
    env: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"task": self.task, "input": self.input, "env": self.env, "metadata": self.metadata}


@dataclass(frozen=True)
class ExecutionResult:
    """One of four variants; the fields that do not apply to a variant stay empty."""

    variant: Variant
    backend: str
    execution_time_ms: float
    output: Any = None  # success: the code's return value (JSON-compatible)
    stdout: str = ""
    stderr: str = ""
    message: str = ""  # error / security violation: what happened
    error_type: ErrorType | None = None
    violation_type: ViolationType | None = None
    partial_output: str = ""  # timeout: what was printed before the interrupt

    @property
    def ok(self) -> bool:
        return self.variant == "success"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: v for k, v in data.items() if v not in (None, "")}


class SandboxBackend(Protocol):
    """A place that runs untrusted JavaScript/TypeScript under hard limits."""

    name: str

    def execute(self, code: str, context: ExecutionContext) -> ExecutionResult:
        """Run ``code`` (a function body; its ``return`` value is the output). Blocking."""
        ...

    def close(self) -> None: ...
