"""The ``memory-cli`` application: global options and the command groups.

Each group lives in ``cli/commands/<group>.py`` (a larger one in a ``cli/commands/<group>/``
package) and exposes ``app`` (a typer group); command modules import the library lazily. A
real process (``main``) builds only the group it was asked for (typer inspects every command's
signature when it builds the tree: with 8 groups and their aliases that is most of a command's
start-up); ``app`` (all groups) serves ``--help``, shell completion and typer's test runner.
"""

from __future__ import annotations

import importlib
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from .state import CliState, fail, get_state, setup_logging

__all__ = ["GROUPS", "build_app", "main", "requested_group"]  # and ``app`` (lazy)

# group name -> alias (each is ``cli/commands/<name>``, a module or a package), in help order
GROUPS: dict[str, str] = {
    "episode": "ep",
    "pattern": "pat",
    "storage": "st",
    "config": "cfg",
    "health": "hp",
    "backup": "bak",
    "monitor": "mon",
    "logs": "log",
    "sandbox": "sb",
}
_ALIASES = {alias: name for name, alias in GROUPS.items()}
PROG_NAME = "memory-cli"
COMPLETE_VAR = "_MEMORY_CLI_COMPLETE"  # the shell completion's variable, as in the scripts
_VALUE_OPTIONS = ("--config", "-c", "--format", "-f", "--data-dir", "-d")


class OutputFormat(StrEnum):
    human = "human"
    json = "json"
    yaml = "yaml"


def _root_app() -> typer.Typer:
    return typer.Typer(
        name=PROG_NAME,
        help="The self-learning memory from the command line: record agent episodes, see what was "
        "learned, search, back up, monitor and configure the store, run sandboxed code.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        epilog="Exit codes: 0 ok, 1 internal error, 2 usage, 3 validation, 4 not found, 5 invalid "
        "state, 6 configuration, 7 storage, 8 storage unavailable, 9 timeout, 10 capability "
        "unavailable; `sandbox run`: 11 the code failed, 12 it timed out, 13 security violation. "
        "Docs: docs/cli.md",
    )


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
    setup_logging(verbose, ctx)
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


def completion(
    ctx: typer.Context,
    shell: Annotated[str, typer.Argument(help="bash, zsh, fish or powershell")],
) -> None:
    """Print the shell completion script (e.g. `memory-cli completion bash >> ~/.bashrc`)."""
    state = get_state(ctx)
    shells = ("bash", "zsh", "fish", "powershell")
    if shell not in shells:
        from ..errors import ValidationError

        fail(state, ValidationError("SHELL", f"'{shell}' is not supported", ", ".join(shells)))
    # typer's completion protocol: the program run with _MEMORY_CLI_COMPLETE=source_<shell>
    # prints the script for that shell and exits
    before = os.environ.get(COMPLETE_VAR)
    os.environ[COMPLETE_VAR] = f"source_{shell}"
    try:
        build_app()(args=[], prog_name=PROG_NAME, complete_var=COMPLETE_VAR)
    except SystemExit as done:
        if done.code not in (0, None):
            raise typer.Exit(int(done.code) if isinstance(done.code, int) else 1) from None
    finally:
        if before is None:
            del os.environ[COMPLETE_VAR]
        else:
            os.environ[COMPLETE_VAR] = before


def build_app(only: str | None = None) -> typer.Typer:
    """The application with every group, or with one group (and its alias) only."""
    root = _root_app()
    root.callback()(main_options)
    for name, alias in GROUPS.items():
        if only is not None and name != only:
            continue
        group = importlib.import_module(f".commands.{name}", __package__).app
        root.add_typer(group, name=name)
        root.add_typer(group, name=alias, hidden=True)
    if only is None:
        from .commands.dashboard import dashboard

        root.command("dashboard")(dashboard)
        root.command("completion")(completion)
    return root


def requested_group(argv: list[str]) -> str | None:
    """The group named by the first positional argument after the global options, if any."""
    args = iter(argv)
    for arg in args:
        if arg in _VALUE_OPTIONS:
            next(args, None)
        elif arg.startswith("-"):
            if arg in ("-h", "--help"):
                return None
        else:
            return _ALIASES.get(arg, arg if arg in GROUPS else None)
    return None


def __getattr__(name: str) -> Any:
    if name == "app":  # built on first use: tests and ``--help`` need every group
        built = build_app()
        globals()["app"] = built
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console entry point."""
    completing = any(k.startswith(COMPLETE_VAR) for k in os.environ)
    group = None if completing else requested_group(sys.argv[1:])
    if group is None:
        __getattr__("app")()
    else:
        build_app(group)()
