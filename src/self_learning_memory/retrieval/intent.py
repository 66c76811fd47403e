"""What a query asks for beyond its topic: here, whether it asks what went wrong before.

"what went wrong last time we flashed the board", "the deploy failed before, what was it":
such a query wants the past attempts that met trouble, not the cleanest success, so the
outcome signal of the ranking is turned around for it (``RetrievalConfig.failure_intent``,
``ranking.py``). A query asks about past failure when it has a trouble word (wrong, fail...,
error, crash..., broke...) and a look back (last time, before, previously, earlier, again,
remind, happened), or says "went wrong" outright. A query that only names a symptom ("the
page crashes on submit") asks for the fix and keeps the usual order.
"""

from __future__ import annotations

import re

__all__ = ["asks_about_failure"]

_TROUBLE = re.compile(
    r"\b(wrong|fail(?:s|ed|ing|ure|ures)?|errors?|crash(?:es|ed)?|broke(?:n)?|abend\w*)\b"
)
_LOOK_BACK = re.compile(
    r"\b(last time|before|previous(?:ly)?|earlier|again|remind(?:s|ed)?|happened)\b"
)
_WENT_WRONG = re.compile(r"\bwent wrong\b")


def asks_about_failure(query: str) -> bool:
    """Whether ``query`` asks what went wrong in past attempts (see the module doc)."""
    text = query.lower()
    if _WENT_WRONG.search(text):
        return True
    return bool(_TROUBLE.search(text)) and bool(_LOOK_BACK.search(text))
