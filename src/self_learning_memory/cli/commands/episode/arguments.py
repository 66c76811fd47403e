"""The choices, options and parsers the `memory-cli episode` commands share (and ``parse_since``,
the ``--since`` window other groups use too)."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ....presenters import arguments as A
from ...choices import dashed

__all__ = [
    "LimitOpt",
    "OutcomeArg",
    "StatusArg",
    "outcome_value",
    "parse_since",
    "task_context",
]

# choices written with dashes on the command line; the others are the model's Literals
if TYPE_CHECKING:
    OutcomeArg = StrEnum
else:
    OutcomeArg = dashed("OutcomeArg", A.OutcomeName)  # success, partial-success, failure


class StatusArg(StrEnum):
    in_progress = "in-progress"
    completed = "completed"


def outcome_value(outcome: StrEnum | None) -> str | None:
    """The model's outcome type for ``--outcome`` (``partial-success`` -> ``partial_success``)."""
    return None if outcome is None else outcome.value.replace("-", "_")


LimitOpt = Annotated[
    int, typer.Option("--limit", "-l", min=1, max=A.MAX_LIMIT, help=f"1..{A.MAX_LIMIT}.")
]


def parse_since(text: str, flag: str = "--since") -> datetime:
    """``Nh``, ``Nd`` or ``Nm`` (minutes) before now (the library's one parser of a window)."""
    from ....analysis.memory_request import parse_ago

    return parse_ago(flag, text)


def task_context(
    domain: str | None,
    language: str | None,
    framework: str | None,
    tags: list[str] | None,
    complexity: A.ComplexityName | None,
    context_file: Path | None,
) -> Any:
    """The ``TaskContext`` from ``--context`` (a JSON or YAML file, else the defaults) with
    the single-field options applied over it (``--tag`` adds to the file's tags)."""
    from ....errors import ValidationError
    from ....model.episode import ComplexityLevel, TaskContext
    from ....model.validation import parse_model

    base: dict[str, Any] = {}
    if context_file is not None:
        try:
            text = context_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValidationError(
                "--context", f"cannot read {context_file}: {exc.strerror}"
            ) from exc
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError:
            import yaml

            try:
                loaded = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ValidationError(
                    "--context", f"{context_file} is neither JSON nor YAML: {exc}"
                ) from exc
        if not isinstance(loaded, dict):
            raise ValidationError(
                "--context", f"{context_file} must hold an object", "a TaskContext"
            )
        base = loaded
    context = parse_model(TaskContext, base, "--context")
    updates: dict[str, Any] = {}
    if domain is not None:
        updates["domain"] = domain
    if language is not None:
        updates["language"] = language
    if framework is not None:
        updates["framework"] = framework
    if tags:
        updates["tags"] = [*context.tags, *tags]
    if complexity is not None:
        updates["complexity"] = ComplexityLevel(complexity)
    return context.model_copy(update=updates)
