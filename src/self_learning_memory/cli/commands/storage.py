"""`memory-cli storage`: (being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="storage commands.", no_args_is_help=True)
