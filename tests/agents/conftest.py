"""The CLI fixtures (``tests/cli/conftest.py``) for the agent CLI tests."""

from __future__ import annotations

from cli.conftest import cli_env, invoke

__all__ = ["cli_env", "invoke"]
