"""`memory-cli dashboard`: the read-only web dashboard (``dashboard/``) on a local address.

Bound to loopback by default; any other address needs a bearer token (``--token-file`` or
``$MEMORY_MCP_TOKEN``, as for ``memory-mcp``). Without one on loopback, a random token is made
for this run and the printed URL carries it (``?token=...`` sets a cookie and is dropped from
the address bar)."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer

from ...mcp.auth import TOKEN_ENV, read_token
from ..state import fail, get_state, run

__all__ = ["dashboard"]

DEFAULT_PORT = 8765


def dashboard(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help="Bind address (loopback unless a token is set).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", "-p", min=0, max=65535, help="Port, 0..65535 (0: any free).")
    ] = DEFAULT_PORT,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help=f"File holding the bearer token (else ${TOKEN_ENV})."),
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the dashboard in a web browser.")
    ] = False,
) -> None:
    """Serve the read-only web dashboard: episodes and search, step timelines, patterns,
    the learning curve (docs/dashboard.md). Stops on Ctrl-C."""
    from ...errors import ConfigurationError
    from ...mcp.auth import is_loopback, transport_security

    state = get_state(ctx)
    try:
        token = read_token(token_file)
        if token is None and not is_loopback(host):
            raise ConfigurationError(
                f"Refusing to serve the dashboard on non-loopback address {host} without a "
                f"bearer token: set {TOKEN_ENV} or --token-file."
            )
    except ConfigurationError as exc:
        fail(state, exc)
    generated = token is None
    secret = token or secrets.token_urlsafe(32)
    hosts = transport_security(host, port or 1).allowed_hosts

    def ready(base: str) -> None:
        link = f"{base}?token={secret}"
        shown = link if generated else f"{base}?token=<your token>"
        print(f"memory-cli dashboard: serving {shown}", flush=True)
        if generated:
            print("  (a token made for this run; set MEMORY_MCP_TOKEN to choose one)", flush=True)
        print("  read-only; Ctrl-C to stop", flush=True)
        if open_browser:
            import webbrowser

            webbrowser.open(link)

    async def go() -> None:
        from ...core.memory import SelfLearningMemory
        from ...dashboard.server import serve

        async with SelfLearningMemory.open(
            state.resolved_data_dir(), config=state.memory_config()
        ) as memory:
            await serve(memory, secret, host, port, allowed_hosts=hosts, ready=ready)

    run(state, go)
    sys.stdout.flush()
