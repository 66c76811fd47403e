"""A real SQLite backend whose connection to its file can be cut on command (for the state
machine tests: no mock, the store really refuses every call while ``down``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from self_learning_memory.errors import StorageUnavailableError
from self_learning_memory.storage.sqlite import SQLiteStorage


class FlakySQLite(SQLiteStorage):
    name = "flaky-sqlite"  # not "sqlite": resilience is automatic for it

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.down = False
        self.fail_next = 0  # fail this many calls, then work
        self.calls = 0
        db = self._db
        for method in ("read", "write", "read_snapshot", "call"):
            setattr(db, method, self._guard(getattr(db, method)))

    def _guard(self, fn: Any) -> Any:
        async def guarded(*args: Any) -> Any:
            self.calls += 1
            if self.down:
                raise StorageUnavailableError("The test cut the connection to the store.")
            if self.fail_next > 0:
                self.fail_next -= 1
                raise StorageUnavailableError("The test failed this call.")
            return await fn(*args)

        return guarded
