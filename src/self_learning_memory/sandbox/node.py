"""The Node backend (legacy, off unless configured): a ``node`` subprocess per run.

What holds the code in (see docs/sandbox.md for what it does not):

- Node's permission model (``--experimental-permission`` on Node 20-21, ``--permission`` on 22+)
  with no grant: no file system, child processes, workers, addons, inspector or WASI;
- the process: limits set in the child before ``exec`` (address space sized to the memory limit
  plus what V8 reserves, CPU seconds, file size 0, core dumps 0, processes), a clean environment,
  an empty temporary working directory removed afterwards, its own session (the whole process
  group is killed on timeout), output read with a bound;
- as root: a new network namespace (no interface but a downed loopback), and the run drops to
  the ``nobody`` user, so it cannot signal or ptrace the host's processes.

Node's permission model does not cover the network or signals: without the namespace the code
can open sockets; as a non-root user it runs as that user (``process.kill`` is stubbed in the
runner, which is hardening, not a boundary).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import pwd
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

from .node_process import STARTUP_LIMIT_S, NodeRun
from .result import ErrorType, ExecutionContext, ExecutionResult, SandboxLimits

__all__ = ["MIN_NODE_MAJOR", "NODE_BASE_ADDRESS_SPACE_MB", "NodeBackend", "node_version"]

MIN_NODE_MAJOR = 20  # the first Node with a permission model
# Node 20.20 with one thread for V8 (--single-threaded --v8-pool-size=0) reserves ~735 MB of
# address space (VmPeak in /proc/self/status; ~1000 MB with its default GC threads); a heap 80 %
# full plus typed arrays as large as the memory limit peak at 735 MB + ~1.9 x the limit
NODE_BASE_ADDRESS_SPACE_MB = 832
NODE_MEMORY_FACTOR = 2
NODE_TASKS = 32  # threads Node may start (main, 4 V8 workers, libuv pool, margin)
CLONE_NEWNET = 0x40000000
NOBODY = "nobody"

_RESOURCE_ERRORS = re.compile(
    r"maximum call stack|invalid string length|invalid array length|allocation failed|"
    r"invalid typed array length|out of memory|exceeds the limit|exceeds \d+ bytes",
    re.IGNORECASE,
)
_FATAL_MEMORY = re.compile(
    r"heap out of memory|bad_alloc|Fatal process OOM|Failed to reserve|allocation failed",
    re.IGNORECASE,
)


def node_version(path: str) -> tuple[int, int, int] | None:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, env={}, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"v(\d+)\.(\d+)\.(\d+)", out.strip())
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def _tasks_of(uid: int) -> int:
    """Threads currently owned by ``uid`` (RLIMIT_NPROC counts them all)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            with open(f"/proc/{entry.name}/status") as f:
                for line in f:
                    if line.startswith("Threads:"):
                        total += int(line.split()[1])
                        break
        except (OSError, ValueError):
            continue
    return total


def _strip_types(source: str) -> str:
    """TypeScript types stripped by the same transform as the WASM backend (when installed)."""
    try:
        import quickjs_rs

        from .engine import install_engine
    except ImportError:
        return source
    # the transform creates quickjs-rs's shared engine if nothing did: it must be ours (with
    # epoch interruption), or a WASM backend built later would have no hard time limit
    install_engine()
    flags = quickjs_rs.SourceTransform.SOURCE_TS | quickjs_rs.SourceTransform.STRIP_TYPESCRIPT
    return str(quickjs_rs.transform_source("code.ts", source, flags=flags))


