"""Bearer-token protection for the HTTP transport.

Every HTTP request must carry exactly one ``Authorization: Bearer <token>`` header; anything
else (no header, a wrong token, the header repeated) gets 401 before the MCP app (and the
memory) sees it. Tokens are compared in constant time.

:func:`transport_security` keeps the SDK's Host/Origin checks (DNS-rebinding protection) on for
every bind address, not only the SDK's three loopback spellings.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server.transport_security import TransportSecuritySettings

__all__ = [
    "MIN_TOKEN_LENGTH",
    "TOKEN_ENV",
    "BearerTokenMiddleware",
    "is_loopback",
    "read_token",
    "transport_security",
]

MIN_TOKEN_LENGTH = 16
MAX_TOKEN_LENGTH = 4096
TOKEN_ENV = "MEMORY_MCP_TOKEN"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def read_token(token_file: Path | None) -> str | None:
    """The bearer token from ``--token-file`` (stripped), else ``$MEMORY_MCP_TOKEN`` (unset or
    blank: none); ConfigurationError when the file cannot be read or the length is out of
    range. Shared by ``memory-mcp --transport http`` and ``memory-cli dashboard``."""
    from ..errors import ConfigurationError

    token: str | None = None
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(f"Cannot read --token-file {token_file}: {exc}.") from exc
    elif os.environ.get(TOKEN_ENV, "").strip():
        token = os.environ[TOKEN_ENV].strip()
    if token is not None and not MIN_TOKEN_LENGTH <= len(token) <= MAX_TOKEN_LENGTH:
        raise ConfigurationError(
            f"Invalid bearer token: it has {len(token)} characters "
            f"(limit: {MIN_TOKEN_LENGTH}..{MAX_TOKEN_LENGTH})."
        )
    return token


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def transport_security(
    host: str, port: int, extra_hosts: Sequence[str] = ()
) -> TransportSecuritySettings:
    """Host/Origin allow-lists for a server bound to ``host:port``: the bound address, plus
    ``localhost``/``127.0.0.1``/``[::1]`` when it is a loopback address, plus ``extra_hosts``
    (names the server is reached by, ``--allowed-host``). Any other Host gets 421, any other
    Origin 403 (the SDK's responses)."""
    from mcp.server.transport_security import TransportSecuritySettings

    bound = f"[{host.strip('[]')}]" if ":" in host else host
    names = [bound, *extra_hosts]
    if is_loopback(host):
        names += ["127.0.0.1", "localhost", "[::1]"]
    hosts: list[str] = []
    for name in dict.fromkeys(names):
        hosts += [name, f"{name}:{port}"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")],
    )


class BearerTokenMiddleware:
    """ASGI middleware: refuse any HTTP request without the right bearer token (401)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()
        self.refused = 0

    def _authorised(self, scope: Scope) -> bool:
        values = [
            bytes(value)
            for name, value in scope.get("headers", [])
            if name.lower() == b"authorization"
        ]
        if len(values) != 1:  # none, or repeated (a proxy or client could check another one)
            return False
        scheme, _, credential = values[0].partition(b" ")
        if scheme.lower() != b"bearer" or len(credential) > MAX_TOKEN_LENGTH:
            return False
        return hmac.compare_digest(credential.strip(), self._token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._authorised(scope):
            await self.app(scope, receive, send)
            return
        self.refused += 1
        body = json.dumps(
            {
                "error": "unauthorized",
                "message": "memory-mcp needs 'Authorization: Bearer <token>' "
                "(the token set with MEMORY_MCP_TOKEN or --token-file).",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="memory-mcp"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
