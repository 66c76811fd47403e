"""`memory-cli logs` (alias `log`): episode steps read as an activity log (analyze, search,
stats in ``activity.py``, export in ``export.py``, over a ``--since`` window, in SQL:
``storage/step_queries.py``), and ``tail`` (``tail.py``) of the structured log files the CLI
and the MCP server write to ``<data dir>/logs``."""

from __future__ import annotations

import typer

from . import activity, export, tail

__all__ = ["app"]

app = typer.Typer(
    help="Episode steps as an activity log, and the CLI/MCP log files (alias: log).",
    no_args_is_help=True,
)

# in help order
app.command("analyze")(activity.analyze)
app.command("search")(activity.search)
app.command("stats")(activity.stats)
app.command("export")(export.export)
app.command("tail")(tail.tail)
