"""The wasmtime engine under quickjs-rs, configured for the sandbox: the compiled-code cache
(the first context in a process costs 0.5-1.9 s without it) and epoch interruption, the hard
wall-time stop that also ends loops inside the engine's own C code (a sort, a regex), which
QuickJS's interrupt poll never sees.

quickjs-rs 0.2.6 creates its engine lazily and its stores internally; this module installs the
engine before the first use and gives every store quickjs-rs instantiates a far epoch deadline
(a store with epoch interruption and no deadline traps at once). The sandbox then narrows the
deadline of each run's store to its time limit. The self-test checks that this really works,
so a quickjs-rs that changes these internals leaves the sandbox off instead of unlimited."""

from __future__ import annotations

import threading
import time
from typing import Any

import wasmtime

__all__ = ["FAR_TICKS", "TICK_SECONDS", "engine_status", "install_engine"]

TICK_SECONDS = 0.005  # one epoch tick
FAR_TICKS = 2**40  # stores outside a run: effectively no deadline

_lock = threading.Lock()
_status: dict[str, Any] | None = None


def _far_deadline(original: Any) -> Any:
    def instantiate(artifact: Any, store: wasmtime.Store) -> Any:
        store.set_epoch_deadline(FAR_TICKS)
        return original(artifact, store)

    instantiate.__wrapped__ = original  # type: ignore[attr-defined]  # marks it patched once
    return instantiate


def _ticker(engine: wasmtime.Engine, stop: threading.Event) -> None:
    while not stop.wait(TICK_SECONDS):
        engine.increment_epoch()


def install_engine(*, compile_cache: bool = True) -> dict[str, Any]:
    """Install the sandbox's engine into quickjs-rs (once per process); returns its status:
    ``epoch`` (bool: the hard wall-time stop is on) and ``compile_cache`` (on / off: why)."""
    global _status
    from quickjs_rs import _engine, _transform
    from quickjs_rs import _wasmtime as qw

    with _lock:
        if _status is not None:
            return _status
        if qw._SHARED_ENGINE is not None:
            _status = {"epoch": False, "compile_cache": "off: quickjs-rs's engine already existed"}
            return _status
        config = wasmtime.Config()
        cache = "off: disabled"
        if compile_cache:
            try:
                config.cache = True
                cache = "on"
            except wasmtime.WasmtimeError as exc:
                cache = f"off: {exc}"
        config.epoch_interruption = True
        engine = wasmtime.Engine(config)
        for module in (_engine, _transform):
            current = module.instantiate_wasm_artifact
            if not hasattr(current, "__wrapped__"):
                module.instantiate_wasm_artifact = _far_deadline(current)  # type: ignore[attr-defined]
        qw._SHARED_ENGINE = engine
        # compile (or load from the cache) both guests now, not inside the first run's time limit
        started = time.perf_counter()
        _engine._quickjs_artifact()
        _transform._transform_artifact()
        compile_ms = round((time.perf_counter() - started) * 1000, 1)
        threading.Thread(
            target=_ticker, args=(engine, threading.Event()), name="sandbox-epoch", daemon=True
        ).start()
        _status = {"epoch": True, "compile_cache": cache, "compile_ms": compile_ms}
        return _status


def engine_status() -> dict[str, Any] | None:
    return _status
