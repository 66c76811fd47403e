"""Reads of what the memory holds: episodes (cache first, with the steps this process has not
flushed yet), patterns and heuristics, and the pattern feedback that updates their usage."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from ..errors import NotFoundError, ValidationError
from ..model.episode import Episode
from ..model.limits import MAX_LIMIT
from ..model.pattern import AnyPattern, Heuristic
from ..model.records import EpisodeFilters, PatternFilters
from ..model.timeline import OutcomeWindow, window_seconds
from ..model.usage import MIN_EFFECTIVENESS, PatternUsage
from ..model.validation import as_uuid
from .parts import MemoryParts
from .step_writer import StepWriter

__all__ = ["MAX_LIMIT", "Reads", "check_limit", "check_offset"]


def check_limit(limit: int, field: str = "limit", maximum: int = MAX_LIMIT) -> None:
    if not 1 <= limit <= maximum:
        raise ValidationError(field, f"{limit} is out of range", f"1..{maximum}")


def check_offset(offset: int) -> None:
    if offset < 0:
        raise ValidationError("offset", f"{offset} is negative", ">= 0")


class Reads:
    def __init__(self, parts: MemoryParts, writer: StepWriter) -> None:
        self._parts = parts
        self._writer = writer

    # -- episodes --------------------------------------------------------------------------
    async def get_episode(self, episode_id: uuid.UUID | str) -> Episode:
        with self._parts.monitor.timed("get_episode"):
            eid = as_uuid(episode_id)
            found = await self.load([eid])
            if not found:
                raise NotFoundError("episode", eid)
            episode = found[0]
            buffered = self._writer.buffered(eid)
            if buffered:
                episode = episode.model_copy(update={"steps": [*episode.steps, *buffered]})
            return episode

    async def load(self, ids: list[uuid.UUID]) -> list[Episode]:
        """Cache first, then one query for the misses; completed, learned episodes are cached."""
        found: dict[uuid.UUID, Episode] = {}
        cache = self._parts.cache
        if cache is not None:
            found = await asyncio.to_thread(cache.get_many, ids)
        missing = [i for i in ids if i not in found]
        if missing:
            loaded = await self._parts.storage.get_episodes(missing)
            found.update((e.episode_id, e) for e in loaded)
            if cache is not None:
                learned = [e for e in loaded if e.is_complete() and e.reward is not None]
                if learned:
                    await asyncio.to_thread(cache.put_many, learned)
        return [found[i] for i in ids if i in found]

    async def list_episodes(
        self, filters: EpisodeFilters | None, limit: int, offset: int
    ) -> list[Episode]:
        with self._parts.monitor.timed("list_episodes"):
            check_limit(limit)
            check_offset(offset)
            return await self._parts.storage.list_episodes(
                filters or EpisodeFilters(), limit, offset
            )

    async def count_episodes(self, filters: EpisodeFilters | None) -> int:
        return await self._parts.storage.count_episodes(filters or EpisodeFilters())

    async def outcome_timeline(
        self, window: str, since: datetime | None, until: datetime | None
    ) -> list[OutcomeWindow]:
        window_seconds(window)  # ValidationError naming the windows
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise ValidationError(name, "is a naive datetime", "timezone-aware")
        if since is not None and until is not None and since >= until:
            raise ValidationError("since", "is not before 'until'", "< until")
        with self._parts.monitor.timed("outcome_timeline"):
            return await self._parts.storage.outcome_timeline(window, since, until)

    # -- patterns and heuristics -----------------------------------------------------------
    async def get_pattern(self, pattern_id: uuid.UUID | str) -> tuple[AnyPattern, PatternUsage]:
        pid = as_uuid(pattern_id, "pattern_id")
        found = await self._parts.storage.get_pattern(pid)
        if found is None:
            raise NotFoundError("pattern", pid)
        return found

    async def list_patterns(
        self, filters: PatternFilters | None, limit: int, offset: int
    ) -> list[tuple[AnyPattern, PatternUsage]]:
        check_limit(limit)
        check_offset(offset)
        return await self._parts.storage.list_patterns(filters or PatternFilters(), limit, offset)

    async def pattern_evidence(
        self, pattern_ids: list[uuid.UUID], per_pattern: int
    ) -> dict[uuid.UUID, list[uuid.UUID]]:
        check_limit(per_pattern, "per_pattern", 100)
        return await self._parts.storage.pattern_episodes(pattern_ids, per_pattern)

    async def record_pattern_application(self, pattern_id: uuid.UUID | str, success: bool) -> None:
        pid = (await self.get_pattern(pattern_id))[0].id
        await self._parts.storage.record_pattern_use([pid], applied=True, success=success)

    async def decay_patterns(self, force: bool) -> dict[str, int]:
        return await self._parts.storage.decay_patterns(
            force=force, min_effectiveness=MIN_EFFECTIVENESS
        )

    async def get_heuristic(self, heuristic_id: uuid.UUID | str) -> Heuristic:
        hid = as_uuid(heuristic_id, "heuristic_id")
        found = await self._parts.storage.get_heuristic(hid)
        if found is None:
            raise NotFoundError("heuristic", hid)
        return found

    async def list_heuristics(self, limit: int, offset: int) -> list[Heuristic]:
        check_limit(limit)
        check_offset(offset)
        return await self._parts.storage.list_heuristics(limit, offset)
