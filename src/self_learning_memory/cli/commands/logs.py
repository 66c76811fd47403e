"""`memory-cli logs`: (being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="logs commands.", no_args_is_help=True)
