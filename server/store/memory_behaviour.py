"""The embedded store's behaviour data for one tenant: events by user and key, their
arrival order (for retention), features, tag rules.

Events are kept for the most recent :data:`BEHAVIOUR_RETENTION` per tenant (oldest
received dropped first), as pings are: the embedded store is no archive.

An event is kept packed: its time, when it was received and its JSON, in one tuple the
cyclic garbage collector stops looking at after its first pass. Kept as models (seven
container objects an event), half a million events made every collection walk millions
of objects: about a quarter of the server's CPU under a stream of events. A listing
reads the few events it returns back into models.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic_core import PydanticSerializationError

from server.store.base import DecisionRecord
from server.store.roles.behaviour import BehaviourRecord
from triggers.behaviour.events import BehaviourEvent
from triggers.behaviour.features import EMPTY, UserFeatures, fold
from triggers.behaviour.rules import TagRules
from triggers.behaviour.triggers import (
    PendingState,
    PendingTrigger,
    cancellations,
    cancelled_decision,
    triggered,
)
from triggers.decisions.models import Campaign

BEHAVIOUR_RETENTION = 500_000
"""Behaviour events kept per tenant by the embedded store."""

Packed = tuple[float, float, "bytes | BehaviourEvent"]
"""A stored event: (``ts``, ``received_at``, the event's JSON, or the event itself when
it has no JSON form: a lone surrogate)."""

_TO_JSON = BehaviourEvent.__pydantic_serializer__.to_json
"""``model_dump_json`` as bytes, without its Python wrapper: a third of orjson's cost
on a model (which needed a Python callback for the item)."""


def _pack(record: BehaviourRecord) -> Packed:
    event = record.event
    try:
        body: bytes | BehaviourEvent = _TO_JSON(event)
    except PydanticSerializationError:
        body = event
    return (event.ts, record.received_at, body)


def unpack(key: str, packed: Packed) -> BehaviourRecord:
    _, received_at, body = packed
    event = body if isinstance(body, BehaviourEvent) else BehaviourEvent.model_validate_json(
        body)
    return BehaviourRecord(key, event, received_at)


@dataclass(slots=True)
class BehaviourLog:
    limit: int = BEHAVIOUR_RETENTION
    by_user: dict[str, dict[str, Packed]] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)
    """Event key → user id: keys are UNIQUE per tenant."""
    arrivals: deque[tuple[float, str]] = field(default_factory=deque)
    """(received_at, key), oldest first; keys erased since are skipped when met."""
    features: dict[str, UserFeatures] = field(default_factory=dict)
    rules: TagRules | None = None
    triggers: dict[str, PendingTrigger] = field(default_factory=dict)
    """Key → every trigger, whatever its state."""
    states: dict[str, PendingState] = field(default_factory=dict)
    pending_by_user: dict[str, set[str]] = field(default_factory=dict)

    def ingest(self, records: Sequence[BehaviourRecord], campaigns: Sequence[Campaign],
               now: float, decisions: dict[str, dict[str, DecisionRecord]],
               ) -> list[BehaviourRecord]:
        """Store the new records, fold them into features, start and cancel triggers
        (see ``BehaviourStore.ingest_behaviour``); synchronous, so atomic."""
        new: list[BehaviourRecord] = []
        by_user: dict[str, list[BehaviourRecord]] = {}
        owner, stored, arrivals = self.owner, self.by_user, self.arrivals
        for record in records:
            key = record.event_key
            if key in owner:
                continue
            user = record.event.user_id
            owner[key] = user
            stored.setdefault(user, {})[key] = _pack(record)
            arrivals.append((record.received_at, key))
            new.append(record)
            by_user.setdefault(user, []).append(record)
        for user, own in by_user.items():
            self.features[user] = fold(self.features.get(user, EMPTY), (r.event for r in own))
            if not campaigns:
                continue  # as on PostgreSQL: no active behaviour campaign, nothing to do
            for record in own:
                for pending in triggered(campaigns, record.event_key, record.event):
                    self._start(pending)
            # After the starts: a follow-up in the same batch cancels them too.
            self._follow(user, [r.event for r in own], now, decisions)
        while len(self.owner) > self.limit:
            self._drop_oldest()
        return new

    def _start(self, pending: PendingTrigger) -> None:
        if pending.key in self.triggers:
            return
        self.triggers[pending.key] = pending
        self.states[pending.key] = PendingState.PENDING
        self.pending_by_user.setdefault(pending.user_id, set()).add(pending.key)

    def _follow(self, user: str, events: list[BehaviourEvent], now: float,
                decisions: dict[str, dict[str, DecisionRecord]]) -> None:
        """Cancel the user's open triggers these events follow up."""
        keys = self.pending_by_user.get(user)
        if not keys:
            return
        decided = decisions.setdefault(user, {})
        for pending, event in cancellations([self.triggers[k] for k in sorted(keys)], events):
            if pending.key in decided:
                continue  # it fired already
            decided[pending.key] = DecisionRecord(
                pending.key, cancelled_decision(pending, event, now))
            self._settle(pending.key, PendingState.CANCELLED)

    def _settle(self, key: str, state: PendingState) -> None:
        self.states[key] = state
        pending = self.triggers[key]
        own = self.pending_by_user.get(pending.user_id)
        if own is not None:
            own.discard(key)
            if not own:
                del self.pending_by_user[pending.user_id]

    def due(self, now: float, limit: int) -> list[PendingTrigger]:
        found = [self.triggers[k] for keys in self.pending_by_user.values() for k in keys
                 if self.triggers[k].due_at <= now]
        found.sort(key=lambda p: (p.due_at, p.key))
        return found[:limit]

    def still_open(self, keys: Sequence[str]) -> list[PendingTrigger]:
        return [self.triggers[k] for k in keys
                if self.states.get(k) is PendingState.PENDING]

    def fired(self, keys: Sequence[str]) -> int:
        open_keys = [p.key for p in self.still_open(keys)]
        for key in open_keys:
            self._settle(key, PendingState.FIRED)
        return len(open_keys)

    def _drop_oldest(self) -> bool:
        """Drop the oldest event still stored; False when none is left."""
        while self.arrivals:
            _, key = self.arrivals.popleft()
            user = self.owner.pop(key, None)
            if user is not None:
                own = self.by_user[user]
                del own[key]
                if not own:
                    del self.by_user[user]
                return True
        return False

    def prune(self, before: float, limit: int) -> int:
        """Drop at most ``limit`` events received before ``before``, oldest first."""
        gone = 0
        while gone < limit and self.arrivals and self.arrivals[0][0] < before:
            if self.arrivals[0][1] not in self.owner:
                self.arrivals.popleft()  # erased already
                continue
            self._drop_oldest()
            gone += 1
        return gone

    def listing(self, user_id: str, since: float | None, limit: int) -> list[BehaviourRecord]:
        rows = [(packed[0], key) for key, packed in self.by_user.get(user_id, {}).items()
                if since is None or packed[0] >= since]
        rows.sort()
        own = self.by_user.get(user_id, {})
        return [unpack(key, own[key]) for _, key in rows[-limit:]] if limit > 0 else []

    def erase(self, user_id: str) -> dict[str, int]:
        own = self.by_user.pop(user_id, {})
        for key in own:
            del self.owner[key]  # the arrival entry is skipped when met
        mine = [k for k, p in self.triggers.items() if p.user_id == user_id]
        for key in mine:
            del self.triggers[key]
            del self.states[key]
        self.pending_by_user.pop(user_id, None)
        return {"behaviour_events": len(own),
                "behaviour_features": int(self.features.pop(user_id, None) is not None),
                "behaviour_triggers": len(mine)}
