"""The WASM backend: QuickJS compiled to WebAssembly (quickjs-rs) running on wasmtime.

The boundary is the WASM instance: the guest has no imports for files, network, environment
or processes (WASI gets no preopened directories, no environment and no arguments), so code can
only compute. Limits: wall time (QuickJS's interrupt poll), memory (wasmtime's store limit on the
linear memory, which also catches large arrays and typed arrays, plus QuickJS's own heap limit),
and a hard stop by wasmtime's epoch interruption (``engine.py``) for loops QuickJS never polls in;
stack depth (QuickJS's stack limit), output size (counted in the host), code size.

Every call gets a fresh context (a fresh WASM instance), so nothing leaks from one call to the
next. A runtime is per thread: a context must never be shared across threads.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any

import quickjs_rs
import wasmtime

from .engine import TICK_SECONDS, install_engine
from .result import ExecutionContext, ExecutionResult, SandboxLimits

__all__ = ["ENGINE_OVERHEAD_MB", "WasmBackend"]

# linear memory the engine itself needs on top of the JS heap (guest data, stack, allocator)
ENGINE_OVERHEAD_MB = 16

# Runs before the code, in its own function so that the code cannot reach the precise clock:
# ``performance`` becomes a frozen object whose ``now()`` (and ``timeOrigin``) are whole
# milliseconds, locked on the global (not writable, not configurable). The original object is
# referenced by nothing else; ``floor`` and the bound ``now`` are captured before the code runs,
# so replacing ``Math.floor`` or ``Function.prototype.call`` later changes nothing. ``Date.now()``
# is whole milliseconds already.
_COARSE_CLOCK = """(() => {
    const precise = globalThis.performance;
    const floor = Math.floor;
    const preciseNow = precise.now.bind(precise);
    const origin = floor(precise.timeOrigin);
    const coarse = Object.freeze(Object.assign(Object.create(null), {
      now: () => floor(preciseNow()),
      timeOrigin: origin,
    }));
    Object.defineProperty(globalThis, "performance", {
      value: coarse, writable: false, enumerable: true, configurable: false,
    });
  })();"""

_WRAPPER = (
    """(() => {
  """
    + _COARSE_CLOCK
    + """
  const __emit = globalThis.__emit;
  delete globalThis.__emit;
  const __stringify = JSON.stringify;
  const __fmt = (args) => args.map((a) => {
    if (typeof a === "string") return a;
    try { const s = __stringify(a); return s === undefined ? String(a) : s; }
    catch (e) { return String(a); }
  }).join(" ");
  const console = {
    log: (...a) => __emit(0, __fmt(a)), info: (...a) => __emit(0, __fmt(a)),
    debug: (...a) => __emit(0, __fmt(a)), error: (...a) => __emit(1, __fmt(a)),
    warn: (...a) => __emit(1, __fmt(a)),
  };
  globalThis.console = console;
  const context = JSON.parse(%s);
  const __result = (function (context, console, __emit, __fmt, __stringify) {
%s
  }).call(undefined, context, console);
  const __json = __stringify(__result);
  return __json === undefined ? "null" : __json;
})()"""
)


class _OutputLimitError(Exception):
    pass


class _Output:
    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.size = 0
        self.stdout: list[str] = []
        self.stderr: list[str] = []

    def emit(self, stream: int, text: str) -> None:
        self.size += len(text) + 1
        if self.size > self.cap:
            raise _OutputLimitError(f"output exceeds the limit of {self.cap} bytes")
        (self.stderr if stream else self.stdout).append(text)

    def text(self, stream: int) -> str:
        lines = self.stderr if stream else self.stdout
        return "".join(line + "\n" for line in lines)


class WasmBackend:
    """Runs code in QuickJS-in-WASM; ``execute`` blocks and is safe to call from many threads."""

    name = "wasm"

    def __init__(self, limits: SandboxLimits, *, compile_cache: bool = True) -> None:
        self.limits = limits
        self.engine = install_engine(compile_cache=compile_cache)
        # without the epoch deadline a loop inside the engine's C code would never stop
        self.unavailable: str | None = (
            None
            if self.engine.get("epoch")
            else "wasmtime's epoch interruption (the hard time limit) is "
            + str(self.engine.get("compile_cache", "off"))
        )
        self._local = threading.local()
        self._runtimes: list[quickjs_rs.Runtime] = []
        self._lock = threading.Lock()

    def _runtime(self) -> quickjs_rs.Runtime:
        rt: quickjs_rs.Runtime | None = getattr(self._local, "runtime", None)
        if rt is None:
            rt = quickjs_rs.Runtime(
                memory_limit=self.limits.memory_mb * 2**20,
                stack_limit=self.limits.stack_kb * 1024,
            )
            self._local.runtime = rt
            with self._lock:
                self._runtimes.append(rt)
        return rt

    def execute(self, code: str, context: ExecutionContext) -> ExecutionResult:
        started = time.perf_counter()
        out = _Output(self.limits.output_bytes)

        def elapsed() -> float:
            return round((time.perf_counter() - started) * 1000, 3)

        def error(kind: Any, message: str) -> ExecutionResult:
            return ExecutionResult(
                "error",
                self.name,
                elapsed(),
                message=message,
                error_type=kind,
                stdout=out.text(0),
                stderr=out.text(1),
            )

        def timeout() -> ExecutionResult:
            return ExecutionResult(
                "timeout",
                self.name,
                elapsed(),
                partial_output=out.text(0),
                message=f"execution exceeded {self.limits.time_ms} ms",
            )

        source = _WRAPPER % (json.dumps(json.dumps(context.as_json())), code)
        ctx = self._runtime().new_context(timeout=self.limits.time_ms / 1000)
        try:
            store: wasmtime.Store = ctx._engine_ctx._inst.store
            store.set_limits(
                memory_size=(self.limits.memory_mb + ENGINE_OVERHEAD_MB) * 2**20,
                instances=1,
                tables=2,
                memories=1,
            )
            # the hard stop: wasmtime traps the run when its epoch deadline passes, even inside
            # the engine's own loops; QuickJS's interrupt poll usually ends it a little earlier
            ticks = int(self.limits.time_ms / 1000 / TICK_SECONDS) + 1
            store.set_epoch_deadline(ticks + max(2, ticks // 10))
            ctx.register("__emit", out.emit)
            flags = (
                quickjs_rs.SourceTransform.SOURCE_TS | quickjs_rs.SourceTransform.STRIP_TYPESCRIPT
            )
            value = ctx.eval(source, transform_flags=flags)
        except quickjs_rs.TimeoutError:
            return timeout()
        except quickjs_rs.MemoryLimitError as exc:
            return error("resource", f"memory limit of {self.limits.memory_mb} MB exceeded ({exc})")
        except quickjs_rs.HostError as exc:
            if isinstance(exc.__cause__, _OutputLimitError):
                return error("resource", str(exc.__cause__))
            return error("runtime", f"{exc.name}: {exc.message}")
        except quickjs_rs.JSError as exc:
            kind, text = _classify(exc.name, exc.message)
            if kind == "runtime" and self._memory_nearly_full(ctx):
                # out of memory while even the error object could not be built ("Error: null")
                return error(
                    "resource", f"memory limit of {self.limits.memory_mb} MB reached ({text})"
                )
            return error(kind, text)
        except _OutputLimitError as exc:
            return error("resource", str(exc))
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            if "wasm trap: interrupt" in str(exc):
                return timeout()
            return error("resource", f"the engine stopped the code: {str(exc).splitlines()[0]}")
        except quickjs_rs.QuickJSError as exc:
            return error("unknown", f"{type(exc).__name__}: {exc}")
        finally:
            # a trapped instance may refuse a clean close; it is dropped either way
            with contextlib.suppress(Exception):
                ctx.close()
        if not isinstance(value, str):
            return error("unknown", "the code's result could not be read")
        if len(value) > self.limits.output_bytes:
            return error("resource", f"the return value exceeds {self.limits.output_bytes} bytes")
        try:
            output = json.loads(value)
        except ValueError:
            return error("unknown", "the code's result is not JSON")
        return ExecutionResult(
            "success",
            self.name,
            elapsed(),
            output=output,
            stdout=out.text(0),
            stderr=out.text(1),
        )

    def _memory_nearly_full(self, ctx: Any) -> bool:
        try:
            inst = ctx._engine_ctx._inst
            used = int(inst.mem.data_len(inst.store))
        except Exception:
            return False
        return used >= self.limits.memory_mb * 2**20 * 0.9

    def probe(self, limits: SandboxLimits) -> WasmBackend:
        """A backend with other limits (the self-test's short and long runs)."""
        return WasmBackend(limits)

    def close(self) -> None:
        with self._lock:
            runtimes, self._runtimes = self._runtimes, []
        for rt in runtimes:
            with contextlib.suppress(Exception):
                rt.close()


def _classify(name: str, message: str) -> tuple[Any, str]:
    text = f"{name}: {message}"
    lowered = message.lower()
    if name == "SyntaxError":
        return "syntax", text
    if any(w in lowered for w in ("out of memory", "stack overflow", "too many", "too long")):
        return "resource", text
    if name == "InternalError" and ("interrupted" in lowered):
        return "resource", text
    if name == "RangeError" and ("length" in lowered or "size" in lowered):
        return "resource", text
    return "runtime", text
