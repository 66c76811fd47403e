"""`memory-cli health`: (being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="health commands.", no_args_is_help=True)
