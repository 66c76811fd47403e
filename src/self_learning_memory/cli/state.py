"""What every command shares: the global options, the configuration, opening the memory, and
turning errors into one line, a hint and a documented exit code."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from ..errors import SelfLearningMemoryError
from .output import print_error

if TYPE_CHECKING:
    from ..config import MemoryConfig
    from ..core.memory import SelfLearningMemory
    from ..settings.loader import LoadedSettings

__all__ = ["EXIT_CODES", "CliState", "fail", "get_state", "run_with_memory"]

T = TypeVar("T")

# One exit code per error class (docs/cli.md). 2 is click's usage error.
EXIT_CODES: dict[str, int] = {
    "ok": 0,
    "internal_error": 1,
    "usage_error": 2,
    "validation_error": 3,
    "not_found": 4,
    "invalid_state": 5,
    "configuration_error": 6,
    "storage_error": 7,
    "storage_unavailable": 8,
    "timeout": 9,
    "capability_unavailable": 10,
    # `sandbox run`: the code's result variant (the command itself worked)
    "sandbox_error": 11,
    "sandbox_timeout": 12,
    "sandbox_violation": 13,
    "interrupted": 130,
}

HINTS: dict[str, str] = {
    "validation_error": "check the value against the limit above (see --help)",
    "not_found": "list existing ids with `memory-cli episode list` or `memory-cli pattern list`",
    "invalid_state": "the object is not in a state that allows this (an episode: see "
    "`memory-cli episode view ID`; a restore target: pass --force)",
    "configuration_error": "run `memory-cli config validate` to see every problem in the config",
    "storage_error": "run `memory-cli storage verify` to check the store",
    "storage_unavailable": "another process may hold a long write; retry, or run "
    "`memory-cli storage health`",
    "circuit_open": "the primary store is failing; see `memory-cli health check`",
    "storage_access": "retrying will not help: fix the path named above",
    "data_integrity": "run `memory-cli storage verify`; restore from a backup if it fails",
    "timeout": "retry; if it keeps happening see `memory-cli health check`",
    "capability_unavailable": "install the extra named above",
}

log = logging.getLogger("self_learning_memory.cli")


@dataclass
class CliState:
    """The global options of one invocation."""

    config_path: Path | None = None
    format: str = "human"
    verbose: bool = False
    dry_run: bool = False
    no_color: bool = False
    data_dir: Path | None = None
    _config: MemoryConfig | None = field(default=None, repr=False)
    _settings: LoadedSettings | None = field(default=None, repr=False)

    def settings(self) -> LoadedSettings:
        """The effective configuration (docs/configuration.md): --data-dir > ``MEMORY_*`` >
        the --config / $MEMORY_CLI_CONFIG file, else a discovered file > preset > smart
        defaults. A malformed file raises ConfigurationError naming the file and line."""
        if self._settings is None:
            from ..settings.loader import load_settings

            flags: dict[str, tuple[Any, str]] = {}
            if self.data_dir is not None:
                flags["storage.data_dir"] = (str(self.data_dir.expanduser()), "--data-dir")
            self._settings = load_settings(self.config_path, flags=flags)
        return self._settings

    def memory_config(self) -> MemoryConfig:
        """The library's config from the settings; raises ConfigurationError (exit 6) when the
        settings have validation errors."""
        if self._config is None:
            self._config = self.settings().memory_config()
        return self._config

    def default_format(self) -> str:
        """``cli.default_format`` through the precedence (``$MEMORY_CLI_DEFAULT_FORMAT`` /
        ``$MEMORY_FORMAT``, the file, the preset, json under CI, else human), without loading
        the schema. A broken config file does not stop the CLI here: the commands that need
        the config report it, and ``config init --force`` / ``config reset`` can repair it."""
        from ..errors import ConfigurationError
        from ..settings.layers import quick_default_format

        try:
            return quick_default_format(self.config_path)
        except ConfigurationError:
            return quick_default_format(None, discover=False)

    def resolved_data_dir(self) -> Path:
        """--data-dir, else the settings' data directory."""
        if self.data_dir is not None:
            return self.data_dir.expanduser()
        return self.settings().data_dir()


