"""A local, read-only web dashboard of the memory: episodes with ranked search, an episode's
step timeline, learned patterns and heuristics, and the learning curve, as server-rendered
pages with SVG charts (``presenters/charts.py``). Served by ``memory-cli dashboard`` and
mounted at ``/dashboard`` by ``memory-mcp --transport http``; docs/dashboard.md."""

from .app import PAGES, PREFIX, DashboardApp, Mount
from .auth import COOKIE_NAME, TokenCheck

__all__ = ["COOKIE_NAME", "PAGES", "PREFIX", "DashboardApp", "Mount", "TokenCheck"]
