"""The patterns and heuristics a store rebuilt from the cache gets back (``cache_rebuild.py``).

An episode keeps the ids of the patterns and heuristics its completion stored, in the order the
extractors produced them (``commit_completion`` upserts them one by one), and extraction is
deterministic. So for each id a recovered episode refers to, in order of preference:

1. the store has it: kept as it is, only the links to the recovered episodes are added;
2. the cache's index has it (the synchronizer keeps one for a remote primary): written as it
   was, with its usage counts;
3. otherwise it is extracted again from the recovered episodes that refer to it (mapped by
   position, folded together as the store folds them) and written under its old id; its usage
   counts (retrievals, applications) start over, since only the store had them.

An episode whose extraction no longer gives as many patterns (or heuristics) as it refers to (the
extraction settings changed) is not mapped; its ids are reported as not recovered. A pattern
whose similarity key the store already holds under another id is left out (the key is unique).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import CapabilityUnavailableError
from ..learning.extractors import extract_heuristics, extract_patterns
from ..learning.merge import merge_patterns
from ..model.usage import PatternUsage

if TYPE_CHECKING:
    from ..config import ExtractionConfig
    from ..model.episode import Episode
    from ..model.pattern import AnyPattern, Heuristic
    from ..storage.backend import StorageBackend
    from ..storage.transfer import PatternRow

__all__ = ["LearnedPlan", "plan_learned"]


@dataclass
class LearnedPlan:
    patterns: list[PatternRow] = field(default_factory=list)
    heuristics: list[Heuristic] = field(default_factory=list)
    from_index: int = 0  # patterns and heuristics written as the cache's index had them
    extracted: int = 0  # written from a new extraction of the recovered episodes
    lost_patterns: int = 0  # ids referred to that no source could give back
    lost_heuristics: int = 0


async def _taken_keys(
    storage: StorageBackend, table: str, id_col: str, keys: list[str]
) -> dict[str, str]:
    """similarity key -> id, for the keys the store already holds (a read on the embedded
    store's connection through its maintenance handle)."""
    embedded = storage.capabilities.maintenance
    if embedded is None:
        raise CapabilityUnavailableError(
            f"Rebuilding patterns from the cache needs the embedded SQLite store, not "
            f"{storage.name!r}."
        )
    text = json.dumps(keys)
    sql = (
        f"SELECT similarity_key, {id_col} FROM {table} WHERE similarity_key IN "
        "(SELECT value FROM json_each(?))"
    )

    def run(conn: Any) -> dict[str, str]:
        return {str(k): str(i) for k, i in conn.execute(sql, (text,))}

    found: dict[str, str] = await embedded.run_maintenance(run)
    return found


def _extracted_patterns(
    todo: list[Episode], wanted: set[uuid.UUID], extraction: ExtractionConfig
) -> dict[uuid.UUID, tuple[AnyPattern, list[uuid.UUID]]]:
    out: dict[uuid.UUID, tuple[AnyPattern, list[uuid.UUID]]] = {}
    for episode in todo:  # oldest first: folded in the order the store folded them
        if not wanted.intersection(episode.patterns):
            continue
        fresh = extract_patterns(episode, extraction)
        if len(fresh) != len(episode.patterns):
            continue
        for pid, pattern in zip(episode.patterns, fresh, strict=True):
            if pid not in wanted:
                continue
            have = out.get(pid)
            if have is None:
                out[pid] = (pattern.model_copy(update={"id": pid}), [episode.episode_id])
            else:
                out[pid] = (merge_patterns(have[0], pattern), [*have[1], episode.episode_id])
    return out


def _extracted_heuristics(
    todo: list[Episode], wanted: set[uuid.UUID], extraction: ExtractionConfig
) -> dict[uuid.UUID, Heuristic]:
    out: dict[uuid.UUID, Heuristic] = {}
    for episode in todo:
        if not wanted.intersection(episode.heuristics):
            continue
        fresh = extract_heuristics(episode, extraction)
        if len(fresh) != len(episode.heuristics):
            continue
        for hid, heuristic in zip(episode.heuristics, fresh, strict=True):
            if hid not in wanted:
                continue
            have = out.get(hid)
            out[hid] = (
                heuristic.model_copy(update={"heuristic_id": hid})
                if have is None
                else have.merge(heuristic)
            )
    return out


async def plan_learned(
    storage: StorageBackend,
    index: tuple[list[tuple[AnyPattern, PatternUsage]], list[Heuristic]],
    todo: list[Episode],
    extraction: ExtractionConfig,
) -> LearnedPlan:
    """What to write (see the module docstring) for the recovered episodes ``todo``."""
    plan = LearnedPlan()
    links: dict[uuid.UUID, list[uuid.UUID]] = {}
    for episode in todo:
        for pid in dict.fromkeys(episode.patterns):
            links.setdefault(pid, []).append(episode.episode_id)
    cached_p = {p.id: (p, u) for p, u in index[0]}
    candidates: list[tuple[AnyPattern, PatternUsage, list[uuid.UUID], bool]] = []
    missing_p: set[uuid.UUID] = set()
    for pid in links.keys() | cached_p.keys():
        stored = await storage.get_pattern(pid)
        if stored is not None:
            if pid in links:
                plan.patterns.append((stored[0], stored[1], links[pid]))
        elif pid in cached_p:
            candidates.append((*cached_p[pid], links.get(pid, []), True))
        else:
            missing_p.add(pid)
    for pid, (pattern, evidence) in _extracted_patterns(todo, missing_p, extraction).items():
        usage = PatternUsage(created_at=pattern.created_at)
        candidates.append((pattern, usage, evidence, False))
        missing_p.discard(pid)
    taken = await _taken_keys(
        storage, "patterns", "pattern_id", [c[0].similarity_key() for c in candidates]
    )
    for pattern, usage, evidence, indexed in candidates:
        key = pattern.similarity_key()
        if key in taken:
            missing_p.add(pattern.id)
            continue
        taken[key] = str(pattern.id)
        plan.patterns.append((pattern, usage, evidence))
        plan.from_index += indexed
        plan.extracted += not indexed
    plan.lost_patterns = len(missing_p & links.keys())

    wanted_h = {hid for episode in todo for hid in episode.heuristics}
    heuristics: dict[uuid.UUID, tuple[Heuristic, bool]] = {
        h.heuristic_id: (h, True) for h in index[1]
    }
    missing_h: set[uuid.UUID] = set()
    for hid in list(heuristics.keys() | wanted_h):
        if await storage.get_heuristic(hid) is not None:
            heuristics.pop(hid, None)
        elif hid not in heuristics:
            missing_h.add(hid)
    for hid, heuristic in _extracted_heuristics(todo, missing_h, extraction).items():
        heuristics[hid] = (heuristic, False)
        missing_h.discard(hid)
    taken = await _taken_keys(
        storage, "heuristics", "heuristic_id", [h.similarity_key() for h, _ in heuristics.values()]
    )
    for hid, (heuristic, indexed) in heuristics.items():
        key = heuristic.similarity_key()
        if key in taken:
            missing_h.add(hid)
            continue
        taken[key] = str(hid)
        plan.heuristics.append(heuristic)
        plan.from_index += indexed
        plan.extracted += not indexed
    plan.lost_heuristics = len(missing_h & wanted_h)
    return plan
