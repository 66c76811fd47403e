"""The PostgreSQL store's full-text index: the weighted ``tsvector`` column ``episodes.search``
(GIN-indexed), written by the completion's episode UPDATE, ranked with ``ts_rank_cd``, and
selective query terms chosen by document frequency (as the embedded store's FTS5 index does:
see ``storage/sqlite_search.py``)."""

from __future__ import annotations

import time
from typing import Any

from ...model.records import EpisodeCandidate, EpisodeFilters, SearchDocument
from ..sql import rows as decode
from ..sql.dialect import POSTGRES
from ..sql.program import Op, Program, rows
from ..sql.queries import completed
from .schema import TS_WEIGHTS

__all__ = ["MATCH_BUDGET", "SEARCH_SQL", "TsvectorIndex"]

MATCH_BUDGET = 2_000  # summed document frequency of the chosen query terms (as SQLite)
_DF_TTL_S = 60.0
# the episode's tsvector: A description, C steps, B outcome, D reflection
SEARCH_SQL = (
    "setweight(to_tsvector('english', ?), 'A') || setweight(to_tsvector('english', ?), 'C') "
    "|| setweight(to_tsvector('english', ?), 'B') || setweight(to_tsvector('english', ?), 'D')"
)


class TsvectorIndex:
    key_column = "episode_id"

    def __init__(self) -> None:
        self._df: dict[str, tuple[int, float]] = {}

    def completion_set(self, doc: SearchDocument) -> tuple[str, tuple[Any, ...]]:
        return f", search = {SEARCH_SQL}", (doc.description, doc.steps, doc.outcome, doc.reflection)

    def completion_ops(self, key: Any, doc: SearchDocument) -> list[Op]:
        return []

    def _select_terms(self, terms: list[str]) -> Program[list[str]]:
        """Rarest terms first within the match budget; each document frequency is counted
        through the GIN index and capped at the budget."""
        now = time.monotonic()
        unknown = [
            t for t in dict.fromkeys(terms) if now - self._df.get(t, (0, -1e9))[1] > _DF_TTL_S
        ]
        if unknown:
            counted = yield rows(
                "SELECT t, (SELECT count(*) FROM (SELECT 1 FROM episodes "
                "WHERE search @@ plainto_tsquery('english', t) LIMIT ?) s) "
                "FROM unnest(?::text[]) AS t",
                (MATCH_BUDGET + 1, unknown),
            )
            for term, df in counted:
                self._df[term] = (int(df), now)
            if len(self._df) > 50_000:
                self._df = {t: self._df[t] for t in unknown}
        scored = sorted((self._df[t][0], t) for t in dict.fromkeys(terms))
        chosen: list[str] = []
        total = 0
        for df, term in scored:
            if df == 0:
                continue
            if chosen and total + df > MATCH_BUDGET:
                break
            chosen.append(term)
            total += df
        return chosen

    def candidates(
        self, terms: list[str], filters: EpisodeFilters, limit: int
    ) -> Program[list[EpisodeCandidate]]:
        """Completed episodes matching any of the chosen ``terms``, best ``ts_rank_cd`` first."""
        chosen = yield from self._select_terms(terms)
        if not chosen:
            return []
        condition, args = completed(POSTGRES, filters)
        query = " || ".join(["plainto_tsquery('english', ?)"] * len(chosen))
        found = yield rows(
            f"SELECT {decode.CANDIDATE_COLUMNS}, ts_rank_cd(?::real[], e.search, q.q, 1) AS r, "
            f"{decode.CANDIDATE_USAGE_COLUMNS} "
            f"FROM episodes e {decode.USAGE_JOIN}, (SELECT {query} AS q) q "
            f"WHERE e.search @@ q.q AND {condition} ORDER BY r DESC, e.end_time DESC LIMIT ?",
            (TS_WEIGHTS, *chosen, *args, limit),
        )
        return [decode.candidate(POSTGRES, r, float(r[12]), "tsvector", usage_at=13) for r in found]
