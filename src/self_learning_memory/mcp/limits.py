"""Bounds on every MCP tool argument. Those the CLI shares are in
``presenters/arguments.py``, the choices are the model's (``model/names.py``), the episode sizes
the library's (``model/limits.py``); the tools' defaults and their own bounds are here.

They are part of each tool's input schema (``maximum``, ``maxLength``, ``maxItems`` ...), so an
agent can see them in ``tools/list``, and a call that breaks one gets a tool error naming the
argument, the problem and the limit. The library checks its own limits again (for example the
UTF-8 byte length of a description), so nothing unchecked reaches the store.
"""

from __future__ import annotations

from typing import Final, Literal

from ..model import limits
from ..model.names import (
    ComplexityName,
    OutcomeName,
    PatternTypeName,
    ResultName,
    RetrievalModeName,
    TaskTypeName,
)
from ..presenters.arguments import (
    DEFAULT_KNOWN_FAILURES,
    MAX_KNOWN_FAILURES,
    MAX_LATENCY_MS,
    MAX_LIMIT,
    MAX_LIST_ITEMS,
    MAX_NAME,
    MAX_OFFSET,
    MAX_STEP_NUMBER,
    MAX_TAGS,
    MAX_TEXT,
    MAX_TOKENS,
    MAX_TOOL_NAME,
)

__all__ = [
    "DEFAULT_ANALYZE_LIMIT",
    "DEFAULT_KNOWN_FAILURES",
    "DEFAULT_LIST_LIMIT",
    "DEFAULT_QUERY_LIMIT",
    "DEFAULT_RECOMMEND",
    "DEFAULT_SEARCH_PATTERNS",
    "MAX_ECHO",
    "MAX_EPISODE_BYTES",
    "MAX_ID",
    "MAX_ITEM",
    "MAX_KNOWN_FAILURES",
    "MAX_LATENCY_MS",
    "MAX_LIMIT",
    "MAX_LIST_ITEMS",
    "MAX_NAME",
    "MAX_OFFSET",
    "MAX_OUTCOME_BYTES",
    "MAX_PARAMETER_KEYS",
    "MAX_RECOMMEND",
    "MAX_SEARCH_PATTERNS",
    "MAX_STEPS_BYTES",
    "MAX_STEP_NUMBER",
    "MAX_TAGS",
    "MAX_TEXT",
    "MAX_TOKENS",
    "MAX_TOOL_NAME",
    "UNKNOWN_TOOL_KEY",
    "ComplexityName",
    "MetricType",
    "OutcomeName",
    "PatternTypeName",
    "ResultName",
    "RetrievalModeName",
    "TaskTypeName",
    "echo",
]

# the tools' defaults and the bounds only the MCP tools have
DEFAULT_QUERY_LIMIT: Final = 10
DEFAULT_LIST_LIMIT: Final = 20
DEFAULT_ANALYZE_LIMIT: Final = 20
MAX_SEARCH_PATTERNS: Final = 100
DEFAULT_SEARCH_PATTERNS: Final = 10
MAX_RECOMMEND: Final = 50
DEFAULT_RECOMMEND: Final = 3
MAX_ID: Final = 64  # an episode id is a 36-character UUID
MAX_ITEM: Final = limits.MAX_VERDICT_LEN  # one artifact / completed / failed entry
MAX_PARAMETER_KEYS: Final = 1000
# An episode's JSON size: sizes of a whole object, which JSON Schema cannot express, so the
# tool descriptions state them and the library refuses a call that breaks one.
MAX_EPISODE_BYTES: Final = limits.MAX_EPISODE_SIZE
MAX_OUTCOME_BYTES: Final = limits.MAX_OUTCOME_SIZE
MAX_STEPS_BYTES: Final = limits.MAX_OPEN_EPISODE_SIZE

MetricType = Literal["all", "performance", "episodes", "system", "sandbox", "agents"]

MAX_ECHO: Final = 64  # characters of a client's value an error message repeats
UNKNOWN_TOOL_KEY: Final = "<unknown>"  # the one metrics key for every unknown tool name


def echo(value: object, keep: int = MAX_ECHO) -> str:
    """A client's value as an error message may repeat it: at most ``keep`` characters, then
    its full length, so a 10 MB argument is never sent back."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= keep:
        return text
    return f"{text[:keep]}... ({len(text)} chars)"
