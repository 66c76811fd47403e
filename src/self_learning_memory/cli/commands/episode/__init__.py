"""`memory-cli episode` (alias `ep`): create, list, view, log-step, complete, fail, search,
known-failures, delete. Every command opens the store, does one thing and closes it, so a
create, a log-step, a complete and a view can each run in their own process.

``record.py`` holds the commands that write, ``read.py`` those that read, ``search.py`` the
retrieval ones and ``arguments.py`` the choices and parsers they share."""

from __future__ import annotations

import typer

from . import read, record, search
from .arguments import OutcomeArg, StatusArg, outcome_value, parse_since

__all__ = ["OutcomeArg", "StatusArg", "app", "outcome_value", "parse_since"]

app = typer.Typer(
    help="Record and inspect episodes (alias: ep).",
    no_args_is_help=True,
)

# in help order
app.command("create")(record.create)
app.command("list")(read.list_episodes)
app.command("view")(read.view)
app.command("get", hidden=True)(read.get)
app.command("log-step")(record.log_step)
app.command("complete")(record.complete)
app.command("fail")(record.fail_episode)
app.command("search")(search.search)
app.command("known-failures")(search.known_failures)
app.command("delete")(record.delete)
