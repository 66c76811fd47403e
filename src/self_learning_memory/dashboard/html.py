"""A tiny HTML vocabulary for the dashboard's server-rendered pages: every value goes through
:func:`esc` unless it is already :class:`Html` (markup this package built), so nothing a store
holds (task descriptions, tool output) can inject markup."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from urllib.parse import urlencode

__all__ = ["Html", "esc", "layout", "link", "table", "url"]

NAV = (
    ("", "Overview"),
    ("episodes", "Episodes"),
    ("patterns", "Patterns"),
    ("agents", "Agents"),
)


class Html(str):
    """Markup that is safe to insert as is (built here, its values escaped)."""

    __slots__ = ()


def esc(value: object) -> Html:
    if isinstance(value, Html):
        return value
    return Html(escape("" if value is None else str(value), quote=True))


def url(prefix: str, path: str = "", **query: object) -> str:
    """``prefix/path?query`` with the ``None`` values of ``query`` left out."""
    params = {k: str(v) for k, v in query.items() if v is not None and v != ""}
    base = f"{prefix}/{path}" if path else f"{prefix}/"
    return f"{base}?{urlencode(params)}" if params else base


def link(href: str, text: object, cls: str = "") -> Html:
    extra = f' class="{esc(cls)}"' if cls else ""
    return Html(f'<a href="{esc(href)}"{extra}>{esc(text)}</a>')


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], cls: str = "data") -> Html:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    if not body:
        body = f'<tr><td colspan="{len(headers)}" class="empty">nothing yet</td></tr>'
    return Html(
        f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


def layout(prefix: str, active: str, title: str, body: Html) -> str:
    """A whole page: head (the packaged stylesheet, no external origin), navigation, body."""
    nav = "".join(
        f'<a href="{esc(url(prefix, path))}"'
        + (' class="active" aria-current="page"' if path == active else "")
        + f">{esc(name)}</a>"
        for path, name in NAV
    )
    return (
        "<!doctype html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · memory dashboard</title>"
        '<link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{esc(prefix)}/static/dashboard.css">'
        "</head><body>"
        f'<header><span class="brand">self-learning memory</span><nav>{nav}</nav>'
        '<span class="readonly">read-only</span></header>'
        f"<main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )
