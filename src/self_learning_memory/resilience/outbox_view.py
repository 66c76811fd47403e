"""What this process knows locally about episodes while their writes wait in the outbox.

Two kinds of knowledge:

- **queued**: episodes with journaled writes not yet replayed. Built from the journal at start
  (so a restarted process serves them too) and kept until every entry of the episode has been
  replayed. While an episode is here, reads of it are served from here (it is newer than the
  primary).
- **shadow**: open episodes this process wrote to the primary successfully, and last known
  states, bounded (LRU). When the primary then goes down, a step or a completion for such an
  episode can be journaled and the episode read back from here.

Completed episodes are not kept in the shadow: the LMDB cache in front of the store holds them.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict

from ..errors import InvalidStateError, ValidationError
from ..model.episode import Episode, ExecutionStep
from ..model.records import CompletionRecord, EpisodeState
from .outbox import OutboxEntry, created_from_json, record_from_json, steps_from_json

__all__ = ["OutboxView"]

MAX_SHADOW = 1000
MAX_STATES = 10_000


def state_of(episode: Episode) -> EpisodeState:
    last = episode.steps[-1].step_number if episode.steps else 0
    status = None
    if episode.is_complete():
        status = "done" if episode.reward is not None else "queued"
    return EpisodeState(episode.episode_id, episode.is_complete(), len(episode.steps), last, status)


def _lru_put(
    store: OrderedDict[uuid.UUID, object], key: uuid.UUID, value: object, cap: int
) -> None:
    store[key] = value
    store.move_to_end(key)
    while len(store) > cap:
        store.popitem(last=False)


class OutboxView:
    def __init__(self) -> None:
        self._queued: dict[uuid.UUID, Episode] = {}
        self._pending: dict[uuid.UUID, int] = {}
        self._deleted: set[uuid.UUID] = set()
        self._shadow: OrderedDict[uuid.UUID, object] = OrderedDict()
        self._states: OrderedDict[uuid.UUID, object] = OrderedDict()
        self.queued_jobs = 0  # completions journaled in ``queued`` mode (learning jobs)

    # -- written through to the primary --------------------------------------------------------
    def remember_created(self, episode: Episode) -> None:
        _lru_put(self._shadow, episode.episode_id, episode, MAX_SHADOW)
        self.note_state(state_of(episode))

    def remember_steps(
        self, eid: uuid.UUID, steps: list[ExecutionStep], state: EpisodeState
    ) -> None:
        base = self._shadow.get(eid)
        if isinstance(base, Episode):
            episode = base.model_copy(update={"steps": [*base.steps, *steps]})
            _lru_put(self._shadow, eid, episode, MAX_SHADOW)
        self.note_state(state)

    def note_state(self, state: EpisodeState) -> None:
        _lru_put(self._states, state.episode_id, state, MAX_STATES)

    def forget(self, eid: uuid.UUID) -> None:
        self._shadow.pop(eid, None)
        self._states.pop(eid, None)

    # -- reads ---------------------------------------------------------------------------------
    def has_pending(self, eid: uuid.UUID) -> bool:
        return eid in self._pending

    def is_deleted(self, eid: uuid.UUID) -> bool:
        return eid in self._deleted

    def episode(self, eid: uuid.UUID) -> Episode | None:
        found = self._queued.get(eid) or self._shadow.get(eid)
        return found if isinstance(found, Episode) else None

    def state(self, eid: uuid.UUID) -> EpisodeState | None:
        episode = self.episode(eid)
        if episode is not None:
            return state_of(episode)
        known = self._states.get(eid)
        return known if isinstance(known, EpisodeState) else None

    def queued_episodes(self) -> list[Episode]:
        """Episodes with journaled writes, as known locally (newer than the primary's copy)."""
        return list(self._queued.values())

    def pending_episodes(self) -> int:
        return len(self._pending)

    # -- journaled -----------------------------------------------------------------------------
    def check_append(self, eid: uuid.UUID, steps: list[ExecutionStep]) -> None:
        """The checks the primary would make, on what is known locally."""
        if eid in self._deleted:
            raise InvalidStateError(f"Episode {eid} is being deleted; steps cannot be added to it.")
        state = self.state(eid)
        if state is None:
            return
        if state.completed:
            raise InvalidStateError(f"Episode {eid} is completed; steps cannot be added to it.")
        last = state.last_step_number
        for step in steps:
            if step.step_number <= last:
                raise ValidationError(
                    "step_number",
                    f"{step.step_number} is not after the last step {last} of episode {eid}",
                    f"> {last}",
                )
            last = step.step_number

    def check_complete(self, eid: uuid.UUID, mode: str) -> None:
        state = self.state(eid)
        if eid in self._deleted:
            raise InvalidStateError(f"Episode {eid} is being deleted; it cannot be completed.")
        if state is not None and state.completed and mode != "learned":
            raise InvalidStateError(
                f"Episode {eid} is already completed; it cannot be completed again."
            )

    def queued_create(self, episode: Episode) -> None:
        self._queued[episode.episode_id] = episode
        self._deleted.discard(episode.episode_id)
        self._count(episode.episode_id)

    def queued_steps(self, eid: uuid.UUID, steps: list[ExecutionStep]) -> EpisodeState:
        self._count(eid)
        base = self.episode(eid)
        if base is not None:
            episode = base.model_copy(update={"steps": [*base.steps, *steps]})
            self._queued[eid] = episode
            return state_of(episode)
        known = self.state(eid)
        count = (known.step_count if known is not None else 0) + len(steps)
        state = EpisodeState(eid, False, count, steps[-1].step_number if steps else 0)
        self.note_state(state)
        return state

    def queued_completion(self, final: Episode, mode: str) -> None:
        self._queued[final.episode_id] = final
        self._shadow.pop(final.episode_id, None)
        if mode == "queued":
            self.queued_jobs += 1
        self._count(final.episode_id)

    def queued_delete(self, eid: uuid.UUID) -> None:
        self._queued.pop(eid, None)
        self.forget(eid)
        self._deleted.add(eid)
        self._count(eid)

    def _count(self, eid: uuid.UUID) -> None:
        self._pending[eid] = self._pending.get(eid, 0) + 1

    def load(self, entry: OutboxEntry) -> None:
        """Rebuild the view from a journal entry (at start, in a new process)."""
        eid = entry.episode_id
        if eid is None:
            return
        if entry.op == "create_episode":
            self.queued_create(created_from_json(entry.text))
        elif entry.op == "append_steps":
            self.queued_steps(eid, steps_from_json(entry.text))
        elif entry.op == "commit_completion":
            record = record_from_json(entry.text)
            self.queued_completion(completed_view(record.episode, record), record.mode)
        elif entry.op == "delete_episode":
            self.queued_delete(eid)
        else:
            self._count(eid)

    def applied(self, entry: OutboxEntry, mode: str | None = None) -> None:
        """An entry reached the primary: drop local knowledge it no longer needs. ``mode``:
        a completion's mode, if the caller decoded it (else read from the entry)."""
        if entry.op == "commit_completion":
            if mode is None:
                mode = entry.payload["record"]["mode"]
            if mode == "queued":
                self.queued_jobs = max(0, self.queued_jobs - 1)
        eid = entry.episode_id
        if eid is None or eid not in self._pending:
            return
        self._pending[eid] -= 1
        if self._pending[eid] > 0:
            return
        del self._pending[eid]
        self._deleted.discard(eid)
        episode = self._queued.pop(eid, None)
        if episode is not None and not episode.is_complete():
            self.remember_created(episode)  # still open: keep it as a shadow


def completed_view(episode: Episode, record: CompletionRecord) -> Episode:
    """The completed episode as reported before the primary has it: pattern and heuristic ids
    are those of the record (the primary may merge them into existing ones at replay)."""
    return episode.model_copy(
        update={
            "patterns": [p.id for p in record.patterns],
            "heuristics": [h.heuristic_id for h in record.heuristics],
        }
    )
