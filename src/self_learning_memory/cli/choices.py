"""Flag choices made from the model's names, so the CLI repeats no list of values.

A single choice is annotated with the model's ``Literal`` (``presenters.arguments``) and typer
offers its values. A repeatable flag, and a flag whose values are written with dashes on the
command line (``partial-success`` for the model's ``partial_success``), need an enum: typer
takes ``list[Literal]`` only as ``list[Enum]``. :func:`choices` makes that enum from the
model's values; the type checker sees a plain :class:`~enum.StrEnum`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, get_args

__all__ = ["choices", "dashed"]


def choices(name: str, values: Iterable[str]) -> Any:
    """A :class:`~enum.StrEnum` named ``name`` whose members are ``values`` (in order)."""
    return StrEnum(name, [(value, value) for value in values])


def dashed(name: str, literal: Any) -> Any:
    """The values of a ``Literal`` with ``_`` written as ``-``, as a :func:`choices` enum;
    ``member.value.replace("-", "_")`` is the model's value again."""
    return choices(name, [str(value).replace("_", "-") for value in get_args(literal)])
