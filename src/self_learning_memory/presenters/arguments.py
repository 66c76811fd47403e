"""Bounds and choices of the arguments both front ends take (standard library only, so the CLI's
``--help`` and the MCP server's handshake load neither pydantic nor the models).

The bounds on text, names, tags, tools and lists, and the choices, are the model's own
(``model/limits.py``, ``model/names.py``, both free of pydantic); the others bound what a front
end accepts for a store that holds more (one day of latency per step where the store holds
2**63 - 1 ms).
"""

from __future__ import annotations

from typing import Final

from ..model import limits
from ..model.names import (
    ComplexityName,
    OutcomeName,
    PatternTypeName,
    ResultName,
    RetrievalModeName,
    TaskTypeName,
)

__all__ = [
    "DEFAULT_KNOWN_FAILURES",
    "MAX_KNOWN_FAILURES",
    "MAX_LATENCY_MS",
    "MAX_LIMIT",
    "MAX_LIST_ITEMS",
    "MAX_NAME",
    "MAX_OFFSET",
    "MAX_PARAMETERS_BYTES",
    "MAX_STEP_NUMBER",
    "MAX_TAGS",
    "MAX_TEXT",
    "MAX_TOKENS",
    "MAX_TOOL_NAME",
    "ComplexityName",
    "OutcomeName",
    "PatternTypeName",
    "ResultName",
    "RetrievalModeName",
    "TaskTypeName",
]

# the model's limits; a front end counts characters, the library counts the UTF-8 bytes of a
# description again
# a task description, a query, an action, a verdict, an output
MAX_TEXT: Final = limits.MAX_DESCRIPTION_LEN
MAX_NAME: Final = limits.MAX_NAME_LEN  # domain, language, framework, a tag
MAX_TAGS: Final = limits.MAX_TAGS
MAX_TOOL_NAME: Final = limits.MAX_TOOL_LEN
MAX_LIST_ITEMS: Final = limits.MAX_LIST_ITEMS  # artifacts, completed, failed
MAX_PARAMETERS_BYTES: Final = limits.MAX_ARTIFACT_SIZE  # a step's parameters as JSON
MAX_LIMIT: Final = limits.MAX_LIMIT  # episodes or patterns per answer

# what a front end accepts
MAX_OFFSET: Final = 10_000_000
MAX_KNOWN_FAILURES: Final = 100
DEFAULT_KNOWN_FAILURES: Final = 5
MAX_STEP_NUMBER: Final = 1_000_000
MAX_LATENCY_MS: Final = 86_400_000  # one day
MAX_TOKENS: Final = 100_000_000
