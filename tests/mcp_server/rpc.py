"""A raw JSON-RPC client for the real ``memory-mcp`` process over stdio: every stdout line is
kept, so tests can check that stdout carries only protocol messages, and the process can be
signalled or killed."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

TIMEOUT_S = 30.0


def server_command(data_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "self_learning_memory.mcp",
        "--data-dir",
        str(data_dir),
        "--log-file",
        "none",
        *extra,
    ]


class RawStdioServer:
    def __init__(self, data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            server_command(data_dir, *extra),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._next_id = 0
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode()
            self.stdout_lines.append(line)
            try:
                self._messages.put(json.loads(line))
            except json.JSONDecodeError:
                self._messages.put({"unparseable": line})
        self._messages.put(None)

    def stderr_after_exit(self, timeout: float = 10.0) -> list[str]:
        """Every stderr line, once the process has exited and its reader has drained the pipe
        (the reader thread may still be appending right after ``wait`` returns)."""
        self._stderr_reader.join(timeout)
        return self.stderr_lines

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.stderr_lines.append(raw.decode())

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next_id += 1
        rid = self._next_id
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}})
        while True:
            message = self._messages.get(timeout=TIMEOUT_S)
            if message is None:
                raise EOFError(f"server exited; stderr: {''.join(self.stderr_lines)[-2000:]}")
            if message.get("id") == rid:
                return message

    def initialize(self) -> dict[str, Any]:
        reply = self.request(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "tests", "version": "1"},
            },
        )
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return reply

    def call(self, name: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
        """(is_error, parsed JSON result or the error text)."""
        reply = self.request("tools/call", {"name": name, "arguments": arguments})
        result = reply["result"]
        text = result["content"][0]["text"]
        if result.get("isError"):
            return True, text
        return False, json.loads(text)

    def close_stdin(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout=TIMEOUT_S)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=TIMEOUT_S)
