"""A sandboxed run as the audit trail records it: one record per run, kept in the durable store.

A record says what ran and how it ended, never what it was: the SHA-256 and size of the code,
the backend, the limits, the duration, the outcome (success, error, timeout,
security_violation) and the error or violation type, who asked (``mcp``, ``cli``,
``library``) and the first 200 characters of the task. The code itself and its output are not
stored. The store keeps the newest ``sandbox_audit.keep`` records (pruned in the same write).

The core does not import the sandbox: :meth:`SandboxRun.of` reads any result with the
sandbox's result fields (``variant``, ``backend``, ``execution_time_ms``, ``error_type``,
``violation_type``).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from .episode import utc_now
from .limits import MAX_TASK_CHARS
from .names import SANDBOX_OUTCOMES, SandboxCaller, SandboxOutcome

__all__ = [
    "MAX_TASK_CHARS",
    "SANDBOX_OUTCOMES",
    "SandboxRun",
    "SandboxRunCounts",
    "SandboxRunFilters",
]


class RunResult(Protocol):
    """The fields of a sandbox result an audit record needs."""

    @property
    def variant(self) -> str: ...
    @property
    def backend(self) -> str: ...
    @property
    def execution_time_ms(self) -> float: ...
    @property
    def error_type(self) -> str | None: ...
    @property
    def violation_type(self) -> str | None: ...


class SandboxRun(BaseModel):
    """One sandboxed run, as the audit trail records it (no code, no output)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    time: datetime = Field(default_factory=utc_now)
    code_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    code_bytes: int = Field(ge=0)
    backend: str = Field(min_length=1, max_length=32)
    limits: dict[str, Any] = Field(default_factory=dict)
    duration_ms: float = Field(ge=0)
    outcome: SandboxOutcome
    error_type: str | None = Field(default=None, max_length=64)  # or the violation type
    caller: SandboxCaller = "library"
    task: str | None = Field(default=None, max_length=MAX_TASK_CHARS)

    @classmethod
    def of(
        cls,
        code: str,
        result: RunResult,
        *,
        limits: dict[str, Any],
        caller: SandboxCaller,
        task: str | None = None,
    ) -> SandboxRun:
        """The record of ``result``, a run of ``code`` under ``limits``."""
        raw = code.encode("utf-8", "surrogatepass")
        kind = result.error_type if result.variant == "error" else result.violation_type
        return cls(
            code_sha256=hashlib.sha256(raw).hexdigest(),
            code_bytes=len(raw),
            backend=result.backend,
            limits=limits,
            duration_ms=max(0.0, float(result.execution_time_ms)),
            outcome=result.variant,  # validated by the model
            error_type=kind,
            caller=caller,
            task=(task or None) and task[:MAX_TASK_CHARS],
        )


class SandboxRunFilters(BaseModel):
    """Filters of the audit trail (applied in SQL). ``None`` means "any"."""

    model_config = ConfigDict(extra="forbid")

    since: datetime | None = None
    outcome: SandboxOutcome | None = None
    backend: str | None = None
    caller: SandboxCaller | None = None


class SandboxRunCounts(BaseModel):
    """Recorded runs by outcome and by backend (what the store holds now)."""

    total: int
    by_outcome: dict[str, int]
    by_backend: dict[str, dict[str, int]]  # backend -> outcome -> runs
