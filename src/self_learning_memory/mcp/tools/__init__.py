"""MCP tools, one module per family. Each module's ``register`` adds its tools to the server.

Optional families (``execute_agent_code``, ``advanced_pattern_analysis``) register themselves
only when their capability is installed and passes its self-test; see ``register_all``.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import TYPE_CHECKING

from . import agents, episodes, feedback, patterns, retrieval, system

if TYPE_CHECKING:
    from ..server import MemoryMCPServer, MemoryService

__all__ = ["CORE_TOOLS", "OPTIONAL_FAMILIES", "register_all", "register_optional"]

log = logging.getLogger("self_learning_memory.mcp")

# Optional tool families: module -> what it needs. A family module has
# ``self_test(service) -> str | None`` (None when its capability really works, else the reason) and
# ``register(server, service)``. It is registered only when it imports and passes its self-test.
OPTIONAL_FAMILIES: dict[str, str] = {
    "self_learning_memory.mcp.tools.sandbox": "execute_agent_code (the code sandbox)",
    "self_learning_memory.mcp.tools.analysis": (
        "advanced_pattern_analysis, analyze_memory_trends (the analysis extra)"
    ),
}

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
    "record_retrieval_feedback",
    "record_agent_execution",
)


def register_all(server: MemoryMCPServer, service: MemoryService) -> None:
    for family in (retrieval, patterns, system, episodes, feedback, agents):
        family.register(server, service)
    register_optional(server, service)


def register_optional(server: MemoryMCPServer, service: MemoryService) -> dict[str, str]:
    """Register each optional family whose capability works; returns why the others did not."""
    missing: dict[str, str] = {}
    for module_name, what in OPTIONAL_FAMILIES.items():
        try:
            found = importlib.util.find_spec(module_name)
        except ModuleNotFoundError:
            found = None
        if found is None:
            missing[what] = "not installed in this build"
            continue
        try:
            module = importlib.import_module(module_name)
            reason = module.self_test(service)
        except Exception as exc:  # a broken optional part must not stop the server
            reason = f"{type(exc).__name__}: {exc}"
        if reason is None:
            module.register(server, service)
        else:
            missing[what] = str(reason)
            log.info("not offering %s: %s", what, reason)
    service.unavailable = missing
    return missing
