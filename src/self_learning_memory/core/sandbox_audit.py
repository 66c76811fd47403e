"""The audit-trail side of the memory: record, list and count sandboxed runs
(:mod:`..model.sandbox_run` is the record). The core does not import the sandbox."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..errors import ValidationError
from ..model.sandbox_run import SANDBOX_OUTCOMES, SandboxRun, SandboxRunCounts, SandboxRunFilters

if TYPE_CHECKING:
    from ..config import MemoryConfig
    from ..storage.backend import StorageBackend

__all__ = ["MAX_LIST", "SandboxAudit"]

log = logging.getLogger(__name__)

MAX_LIST = 1000


class SandboxAudit:
    """The audit-trail side of :class:`~.memory.SelfLearningMemory`."""

    storage: StorageBackend
    config: MemoryConfig
    sandbox_audit_failures: int = 0  # records this process could not write

    async def record_sandbox_run(self, run: SandboxRun) -> int:
        """Store ``run`` and prune the trail to the newest ``sandbox_audit.keep`` records, in
        one write; returns how many old records were pruned."""
        return await self.storage.record_sandbox_run(run, self.config.sandbox_audit.keep)

    async def try_record_sandbox_run(self, run: SandboxRun) -> bool:
        """:meth:`record_sandbox_run` for callers whose own work must not fail with it (the
        MCP tool, the CLI): a failure is logged and counted in ``sandbox_audit_failures``."""
        try:
            await self.record_sandbox_run(run)
        except Exception as exc:
            self.sandbox_audit_failures += 1
            log.warning("sandbox run %s was not recorded in the audit trail: %s", run.run_id, exc)
            return False
        return True

    async def list_sandbox_runs(
        self, filters: SandboxRunFilters | None = None, limit: int = 50
    ) -> list[SandboxRun]:
        """The newest recorded runs first."""
        if not 1 <= limit <= MAX_LIST:
            raise ValidationError("limit", f"{limit} is out of range", f"1..{MAX_LIST}")
        return await self.storage.list_sandbox_runs(filters or SandboxRunFilters(), limit)

    async def sandbox_run_counts(
        self, filters: SandboxRunFilters | None = None
    ) -> SandboxRunCounts:
        grouped = await self.storage.count_sandbox_runs(filters or SandboxRunFilters())
        by_outcome = dict.fromkeys(SANDBOX_OUTCOMES, 0)
        for outcomes in grouped.values():
            for outcome, n in outcomes.items():
                by_outcome[outcome] = by_outcome.get(outcome, 0) + n
        return SandboxRunCounts(
            total=sum(by_outcome.values()), by_outcome=by_outcome, by_backend=grouped
        )
