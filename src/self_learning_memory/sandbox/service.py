"""The sandbox as the library offers it: a backend chosen by config (WASM, Node, or the hybrid
router over both), a pool of worker threads (one warm QuickJS runtime each), an async
``execute_code``, per-backend statistics and the start-up self-test, run for each configured
backend, that decides whether the sandbox may be offered at all (fail closed)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import ConfigurationError
from ..model.limits import MAX_SANDBOX_POOL
from .node import NodeBackend
from .result import PRESETS, ExecutionContext, ExecutionResult, SandboxBackend, SandboxLimits
from .router import HybridRouter
from .wasm import WasmBackend

__all__ = [
    "BACKENDS",
    "SELF_TEST_CHECKS",
    "BackendStats",
    "CodeSandbox",
    "backends_of",
    "default_pool_size",
]

BACKENDS = ("wasm", "node", "hybrid")

# per backend: (code, variant, error type, expected output); timeout checks get a 150 ms limit
SELF_TEST_CHECKS: dict[str, list[tuple[str, str, str, Any]]] = {
    "wasm": [
        ("return context.input * 2", "success", "", 42),
        ("while (true) {}", "timeout", "", None),
        ("const a = []; for (;;) a.push(new Float64Array(1 << 20));", "error", "resource", None),
        (
            "return typeof require + typeof process + typeof fetch",
            "success",
            "",
            "undefinedundefinedundefined",
        ),
        # a loop inside the engine's C code: only wasmtime's epoch deadline ends it
        ("const a = []; a.length = 2 ** 32 - 1; a.sort();", "timeout", "", None),
    ],
    "node": [
        ("return context.input * 2", "success", "", 42),
        ("while (true) {}", "timeout", "", None),
        ("const a = []; for (;;) a.push(new Float64Array(1 << 20));", "error", "resource", None),
        # the permission model is on: no file system, no child processes; a clean environment
        ("return require('fs').readdirSync('/')", "error", "permission", None),
        ("return require('child_process').execSync('id')", "error", "permission", None),
        ("return Object.keys(process.env).length", "success", "", 0),
    ],
}


def backends_of(backend: SandboxBackend) -> list[SandboxBackend]:
    """The concrete backends behind ``backend`` (the router's two, or itself)."""
    return backend.backends() if isinstance(backend, HybridRouter) else [backend]


@dataclass
class BackendStats:
    calls: int = 0
    successes: int = 0
    total_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "success_rate": round(self.successes / self.calls, 4) if self.calls else None,
            "avg_latency_ms": round(self.total_ms / self.calls, 3) if self.calls else None,
        }


class SandboxOptions(Protocol):
    """The ``[sandbox]`` config section as the sandbox reads it (``settings.schema.SandboxSettings``)."""

    @property
    def preset(self) -> str: ...
    @property
    def max_execution_time_ms(self) -> int: ...
    @property
    def max_memory_mb(self) -> int: ...
    @property
    def backend(self) -> str: ...
    @property
    def node_ratio(self) -> float: ...
    @property
    def node_rule(self) -> str: ...
    @property
    def pool_size(self) -> int | None: ...


def default_pool_size() -> int:
    """One warm runtime per core, at most ``MAX_SANDBOX_POOL`` (the seed's 20)."""
    return max(1, min(MAX_SANDBOX_POOL, os.cpu_count() or 1))


