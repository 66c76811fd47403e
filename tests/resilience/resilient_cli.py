"""memory-cli with ``resilience.enabled`` on, as a real process:
``python -m resilience.resilient_cli <memory-cli arguments>``.

The settings files and ``MEMORY_*`` variables carry no resilience section, so this entry point
takes the config the CLI builds from them and turns resilience on (the embedded SQLite store
wrapped in ``ResilientStorage`` with its outbox, as docs/operations.md recommends for a data
directory on a network mount), then runs the real ``memory-cli`` app with the given arguments.
"""

from __future__ import annotations

from self_learning_memory.cli.app import main
from self_learning_memory.cli.state import CliState
from self_learning_memory.config import MemoryConfig

_from_settings = CliState.memory_config


def _resilient(state: CliState) -> MemoryConfig:
    config = _from_settings(state)
    config.resilience.enabled = True
    return config


CliState.memory_config = _resilient  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
