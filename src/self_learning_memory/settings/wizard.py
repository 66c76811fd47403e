"""The configuration wizard: five steps, then a commented TOML file.

1. preset (local / cloud / memory / custom); 2. database (data directory, optional store URL);
3. storage (cache size, pool); 4. CLI (output format); 5. review: a summary, the validator's
findings, "save anyway?" on errors, then save.

Questions go through a :class:`Prompter`, so tests (and non-interactive shells) can answer them:
:class:`QuestionaryPrompter` asks in the terminal, :class:`ScriptedPrompter` answers from a dict
keyed by question name (``preset``, ``data_dir``, ``database_url``, ``max_episodes_cache``,
``pool_size``, ``default_format``, ``save_anyway``, ``save``), and :class:`LinePrompter` reads one answer per line from a stream.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from ..errors import ConfigurationError
from .environment import FORMATS
from .loader import LoadedSettings, load_settings
from .presets import PRESETS
from .toml_writer import render_toml
from .validation import ValidationReport

__all__ = [
    "LinePrompter",
    "Prompter",
    "QuestionaryPrompter",
    "ScriptedPrompter",
    "WizardAnswers",
    "WizardResult",
    "run_wizard",
    "write_atomically",
]

WizardAnswers = Mapping[str, Any]

PRESET_LABELS = {
    "local": "local: SQLite store and LMDB cache in the data directory",
    "cloud": "cloud: Turso from $TURSO_URL, large cache, JSON output",
    "memory": "memory: throwaway store in the temp dir, tiny footprint (tests, CI)",
    "custom": "custom: the smart defaults for this machine",
}


class Prompter(Protocol):
    def select(self, key: str, message: str, choices: Sequence[str], default: str) -> str: ...
    def text(self, key: str, message: str, default: str) -> str: ...
    def confirm(self, key: str, message: str, default: bool) -> bool: ...


class WizardCancelled(ConfigurationError):
    """The person stopped the wizard (Ctrl-C, or declined to save)."""


@dataclass
class ScriptedPrompter:
    """Answers from a dict; a missing answer takes the question's default."""

    answers: WizardAnswers
    asked: list[str] = field(default_factory=list)

    def select(self, key: str, message: str, choices: Sequence[str], default: str) -> str:
        self.asked.append(key)
        return str(self.answers.get(key, default))

    def text(self, key: str, message: str, default: str) -> str:
        self.asked.append(key)
        return str(self.answers.get(key, default))

    def confirm(self, key: str, message: str, default: bool) -> bool:
        self.asked.append(key)
        value = self.answers.get(key, default)
        return value if isinstance(value, bool) else str(value).lower() in ("y", "yes", "true")


@dataclass
class LinePrompter:
    """One answer per line (empty line: the default) from ``stream``; questions to ``out``."""

    stream: IO[str]
    out: Callable[[str], None]

    def _line(self, prompt: str) -> str:
        self.out(prompt)
        line = self.stream.readline()
        if not line:
            raise WizardCancelled("The wizard's input ended before every question was answered.")
        return line.strip()

    def select(self, key: str, message: str, choices: Sequence[str], default: str) -> str:
        while True:
            answer = self._line(f"{message} [{'/'.join(choices)}] ({default}): ") or default
            if answer in choices:
                return answer
            if answer.isdigit() and 1 <= int(answer) <= len(choices):
                return choices[int(answer) - 1]
            self.out(f"  choose one of {', '.join(choices)}\n")

    def text(self, key: str, message: str, default: str) -> str:
        return self._line(f"{message} ({default or 'empty'}): ") or default

    def confirm(self, key: str, message: str, default: bool) -> bool:
        answer = self._line(f"{message} [{'Y/n' if default else 'y/N'}]: ").lower()
        return default if not answer else answer in ("y", "yes", "true", "1")


