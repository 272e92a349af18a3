"""Rows to write through a batch: real Helsinki venues, events, decisions, deliveries."""

from __future__ import annotations

from typing import Any

import numpy as np

from geo.latlng import LatLng
from server.store import DecisionRecord, EventRecord, KeyedEntry, NewDelivery
from tests.decisions.builders import FORUM, KLUUVI, MARIMEKKO, campaign, profile, venue
from triggers.decisions import Chosen, Considered, Decision, LedgerEntry, Outcome, Reason
from triggers.pings import PingBatch
from triggers.presence_events import Confidence, EventKind, PresenceEvent
from triggers.presence_state import PresenceState, Visit
from triggers.presence_subset import PresenceColumns, from_columns, to_columns
from venues.model import Venue, VenueKind

T0 = 1_764_320_400.0  # 2025-11-28T09:00:00Z

__all__ = ["FORUM", "KLUUVI", "MARIMEKKO", "T0", "campaign", "circle", "profile", "venue"]


def circle(venue_id: str = "kiosk-1", **changes: object) -> Venue:
    """A circle venue by Helsinki railway station square."""
    fields: dict[str, Any] = {
        "id": venue_id, "name": "Kiosk", "kind": VenueKind.STORE,
        "center": LatLng(60.1710, 24.9430), "radius_m": 25.0, "tags": ("kiosk",),
    }
    fields.update(changes)
    return Venue(**fields)


def pings(user_id: str, n: int = 3, t0: float = T0) -> PingBatch:
    return PingBatch.from_columns(
        np.array([user_id] * n), [t0 + 10 * i for i in range(n)],
        [60.1692] * n, [24.9380] * n, accuracy_m=[10.0] * n,
    )


def enter(user_id: str, at: float = T0, visit: str = "v1") -> PresenceEvent:
    return PresenceEvent(user_id, FORUM, EventKind.ENTER, at, f"{user_id}-{visit}", None,
                         Confidence.HIGH)


def event_row(user_id: str, key: str = "e1", at: float = T0) -> EventRecord:
    return EventRecord(f"{user_id}:{key}", enter(user_id, at), at)


def decision_row(user_id: str, key: str = "e1", decided_at: float = T0) -> DecisionRecord:
    decision = Decision(
        user_id=user_id, venue_id=FORUM, event="enter", at=decided_at,
        visit_id=f"{user_id}-v1", decided_at=decided_at,
        chosen=Chosen(campaign_id="c1", variant_id="a", title="Hei", body="Tervetuloa",
                      channel="inbox", expires_at=decided_at + 3600),
        considered=(Considered(campaign_id="c1", outcome=Outcome.SENT, reason=Reason.SENT,
                               variant_id="a"),),
    )
    return DecisionRecord(f"{user_id}:{key}", decision)


def ledger_row(user_id: str, key: str = "e1", at: float = T0) -> KeyedEntry:
    return KeyedEntry(f"{user_id}:{key}", LedgerEntry(user_id, "c1", FORUM, "a", at, "inbox"))


def delivery(user_id: str, key: str = "k1", at: float = T0) -> NewDelivery:
    return NewDelivery(
        idempotency_key=f"{user_id}:{key}".ljust(40, "0"), user_id=user_id, campaign_id="c1",
        variant_id="a", venue_id=FORUM, visit_id=f"{user_id}-v1", event="enter",
        channel="inbox", title="Hei", body="Tervetuloa", locale="fi", created_at=at,
        expires_at=at + 3600,
    )


def presences(due: dict[str, float | None]) -> PresenceState:
    """A state of the given users: each last seen at T0 near Forum, with one open visit
    at Forum whose timer is due at the given time (``None``: nothing open)."""
    users = sorted(due)
    n = len(users)
    opened: list[list[object] | None] = []
    for user_id in users:
        at = due[user_id]
        if at is None:
            opened.append(None)
            continue
        visit = Visit(FORUM, f"{user_id}-v1", T0 - 60, T0, T0 - 60, 0, 0, Confidence.HIGH, at)
        opened.append([[[visit.venue_id, visit.visit_id, visit.enter_at, visit.last_inside_at,
                         visit.last_event_at, visit.dwell_done_s, visit.out_streak,
                         visit.confidence.value, visit.scheduled_s]], [[KLUUVI, T0, 1]]])
    return from_columns(PresenceColumns(
        users, np.full(n, T0), np.full(n, T0), np.full(n, 60.17), np.full(n, 24.94),
        np.zeros(n, np.int16), opened, np.full(n, np.nan)))


def presence(user_id: str, next_due_s: float | None = T0 + 300) -> PresenceState:
    return presences({user_id: next_due_s})


def described(state: PresenceState) -> dict[str, tuple[object, ...]]:
    """Each user's presence as comparable values, by user id."""
    c = to_columns(state)
    return {u: (c.last_ts[i], c.anchor_ts[i], c.anchor_lat[i], c.anchor_lng[i],
                int(c.reject_streak[i]), repr(c.open[i]), repr(c.next_due_s[i]))
            for i, u in enumerate(c.user_ids)}


def dues(state: PresenceState) -> dict[str, float | None]:
    """Each user's next due time (``None``: no open visit)."""
    c = to_columns(state)
    return {u: None if np.isnan(d) else float(d) for u, d in zip(c.user_ids, c.next_due_s,
                                                                  strict=True)}
