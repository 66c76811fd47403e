"""The embedded store's full-text index: FTS5 (``episodes_fts``, bm25), its entries written by
the completion transaction, and selective query terms chosen by document frequency.

FTS5 computes bm25 for every document a query matches before it can sort and cut. A word that
occurs in most episodes ("fix", "add", "test") makes an OR query match most of the table, so its
cost grows with the table while it adds almost nothing to the ranking (its IDF is near zero).
:class:`TermSelector` looks up each term's document frequency in the ``fts5vocab`` table (with
the index's own porter tokenizer, so the stems agree), drops terms that match nothing, and keeps
terms from the rarest up while the summed frequency stays within a work budget (always at least
the rarest one). Common words still count in the final ranking (query-term coverage); they just
do not generate candidates. Frequencies are cached for a minute.
"""

from __future__ import annotations

import time
from typing import Any, cast

import apsw

from ..model.records import EpisodeCandidate, EpisodeFilters, SearchDocument
from .sql import rows as decode
from .sql.dialect import SQLITE
from .sql.program import Op, execute
from .sql.queries import completed

__all__ = ["MATCH_BUDGET", "FTS5Index", "TermSelector"]

MATCH_BUDGET = 2_000  # summed document frequency of the chosen terms
_TTL_S = 60.0


class TermSelector:
    def __init__(self, budget: int = MATCH_BUDGET) -> None:
        self.budget = budget
        self._df: dict[str, tuple[int, float]] = {}
        self._tokenizer: apsw.FTS5Tokenizer | None = None

    def _stems(self, conn: apsw.Connection, term: str) -> list[str]:
        if self._tokenizer is None:
            self._tokenizer = conn.fts5_tokenizer("porter", ["unicode61"])
        tokens = self._tokenizer(term.encode("utf-8"), apsw.FTS5_TOKENIZE_QUERY, None)
        return [t[2] for t in tokens if isinstance(t, tuple) and len(t) >= 3]

    def _frequency(self, conn: apsw.Connection, term: str) -> int:
        now = time.monotonic()
        cached = self._df.get(term)
        if cached is not None and now - cached[1] < _TTL_S:
            return cached[0]
        df = 0
        for stem in self._stems(conn, term):
            row = conn.execute(
                "SELECT doc FROM episodes_fts_vocab WHERE term = ?", (stem,)
            ).fetchone()
            df = max(df, int(row[0]) if row else 0)
        if len(self._df) > 50_000:
            self._df.clear()
        self._df[term] = (df, now)
        return df

    def select(self, conn: apsw.Connection, terms: list[str]) -> list[str]:
        """The terms to search for, rarest first, within the budget."""
        scored = sorted(
            ((self._frequency(conn, t), t) for t in terms), key=lambda pair: (pair[0], pair[1])
        )
        chosen: list[str] = []
        total = 0
        for df, term in scored:
            if df == 0:
                continue
            if chosen and total + df > self.budget:
                break
            chosen.append(term)
            total += df
        return chosen


class FTS5Index:
    """The ``episodes_fts`` table: bm25 over description, steps, outcome and reflection,
    keyed by the episode's ``rowid``."""

    key_column = "rowid"

    def __init__(self) -> None:
        self.terms = TermSelector()

    def completion_set(self, doc: SearchDocument) -> tuple[str, tuple[Any, ...]]:
        return "", ()

    def completion_ops(self, key: Any, doc: SearchDocument) -> list[Op]:
        return [
            execute("DELETE FROM episodes_fts WHERE rowid = ?", (key,)),
            execute(
                "INSERT INTO episodes_fts (rowid, task_description, steps_text, outcome_text, "
                "reflection_text) VALUES (?, ?, ?, ?, ?)",
                (key, doc.description, doc.steps, doc.outcome, doc.reflection),
            ),
        ]

    def candidates(
        self, conn: apsw.Connection, terms: list[str], filters: EpisodeFilters, limit: int
    ) -> list[EpisodeCandidate]:
        """Completed episodes matching any of the chosen ``terms``, best bm25 first."""
        chosen = self.terms.select(conn, terms)
        if not chosen:
            return []
        condition, args = completed(SQLITE, filters)
        query = " OR ".join('"' + t.replace('"', '""') + '"' for t in chosen)
        rows = conn.execute(
            f"SELECT {decode.CANDIDATE_COLUMNS}, episodes_fts.rank, "
            f"{decode.CANDIDATE_USAGE_COLUMNS} FROM episodes_fts "
            f"JOIN episodes e ON e.rowid = episodes_fts.rowid {decode.USAGE_JOIN} "
            f"WHERE episodes_fts MATCH ? AND {condition} ORDER BY rank LIMIT ?",
            (query, *args, limit),
        ).fetchall()
        return [
            decode.candidate(SQLITE, r, -float(cast(float, r[12])), "fts5", usage_at=13)
            for r in rows
        ]
