"""`memory-cli pattern`: (being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="pattern commands.", no_args_is_help=True)
