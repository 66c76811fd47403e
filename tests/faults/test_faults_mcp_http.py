"""Issue 12 item 13 over real HTTP: a repeated Authorization header is refused (401, nothing
written), and the Host/Origin checks stay on for a bind address other than 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

from mcp_server.test_http import TOKEN, http_client, http_server
from mcp_server.tools import ok

pytestmark = pytest.mark.integration

CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {
        "name": "create_episode",
        "arguments": {"task_description": "sneaky", "domain": "d", "task_type": "testing"},
    },
}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "tests", "version": "1"},
    },
}
ACCEPT = ("Accept", "application/json, text/event-stream")


async def test_repeated_authorization_headers_get_401_and_write_nothing(tmp_path: Path) -> None:
    with http_server(tmp_path) as url:
        async with httpx2.AsyncClient(timeout=30) as raw:
            for pair in (
                (f"Bearer {TOKEN}", "Bearer wrong-token-0123456789"),
                ("Bearer wrong-token-0123456789", f"Bearer {TOKEN}"),
                (f"Bearer {TOKEN}", f"Bearer {TOKEN}"),
            ):
                headers = [ACCEPT, *(("Authorization", value) for value in pair)]
                response = await raw.post(url, json=CALL, headers=headers)
                assert response.status_code == 401, pair
                assert response.json()["error"] == "unauthorized"
        async with http_client(url) as c:
            assert (await ok(c, "list_episodes", {}))["total"] == 0


async def test_host_check_is_on_for_another_loopback_address(tmp_path: Path) -> None:
    with http_server(tmp_path, TOKEN, "127.0.0.2") as url:
        auth = ("Authorization", f"Bearer {TOKEN}")
        async with httpx2.AsyncClient(timeout=30) as raw:
            bad_host = await raw.post(url, json=CALL, headers=[ACCEPT, auth, ("Host", "evil.test")])
            assert bad_host.status_code == 421
            bad_origin = await raw.post(
                url, json=CALL, headers=[ACCEPT, auth, ("Origin", "http://evil.test")]
            )
            assert bad_origin.status_code == 403
        async with http_client(url) as c:  # Host 127.0.0.2:<port>: allowed
            assert (await ok(c, "list_episodes", {}))["total"] == 0


async def test_allowed_host_option_admits_a_named_host(tmp_path: Path) -> None:
    with http_server(tmp_path, TOKEN, "127.0.0.2", "--allowed-host", "memory.internal") as url:
        auth = ("Authorization", f"Bearer {TOKEN}")
        async with httpx2.AsyncClient(timeout=30) as raw:
            named = await raw.post(
                url, json=INITIALIZE, headers=[ACCEPT, auth, ("Host", "memory.internal")]
            )
            assert named.status_code == 200
            other = await raw.post(
                url, json=INITIALIZE, headers=[ACCEPT, auth, ("Host", "other.test")]
            )
            assert other.status_code == 421
