"""Who may read the dashboard: the holder of the server's bearer token.

A browser cannot send an ``Authorization`` header when it follows a link, so three proofs are
accepted, each compared in constant time:

- ``Authorization: Bearer <token>`` (scripts, curl);
- a cookie set by the dashboard itself (``HttpOnly``, ``SameSite=Strict``, path-scoped to the
  dashboard), whose value is derived from the token (the token itself is never stored in the
  browser);
- ``?token=<token>`` on a GET: answered with that cookie and a redirect to the same URL
  without the token (so it leaves the address bar and the history), once.

Anything else gets 401 before the memory is touched.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlencode

__all__ = ["COOKIE_NAME", "TokenCheck"]

COOKIE_NAME = "memory_dashboard"
MAX_TOKEN_LENGTH = 4096  # as memory-mcp's (mcp/auth.py); longer offers are refused unread


class TokenCheck:
    """The token's three accepted forms (see the module docstring)."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self.cookie_value = hmac.new(
            self._token, b"memory-dashboard-cookie", hashlib.sha256
        ).hexdigest()

    def _same(self, offered: bytes, expected: bytes) -> bool:
        return len(offered) <= MAX_TOKEN_LENGTH and hmac.compare_digest(offered, expected)

    def bearer(self, headers: Iterable[tuple[bytes, bytes]]) -> bool | None:
        """True/False for a (single) Authorization header, None without one."""
        values = [bytes(v) for k, v in headers if k.lower() == b"authorization"]
        if not values:
            return None
        if len(values) != 1:
            return False
        scheme, _, credential = values[0].partition(b" ")
        return scheme.lower() == b"bearer" and self._same(credential.strip(), self._token)

    def cookie(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        for key, value in headers:
            if key.lower() != b"cookie":
                continue
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except CookieError:
                continue
            morsel = jar.get(COOKIE_NAME)
            if morsel is not None and self._same(morsel.value.encode(), self.cookie_value.encode()):
                return True
        return False

    def query_token(self, query_string: bytes) -> tuple[bool | None, str]:
        """(whether ``token=`` matched, or None without one; the query without it)."""
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
        offered = [v for k, v in pairs if k == "token"]
        rest = urlencode([(k, v) for k, v in pairs if k != "token"])
        if not offered:
            return None, rest
        ok = len(offered) == 1 and self._same(offered[0].encode("latin-1", "replace"), self._token)
        return ok, rest

    def set_cookie(self, path: str) -> bytes:
        return (
            f"{COOKIE_NAME}={self.cookie_value}; Path={path}; HttpOnly; SameSite=Strict"
        ).encode()
