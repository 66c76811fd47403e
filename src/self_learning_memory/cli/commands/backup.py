"""`memory-cli backup`: (being built)."""

from __future__ import annotations

import typer

app = typer.Typer(help="backup commands.", no_args_is_help=True)
