"""The machine and the environment the smart defaults are computed from.

Pure and light (no pydantic): the CLI reads its default output format through here on every
start. Tests build an :class:`Environment` by hand to check each formula.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CLOUD_PLATFORM_VARS",
    "FORMATS",
    "Environment",
    "detect_environment",
    "env_flag",
    "smart_defaults",
]

FORMATS = ("human", "json", "yaml")
CLOUD_PLATFORM_VARS = ("RENDER", "HEROKU", "FLY_IO")


def env_flag(env: Mapping[str, str], name: str) -> bool:
    """A variable counts as set unless it is empty, ``0``, ``false`` or ``no``."""
    return env.get(name, "").strip().lower() not in ("", "0", "false", "no")


@dataclass(frozen=True)
class Environment:
    """What the smart defaults depend on."""

    ci: bool = False  # $CI set
    github_actions: bool = False  # $GITHUB_ACTIONS set
    dev: bool = False  # $DEV or $DEVELOPMENT set
    cloud_platform: str | None = None  # RENDER, HEROKU or FLY_IO when set
    turso_env: bool = False  # $TURSO_URL or $TURSO_TOKEN set
    cpu_cores: int = 4  # physical cores (logical count when unknown)
    available_memory_gb: float = 8.0

    @property
    def mode(self) -> str:
        """``ci``, ``dev`` or ``default``: CI wins over dev."""
        if self.ci:
            return "ci"
        if self.dev:
            return "dev"
        return "default"


def detect_environment(env: Mapping[str, str] | None = None) -> Environment:
    environ = os.environ if env is None else env
    platform = next((name for name in CLOUD_PLATFORM_VARS if env_flag(environ, name)), None)
    return Environment(
        ci=env_flag(environ, "CI"),
        github_actions=env_flag(environ, "GITHUB_ACTIONS"),
        dev=env_flag(environ, "DEV") or env_flag(environ, "DEVELOPMENT"),
        cloud_platform=platform,
        turso_env=bool(environ.get("TURSO_URL") or environ.get("TURSO_TOKEN")),
        cpu_cores=_physical_cores(),
        available_memory_gb=_available_memory_gb(),
    )


def _physical_cores(cpuinfo: str = "/proc/cpuinfo") -> int:
    """Distinct (physical id, core id) pairs of /proc/cpuinfo, else ``os.cpu_count()``."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as fh:
            text = fh.read()
    except OSError:
        text = ""
    cores: set[tuple[str, str]] = set()
    physical = core = ""
    for line in [*text.splitlines(), ""]:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            physical = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not line.strip() and core:
            cores.add((physical, core))
            physical = core = ""
    return len(cores) or os.cpu_count() or 1


def _available_memory_gb() -> float:
    """MemAvailable of /proc/meminfo, else free pages via sysconf, else 8 GB."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20  # kB -> GB
    except (OSError, ValueError, IndexError):
        pass
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES")
        size = os.sysconf("SC_PAGE_SIZE")
        if pages > 0 and size > 0:
            return pages * size / 2**30
    except (ValueError, OSError, AttributeError):
        pass
    return 8.0


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def smart_defaults(environment: Environment) -> dict[str, tuple[Any, str]]:
    """Values computed from the machine and the CI/dev environment: dotted key -> (value, why).
    A source between the schema defaults and the preset (see :mod:`.layers`)."""
    mode = environment.mode
    if mode == "ci":
        pool, pool_why = 5, "CI"
        cache, cache_why = 100, "CI"
    elif mode == "dev":
        pool, pool_why = 5, "dev"
        cache, cache_why = 500, "dev"
    else:
        pool = _clamp(environment.cpu_cores * 2, 3, 20)
        pool_why = f"clamp({environment.cpu_cores} cores x 2, 3, 20)"
        cache = _clamp(int(environment.available_memory_gb * 200), 1000, 5000)
        cache_why = f"clamp({environment.available_memory_gb:.1f} GB available x 200, 1000, 5000)"
    if environment.ci or environment.github_actions:
        fmt, fmt_why = "json", "CI"
    else:
        fmt, fmt_why = "human", "not CI"
    return {
        "storage.pool_size": (pool, pool_why),
        "cache.max_episodes": (cache, cache_why),
        "cli.default_format": (fmt, fmt_why),
    }
