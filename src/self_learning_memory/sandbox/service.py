"""The sandbox as the library offers it: a backend chosen by config, a pool of worker threads
(one warm QuickJS runtime each), an async ``execute_code``, per-backend statistics and the
start-up self-test that decides whether the sandbox may be offered at all (fail closed)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .result import PRESETS, ExecutionContext, ExecutionResult, SandboxBackend, SandboxLimits
from .wasm import WasmBackend

__all__ = ["BackendStats", "CodeSandbox"]


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
        size = pool_size or max(1, min(20, os.cpu_count() or 1))
        return cls(WasmBackend(limits), limits, size)

    @classmethod
    def from_settings(cls, settings: Any, pool_size: int | None = None) -> CodeSandbox:
        """From the ``[sandbox]`` config section: its preset, with the section's time and memory."""
        preset = PRESETS.get(getattr(settings, "preset", "restrictive"), PRESETS["restrictive"])
        limits = SandboxLimits(
            time_ms=int(getattr(settings, "max_execution_time_ms", preset.time_ms)),
            memory_mb=int(getattr(settings, "max_memory_mb", preset.memory_mb)),
            stack_kb=preset.stack_kb,
            output_bytes=preset.output_bytes,
            code_bytes=preset.code_bytes,
        )
        return cls.from_limits(limits, pool_size)

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
        """None if the boundary really holds (a real run and the limit checks), else why not."""
        checks: list[tuple[str, str, str]] = [
            ("return context.input * 2", "success", ""),
            ("while (true) {}", "timeout", ""),
            ("const a = []; for (;;) a.push(new Float64Array(1 << 20));", "error", "resource"),
            ("return typeof require + typeof process + typeof fetch", "success", ""),
            # a loop inside the engine's C code: only wasmtime's epoch deadline ends it
            ("const a = []; a.length = 2 ** 32 - 1; a.sort();", "timeout", ""),
        ]
        # the timeout checks get a short limit; the others a long one, so that a loaded machine
        # cannot turn a run or a memory bomb into a timeout and switch the sandbox off
        probes: dict[bool, SandboxBackend] = {}
        if isinstance(self.backend, WasmBackend):
            for expects_timeout, time_ms in ((True, 150), (False, 5000)):
                limits = SandboxLimits(time_ms=time_ms, memory_mb=32, output_bytes=10_000)
                probes[expects_timeout] = WasmBackend(limits)

        def run(check: tuple[str, str, str]) -> ExecutionResult:
            probe = probes.get(check[1] == "timeout", self.backend)
            return probe.execute(check[0], ExecutionContext(task="self-test", input=21))

        try:
            # at once, one runtime per thread: the two timeout checks wait together
            with ThreadPoolExecutor(len(checks), thread_name_prefix="sandbox-self-test") as pool:
                results = list(pool.map(run, checks))
            for (code, variant, kind), result in zip(checks, results, strict=True):
                if result.variant != variant or (kind and result.error_type != kind):
                    return f"self-test {code!r} gave {result.variant} {result.message}".strip()
                if code.startswith("return context") and result.output != 42:
                    return f"self-test returned {result.output!r}, not 42"
                if "typeof" in code and result.output != "undefinedundefinedundefined":
                    return f"host objects are visible in the sandbox: {result.output!r}"
        except Exception as exc:
            return f"self-test crashed: {type(exc).__name__}: {exc}"
        finally:
            for probe in probes.values():
                probe.close()
        return None

    def stats_dict(self) -> dict[str, Any]:
        with self._lock:
            return {name: s.as_dict() for name, s in self.stats.items()}

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.backend.close()
