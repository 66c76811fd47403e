"""Fixtures for the dashboard tests: the seeded memory, real server processes
(``memory-cli dashboard`` and ``memory-mcp --transport http``) on loopback ports, and Debian's
Chromium driven by Playwright.

Chromium is part of the test setup (the Makefile's dev target installs it); when
``/usr/bin/chromium`` is missing these tests fail, they never skip."""

from __future__ import annotations

import os
import re
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .seed import Seeded, seed

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "dashboard-test-token-0123456789"
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Server:
    base: str  # http://127.0.0.1:PORT/dashboard/
    proc: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return seed(tmp_path_factory.mktemp("dashboard") / "data")


def _env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("MEMORY_MCP_TOKEN", "MEMORY_CLI_CONFIG")
    }
    env["MEMORY_MCP_TOKEN"] = TOKEN
    env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in sys.path if p)
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def cli_server(seeded: Seeded) -> Iterator[Server]:
    """``memory-cli dashboard --port 0``: the URL is read from its first line of output."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "self_learning_memory.cli", "--data-dir", str(seeded.data_dir),
         "dashboard", "--port", "0", "--no-open"],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout=START_TIMEOUT_S):
                pytest.fail("memory-cli dashboard printed no URL in time")
        line = proc.stdout.readline().decode()
        found = re.search(r"(http://127\.0\.0\.1:\d+/dashboard/)", line)
        assert found, (line, proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "")
        yield Server(found.group(1), proc)
    finally:
        _stop(proc)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def mcp_server(seeded: Seeded) -> Iterator[Server]:
    """``memory-mcp --transport http`` with the token; the dashboard is at /dashboard/."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "self_learning_memory.mcp", "--data-dir", str(seeded.data_dir),
         "--log-file", "none", "--transport", "http", "--port", str(port)],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # until the port accepts connections (or the server died)
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "memory-mcp did not start listening"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        yield Server(f"http://127.0.0.1:{port}/dashboard/", proc)
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (``apt-get install chromium``), headless, through Playwright. Module
    scope: Playwright's sync API keeps an event loop running in this thread while it is open,
    which would break later tests that call ``asyncio.run``."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the dashboard tests need Debian's chromium package "
            "(`make dev` installs it: apt-get install -y --no-install-recommends chromium)."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()