class NodeBackend:
    """Runs code in a fresh ``node`` process; ``execute`` blocks and is safe from many threads.

    ``unavailable`` is None when Node can run here, else why not (missing, too old)."""

    name = "node"

    def __init__(self, limits: SandboxLimits, *, node: str | None = None) -> None:
        self.limits = limits
        self.unavailable: str | None = None
        self.version: str | None = None
        self.permission_flag = "--permission"
        self.path = node or shutil.which("node")
        self._runner = resources.files(__package__).joinpath("node_runner.js").read_text()
        self._uid: int | None = None
        self._gid = 0
        self.network_isolation = "off: not probed"
        self.runs_as = pwd.getpwuid(os.getuid()).pw_name if _has_user(os.getuid()) else "?"
        if self.path is None:
            self.unavailable = "node was not found on PATH (the Node backend needs Node 20+)"
            return
        version = node_version(self.path)
        if version is None:
            self.unavailable = f"{self.path} --version did not report a Node version"
            return
        self.version = "v{}.{}.{}".format(*version)
        if version[0] < MIN_NODE_MAJOR:
            self.unavailable = (
                f"Node {self.version} at {self.path} is too old for the permission model "
                f"(needs {MIN_NODE_MAJOR}+)"
            )
            return
        if version[0] < 22:
            self.permission_flag = "--experimental-permission"
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(NOBODY)
                self._uid, self._gid = entry.pw_uid, entry.pw_gid
                self.runs_as = NOBODY
            except KeyError:
                self.runs_as = "root (no 'nobody' user to drop to)"
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.network_isolation = self._probe_netns()

    def _probe_netns(self) -> str:
        """Whether a child can get its own network namespace here (root, or CAP_SYS_ADMIN)."""
        libc = self._libc

        def setup() -> None:
            if libc.unshare(CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")

        try:
            subprocess.run(["/bin/true"], preexec_fn=setup, check=True, env={}, timeout=10)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"off: a new network namespace is not available ({exc})"
        return "on"

    # --- one run ------------------------------------------------------------------------

    def _command(self) -> list[str]:
        assert self.path is not None
        return [
            self.path,
            self.permission_flag,
            "--no-warnings",
            "--no-expose-wasm",
            "--single-threaded",  # no V8 worker threads: a smaller, steadier address space
            "--v8-pool-size=0",
            f"--max-old-space-size={self.limits.memory_mb}",
            f"--stack-size={self.limits.stack_kb}",
            "-e",
            self._runner,
        ]

    def address_space_bytes(self) -> int:
        return (NODE_BASE_ADDRESS_SPACE_MB + NODE_MEMORY_FACTOR * self.limits.memory_mb) * 2**20

    def _child_setup(self) -> Callable[[], None]:
        cpu = math.ceil(self.limits.time_ms / 1000) + 1
        uid = os.getuid() if self._uid is None else self._uid
        nproc = _tasks_of(uid) + NODE_TASKS
        limits = [
            (resource.RLIMIT_AS, self.address_space_bytes()),
            (resource.RLIMIT_CPU, cpu),
            (resource.RLIMIT_FSIZE, 0),
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_NPROC, nproc),
        ]
        netns = self.network_isolation == "on"
        libc, drop_to, gid = self._libc, self._uid, self._gid

        def setup() -> None:  # runs in the child between fork and exec: no locks, no logging
            for which, value in limits:
                soft, hard = (value, value + 1) if which == resource.RLIMIT_CPU else (value, value)
                resource.setrlimit(which, (soft, hard))
            if netns and libc.unshare(CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")
            if drop_to is not None:
                os.setgroups([])
                os.setgid(gid)
                os.setuid(drop_to)

        return setup

    def execute(self, code: str, context: ExecutionContext) -> ExecutionResult:
        started = time.perf_counter()

        def elapsed() -> float:
            return round((time.perf_counter() - started) * 1000, 3)

        if self.unavailable is not None:
            return ExecutionResult(
                "error", self.name, elapsed(), message=self.unavailable, error_type="unknown"
            )
        try:
            source = _strip_types(f"(function (context, console, require) {{\n{code}\n}})")
        except Exception as exc:  # quickjs-rs's TransformError: the code does not parse
            parse_error = type(exc).__name__ == "TransformError"
            return ExecutionResult(
                "error",
                self.name,
                elapsed(),
                message=f"SyntaxError: {exc}" if parse_error else f"{type(exc).__name__}: {exc}",
                error_type="syntax" if parse_error else "unknown",
            )
        workdir = tempfile.mkdtemp(prefix="sandbox-node-")
        os.chmod(workdir, 0o700)  # nobody (the run's user, as root) cannot even write here
        result_r, result_w = os.pipe()
        payload = json.dumps(
            {
                "source": source,
                "context": json.dumps(context.as_json()),
                "cap": self.limits.output_bytes,
                "fd": result_w,
            }
        ).encode("utf-8", "surrogatepass")
        try:
            try:
                proc = subprocess.Popen(
                    self._command(),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    pass_fds=(result_w,),
                    cwd=workdir,
                    env={},
                    start_new_session=True,
                    preexec_fn=self._child_setup(),
                )
            except (OSError, subprocess.SubprocessError) as exc:
                return ExecutionResult(
                    "error",
                    self.name,
                    elapsed(),
                    message=f"node could not start: {exc}",
                    error_type="unknown",
                )
            finally:
                os.close(result_w)
            try:
                run = NodeRun(proc, result_r, payload, self.limits)
                run.wait()
            finally:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                for stream in (proc.stdin, proc.stdout, proc.stderr):
                    if stream is not None:
                        with contextlib.suppress(OSError):
                            stream.close()
        finally:
            os.close(result_r)
            shutil.rmtree(workdir, ignore_errors=True)
        return self._result(run, proc.returncode, elapsed())

    def _result(self, run: NodeRun, returncode: int, ms: float) -> ExecutionResult:
        stdout = run.text(run.stdout)
        stderr = run.text(run.stderr)

        def error(kind: ErrorType, message: str) -> ExecutionResult:
            return ExecutionResult(
                "error",
                self.name,
                ms,
                message=message,
                error_type=kind,
                stdout=stdout,
                stderr=stderr,
            )

        if run.timed_out or returncode == -signal.SIGXCPU:
            what = (
                f"node did not reach the code within {STARTUP_LIMIT_S:.0f} s"
                if run.ready_at is None and run.timed_out
                else f"execution exceeded {self.limits.time_ms} ms"
                if run.timed_out
                else "execution exceeded its CPU time limit"
            )
            return ExecutionResult("timeout", self.name, ms, partial_output=stdout, message=what)
        if run.overflow:
            return error(
                "resource", f"output exceeds the limit of {self.limits.output_bytes} bytes"
            )
        report = run.report()
        if report is None:
            if _FATAL_MEMORY.search(stderr):
                return error("resource", f"memory limit of {self.limits.memory_mb} MB exceeded")
            if returncode is not None and returncode < 0:
                name = signal.Signals(-returncode).name
                return error("unknown", f"node was killed by {name}")
            return error("runtime", f"the code ended the process (exit code {returncode})")
        if report.get("ok") is True:
            try:
                output = json.loads(str(report.get("output")))
            except ValueError:
                return error("unknown", "the code's result is not JSON")
            return ExecutionResult(
                "success", self.name, ms, output=output, stdout=stdout, stderr=stderr
            )
        phase = str(report.get("phase", ""))
        name = str(report.get("name", ""))
        message = str(report.get("message", ""))
        code = str(report.get("code", ""))
        text = f"{name}: {message}" if name else (message or "an error was thrown")
        if phase == "output":
            return error("resource", message)
        if code in ("ERR_ACCESS_DENIED", "ERR_DLOPEN_DISABLED"):
            return error("permission", text)
        if phase == "compile" and name == "SyntaxError":
            return error("syntax", text)
        if name in ("RangeError", "Error", "") and _RESOURCE_ERRORS.search(message):
            return error("resource", text)
        return error("runtime", text if phase != "run" or name else f"Uncaught {message}")

    def close(self) -> None:
        pass

    def probe(self, limits: SandboxLimits) -> NodeBackend:
        """The same backend with other limits (the self-test's short and long runs)."""
        copy = NodeBackend.__new__(NodeBackend)
        copy.__dict__.update(self.__dict__)
        copy.limits = limits
        return copy

    def describe(self) -> dict[str, Any]:
        return {
            "node": self.path,
            "version": self.version,
            "permission_flag": self.permission_flag,
            "network_isolation": self.network_isolation,
            "runs_as": self.runs_as,
            "address_space_mb": self.address_space_bytes() // 2**20,
            "network": "blocked by a network namespace"
            if self.network_isolation == "on"
            else "NOT blocked: Node 20's permission model does not cover the network",
        }


def _has_user(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True
