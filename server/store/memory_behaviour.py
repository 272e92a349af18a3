"""The embedded store's behaviour data for one tenant: events by user and key, their
arrival order (for retention), features, tag rules.

Events are kept for the most recent :data:`BEHAVIOUR_RETENTION` per tenant (oldest
received dropped first), as pings are: the embedded store is no archive.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from server.store.roles.behaviour import BehaviourRecord
from triggers.behaviour.features import EMPTY, UserFeatures, fold
from triggers.behaviour.rules import TagRules

BEHAVIOUR_RETENTION = 500_000
"""Behaviour events kept per tenant by the embedded store."""


@dataclass(slots=True)
class BehaviourLog:
    limit: int = BEHAVIOUR_RETENTION
    by_user: dict[str, dict[str, BehaviourRecord]] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)
    """Event key → user id: keys are UNIQUE per tenant."""
    arrivals: deque[tuple[float, str]] = field(default_factory=deque)
    """(received_at, key), oldest first; keys erased since are skipped when met."""
    features: dict[str, UserFeatures] = field(default_factory=dict)
    rules: TagRules | None = None

    def ingest(self, records: Sequence[BehaviourRecord]) -> list[BehaviourRecord]:
        """Store the new records, fold them into features; synchronous, so atomic."""
        new: list[BehaviourRecord] = []
        for record in records:
            if record.event_key in self.owner:
                continue
            user = record.event.user_id
            self.owner[record.event_key] = user
            self.by_user.setdefault(user, {})[record.event_key] = record
            self.arrivals.append((record.received_at, record.event_key))
            new.append(record)
        by_user: dict[str, list[BehaviourRecord]] = {}
        for record in new:
            by_user.setdefault(record.event.user_id, []).append(record)
        for user, own in by_user.items():
            self.features[user] = fold(self.features.get(user, EMPTY), (r.event for r in own))
        while len(self.owner) > self.limit:
            self._drop_oldest()
        return new

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
        rows = [r for r in self.by_user.get(user_id, {}).values()
                if since is None or r.event.ts >= since]
        rows.sort(key=lambda r: (r.event.ts, r.event_key))
        return rows[-limit:] if limit > 0 else []

    def erase(self, user_id: str) -> dict[str, int]:
        own = self.by_user.pop(user_id, {})
        for key in own:
            del self.owner[key]  # the arrival entry is skipped when met
        return {"behaviour_events": len(own),
                "behaviour_features": int(self.features.pop(user_id, None) is not None)}
