"""docs/cli.md documents every command of the real ``memory-cli`` application, and every command
has help text: the tree is walked from the typer app itself (all groups, all subcommands), so a
new command without a docs entry fails here, naming it."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from self_learning_memory.cli.app import build_app

ROOT = Path(__file__).resolve().parents[2]
CLI_DOC = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


def _command_name(info: typer.models.CommandInfo) -> str:
    if info.name:
        return info.name
    assert info.callback is not None
    return info.callback.__name__.replace("_", "-")


def walk(app: typer.Typer, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """Every visible command as its words (``("storage", "migrate")``) -> its help text."""
    found: dict[tuple[str, ...], str] = {}
    for command in app.registered_commands:
        if command.hidden:  # aliases such as `episode get`
            continue
        callback = command.callback
        text = command.help or (callback.__doc__ if callback is not None else None) or ""
        found[(*prefix, _command_name(command))] = text.strip()
    for group in app.registered_groups:
        if group.hidden or group.typer_instance is None:  # group aliases such as `ep`
            continue
        assert group.name is not None
        found |= walk(group.typer_instance, (*prefix, group.name))
    return found


def documented(words: tuple[str, ...], doc: str = CLI_DOC) -> bool:
    """A command is documented when its section (``## <group>``; a top-level command has a
    section of its own) holds a code span that starts with the command, with or without its
    group: ``migrate [--dry-run]`` or ``storage migrate``."""
    sections = {
        match.group(1): match.group(2)
        for match in re.finditer(r"^## `?([\w-]+)`?[^\n]*\n(.*?)(?=^## |\Z)", doc, re.S | re.M)
    }
    if len(words) == 1:
        return words[0] in sections
    section = sections.get(words[0], "")
    spans = [span.split() for span in re.findall(r"`([^`\n]+)`", section)]
    return any(span[: len(words)] == list(words) or span[:1] == [words[-1]] for span in spans)


def test_the_tree_walk_finds_the_groups_and_their_commands() -> None:
    commands = walk(build_app())
    assert ("episode", "create") in commands
    assert ("storage", "migrate") in commands
    assert ("completion",) in commands
    assert ("episode", "get") not in commands  # hidden alias
    assert not any(words[0] in ("ep", "st") for words in commands)
    assert len(commands) > 40


def test_every_cli_command_is_in_the_cli_docs() -> None:
    missing = [" ".join(words) for words in walk(build_app()) if not documented(words)]
    assert not missing, f"commands missing from docs/cli.md: {', '.join(missing)}"


def test_every_cli_command_has_help_text() -> None:
    silent = [" ".join(words) for words, text in walk(build_app()).items() if not text]
    assert not silent, f"commands without help text: {', '.join(silent)}"


def test_the_check_fails_on_an_undocumented_command() -> None:
    assert documented(("storage", "vacuum"))
    assert not documented(("storage", "teleport"))
    assert not documented(("nosuch",))
    doc = "## storage (alias `st`)\n| `status` | counts |\n"
    assert documented(("storage", "status"), doc)
    assert not documented(("storage", "migrate"), doc)