def get_state(ctx: typer.Context) -> CliState:
    state = ctx.find_root().obj
    if not isinstance(state, CliState):  # a command invoked without the app callback
        state = CliState()
        ctx.find_root().obj = state
    return state


def fail(state: CliState, exc: BaseException) -> NoReturn:
    """Print one line and a hint (the traceback with --verbose), exit with the error's code."""
    if isinstance(exc, SelfLearningMemoryError):
        kind = exc.kind
        code = exc.exit_code
        message = exc.message
    elif isinstance(exc, KeyboardInterrupt):
        kind, code, message = "interrupted", EXIT_CODES["interrupted"], "interrupted"
    else:
        kind, code = "internal_error", EXIT_CODES["internal_error"]
        message = f"internal error: {type(exc).__name__}: {exc}"
    if state.verbose:
        traceback.print_exception(exc, file=sys.stderr)
    log.info("command failed (%s, exit %d): %s", kind, code, message, extra={"exit_code": code})
    hint = HINTS.get(kind)
    if kind == "internal_error" and not state.verbose:
        hint = "run again with --verbose for the traceback, and report it"
    print_error(message, hint, no_color=state.no_color)
    raise typer.Exit(code)


def run_with_memory(state: CliState, action: Callable[[SelfLearningMemory], Awaitable[T]]) -> T:
    """Open the memory, run one action, close it (buffered steps are flushed), map errors."""
    from ..core.memory import SelfLearningMemory

    async def go() -> T:
        async with SelfLearningMemory.open(
            state.resolved_data_dir(), config=state.memory_config()
        ) as memory:
            return await action(memory)

    return run(state, go)


def run(state: CliState, factory: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(_awaited(factory))
    except typer.Exit:
        raise
    except (KeyboardInterrupt, Exception) as exc:  # our errors included: fail() maps them
        fail(state, exc)


async def _awaited(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()


def setup_logging(verbose: bool, ctx: typer.Context | None = None) -> None:
    """Logs never go to stdout (it carries results): stderr gets WARNING and up (DEBUG with -v);
    ``<data dir>/logs/memory-cli.log`` gets INFO and up as JSON lines (``memory-cli logs tail``)."""
    root = logging.getLogger()
    for old in root.handlers:
        old.close()
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    _add_log_file(root, verbose, ctx)


def _add_log_file(root: logging.Logger, verbose: bool, ctx: typer.Context | None) -> None:
    """The CLI's structured log file, in the data directory of this invocation (``ctx``, the
    root command's context, holds ``--data-dir``); records the command (names only, never
    argument values) and its duration."""
    import time

    from ..log_files import add_log_file, log_path
    from ..paths import resolve_data_dir

    try:
        path = log_path(resolve_data_dir(ctx.params.get("data_dir") if ctx else None), "cli")
    except Exception:  # no usable data directory: the command itself will say so
        return
    level = logging.DEBUG if verbose else logging.INFO
    if add_log_file(root, path, "cli", level) is None or ctx is None:
        return
    command = _command_name(ctx.invoked_subcommand)
    started = time.perf_counter()
    log.info("command started: %s", command, extra={"command": command})

    def finished() -> None:
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        log.info(
            "command finished: %s", command, extra={"command": command, "duration_ms": elapsed}
        )

    ctx.call_on_close(finished)


def _command_name(group: str | None) -> str:
    """``group subcommand`` from argv (names only: a group takes no option before its
    subcommand, so the word after it is the subcommand)."""
    if group is None:
        return "memory-cli"
    argv = sys.argv[1:]
    if group in argv:
        after = argv[argv.index(group) + 1 : argv.index(group) + 2]
        if after and not after[0].startswith("-"):
            return f"{group} {after[0][:64]}"
    return group


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def check_text(name: str, value: str, limit: int) -> None:
    """CLI arguments are bounded too: no NUL bytes, at most ``limit`` characters."""
    from ..errors import ValidationError

    if "\x00" in value:
        raise ValidationError(name, "contains a NUL byte", "printable text")
    if len(value) > limit:
        raise ValidationError(name, f"is {len(value)} characters long", f"{limit} characters")


def dry_run_report(state: CliState, would: str, **details: Any) -> None:
    from .output import emit

    emit(state, {"dry_run": True, "would": would, **details})
