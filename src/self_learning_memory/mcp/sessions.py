"""What each MCP session retrieved, for retrieval feedback (``core/feedback.py``).

An agent asks ``query_memory`` / ``recommend_patterns`` before or while it works on a task and
records the task with ``create_episode``. The server keeps, per session (one stdio connection,
one streamable-HTTP session), the episodes and patterns those calls returned since the session's
last completed episode; ``complete_episode`` of the session's most recently created episode
records them as used by it (``record_retrieval_feedback``), so they are counted with its
outcome in the completion's transaction. At most :data:`~..model.limits.MAX_FEEDBACK_ITEMS`
episodes and as many patterns are kept per session (the first ones returned: the best ranked).
The state lives in this process only and goes with the session.
"""

from __future__ import annotations

import uuid
import weakref
from dataclasses import dataclass, field

from ..model.limits import MAX_FEEDBACK_ITEMS

__all__ = ["Retrieved", "SessionUses"]


@dataclass
class Retrieved:
    """One session's retrievals not yet given to a completed episode."""

    episode_id: str | None = None  # the session's most recently created episode
    episodes: dict[str, None] = field(default_factory=dict)  # ordered set
    patterns: dict[str, None] = field(default_factory=dict)


def _add(found: dict[str, None], ids: list[str]) -> None:
    for i in ids:
        if len(found) >= MAX_FEEDBACK_ITEMS:
            return
        found.setdefault(i, None)


class SessionUses:
    """Per session (keyed by the SDK's session object, held weakly) what it retrieved."""

    def __init__(self) -> None:
        self._sessions: weakref.WeakKeyDictionary[object, Retrieved] = weakref.WeakKeyDictionary()

    def _of(self, session: object) -> Retrieved:
        found = self._sessions.get(session)
        if found is None:
            found = self._sessions[session] = Retrieved()
        return found

    def retrieved(self, session: object, episodes: list[str], patterns: list[str]) -> None:
        state = self._of(session)
        _add(state.episodes, episodes)
        _add(state.patterns, patterns)

    def created(self, session: object, episode_id: str) -> None:
        self._of(session).episode_id = episode_id

    def take(self, session: object, episode_id: str) -> tuple[list[str], list[str]] | None:
        """What the session retrieved for ``episode_id`` (its latest created episode), once;
        None for another episode or when nothing was retrieved."""
        try:
            wanted = str(uuid.UUID(episode_id))
        except ValueError:
            return None
        state = self._sessions.get(session)
        if state is None or state.episode_id != wanted:
            return None
        episodes = [e for e in state.episodes if e != wanted]
        patterns = list(state.patterns)
        self._sessions[session] = Retrieved()
        if not episodes and not patterns:
            return None
        return episodes, patterns
