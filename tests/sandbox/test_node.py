"""The Node backend's own guarantees, with the real ``node`` (20+): the process it runs in (a
clean environment, an empty working directory removed afterwards, the code never in argv, the
``nobody`` user and a network namespace when the tests run as root), its output bound, and
"unavailable, and why" when Node is missing or too old (a PATH without node is real)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from self_learning_memory.sandbox import CodeSandbox, ExecutionContext, SandboxLimits
from self_learning_memory.sandbox.node import NodeBackend

LIMITS = SandboxLimits(time_ms=2000, memory_mb=32, output_bytes=50_000)
ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def node() -> Iterator[NodeBackend]:
    backend = NodeBackend(LIMITS)
    assert backend.unavailable is None, backend.unavailable
    yield backend
    backend.close()


def run(backend: NodeBackend, code: str, **context: object) -> dict[str, object]:
    return backend.execute(code, ExecutionContext(task="t", **context)).as_dict()  # type: ignore[arg-type]


def test_the_environment_is_empty_even_when_the_host_has_secrets(
    node: NodeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMORY_SECRET_TOKEN", "hunter2")
    assert os.environ["MEMORY_SECRET_TOKEN"] == "hunter2"
    result = run(node, "return [process.env, Object.keys(process.env).length]")
    assert result["output"] == [{}, 0]


def test_the_code_is_not_in_argv_and_the_working_directory_is_removed(node: NodeBackend) -> None:
    marker = "a-marker-that-must-stay-out-of-argv"
    result = run(
        node,
        f"const m = '{marker}'; "
        "return [JSON.stringify(process.argv.concat(process.execArgv)).includes(m), process.cwd()]",
    )
    found, cwd = result["output"]  # type: ignore[misc]
    assert found is False
    assert str(cwd).startswith("/")
    assert "sandbox-node-" in str(cwd)
    assert not Path(str(cwd)).exists()


def test_the_permission_model_refuses_files_processes_workers_and_addons(node: NodeBackend) -> None:
    for code in (
        "return require('fs').readdirSync('/')",
        "require('fs').writeFileSync('x', 'y')",
        "return require('child_process').spawnSync('id')",
        "return new (require('worker_threads').Worker)('1', { eval: true })",
        "return process.dlopen({ exports: {} }, '/usr/lib/libc.so.6')",
        "return require('inspector').open(9229)",
    ):
        result = run(node, code)
        assert (result["variant"], result["error_type"]) == ("error", "permission"), (code, result)


def test_the_code_cannot_signal_the_host(node: NodeBackend) -> None:
    result = run(node, f"process.kill({os.getpid()}, 'SIGKILL'); return 'sent'")
    assert (result["variant"], result["error_type"]) == ("error", "permission")
    assert "process.kill" in str(result["message"])


@pytest.mark.skipif(not ROOT, reason="dropping to nobody needs the tests to run as root")
def test_as_root_the_code_runs_as_nobody_and_cannot_regain_root(node: NodeBackend) -> None:
    assert node.runs_as == "nobody"
    result = run(
        node,
        "const u = process.getuid(); try { process.setuid(0) } catch (e) {} "
        "return [u, process.getuid()]",
    )
    assert result["output"] == [65534, 65534]


INTERFACES = "return Object.keys(require('os').networkInterfaces())"


@pytest.mark.skipif(not ROOT, reason="a network namespace needs root here")
def test_as_root_a_network_namespace_leaves_the_code_no_network_interface(
    node: NodeBackend,
) -> None:
    assert node.network_isolation == "on"
    assert node.describe()["network"] == "blocked by a network namespace"
    # control: without the namespace the code sees the host's interfaces (Node's permission
    # model does not cover the network), so the assertion below can fail
    open_node = node.probe(LIMITS)
    open_node.network_isolation = "off: control"
    assert "lo" in run(open_node, INTERFACES)["output"]  # type: ignore[operator]
    assert run(node, INTERFACES)["output"] == []


def test_network_requests_never_start_in_a_synchronous_run(node: NodeBackend) -> None:
    # even without the namespace: sockets open asynchronously, and the process exits when the
    # code returns, so a request is created but never sent
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        open_node = node.probe(LIMITS)
        open_node.network_isolation = "off: control"
        code = (
            "const s = require('dgram').createSocket('udp4'); "
            f"s.send('exfiltrated', {sock.getsockname()[1]}, '127.0.0.1'); return 'sent'"
        )
        assert run(open_node, code)["output"] == "sent"
        with pytest.raises(BlockingIOError):
            sock.recv(100)  # the process has exited: a datagram sent by it would be here


def test_output_written_around_console_is_bounded(node: NodeBackend) -> None:
    result = run(node, "for (;;) process.stdout.write('x'.repeat(65536))")
    assert (result["variant"], result["error_type"]) == ("error", "resource")
    assert len(str(result.get("stdout", ""))) <= LIMITS.output_bytes + 65_536


def test_a_timeout_kills_the_process_and_keeps_partial_output() -> None:
    backend = NodeBackend(SandboxLimits(time_ms=300, memory_mb=32))
    result = backend.execute("console.log('started'); for (;;) {}", ExecutionContext())
    assert result.variant == "timeout"
    assert result.partial_output == "started\n"
    assert 300 <= result.execution_time_ms < 3000


def test_typescript_and_the_context_contract_match_the_wasm_backend(node: NodeBackend) -> None:
    result = run(
        node,
        "interface P { x: number }\nconst p: P = { x: context.input.x };\n"
        "console.log(context.task); console.error('warn'); return [p.x + 1, context.env]",
        input={"x": 41},
    )
    assert result["output"] == [42, {}]
    assert result["stdout"] == "t\n"
    assert result["stderr"] == "warn\n"
    assert result["backend"] == "node"


def test_a_heap_bomb_is_a_resource_error(node: NodeBackend) -> None:
    # past --max-old-space-size V8 aborts the process: mapped from its fatal message
    result = run(node, "const a = []; for (;;) a.push({ a: 1, b: [1, 2, 3] })")
    assert (result["variant"], result["error_type"]) == ("error", "resource"), result


def test_node_missing_from_path_makes_the_backend_unavailable_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    backend = NodeBackend(LIMITS)
    assert backend.unavailable is not None
    assert "node was not found on PATH" in backend.unavailable
    result = backend.execute("return 1", ExecutionContext())
    assert (result.variant, result.error_type) == ("error", "unknown")
    box = CodeSandbox(backend, LIMITS, pool_size=1)
    try:
        assert box.self_test() == f"node backend: {backend.unavailable}"
    finally:
        box.close()


def test_a_node_too_old_for_the_permission_model_is_refused(tmp_path: Path) -> None:
    old = tmp_path / "node"
    old.write_text("#!/bin/sh\necho v18.19.0\n")
    old.chmod(0o755)
    backend = NodeBackend(LIMITS, node=str(old))
    assert backend.unavailable is not None
    assert "v18.19.0" in backend.unavailable
    assert "too old for the permission model" in backend.unavailable


def test_the_self_test_passes_with_the_real_node(node: NodeBackend) -> None:
    box = CodeSandbox(node, LIMITS, pool_size=1)
    try:
        assert box.self_test() is None
    finally:
        box.close()


def test_fifty_runs_from_several_threads_each_get_their_own_process(node: NodeBackend) -> None:
    from concurrent.futures import ThreadPoolExecutor

    box = CodeSandbox(node, LIMITS, pool_size=5)
    code = (
        "globalThis.seen = (globalThis.seen || 0) + 1; "
        "return [context.input.i, seen, context.input.pad.length]"
    )
    try:
        pad = "p" * 90_000  # a large payload through stdin (more than one pipe buffer)

        def one(i: int) -> list[int]:
            result = box.run(code, ExecutionContext(input={"i": i, "pad": pad}))
            assert result.ok, result.as_dict()
            return list(result.output)

        with ThreadPoolExecutor(5) as pool:
            outputs = list(pool.map(one, range(50)))
        assert outputs == [[i, 1, 90_000] for i in range(50)]
        assert box.stats_dict()["node"]["calls"] == 50
        assert box.stats_dict()["node"]["success_rate"] == 1.0
    finally:
        box.close()
