"""Files a command writes: checked before the work (``check_output``), replaced atomically
(``write_atomic``), and charts (``write_plot``: ``--plot FILE.svg`` or ``.png``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .state import CliState, fail

if TYPE_CHECKING:
    from ..presenters.charts import Chart

__all__ = ["check_output", "write_atomic", "write_plot"]


def check_output(state: CliState, path: Path, field: str = "--output") -> None:
    from ..errors import ValidationError

    if path.is_dir():
        fail(state, ValidationError(field, f"{path} is a directory", "a file path"))
    if not path.parent.is_dir():
        fail(
            state,
            ValidationError(field, f"the directory {path.parent} does not exist", "a file"),
        )


def write_atomic(state: CliState, path: Path, data: str | bytes, field: str = "--output") -> None:
    """A temporary file in the same directory, renamed over ``path`` when complete."""
    import os
    import tempfile

    from ..errors import ValidationError

    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # readable like a plain open() (textfile collectors)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        fail(state, ValidationError(field, f"cannot write {path}: {exc.strerror}"))


def check_plot(state: CliState, path: Path) -> None:
    """Before any work: the suffix is one we draw, and the file can be written there."""
    from ..errors import ValidationError
    from ..presenters.charts import PLOT_SUFFIXES

    if path.suffix.lower() not in PLOT_SUFFIXES:
        fail(
            state,
            ValidationError(
                "--plot",
                f"'{path.name}' has suffix '{path.suffix or '(none)'}'",
                " or ".join(PLOT_SUFFIXES),
            ),
        )
    check_output(state, path, "--plot")


def write_plot(state: CliState, chart: Chart, path: Path) -> int:
    """Draw ``chart`` into ``path`` (SVG or PNG by suffix); returns the bytes written."""
    from ..presenters.charts import plot_bytes

    try:
        data = plot_bytes(chart, path)
    except Exception as exc:  # bad suffix, matplotlib missing: one line and the exit code
        fail(state, exc)
    write_atomic(state, path, data, "--plot")
    return len(data)
