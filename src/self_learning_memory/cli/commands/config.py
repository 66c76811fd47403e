"""`memory-cli config` (alias `cfg`): show, validate, check, init, wizard, reset.

The configuration itself lives in the library (``self_learning_memory.settings``); these
commands load it, print it (secrets masked) and write commented TOML files. None of them opens
the store.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..output import emit, table
from ..state import CliState, dry_run_report, fail, get_state

if TYPE_CHECKING:
    from rich.console import Console

    from ...settings.loader import LoadedSettings

app = typer.Typer(
    help="Show, validate, check and write the configuration (alias: cfg).",
    no_args_is_help=True,
)

DEFAULT_FILE = "memory-cli.toml"
PRESET_CHOICES = ("local", "cloud", "memory", "custom")

ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")]
PathArg = Annotated[
    Path | None,
    typer.Argument(
        help=f"File to write (default: --config, else ./{DEFAULT_FILE}).", show_default=False
    ),
]


def _load(state: CliState) -> LoadedSettings:
    try:
        return state.settings()
    except Exception as exc:
        fail(state, exc)


def _file_info(loaded: LoadedSettings) -> dict[str, Any]:
    file = loaded.file
    return {
        "config_file": None if file is None else str(file.path),
        "config_file_origin": None if file is None else file.origin,
        "config_file_format": None if file is None else file.format,
    }


@app.command("show")
def show(
    ctx: typer.Context,
    key: Annotated[
        str | None, typer.Argument(help="Only this key (e.g. storage.pool_size) or section.")
    ] = None,
) -> None:
    """The effective configuration: every key, its value and where it came from (default,
    smart default, preset, file and line, environment variable or flag). Secrets are masked."""
    state = get_state(ctx)
    loaded = _load(state)
    values = loaded.show()
    if key is not None:
        from ...settings.keys import KEY_ALIASES

        key = KEY_ALIASES.get(key, key)  # an old name shows the key it moved to
        selected = {k: v for k, v in values.items() if k == key or k.startswith(key + ".")}
        if not selected:
            from ...errors import ValidationError

            fail(
                state,
                ValidationError(
                    "KEY",
                    f"'{key}' is not a config key or section",
                    "a key listed by `memory-cli config show`",
                ),
            )
        values = selected
    data = {
        **_file_info(loaded),
        "preset": loaded.preset,
        "data_dir": str(state.resolved_data_dir()),
        "output_format": state.format,
        "settings": values,
    }

    def human(console: Console, d: dict[str, Any]) -> None:
        file = d["config_file"] or "none (defaults, environment and flags only)"
        origin = f" ({d['config_file_origin']})" if d["config_file_origin"] else ""
        console.print(f"config file: {file}{origin}")
        console.print(f"preset: {d['preset'] or '-'}    data dir: {d['data_dir']}")
        rows = [[k, _text(v["value"]), v["source"]] for k, v in d["settings"].items()]
        table(console, "Effective configuration", ["key", "value", "source"], rows)

    emit(state, data, human)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "[]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "-" if value is None else str(value)


@app.command("validate")
def validate(ctx: typer.Context) -> None:
    """Check every rule: errors (exit code 6) and warnings, each naming the field, the value
    and the limit. A file that cannot be parsed is reported with its line."""
    state = get_state(ctx)
    loaded = _load(state)
    report = loaded.validate()
    data = {**_file_info(loaded), **report.to_dict()}
    for issue in data["errors"] + data["warnings"]:
        issue["source"] = loaded.sources.get(issue["field"], "default")

    def human(console: Console, d: dict[str, Any]) -> None:
        for issue in d["errors"]:
            console.print(f"[red]error[/red]   {_issue(issue)}")
        for issue in d["warnings"]:
            console.print(f"[yellow]warning[/yellow] {_issue(issue)}")
        verdict = "valid" if d["valid"] else "invalid"
        console.print(
            f"configuration {verdict}: {len(d['errors'])} error(s), {len(d['warnings'])} warning(s)"
        )

    emit(state, data, human)
    if not report.ok:
        raise typer.Exit(6)


def _issue(issue: dict[str, Any]) -> str:
    from rich.markup import escape

    return escape(
        f"{issue['field']} = {issue['value']!r}: {issue['message']} "
        f"(limit: {issue['limit']}; from {issue['source']})"
    )


@app.command("check")
def check(ctx: typer.Context) -> None:
    """Recommendations for this machine and configuration (never fails on warnings)."""
    from ...settings.recommendations import recommendations

    state = get_state(ctx)
    loaded = _load(state)
    items = recommendations(loaded, state.resolved_data_dir())
    data = {**_file_info(loaded), "recommendations": items}

    def human(console: Console, d: dict[str, Any]) -> None:
        if not d["recommendations"]:
            console.print("nothing to recommend: the configuration suits this machine")
            return
        rows = [[r["level"], r["topic"], r["message"]] for r in d["recommendations"]]
        table(console, "Recommendations", ["level", "topic", "recommendation"], rows)

    emit(state, data, human)


def _target(state: CliState, path: Path | None) -> Path:
    target = path or state.config_path or Path(DEFAULT_FILE)
    return target.expanduser()


def _refuse_existing(state: CliState, target: Path, force: bool) -> None:
    from ...errors import ConfigurationError

    if target.suffix.lower() != ".toml":
        fail(
            state,
            ConfigurationError(
                f"Cannot write {target}: config files are written as TOML (limit: a .toml path)."
            ),
        )
    if target.is_dir():
        fail(state, ConfigurationError(f"Cannot write {target}: it is a directory."))
    if target.exists() and not force:
        fail(
            state,
            ConfigurationError(
                f"Config file {target} already exists (limit: pass --force to overwrite it)."
            ),
        )


@app.command("init")
def init(
    ctx: typer.Context,
    path: PathArg = None,
    preset: Annotated[
        str | None,
        typer.Option("--preset", "-p", help="local, cloud, memory or custom.", show_default=False),
    ] = None,
    force: ForceOpt = False,
    stdout: Annotated[
        bool, typer.Option("--stdout", help="Print the file instead of writing it.")
    ] = False,
) -> None:
    """Write a commented TOML config file: every key documented, only the preset set (a
    partial file is valid; uncomment what you want to change)."""
    from ...settings.loader import load_settings
    from ...settings.toml_writer import render_toml
    from ...settings.wizard import write_atomically

    state = get_state(ctx)
    if preset is not None and preset not in PRESET_CHOICES:
        from ...errors import ValidationError

        fail(
            state,
            ValidationError("--preset", f"'{preset}' is not a preset", ", ".join(PRESET_CHOICES)),
        )
    target = _target(state, path)
    try:
        effective = load_settings(discover=False, default_preset=preset)
    except Exception as exc:
        fail(state, exc)
    explicit = {"preset": preset} if preset else {}
    text = render_toml(explicit, effective.settings, sources=effective.sources)
    if stdout:
        sys.stdout.write(text)
        return
    _refuse_existing(state, target, force)
    if state.dry_run:
        dry_run_report(
            state,
            "write a config file",
            path=str(target),
            preset=preset,
            overwrite=target.exists(),
            bytes=len(text.encode()),
        )
        return
    try:
        write_atomically(target, text)
    except Exception as exc:
        fail(state, exc)
    emit(
        state,
        {"path": str(target), "preset": preset, "written": True, "bytes": len(text.encode())},
        lambda c, d: c.print(f"wrote {d['path']} (check it with `memory-cli config validate`)"),
    )


@app.command("wizard")
def wizard(ctx: typer.Context, path: PathArg = None, force: ForceOpt = False) -> None:
    """Five steps (preset, database, storage, CLI, review), then a commented TOML file.
    Interactive in a terminal; with piped input it reads one answer per line (empty line: the
    default)."""
    from ...settings.wizard import LinePrompter, Prompter, QuestionaryPrompter, run_wizard

    state = get_state(ctx)
    target = _target(state, path)
    _refuse_existing(state, target, force)

    def out(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    prompter: Prompter
    if sys.stdin.isatty() and sys.stdout.isatty():
        prompter = QuestionaryPrompter()
    else:
        prompter = LinePrompter(sys.stdin, out)
    try:
        result = run_wizard(prompter, target, out=out, write=not state.dry_run)
    except Exception as exc:
        fail(state, exc)
    data = {
        "path": str(target),
        "saved": result.saved,
        "dry_run": state.dry_run,
        "values": result.values,
        **result.report.to_dict(),
    }
    if state.dry_run:
        data["would"] = "write a config file"
    emit(
        state,
        data,
        lambda c, d: c.print(
            f"wrote {d['path']}" if d["saved"] else f"not saved ({d['path']} unchanged)"
        ),
    )


@app.command("reset")
def reset(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Argument(
            help="File to reset (default: --config, else the discovered file).", show_default=False
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Replace the config file with the commented defaults (every key back to its default);
    the old file is kept as FILE.bak."""
    from ...settings.files import discover_config_file
    from ...settings.loader import load_settings
    from ...settings.toml_writer import render_toml
    from ...settings.wizard import write_atomically

    state = get_state(ctx)
    target = path or state.config_path or discover_config_file()
    if target is None or not target.exists():
        emit(
            state,
            {
                "path": None if target is None else str(target),
                "reset": False,
                "reason": "no config file: the defaults already apply",
            },
            lambda c, d: c.print(d["reason"]),
        )
        return
    if target.is_dir():
        from ...errors import ConfigurationError

        fail(state, ConfigurationError(f"Cannot reset {target}: it is a directory."))
    backup = target.with_name(target.name + ".bak")
    if state.dry_run:
        dry_run_report(
            state, "reset the config file to the defaults", path=str(target), backup=str(backup)
        )
        return
    if not yes and not typer.confirm(f"Reset {target} to the defaults?", err=True):
        fail(state, KeyboardInterrupt())
    try:
        if target.suffix.lower() == ".toml":
            effective = load_settings(discover=False)
            text = render_toml({}, effective.settings, sources=effective.sources)
        else:  # JSON, YAML or another extension (read as JSON): an empty object
            text = "{}\n"
        write_atomically(backup, target.read_text(encoding="utf-8", errors="replace"))
        write_atomically(target, text)
    except Exception as exc:
        fail(state, exc)
    emit(
        state,
        {"path": str(target), "reset": True, "backup": str(backup)},
        lambda c, d: c.print(f"reset {d['path']} (old file kept as {d['backup']})"),
    )
