"""One Node run seen from the host: the payload fed to stdin, stdout, stderr and the result
pipe read with bounds under the start-up and the run deadlines (the caller kills the process
group when ``wait`` returns)."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import time
from typing import Any

from .result import SandboxLimits

__all__ = ["OUTPUT_SLACK", "STARTUP_LIMIT_S", "NodeRun"]

STARTUP_LIMIT_S = 10.0  # how long node may take to reach the code (a loaded machine)
OUTPUT_SLACK = 65_536  # room for Node's own messages (a fatal error's stack) on stderr


class NodeRun:
    """Feeds the payload to stdin and reads stdout, stderr and the result pipe with bounds,
    under the start-up and the run deadlines; kills the process group past either."""

    def __init__(
        self, proc: subprocess.Popen[bytes], result_fd: int, payload: bytes, limits: SandboxLimits
    ) -> None:
        self.proc = proc
        self.limits = limits
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.result = bytearray()
        self.payload = memoryview(payload)
        self.result_fd = result_fd
        self.ready_at: float | None = None
        self.timed_out = False
        self.overflow = False

    def wait(self) -> None:
        proc = self.proc
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        out_fd, err_fd, in_fd = proc.stdout.fileno(), proc.stderr.fileno(), proc.stdin.fileno()
        os.set_blocking(in_fd, False)
        cap = self.limits.output_bytes + OUTPUT_SLACK
        deadline = time.monotonic() + STARTUP_LIMIT_S
        with selectors.DefaultSelector() as sel:
            sel.register(out_fd, selectors.EVENT_READ)
            sel.register(err_fd, selectors.EVENT_READ)
            sel.register(self.result_fd, selectors.EVENT_READ)
            sel.register(in_fd, selectors.EVENT_WRITE)
            while len(sel.get_map()) > (1 if in_fd in sel.get_map() else 0):
                left = deadline - time.monotonic()
                if left <= 0:
                    self.timed_out = True
                    return
                for key, _ in sel.select(left):
                    fd = int(key.fd)
                    if fd == in_fd:
                        try:
                            sent = os.write(in_fd, self.payload[:65536])
                        except BlockingIOError:
                            sent = 0  # the pipe filled up since select: try again
                        except BrokenPipeError:
                            sent = len(self.payload)  # node is gone: its exit tells why
                        self.payload = self.payload[sent:]
                        if not self.payload:
                            sel.unregister(in_fd)
                            proc.stdin.close()
                        continue
                    data = os.read(fd, 65536)
                    if not data:
                        sel.unregister(fd)
                        continue
                    if fd == self.result_fd:
                        self.result += data
                        if self.ready_at is None and b"\n" in self.result:
                            self.ready_at = time.monotonic()
                            deadline = self.ready_at + self.limits.time_ms / 1000
                        if len(self.result) > 2 * cap:
                            self.overflow = True
                            return
                        continue
                    buffer = self.stdout if fd == out_fd else self.stderr
                    buffer.extend(data)
                    excess = len(self.stdout) + len(self.stderr) - cap
                    if excess > 0:
                        del buffer[len(buffer) - excess :]
                        self.overflow = True
                        return

    def report(self) -> dict[str, Any] | None:
        lines = bytes(self.result).split(b"\n")
        if len(lines) < 3 or lines[0] != b"ready":
            return None
        try:
            data = json.loads(lines[1])
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    @staticmethod
    def text(data: bytearray) -> str:
        return bytes(data).decode("utf-8", "replace")
