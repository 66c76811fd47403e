"""The memory's audit trail of sandboxed runs: record, list and count them
(:mod:`..model.sandbox_run` is the record). The core does not import the sandbox."""

from __future__ import annotations

import logging

from ..errors import ValidationError
from ..model.sandbox_run import SANDBOX_OUTCOMES, SandboxRun, SandboxRunCounts, SandboxRunFilters
from .parts import MemoryParts

__all__ = ["MAX_LIST", "SandboxAudit"]

log = logging.getLogger(__name__)

MAX_LIST = 1000


class SandboxAudit:
    """The audit-trail operations of :class:`~.memory.SelfLearningMemory` (documented there)."""

    def __init__(self, parts: MemoryParts) -> None:
        self._parts = parts
        self.failures = 0  # records this process could not write

    async def record_sandbox_run(self, run: SandboxRun) -> int:
        keep = self._parts.config.sandbox_audit.keep
        return await self._parts.storage.record_sandbox_run(run, keep)

    async def try_record_sandbox_run(self, run: SandboxRun) -> bool:
        try:
            await self.record_sandbox_run(run)
        except Exception as exc:
            self.failures += 1
            log.warning("sandbox run %s was not recorded in the audit trail: %s", run.run_id, exc)
            return False
        return True

    async def list_sandbox_runs(
        self, filters: SandboxRunFilters | None = None, limit: int = 50
    ) -> list[SandboxRun]:
        if not 1 <= limit <= MAX_LIST:
            raise ValidationError("limit", f"{limit} is out of range", f"1..{MAX_LIST}")
        return await self._parts.storage.list_sandbox_runs(filters or SandboxRunFilters(), limit)

    async def sandbox_run_counts(
        self, filters: SandboxRunFilters | None = None
    ) -> SandboxRunCounts:
        grouped = await self._parts.storage.count_sandbox_runs(filters or SandboxRunFilters())
        by_outcome = dict.fromkeys(SANDBOX_OUTCOMES, 0)
        for outcomes in grouped.values():
            for outcome, n in outcomes.items():
                by_outcome[outcome] = by_outcome.get(outcome, 0) + n
        return SandboxRunCounts(
            total=sum(by_outcome.values()), by_outcome=by_outcome, by_backend=grouped
        )
