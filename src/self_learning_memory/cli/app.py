"""The ``memory-cli`` application: global options and the command groups.

Each group lives in ``cli/commands/<group>.py`` and exposes ``app`` (a typer group); command
modules import the library lazily, so ``--help`` and commands that need no model start fast.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from .commands import backup, config, episode, health, logs, monitor, pattern, storage
from .state import CliState, fail, get_state, setup_logging

__all__ = ["app", "main"]


class OutputFormat(StrEnum):
    human = "human"
    json = "json"
    yaml = "yaml"


app = typer.Typer(
    name="memory-cli",
    help="The self-learning memory from the command line: record agent episodes, see what was "
    "learned, search, back up, monitor and configure the store.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes: 0 ok, 1 internal error, 2 usage, 3 validation, 4 not found, 5 invalid "
    "state, 6 configuration, 7 storage, 8 storage unavailable, 9 timeout, 10 capability "
    "unavailable. Docs: docs/cli.md",
)


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Config file (TOML, JSON or YAML).", envvar="MEMORY_CLI_CONFIG"
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat | None,
        typer.Option(
            "--format", "-f", help="Output format (default: the config's cli.default_format)."
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logs and tracebacks (stderr).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Commands that write only report what they would do.")
    ] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colours in human output.", envvar="NO_COLOR")
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            "-d",
            help="Data directory (else $MEMORY_DATA_DIR, else the user data dir).",
        ),
    ] = None,
) -> None:
    setup_logging(verbose)
    state = CliState(
        config_path=config,
        verbose=verbose,
        dry_run=dry_run,
        no_color=no_color,
        data_dir=data_dir,
    )
    ctx.obj = state
    try:
        state.format = output_format.value if output_format is not None else state.default_format()
    except Exception as exc:
        fail(state, exc)


app.add_typer(episode.app, name="episode")
app.add_typer(episode.app, name="ep", hidden=True)
app.add_typer(pattern.app, name="pattern")
app.add_typer(pattern.app, name="pat", hidden=True)
app.add_typer(storage.app, name="storage")
app.add_typer(storage.app, name="st", hidden=True)
app.add_typer(config.app, name="config")
app.add_typer(config.app, name="cfg", hidden=True)
app.add_typer(health.app, name="health")
app.add_typer(health.app, name="hp", hidden=True)
app.add_typer(backup.app, name="backup")
app.add_typer(backup.app, name="bak", hidden=True)
app.add_typer(monitor.app, name="monitor")
app.add_typer(monitor.app, name="mon", hidden=True)
app.add_typer(logs.app, name="logs")
app.add_typer(logs.app, name="log", hidden=True)


@app.command("completion")
def completion(
    ctx: typer.Context,
    shell: Annotated[str, typer.Argument(help="bash, zsh, fish or powershell")],
) -> None:
    """Print the shell completion script (e.g. `memory-cli completion bash >> ~/.bashrc`)."""
    from typer._completion_shared import get_completion_script

    state = get_state(ctx)
    shells = ("bash", "zsh", "fish", "powershell")
    if shell not in shells:
        from ..errors import ValidationError

        fail(state, ValidationError("SHELL", f"'{shell}' is not supported", ", ".join(shells)))
    script = get_completion_script(
        prog_name="memory-cli", complete_var="_MEMORY_CLI_COMPLETE", shell=shell
    )
    sys.stdout.write(script + "\n")


def main() -> None:
    """Console entry point."""
    app()
