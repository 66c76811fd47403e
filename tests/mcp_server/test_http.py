"""memory-mcp over streamable HTTP: the SDK's client with a bearer token, 50 concurrent calls,
requests without the right token refused with 401 before they touch anything, and no start on a
non-loopback address without a token."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from .rpc import TIMEOUT_S, server_command
from .tools import ok, record_episode

pytestmark = pytest.mark.integration

TOKEN = "test-token-0123456789abcdef"
OK = {"type": "success", "output": "ok"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def http_server(
    data_dir: Path, token: str | None = TOKEN, host: str = "127.0.0.1", *extra: str
) -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "MEMORY_MCP_TOKEN"}
    if token is not None:
        env["MEMORY_MCP_TOKEN"] = token
    proc = subprocess.Popen(
        server_command(
            data_dir, "--transport", "http", "--host", host, "--port", str(port), *extra
        ),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while True:  # wait until the port accepts connections (or the server died)
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "memory-mcp did not start listening"
            try:
                socket.create_connection((host, port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"http://{host}:{port}/mcp"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=TIMEOUT_S)
        assert proc.returncode == 0
        assert out == b""  # nothing on stdout over HTTP either


@asynccontextmanager
async def http_client(url: str, token: str = TOKEN) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        yield client


async def test_lifecycle_and_50_concurrent_calls_over_http(tmp_path: Path) -> None:
    with http_server(tmp_path) as url:
        async with http_client(url) as c:
            first = await record_episode(
                c,
                "Add pagination to the orders API endpoint",
                [("editor", OK), ("pytest", OK), ("git", OK)],
                {"outcome_type": "success", "verdict": "merged"},
            )
            found = await ok(c, "query_memory", {"query": "orders pagination", "domain": "web-api"})
            assert found["episodes"][0]["episode"]["episode_id"] == first["episode_id"]

            creates = [
                ok(
                    c,
                    "create_episode",
                    {"task_description": f"task {i}", "domain": "d", "task_type": "testing"},
                )
                for i in range(25)
            ]
            queries = [ok(c, "query_memory", {"query": "orders", "domain": "d"}) for _ in range(25)]
            results = await asyncio.gather(*creates, *queries)
            ids = {r["episode_id"] for r in results[:25]}
            assert len(ids) == 25
            assert all(r["episodes"] for r in results[25:])
            listed = await ok(c, "list_episodes", {"limit": 100})
            assert listed["total"] == 26
            metrics = await ok(c, "get_metrics", {"metric_type": "performance"})
            assert metrics["performance"]["tools"]["create_episode"]["calls"] == 26
            assert metrics["performance"]["error_rate"] == 0.0


async def test_requests_without_the_right_token_get_401_and_touch_nothing(tmp_path: Path) -> None:
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "create_episode",
            "arguments": {"task_description": "sneaky", "domain": "d", "task_type": "testing"},
        },
    }
    headers = {"Accept": "application/json, text/event-stream"}
    with http_server(tmp_path) as url:
        async with httpx2.AsyncClient(timeout=30) as raw:
            for auth in (
                None,
                "Bearer wrong-token-0123456789",
                f"Basic {TOKEN}",
                f"Bearer {TOKEN}x",
            ):
                h = dict(headers) if auth is None else {**headers, "Authorization": auth}
                response = await raw.post(url, json=call, headers=h)
                assert response.status_code == 401, auth
                assert response.json()["error"] == "unauthorized"
                assert response.headers["www-authenticate"].startswith("Bearer")
        with pytest.raises(Exception):  # noqa: B017,PT011 - the SDK client surfaces the 401
            async with http_client(url, token="wrong-token-0123456789"):
                pass
        async with http_client(url) as c:
            assert (await ok(c, "list_episodes", {}))["total"] == 0


def test_refuses_non_loopback_without_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MEMORY_MCP_TOKEN"}
    done = subprocess.run(
        server_command(tmp_path, "--transport", "http", "--host", "0.0.0.0", "--port", "1"),
        env=env,
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 6
    assert b"without a bearer token" in done.stderr
    assert b"MEMORY_MCP_TOKEN" in done.stderr
    assert done.stdout == b""
    assert not (tmp_path / "memory.db").exists()


def test_rejects_a_short_token(tmp_path: Path) -> None:
    done = subprocess.run(
        server_command(tmp_path, "--transport", "http"),
        env={**os.environ, "MEMORY_MCP_TOKEN": "short"},
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 6
    assert b"16..4096" in done.stderr
