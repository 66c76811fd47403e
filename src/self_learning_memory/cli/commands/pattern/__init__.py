"""`memory-cli pattern` (alias `pat`): list, view, analyze, analyze-trends, effectiveness, decay.

Patterns come from the durable store (filtered in SQL), with their real usage counters
(``browse.py``); effectiveness is recomputed from those counters and `decay --force` really
removes the patterns below the threshold (``effectiveness.py``); ``trends.py`` analyses the
episodes over time."""

from __future__ import annotations

import typer

from . import browse, effectiveness, trends

__all__ = ["app"]

app = typer.Typer(
    help="Inspect learned patterns, their effectiveness, and decay them (alias: pat).",
    no_args_is_help=True,
)

# in help order
app.command("list")(browse.list_patterns)
app.command("view")(browse.view)
app.command("analyze")(browse.analyze)
app.command("analyze-trends")(trends.analyze_trends)
app.command("effectiveness")(effectiveness.effectiveness)
app.command("decay")(effectiveness.decay)