class QuestionaryPrompter:
    """Interactive questions in the terminal (questionary)."""

    def _ask(self, question: Any) -> Any:
        answer = question.ask()
        if answer is None:  # Ctrl-C
            raise WizardCancelled("The wizard was cancelled; nothing was written.")
        return answer

    def select(self, key: str, message: str, choices: Sequence[str], default: str) -> str:
        import questionary

        options = [questionary.Choice(PRESET_LABELS.get(c, c), value=c) for c in choices]
        return str(self._ask(questionary.select(message, choices=options, default=default)))

    def text(self, key: str, message: str, default: str) -> str:
        import questionary

        return str(self._ask(questionary.text(message, default=default)))

    def confirm(self, key: str, message: str, default: bool) -> bool:
        import questionary

        return bool(self._ask(questionary.confirm(message, default=default)))


@dataclass
class WizardResult:
    values: dict[str, Any]
    text: str
    report: ValidationReport
    path: Path
    saved: bool


def _ask_int(prompter: Prompter, key: str, message: str, default: int) -> int:
    for _ in range(5):
        answer = prompter.text(key, message, str(default)).strip()
        try:
            return int(answer)
        except ValueError:
            message = f"{message} (a whole number, not {answer!r})"
    raise ConfigurationError(f"Invalid '{key}': {answer!r} is not a whole number.")


def run_wizard(
    prompter: Prompter,
    path: Path,
    *,
    base: LoadedSettings | None = None,
    out: Callable[[str], None] = lambda text: None,
    write: bool = True,
    env: Mapping[str, str] | None = None,
) -> WizardResult:
    """Ask the five steps, then write ``path`` (unless ``write`` is false or declined)."""
    values: dict[str, Any] = {}
    current = base or load_settings(discover=False, env=env)

    out("Step 1/5: preset\n")
    preset = prompter.select("preset", "Which preset?", list(PRESETS), current.preset or "local")
    if preset not in PRESETS:
        raise ConfigurationError(f"Invalid 'preset': '{preset}' (limit: {', '.join(PRESETS)}).")
    values["preset"] = preset
    # the preset's own values become the defaults of the next questions
    current = load_settings(discover=False, env=env, default_preset=preset, flags={})
    s = current.settings

    out("Step 2/5: database\n")
    data_dir = prompter.text("data_dir", "Data directory", str(current.data_dir())).strip()
    if data_dir:
        values["storage.data_dir"] = data_dir
    url = prompter.text(
        "database_url", "Database URL or path (empty: <data dir>/memory.db)", s.storage.url or ""
    ).strip()
    if url:
        values["storage.url"] = url

    out("Step 3/5: storage\n")
    values["cache.max_episodes"] = _ask_int(
        prompter, "max_episodes_cache", "Episodes kept in the cache", s.cache.max_episodes
    )
    values["storage.pool_size"] = _ask_int(
        prompter, "pool_size", "Connection pool size", s.storage.pool_size
    )

    out("Step 4/5: CLI\n")
    values["cli.default_format"] = prompter.select(
        "default_format", "Default output format", list(FORMATS), s.cli.default_format
    )

    out("Step 5/5: review\n")
    final = load_settings(
        discover=False,
        env=env,
        default_preset=preset,
        flags={key: (value, "wizard") for key, value in values.items()},
    )
    report = final.validate(env)
    for key, value in values.items():
        out(f"  {key} = {value!r}\n")
    for issue in report.errors:
        out(f"  error: {issue}\n")
    for issue in report.warnings:
        out(f"  warning: {issue}\n")
    text = render_toml(values, final.settings, title=f"Written by the wizard (preset {preset}).")
    saved = False
    if report.errors and not prompter.confirm(
        "save_anyway", "The configuration has errors. Save anyway?", False
    ):
        return WizardResult(values, text, report, path, saved)
    if write and prompter.confirm("save", f"Save to {path}?", True):
        write_atomically(path, text)
        saved = True
    return WizardResult(values, text, report, path, saved)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file: never a half-written config."""
    path = path.expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot write config file {path}: {exc.strerror or exc}."
        ) from exc
