"""Serving the dashboard alone (``memory-cli dashboard``): one memory opened for the server's
life, uvicorn on the given address, the URL announced once the socket listens."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .app import PREFIX, DashboardApp

if TYPE_CHECKING:
    from ..core.memory import SelfLearningMemory

__all__ = ["serve"]

log = logging.getLogger("self_learning_memory.dashboard")


async def serve(
    memory: SelfLearningMemory,
    token: str,
    host: str,
    port: int,
    *,
    allowed_hosts: Sequence[str] | None,
    ready: Callable[[str], None],
) -> None:
    """Serve until SIGINT/SIGTERM. ``ready`` gets the base URL (``http://host:port/dashboard/``,
    the real port when ``port`` is 0) once the server accepts connections."""
    import uvicorn

    async def get() -> SelfLearningMemory:
        return memory

    app = DashboardApp(get, token, allowed_hosts=allowed_hosts)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.should_exit:
                return
            bound = port
            for server in self.servers:
                for sock in server.sockets:
                    bound = int(sock.getsockname()[1])
            shown = f"[{host}]" if ":" in host else host
            ready(f"http://{shown}:{bound}{PREFIX}/")

    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
    )
    await Server(config).serve()
