"""The dashboard as an ASGI application: read-only (GET and HEAD), behind the bearer token
(``auth.py``), pages rendered on the server (``pages.py``, ``agents.py``) and one packaged
stylesheet. No script runs in the pages and no external origin is referenced; the
Content-Security-Policy says so to the browser.

``memory-cli dashboard`` serves it alone; ``memory-mcp --transport http`` mounts it at
``/dashboard`` next to the MCP endpoint (:class:`Mount`), with the same token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

from ..errors import NotFoundError, SelfLearningMemoryError, ValidationError
from .agents import agents_page
from .auth import TokenCheck
from .html import Html, esc, layout
from .pages import episode_page, episodes_page, overview_page, patterns_page

if TYPE_CHECKING:
    from ..core.memory import SelfLearningMemory

__all__ = ["PAGES", "PREFIX", "DashboardApp", "Mount"]

log = logging.getLogger("self_learning_memory.dashboard")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
MemoryGetter = Callable[[], Awaitable["SelfLearningMemory"]]
Page = Callable[["SelfLearningMemory", str, Mapping[str, str]], Awaitable[str]]

PREFIX = "/dashboard"
# path under the prefix -> page
PAGES: dict[str, Page] = {
    "": overview_page,
    "episodes": episodes_page,
    "patterns": patterns_page,
    "agents": agents_page,
}
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_STYLESHEET = "static/dashboard.css"


class DashboardApp:
    """The dashboard under ``prefix``. ``memory`` opens (or returns) the shared memory;
    ``allowed_hosts``: the host names a request's Host header may carry, whatever its port
    (DNS-rebinding protection; ``mcp/auth.py``'s ``transport_security`` lists them); None for
    any."""

    def __init__(
        self,
        memory: MemoryGetter,
        token: str,
        *,
        prefix: str = PREFIX,
        allowed_hosts: Sequence[str] | None = None,
    ) -> None:
        self._memory = memory
        self.auth = TokenCheck(token)
        self.prefix = prefix.rstrip("/")
        self._hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}
        self._css = resources.files(__package__).joinpath(_STYLESHEET).read_bytes()
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        head = scope["method"] == "HEAD"
        if self._hosts is not None:
            host = next((v.decode("latin-1").lower() for k, v in headers if k == b"host"), "")
            name, colon, port = host.rpartition(":")
            if colon and port.isdigit() and not name.endswith(":"):
                host = name
            if host not in self._hosts:
                await _send(send, 421, _text("Misdirected request: unknown Host."), head=head)
                return
        path: str = scope["path"]
        bearer = self.auth.bearer(headers)
        allowed = bearer is True or (bearer is None and self.auth.cookie(headers))
        if bearer is None and scope["method"] in ("GET", "HEAD"):
            matched, rest = self.auth.query_token(scope.get("query_string", b""))
            if matched:  # the one-time link: set the cookie, drop the token from the URL
                location = quote(path) + (f"?{rest}" if rest else "")
                await _send(
                    send,
                    303,
                    b"",
                    [
                        (b"location", location.encode()),
                        (b"set-cookie", self.auth.set_cookie(self.prefix + "/")),
                    ],
                    head=head,
                )
                return
        if not allowed:
            self.refused += 1
            await _send(
                send,
                401,
                _text(
                    "Unauthorized: open the dashboard with the link the server printed "
                    "(?token=...), or send 'Authorization: Bearer <token>'."
                ),
                [(b"www-authenticate", b'Bearer realm="memory-dashboard"')],
                head=head,
            )
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _send(
                send, 405, _text("The dashboard is read-only: GET and HEAD only."),
                [(b"allow", b"GET, HEAD")], head=head,
            )  # fmt: skip
            return
        await self._route(scope, path, send, head)

    async def _route(self, scope: Scope, path: str, send: Send, head: bool) -> None:
        if path == self.prefix:
            await _send(send, 308, b"", [(b"location", f"{self.prefix}/".encode())], head=head)
            return
        if not path.startswith(self.prefix + "/"):
            await self._error(send, 404, "Not found", "No such page.", head)
            return
        sub = path[len(self.prefix) + 1 :].rstrip("/")
        if sub == _STYLESHEET:
            await _send(send, 200, self._css, content_type=b"text/css; charset=utf-8", head=head)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("utf-8", "replace")))
        started = time.perf_counter()
        try:
            memory = await self._memory()
            if sub.startswith("episodes/") and sub.count("/") == 1:
                html = await episode_page(memory, self.prefix, sub.split("/", 1)[1])
            elif sub in PAGES:
                html = await PAGES[sub](memory, self.prefix, query)
            else:
                await self._error(send, 404, "Not found", "No such page.", head)
                return
        except ValidationError as exc:
            await self._error(send, 400, "Bad request", exc.message, head)
            return
        except NotFoundError as exc:
            await self._error(send, 404, "Not found", exc.message, head)
            return
        except SelfLearningMemoryError as exc:
            log.warning("dashboard page %s failed: %s", path, exc)
            await self._error(send, 503, "Unavailable", exc.message, head)
            return
        except Exception:
            log.exception("dashboard page %s crashed", path)
            await self._error(send, 500, "Internal error", "The page failed; see the log.", head)
            return
        took = (time.perf_counter() - started) * 1000
        await _send(
            send, 200, html.encode(), [(b"server-timing", f"render;dur={took:.1f}".encode())],
            head=head,
        )  # fmt: skip

    async def _error(self, send: Send, status: int, title: str, message: str, head: bool) -> None:
        body = layout(self.prefix, "-", title, Html(f'<p class="notice">{esc(message)}</p>'))
        await _send(send, status, body.encode(), head=head)


class Mount:
    """``app`` for paths under ``prefix``, ``other`` for the rest (and the lifespan)."""

    def __init__(self, prefix: str, app: ASGIApp, other: ASGIApp) -> None:
        self.prefix = prefix.rstrip("/")
        self.app = app
        self.other = other

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == self.prefix or path.startswith(self.prefix + "/")):
            await self.app(scope, receive, send)
        else:
            await self.other(scope, receive, send)


def _text(message: str) -> bytes:
    return (message + "\n").encode()


async def _send(
    send: Send,
    status: int,
    body: bytes,
    extra: Sequence[tuple[bytes, bytes]] = (),
    *,
    content_type: bytes | None = None,
    head: bool = False,
) -> None:
    if content_type is None:
        content_type = (
            b"text/html; charset=utf-8"
            if body.startswith(b"<!doctype")
            else b"text/plain; charset=utf-8"
        )
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-store"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
