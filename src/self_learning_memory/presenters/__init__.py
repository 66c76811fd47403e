"""What the front ends (``memory-cli``, ``memory-mcp``) share: the JSON shape of every object
they return (``episodes``, ``patterns``, ``health``) and the bounds and choices of the
arguments they take (``arguments``).

One object has one shape: an episode summary carries ``step_count`` whether the CLI prints it
or an MCP tool returns it. The names are the MCP tools' wire names (docs/mcp.md), which agents
rely on; the CLI adds fields of its own (``status``, ``duration_ms``) around them.
"""

from .episodes import (
    completion_payload,
    created_payload,
    deleted_payload,
    episode_detail,
    episode_payload,
    episode_row,
    known_failures_payload,
    result_payload,
    step_logged_payload,
)
from .health import health_payload, store_counts
from .patterns import heuristic_payload, pattern_payload, pattern_row, pattern_tools

__all__ = [
    "completion_payload",
    "created_payload",
    "deleted_payload",
    "episode_detail",
    "episode_payload",
    "episode_row",
    "health_payload",
    "heuristic_payload",
    "known_failures_payload",
    "pattern_payload",
    "pattern_row",
    "pattern_tools",
    "result_payload",
    "step_logged_payload",
    "store_counts",
]
