"""The option and the size format the `memory-cli storage` commands share."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["DryRunOpt", "mib"]

DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Only report what would be done (same as the global).")
]


def mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 1_048_576:.2f} MiB ({n} bytes)"
