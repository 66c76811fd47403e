"""MCP tools, one module per family. Each module's ``register`` adds its tools to the server.

Optional families (``execute_agent_code``, ``advanced_pattern_analysis``) register themselves
only when their capability is installed and passes its self-test; see ``register_all``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import episodes, patterns, retrieval, system

if TYPE_CHECKING:
    from ..server import MemoryMCPServer, MemoryService

__all__ = ["CORE_TOOLS", "register_all"]

CORE_TOOLS = (
    "query_memory",
    "check_known_failures",
    "analyze_patterns",
    "search_patterns",
    "recommend_patterns",
    "health_check",
    "get_metrics",
    "create_episode",
    "add_episode_step",
    "complete_episode",
    "get_episode",
    "list_episodes",
    "delete_episode",
)


def register_all(server: MemoryMCPServer, service: MemoryService) -> None:
    for family in (retrieval, patterns, system, episodes):
        family.register(server, service)
