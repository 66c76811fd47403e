"""The MCP server: one memory per process, opened lazily, tools registered by family.

``build_server`` returns the SDK server (an :class:`MCPServer` subclass that formats argument
errors and counts every call) and the :class:`MemoryService` the tools share. The transports
(stdio, streamable HTTP) live in :mod:`self_learning_memory.mcp.app`.

Start-up is kept light on purpose: the library, its storage and any embedding model load after
``initialize`` has been answered (a warm-up starts on ``notifications/initialized``), or on the
first tool call, whichever comes first.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import pydantic
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError

from ..core.monitoring import Monitor
from ..errors import SelfLearningMemoryError
from .limits import UNKNOWN_TOOL_KEY, echo
from .sessions import SessionUses

if TYPE_CHECKING:
    from mcp_types import CallToolResult, InputRequiredResult

    from ..config import MemoryConfig
    from ..core.memory import SelfLearningMemory
    from ..sandbox.service import CodeSandbox
    from ..settings.schema import SandboxSettings

__all__ = ["MemoryService", "ServerSettings", "build_server", "memory_tool"]

log = logging.getLogger("self_learning_memory.mcp")

SERVER_NAME = "memory-mcp"
INSTRUCTIONS = (
    "A memory that learns from your past tasks. Before a task, call query_memory (similar past "
    "episodes, ranked, with reasons), recommend_patterns and check_known_failures. While working, "
    "record the task with create_episode and add_episode_step (one call per tool you use), then "
    "complete_episode with the outcome: the memory scores it, reflects on it and learns patterns."
)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class ServerSettings:
    """What the server needs to open the memory. ``config`` overrides the defaults."""

    data_dir: Path | None = None
    config: MemoryConfig | None = None
    embeddings: str | None = None  # provider name: none, local, openai (overrides config)
    sandbox: SandboxSettings | None = None  # the [sandbox] section (None: the restrictive preset)


@dataclass
class MemoryService:
    """Opens the memory once per process (lazily), shares it between tools, closes it at exit."""

    settings: ServerSettings
    tool_metrics: Monitor = field(default_factory=Monitor)
    unavailable: dict[str, str] = field(default_factory=dict)  # optional tools not offered, why
    sandbox: CodeSandbox | None = None  # the code sandbox, once execute_agent_code registered
    sandbox_audit_failures: int = 0  # sandbox runs whose audit record could not be written
    uses: SessionUses = field(default_factory=SessionUses)  # retrievals per session (feedback)
    _memory: SelfLearningMemory | None = None
    _lock: asyncio.Lock | None = None
    _warmup: asyncio.Task[None] | None = None
    _closed: bool = False

    async def memory(self) -> SelfLearningMemory:
        if self._memory is not None:
            return self._memory
        if self._closed:
            raise ToolError("unavailable: the server is shutting down.")
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._memory is None:
                self._memory = await self._open()
        return self._memory

    async def _open(self) -> SelfLearningMemory:
        started = time.perf_counter()
        # imports and file opening block: keep them off the event loop
        memory = await asyncio.to_thread(self._construct)
        await memory.start()
        log.info(
            "memory opened at %s in %.0f ms", memory.data_dir, (time.perf_counter() - started) * 1e3
        )
        return memory

    def _construct(self) -> SelfLearningMemory:
        from ..config import MemoryConfig
        from ..core.memory import SelfLearningMemory

        config = self.settings.config or MemoryConfig()
        if self.settings.embeddings is not None:
            embeddings = config.embeddings.model_copy(update={"provider": self.settings.embeddings})
            config = config.model_copy(update={"embeddings": embeddings})
        return SelfLearningMemory.open(self.settings.data_dir, config=config)

    # -- retrieval feedback per session (sessions.py) -------------------------------------------
    def retrieved(
        self, ctx: Context[Any, Any] | None, episodes: list[str], patterns: list[str]
    ) -> None:
        session = _session(ctx)
        if session is not None:
            self.uses.retrieved(session, episodes, patterns)

    def created(self, ctx: Context[Any, Any] | None, episode_id: str) -> None:
        session = _session(ctx)
        if session is not None:
            self.uses.created(session, episode_id)

    async def link_session_uses(
        self, ctx: Context[Any, Any] | None, memory: SelfLearningMemory, episode_id: str
    ) -> tuple[list[str], list[str]] | None:
        """Record what the session retrieved as used by ``episode_id`` (before it completes,
        so the completion counts it); a failure is logged, it never stops the completion."""
        session = _session(ctx)
        used = None if session is None else self.uses.take(session, episode_id)
        if used is None:
            return None
        try:
            await memory.record_retrieval_feedback(episode_id, list(used[0]), list(used[1]))
        except SelfLearningMemoryError as exc:
            log.warning("retrieval feedback for episode %s not recorded: %s", episode_id, exc)
            return None
        return used

    def warm_up(self) -> None:
        """Open the memory in the background (after ``initialize`` has been answered)."""
        if self._memory is None and self._warmup is None and not self._closed:
            self._warmup = asyncio.get_running_loop().create_task(self._warm())

    async def _warm(self) -> None:
        try:
            await self.memory()
        except Exception as exc:  # the first tool call reports it properly
            log.warning("warm-up could not open the memory: %s", exc)

    async def close(self) -> None:
        """Flush buffered steps and close the store. Safe to call twice."""
        self._closed = True
        if self._warmup is not None:
            await asyncio.gather(self._warmup, return_exceptions=True)
        if self._lock is not None:
            async with self._lock:
                memory, self._memory = self._memory, None
        else:
            memory, self._memory = self._memory, None
        if memory is not None:
            await memory.close()
            log.info("memory closed")
        if self.sandbox is not None:
            await asyncio.to_thread(self.sandbox.close)


def _session(ctx: Context[Any, Any] | None) -> object | None:
    """The client connection (the MCP session) of a tool call; None outside a request.

    The SDK builds a ``ServerSession`` per request around the connection's state, so the key is
    that connection object (the SDK has no public accessor for it; the stdio test of retrieval
    feedback fails if this stops working)."""
    if ctx is None:
        return None
    try:
        session = ctx.session
    except ValueError:
        return None
    connection: object | None = getattr(session, "_connection", None)
    return connection


def client_agent(ctx: Context[Any, Any] | None) -> str | None:
    """The MCP client's name (``clientInfo.name`` of its ``initialize`` request) as an agent
    name (``model/agents.py``: other characters become ``-``); None when it gave none."""
    from ..model.agents import sanitize_agent

    if ctx is None:
        return None
    try:
        params = ctx.session.client_params
    except (ValueError, AttributeError):
        return None
    info = getattr(params, "client_info", None)
    name = getattr(info, "name", None)
    return sanitize_agent(name) if isinstance(name, str) else None


def error_text(exc: SelfLearningMemoryError) -> str:
    """What the agent reads: the error kind, then the message (which names field and limit)."""
    hint = " Retrying may help." if exc.recoverable else ""
    return f"{exc.kind}: {exc.message}{hint}"


def memory_tool(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn the library's typed errors into tool errors (``isError`` results) with their text."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except SelfLearningMemoryError as exc:
            raise ToolError(error_text(exc)) from exc

    return wrapper


def _limit_of(error: Any) -> str | None:
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind in ("less_than_equal", "less_than"):
        return f"<= {ctx.get('le', ctx.get('lt'))}"
    if kind in ("greater_than_equal", "greater_than"):
        return f">= {ctx.get('ge', ctx.get('gt'))}"
    if kind == "string_too_long":
        return f"at most {ctx['max_length']} characters"
    if kind == "string_too_short":
        return f"at least {ctx['min_length']} characters"
    if kind == "too_long":
        return f"at most {ctx['max_length']} items"
    if kind == "too_short":
        return f"at least {ctx['min_length']} items"
    if kind in ("literal_error", "enum"):
        return f"one of {ctx.get('expected')}"
    return None


def describe_validation(tool: str, exc: pydantic.ValidationError) -> str:
    """One line per broken argument: its name, the problem and the limit."""
    lines = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "arguments"
        if error["type"] == "missing":
            lines.append(f"Missing required argument '{echo(name)}'.")
            continue
        value = error.get("input")
        shown = echo(value) if not isinstance(value, str) else f"a string of {len(value)} chars"
        text = f"Invalid '{echo(name)}': {echo(error['msg'].rstrip('.'), 200)} (got {shown})"
        limit = _limit_of(error)
        if limit is not None and limit not in text:
            text += f" (limit: {limit})"
        lines.append(text + ".")
    return "validation_error: " + " ".join(lines) + f" See tools/list for the schema of '{tool}'."


class MemoryMCPServer(MCPServer[Any]):
    """The SDK server plus argument checks, readable argument errors and per-tool metrics."""

    service: MemoryService

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        started = time.perf_counter()
        ok = False
        tool = self._tool_manager.get_tool(name)
        # client input never becomes a metrics key: every unknown name is counted under one key
        key = name if tool is not None else UNKNOWN_TOOL_KEY
        try:
            if tool is None:
                why = next(
                    (r for w, r in self.service.unavailable.items() if w.split(" ", 1)[0] == name),
                    None,
                )
                if why is not None:
                    raise ToolError(f"capability_unavailable: '{name}' is not offered here: {why}.")
                raise ToolError(
                    f"not_found: Unknown tool '{echo(name)}'; see tools/list for the tools."
                )
            known = set(tool.parameters.get("properties", {}))
            unknown = sorted(set(arguments) - known)
            if unknown:
                allowed = ", ".join(sorted(known)) or "none"
                raise ToolError(
                    f"validation_error: Unknown argument '{echo(unknown[0])}' for tool '{name}' "
                    f"(allowed: {allowed})."
                )
            try:
                result = await super().call_tool(name, arguments, context)
            except UnexpectedToolError as exc:
                cause = exc.__cause__
                log.error("tool %s crashed", name, exc_info=cause)
                raise ToolError(
                    f"internal_error: tool '{name}' failed unexpectedly "
                    f"({type(cause).__name__}); the server keeps running, see its log."
                ) from cause
            except ToolError as exc:
                cause = exc.__cause__
                if isinstance(cause, pydantic.ValidationError):
                    raise ToolError(describe_validation(name, cause)) from cause
                if isinstance(cause, ToolError):
                    raise ToolError(str(cause)) from cause.__cause__
                if cause is None and len(str(exc)) > 1000:
                    raise ToolError(echo(str(exc), 1000)) from exc
                raise
            ok = not getattr(result, "is_error", False)
            return result
        finally:
            self.service.tool_metrics.record(key, time.perf_counter() - started, ok)


def build_server(settings: ServerSettings | None = None) -> tuple[MemoryMCPServer, MemoryService]:
    """The server with every tool registered, and the service that owns the memory."""
    from .. import __version__
    from .tools import register_all

    service = MemoryService(settings or ServerSettings())
    server = MemoryMCPServer(
        SERVER_NAME,
        title="Self-learning memory",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level="WARNING",
    )
    server.service = service
    register_all(server, service)
    return server, service
