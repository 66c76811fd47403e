"""Code sandbox: untrusted JavaScript/TypeScript in QuickJS compiled to WebAssembly (wasmtime),
under hard limits, with one typed result. The core never imports this package; the MCP tool
and the CLI compose it. See docs/sandbox.md."""

from .result import (
    MAX_CODE_BYTES,
    PRESETS,
    ExecutionContext,
    ExecutionResult,
    SandboxBackend,
    SandboxLimits,
)
from .service import CodeSandbox

__all__ = [
    "MAX_CODE_BYTES",
    "PRESETS",
    "CodeSandbox",
    "ExecutionContext",
    "ExecutionResult",
    "SandboxBackend",
    "SandboxLimits",
]
