"""Rendering results: ``human`` (rich), ``json`` (always parseable: nothing else is written to
stdout) and ``yaml``. Errors go to stderr as one line plus a hint."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from rich.console import Console

    from .state import CliState

__all__ = ["emit", "jsonable", "print_error", "stdout_console", "table"]


def jsonable(value: Any) -> Any:
    """Plain JSON-ready data from pydantic models, dataclasses, UUIDs, datetimes and enums."""
    from dataclasses import asdict, is_dataclass

    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def stdout_console(state: CliState) -> Console:
    from rich.console import Console

    return Console(no_color=state.no_color, highlight=False, soft_wrap=False)


def _stderr_console(no_color: bool) -> Console:
    from rich.console import Console

    return Console(stderr=True, no_color=no_color, highlight=False)


def emit(state: CliState, data: Any, human: Callable[[Console, Any], None] | None = None) -> None:
    """Print a command's result in the chosen format. ``human`` renders it for people; without
    one, the JSON-ready data is shown as an indented key/value view."""
    payload = jsonable(data)
    if state.format == "json":
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    elif state.format == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump(payload, sort_keys=False, allow_unicode=True))
    else:
        console = stdout_console(state)
        if human is not None:
            human(console, data)
        else:
            _render_plain(console, payload)
    sys.stdout.flush()


def _render_plain(console: Console, payload: Any, indent: int = 0) -> None:
    pad = "  " * indent
    if isinstance(payload, dict):
        for key, value in payload.items():
            if isinstance(value, dict | list) and value:
                console.print(f"{pad}[bold]{key}[/bold]:")
                _render_plain(console, value, indent + 1)
            else:
                console.print(f"{pad}[bold]{key}[/bold]: {_scalar(value)}")
    elif isinstance(payload, list):
        for item in payload:
            if isinstance(item, dict | list):
                console.print(f"{pad}-")
                _render_plain(console, item, indent + 1)
            else:
                console.print(f"{pad}- {_scalar(item)}")
    else:
        console.print(f"{pad}{_scalar(payload)}")


def _scalar(value: Any) -> str:
    from rich.markup import escape

    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return "none"
    return escape(str(value))


def table(
    console: Console, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for column in columns:
        t.add_column(column)
    for row in rows:
        t.add_row(*(_scalar(v) for v in row))
    console.print(t)


def print_error(message: str, hint: str | None, *, no_color: bool) -> None:
    from rich.markup import escape

    console = _stderr_console(no_color)
    console.print(f"[bold red]error:[/bold red] {escape(message)}")
    if hint:
        console.print(f"[dim]hint:[/dim] {escape(hint)}")