class CodeSandbox:
    """Runs untrusted JavaScript/TypeScript off the event loop, under the configured limits."""

    def __init__(self, backend: SandboxBackend, limits: SandboxLimits, pool_size: int) -> None:
        self.backend = backend
        self.limits = limits
        self.pool_size = pool_size
        self._pool = ThreadPoolExecutor(pool_size, thread_name_prefix="sandbox")
        self._lock = threading.Lock()
        self.stats: dict[str, BackendStats] = {}

    @classmethod
    def from_limits(cls, limits: SandboxLimits, pool_size: int | None = None) -> CodeSandbox:
        size = pool_size or default_pool_size()
        return cls(WasmBackend(limits), limits, size)

    @classmethod
    def from_settings(cls, settings: SandboxOptions, pool_size: int | None = None) -> CodeSandbox:
        """From the ``[sandbox]`` config section: its preset, with the section's time and memory,
        and its backend (``wasm``, ``node`` or ``hybrid`` with ``node_ratio`` / ``node_rule``).
        The pool: ``pool_size`` if given, else the section's ``pool_size`` (1..20), else
        ``min(20, cores)``."""
        configured = settings.pool_size
        if configured is not None and not 1 <= configured <= MAX_SANDBOX_POOL:
            raise ConfigurationError(
                f"sandbox.pool_size = {configured!r}: out of range (limit: 1..{MAX_SANDBOX_POOL})"
            )
        preset = PRESETS.get(settings.preset, PRESETS["restrictive"])
        limits = SandboxLimits(
            time_ms=settings.max_execution_time_ms,
            memory_mb=settings.max_memory_mb,
            stack_kb=preset.stack_kb,
            output_bytes=preset.output_bytes,
            code_bytes=preset.code_bytes,
        )
        kind = settings.backend
        size = pool_size or configured or default_pool_size()
        backend: SandboxBackend
        if kind == "wasm":
            backend = WasmBackend(limits)
        elif kind == "node":
            backend = NodeBackend(limits)
        elif kind == "hybrid":
            backend = HybridRouter(
                WasmBackend(limits),
                NodeBackend(limits),
                node_ratio=settings.node_ratio,
                node_rule=settings.node_rule,
            )
        else:
            raise ValueError(f"sandbox.backend must be one of {' | '.join(BACKENDS)}, got {kind!r}")
        return cls(backend, limits, size)

    def run(self, code: str, context: ExecutionContext | None = None) -> ExecutionResult:
        """Blocking run on the calling thread (the pool calls this)."""
        started = time.perf_counter()
        size = len(code.encode("utf-8", "surrogatepass"))
        if size > self.limits.code_bytes:
            result = ExecutionResult(
                "security_violation",
                self.backend.name,
                round((time.perf_counter() - started) * 1000, 3),
                message=f"code is {size} bytes, over the limit of {self.limits.code_bytes}",
                violation_type="code_too_large",
            )
        else:
            result = self.backend.execute(code, context or ExecutionContext())
        with self._lock:
            stats = self.stats.setdefault(result.backend, BackendStats())
            stats.calls += 1
            stats.successes += result.ok
            stats.total_ms += result.execution_time_ms
        return result

    async def execute_code(
        self, code: str, context: ExecutionContext | None = None
    ) -> ExecutionResult:
        """Run ``code`` in a pool thread; the event loop never blocks on the sandbox."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.run, code, context)

    def self_test(self) -> str | None:
        """None if the boundary really holds for every configured backend (a real run and the
        limit checks), else why not, naming the backend."""
        backends = backends_of(self.backend)
        # the backends' checks run at once too (the hybrid router's two wait together)
        with ThreadPoolExecutor(len(backends), thread_name_prefix="sandbox-self-test") as pool:
            reasons = list(pool.map(_self_test, backends))
        for backend, reason in zip(backends, reasons, strict=True):
            if reason is not None:
                return f"{backend.name} backend: {reason}"
        return None

    def describe(self) -> dict[str, Any]:
        """What health_check shows about the backends beyond their statistics."""
        info: dict[str, Any] = {}
        if isinstance(self.backend, HybridRouter):
            info.update(self.backend.describe())
        for backend in backends_of(self.backend):
            if isinstance(backend, NodeBackend):
                info["node"] = backend.describe()
        return info

    def summary(self) -> str:
        """One sentence for the tool's description: where the code runs and what it cannot do."""
        wasm = "an isolated WebAssembly sandbox with no files, network, environment or processes"
        names = [b.name for b in backends_of(self.backend)]
        if "node" not in names:
            return f"Run JavaScript or TypeScript (types are stripped) in {wasm}."
        node = next(b for b in backends_of(self.backend) if isinstance(b, NodeBackend))
        network = (
            "no network (its own network namespace)"
            if node.network_isolation == "on"
            else "the network NOT blocked"
        )
        where = (
            "a Node.js process under Node's permission model (no files, child processes or "
            f"workers, an empty environment, {network}); `require` of built-in modules works"
        )
        if names == ["node"]:
            return f"Run JavaScript or TypeScript (types are stripped) in {where}."
        return (
            f"Run JavaScript or TypeScript (types are stripped) in {wasm}, or, as configured, "
            f"in {where}."
        )

    def stats_dict(self) -> dict[str, Any]:
        with self._lock:
            return {name: s.as_dict() for name, s in self.stats.items()}

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.backend.close()


def _self_test(backend: SandboxBackend) -> str | None:
    unavailable = getattr(backend, "unavailable", None)
    if unavailable:
        return str(unavailable)
    checks = SELF_TEST_CHECKS[backend.name]
    # the timeout checks get a short limit; the others a long one, so that a loaded machine
    # cannot turn a run or a memory bomb into a timeout and switch the sandbox off
    probes: dict[bool, SandboxBackend] = {}
    try:
        for expects_timeout, time_ms in ((True, 150), (False, 5000)):
            limits = SandboxLimits(time_ms=time_ms, memory_mb=32, output_bytes=10_000)
            probes[expects_timeout] = backend.probe(limits)  # type: ignore[attr-defined]

        def run(check: tuple[str, str, str, Any]) -> ExecutionResult:
            probe = probes[check[1] == "timeout"]
            return probe.execute(check[0], ExecutionContext(task="self-test", input=21))

        # at once, one runtime per thread: the two timeout checks wait together
        with ThreadPoolExecutor(len(checks), thread_name_prefix="sandbox-self-test") as pool:
            results = list(pool.map(run, checks))
        for (code, variant, kind, expected), result in zip(checks, results, strict=True):
            if result.variant != variant or (kind and result.error_type != kind):
                got = f"{result.variant} {result.error_type or ''} {result.message}"
                return f"self-test {code!r} gave {' '.join(got.split())}"
            if variant == "success" and result.output != expected:
                if "typeof" in code:
                    return f"host objects are visible in the sandbox: {result.output!r}"
                return f"self-test {code!r} returned {result.output!r}, not {expected!r}"
    except Exception as exc:
        return f"self-test crashed: {type(exc).__name__}: {exc}"
    finally:
        for probe in probes.values():
            probe.close()
    return None
