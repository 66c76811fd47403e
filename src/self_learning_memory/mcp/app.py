"""``memory-mcp``: run the MCP server over stdio (default) or streamable HTTP.

stdout carries only protocol messages; logs go to stderr and to a rotating log file in the data
directory. On end of input, SIGTERM or SIGINT the server flushes buffered steps and closes the
store before it exits.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import logging.handlers
import os
import secrets
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from ..errors import ConfigurationError
from ..log_files import JsonLinesFormatter
from .auth import (
    MIN_TOKEN_LENGTH,
    TOKEN_ENV,
    BearerTokenMiddleware,
    is_loopback,
    read_token,
    transport_security,
)

if TYPE_CHECKING:
    from .server import MemoryMCPServer, MemoryService

__all__ = ["main", "parse_args"]

log = logging.getLogger("self_learning_memory.mcp")

DEFAULT_PORT = 8765
EMBEDDING_PROVIDERS = ("none", "local", "openai")

EPILOG = f"""\
configuration:
  the same config file as memory-cli (docs/configuration.md): --config FILE, else
  $MEMORY_CLI_CONFIG, else memory-cli.toml (or .json/.yaml, see the docs) in the current
  directory; MEMORY_<SECTION>_<KEY> variables and the flags below win over the file.

environment:
  MEMORY_DATA_DIR       data directory (default: the user's data directory)
  {TOKEN_ENV}      bearer token for --transport http (at least {MIN_TOKEN_LENGTH} characters)
  MEMORY_MCP_TRANSPORT  default transport (stdio or http)
  MEMORY_LOG_LEVEL      DEBUG, INFO, WARNING or ERROR (default INFO)

examples:
  memory-mcp                                   # stdio, for Claude Desktop / Claude Code / Cursor
  {TOKEN_ENV}=... memory-mcp --transport http --port {DEFAULT_PORT}
"""


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} is out of range (limit: 1..65535)")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="memory-mcp",
        description="The self-learning memory as an MCP server (tools to record agent episodes, "
        "learn from them and retrieve what helps).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--transport",
        choices=("stdio", "http"),
        default=os.environ.get("MEMORY_MCP_TRANSPORT", "stdio"),
        help="stdio (default) or streamable HTTP",
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (127.0.0.1)")
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"HTTP port ({DEFAULT_PORT})"
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another Host name (or name:port) HTTP clients may use, repeatable; by default only "
        "the bind address (and localhost/127.0.0.1/[::1] for loopback) pass the Host/Origin check",
    )
    parser.add_argument(
        "--path", default="/mcp", help="HTTP endpoint path of the MCP app (default /mcp)"
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        help=f"file holding the HTTP bearer token (else ${TOKEN_ENV})",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ["MEMORY_CLI_CONFIG"])
        if os.environ.get("MEMORY_CLI_CONFIG")
        else None,
        help="config file, TOML, JSON or YAML (else $MEMORY_CLI_CONFIG, else a discovered "
        "memory-cli.toml)",
    )
    parser.add_argument("--data-dir", type=Path, help="data directory (else $MEMORY_DATA_DIR)")
    parser.add_argument(
        "--embeddings",
        choices=EMBEDDING_PROVIDERS,
        help="embedding provider for retrieval (default none: lexical ranking)",
    )
    parser.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        type=str.upper,
        help="default: the config's logging.level ($MEMORY_LOG_LEVEL), else INFO",
    )
    parser.add_argument(
        "--log-file",
        type=Path,
        help="log file (default <data dir>/logs/memory-mcp.log; 'none' to disable)",
    )
    return parser.parse_args(argv)


def setup_logging(level: str, log_file: Path | None) -> None:
    """Logs to stderr (plain text) and, if given, a rotating file (JSON lines). Never to stdout
    (it carries protocol)."""
    root = logging.getLogger()
    root.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    err = logging.StreamHandler(sys.stderr)
    err.setFormatter(fmt)
    root.addHandler(err)
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=5 * 2**20, backupCount=3, encoding="utf-8"
            )
            handler.setFormatter(JsonLinesFormatter("mcp"))  # `memory-cli logs tail --source mcp`
            root.addHandler(handler)
        except OSError as exc:
            root.warning("cannot write the log file %s: %s", log_file, exc)
    root.setLevel(level)
    for noisy in ("mcp", "uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def resolve_token(args: argparse.Namespace) -> str | None:
    return read_token(args.token_file)


async def _exit_on_signal(service: MemoryService) -> None:
    """SIGTERM or SIGINT: flush buffered steps, close the store, exit 0. (Exiting directly:
    the SDK reads stdin in a worker thread that no cancellation can interrupt.)"""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("received %s: shutting down", signal.Signals(signum).name)
            code = 0
            with anyio.CancelScope(shield=True):
                try:
                    await service.close()
                except Exception:
                    log.exception("could not close the memory cleanly")
                    code = 1
            logging.shutdown()
            sys.stdout.flush()
            os._exit(code)


async def serve_stdio(server: MemoryMCPServer, service: MemoryService) -> None:
    from mcp.types import NotificationParams

    async def on_initialized(_ctx: object, _params: NotificationParams) -> None:
        service.warm_up()

    server._lowlevel_server.add_notification_handler(
        "notifications/initialized", NotificationParams, on_initialized
    )
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_exit_on_signal, service)
            await server.run_stdio_async()
            group.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await service.close()


async def serve_http(
    server: MemoryMCPServer, service: MemoryService, args: argparse.Namespace, token: str
) -> None:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn's graceful shutdown on SIGTERM/SIGINT, without re-raising the signal
        afterwards (which would kill the process before the store is closed)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            handled = (signal.SIGINT, signal.SIGTERM)
            originals = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in originals.items():
                    signal.signal(sig, handler)

    from ..dashboard import PREFIX, DashboardApp, Mount

    security = transport_security(args.host, args.port, args.allowed_host)
    mcp_app = BearerTokenMiddleware(
        server.streamable_http_app(
            streamable_http_path=args.path,
            host=args.host,
            transport_security=security,
        ),
        token,
    )
    # the read-only dashboard at /dashboard, behind the same token (docs/dashboard.md)
    dashboard = DashboardApp(service.memory, token, allowed_hosts=security.allowed_hosts)
    config = uvicorn.Config(
        Mount(PREFIX, dashboard, mcp_app),
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    service.warm_up()
    try:
        await GracefulServer(config).serve()
    finally:
        with anyio.CancelScope(shield=True):
            await service.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        # the shared configuration (imported only now: --help stays fast)
        from ..settings.loader import load_settings

        flags: dict[str, tuple[object, str]] = {}
        if args.data_dir is not None:
            flags["storage.data_dir"] = (str(args.data_dir.expanduser()), "--data-dir")
        if args.embeddings is not None:
            flags["embeddings.provider"] = (args.embeddings, "--embeddings")
        if args.log_level is not None:
            flags["logging.level"] = (args.log_level, "--log-level")
        loaded = load_settings(args.config, flags=flags)
        memory_config = loaded.memory_config()  # ConfigurationError if the settings are invalid
        data_dir = loaded.data_dir()
        args.log_level = loaded.settings.logging.level.upper()
        log_file: Path | None = args.log_file
        if log_file is None and loaded.settings.logging.file:
            log_file = Path(loaded.settings.logging.file)
        if log_file is None:
            log_file = data_dir / "logs" / "memory-mcp.log"
        elif str(log_file).lower() == "none":
            log_file = None
        setup_logging(args.log_level, log_file)
        token = resolve_token(args) if args.transport == "http" else None
        if args.transport == "http" and token is None:
            if not is_loopback(args.host):
                raise ConfigurationError(
                    f"Refusing to serve HTTP on non-loopback address {args.host} without a "
                    f"bearer token: set {TOKEN_ENV} or --token-file."
                )
            token = secrets.token_urlsafe(32)
            print(
                f"memory-mcp: no bearer token configured; this run's token is {token} "
                f"(set {TOKEN_ENV} to choose one)",
                file=sys.stderr,
                flush=True,
            )
        from .server import ServerSettings, build_server

        server, service = build_server(
            ServerSettings(
                data_dir=data_dir,
                config=memory_config,
                embeddings=args.embeddings,
                sandbox=loaded.settings.sandbox,
            )
        )
        if args.transport == "http":
            assert token is not None
            log.info("serving streamable HTTP on http://%s:%d%s", args.host, args.port, args.path)
            anyio.run(serve_http, server, service, args, token)
        else:
            anyio.run(serve_stdio, server, service)
        return 0
    except ConfigurationError as exc:
        print(f"memory-mcp: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
