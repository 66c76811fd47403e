"""The hybrid router with both real backends: WASM by default, Node by ratio or rule, never a
fallback from a failed WASM run to Node, statistics per backend; and the service built from
the ``[sandbox]`` settings."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from self_learning_memory.sandbox import CodeSandbox, ExecutionContext, SandboxLimits
from self_learning_memory.sandbox.node import NodeBackend
from self_learning_memory.sandbox.router import HybridRouter
from self_learning_memory.sandbox.wasm import WasmBackend
from self_learning_memory.settings.schema import SandboxSettings

LIMITS = SandboxLimits(time_ms=2000, memory_mb=32, output_bytes=50_000)


def hybrid(ratio: float = 0.0, rule: str = "none") -> CodeSandbox:
    router = HybridRouter(
        WasmBackend(LIMITS), NodeBackend(LIMITS), node_ratio=ratio, node_rule=rule
    )
    return CodeSandbox(router, LIMITS, pool_size=2)


@pytest.fixture
def box(request: pytest.FixtureRequest) -> Iterator[CodeSandbox]:
    ratio, rule = request.param
    sandbox = hybrid(ratio, rule)
    yield sandbox
    sandbox.close()


def backends_used(sandbox: CodeSandbox, code: str, n: int) -> list[str]:
    results = [sandbox.run(code, ExecutionContext(input=i)) for i in range(n)]
    assert all(r.ok for r in results), [r.as_dict() for r in results]
    assert [r.output for r in results] == [i * 2 for i in range(n)]
    return [r.backend for r in results]


@pytest.mark.parametrize("box", [(0.0, "none")], indirect=True)
def test_ratio_zero_sends_everything_to_wasm(box: CodeSandbox) -> None:
    assert backends_used(box, "return context.input * 2", 4) == ["wasm"] * 4
    assert set(box.stats_dict()) == {"wasm"}


@pytest.mark.parametrize("box", [(1.0, "none")], indirect=True)
def test_ratio_one_sends_everything_to_node(box: CodeSandbox) -> None:
    assert backends_used(box, "return context.input * 2", 3) == ["node"] * 3
    assert set(box.stats_dict()) == {"node"}


@pytest.mark.parametrize("box", [(0.5, "none")], indirect=True)
def test_a_ratio_is_spread_evenly_and_counted_per_backend(box: CodeSandbox) -> None:
    assert backends_used(box, "return context.input * 2", 6) == ["wasm", "node"] * 3
    failed = box.run("throw new Error('x')")  # the 7th run goes to WASM and fails there
    assert (failed.backend, failed.variant) == ("wasm", "error")
    stats = box.stats_dict()
    assert stats["node"]["calls"] == 3
    assert stats["node"]["success_rate"] == 1.0
    assert stats["wasm"]["calls"] == 4
    assert stats["wasm"]["success_rate"] == 0.75
    for backend in ("wasm", "node"):
        assert stats[backend]["avg_latency_ms"] > 0


@pytest.mark.parametrize("box", [(0.0, "uses_require")], indirect=True)
def test_the_require_rule_routes_code_that_calls_require_to_node(box: CodeSandbox) -> None:
    result = box.run("const path = require('path'); return path.join('a', 'b')")
    assert (result.backend, result.output) == ("node", "a/b")
    plain = box.run("return 'require is only a word here'")
    assert (plain.backend, plain.output) == ("wasm", "require is only a word here")


@pytest.mark.parametrize("box", [(0.0, "none")], indirect=True)
def test_a_failed_wasm_run_is_not_retried_on_node(box: CodeSandbox) -> None:
    result = box.run("return require('path').sep")
    assert (result.backend, result.variant, result.error_type) == ("wasm", "error", "runtime")
    timeout = box.run("while (true) {}")
    assert (timeout.backend, timeout.variant) == ("wasm", "timeout")
    assert set(box.stats_dict()) == {"wasm"}  # Node never ran


def test_the_router_refuses_a_ratio_or_rule_out_of_range() -> None:
    with pytest.raises(ValueError, match=re.escape("node_ratio must be within 0..1")):
        HybridRouter(WasmBackend(LIMITS), NodeBackend(LIMITS), node_ratio=1.5)
    with pytest.raises(ValueError, match="node_rule must be one of none, uses_require"):
        HybridRouter(WasmBackend(LIMITS), NodeBackend(LIMITS), node_rule="always")


@pytest.mark.parametrize(
    ("backend", "names"), [("wasm", ["wasm"]), ("node", ["node"]), ("hybrid", ["wasm", "node"])]
)
def test_the_service_builds_the_configured_backends_and_self_tests_each(
    backend: str, names: list[str]
) -> None:
    sandbox = CodeSandbox.from_settings(SandboxSettings(backend=backend), pool_size=1)
    try:
        assert sandbox.backend.name == backend
        assert [b.name for b in _concrete(sandbox)] == names
        assert sandbox.self_test() is None
        assert ("node" in sandbox.describe()) is ("node" in names)
        assert ("NOT blocked" in sandbox.summary()) is (
            "node" in names and not sandbox.describe()["node"]["network"].startswith("blocked")
        )
    finally:
        sandbox.close()


def test_an_unknown_backend_is_refused_by_the_service() -> None:
    with pytest.raises(ValueError, match=re.escape("must be one of wasm | node | hybrid")):
        CodeSandbox.from_settings(SandboxSettings(backend="docker"))


def test_hybrid_with_node_missing_fails_its_self_test_naming_the_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a real PATH without node
    sandbox = CodeSandbox.from_settings(SandboxSettings(backend="hybrid", node_ratio=0.1))
    try:
        reason = sandbox.self_test()
        assert reason is not None
        assert reason.startswith("node backend: node was not found on PATH")
    finally:
        sandbox.close()


def _concrete(sandbox: CodeSandbox) -> list[object]:
    from self_learning_memory.sandbox.service import backends_of

    return list(backends_of(sandbox.backend))


def test_a_node_run_first_keeps_the_wasm_hard_time_limit() -> None:
    # regression: Node's TypeScript strip created quickjs-rs's shared engine without epoch
    # interruption, and a WASM self-test after it spun forever in the engine's C loop check
    script = (
        "from self_learning_memory.sandbox import CodeSandbox, ExecutionContext, SandboxLimits\n"
        "from self_learning_memory.sandbox.node import NodeBackend\n"
        "from self_learning_memory.sandbox.wasm import WasmBackend\n"
        "limits = SandboxLimits(time_ms=200, memory_mb=32)\n"
        "print(NodeBackend(limits).execute('return 1', ExecutionContext()).output)\n"
        "wasm = WasmBackend(limits)\n"
        "print(wasm.engine['epoch'], wasm.unavailable)\n"
        "print(CodeSandbox(wasm, limits, 1).self_test())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.stdout.splitlines() == ["1", "True None", "None"], done.stderr[-2000:]
