"""Bearer-token protection for the HTTP transport.

Every HTTP request must carry ``Authorization: Bearer <token>``; anything else gets 401 before
the MCP app (and the memory) sees it. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["MIN_TOKEN_LENGTH", "BearerTokenMiddleware", "is_loopback"]

MIN_TOKEN_LENGTH = 16
MAX_TOKEN_LENGTH = 4096

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BearerTokenMiddleware:
    """ASGI middleware: refuse any HTTP request without the right bearer token (401)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()
        self.refused = 0

    def _authorised(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", []):
            if name.lower() == b"authorization":
                scheme, _, credential = bytes(value).partition(b" ")
                if scheme.lower() != b"bearer" or len(credential) > MAX_TOKEN_LENGTH:
                    return False
                return hmac.compare_digest(credential.strip(), self._token)
        return False

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
