"""What a simulation produced: events, decisions, deliveries, a summary; and its JSON.

``to_json_obj`` is deterministic (fixed key order, times as ISO-8601 in the scenario's
zone, no wall clock), so the same scenario gives byte-identical ``--json`` output.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

import numpy as np
from numpy.typing import NDArray

from triggers.decisions.records import Decision, Outcome
from triggers.presence_events import EventKind, PresenceEvent


def iso(ts: float, tz: tzinfo) -> str:
    """ISO-8601 with the zone's offset; milliseconds only when the time has them."""
    spec = "seconds" if float(ts).is_integer() else "milliseconds"
    return datetime.fromtimestamp(ts, tz).isoformat(timespec=spec)


def number(x: float | None) -> float | int | None:
    """A JSON number: integral floats as ints (``300`` rather than ``300.0``)."""
    if x is None:
        return None
    return int(x) if float(x).is_integer() else round(float(x), 3)


def idempotency_key(event: PresenceEvent, campaign_id: str) -> str:
    """DESIGN's delivery key from (event, campaign): reprocessing the same event for the
    same campaign gives the same key, so an outbox never sends twice."""
    raw = "\x1f".join((event.visit_id, event.kind.value, str(number(event.dwell_s)),
                       campaign_id))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A push the simulated service would put in its outbox."""

    key: str
    user_id: str
    venue_id: str | None
    """``None`` for a scheduled push."""
    campaign_id: str
    variant_id: str
    channel: str
    title: str
    body: str
    at: float
    """When it was decided (virtual time), epoch seconds."""
    expires_at: float
    event: str
    event_at: float
    visit_id: str


@dataclass
class Stats:
    """Counters kept whether or not the records are (the 10k-user benchmark keeps none)."""

    events: Counter[str] = field(default_factory=Counter)
    visits_by_venue: Counter[str] = field(default_factory=Counter)
    pushes: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(campaign, variant) → pushes."""
    held_out: Counter[str] = field(default_factory=Counter)
    suppressions: Counter[str] = field(default_factory=Counter)
    """Reason → considered lines that did not send (held_out_control included)."""
    per_user_day: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(user, local date) → pushes."""
    decisions: int = 0

    def add_event(self, event: PresenceEvent) -> None:
        self.events[event.kind.value] += 1
        if event.kind is EventKind.ENTER:
            self.visits_by_venue[event.venue_id] += 1

    def add_decision(self, decision: Decision, day: str) -> None:
        self.decisions += 1
        for line in decision.considered:
            if line.outcome is Outcome.SENT:
                continue
            self.suppressions[line.reason.value] += 1
            if line.outcome is Outcome.HELD_OUT:
                self.held_out[line.campaign_id] += 1
        if decision.chosen is not None:
            self.pushes[(decision.chosen.campaign_id, decision.chosen.variant_id)] += 1
            self.per_user_day[(decision.user_id, day)] += 1


@dataclass
class Track:
    """Pings of one user, for maps and plots."""

    ts: list[NDArray[np.float64]] = field(default_factory=list)
    lat: list[NDArray[np.float64]] = field(default_factory=list)
    lng: list[NDArray[np.float64]] = field(default_factory=list)

    def arrays(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        if not self.ts:
            empty = np.zeros(0)
            return empty, empty, empty
        ts, lat, lng = (np.concatenate(x) for x in (self.ts, self.lat, self.lng))
        order = np.argsort(ts, kind="stable")
        return ts[order], lat[order], lng[order]


@dataclass
class SimulationResult:
    """Everything a run produced. ``events``/``decisions``/``deliveries`` are empty when
    the run kept no records (``keep_records=False``); ``stats`` always counts."""

    name: str
    tz: tzinfo
    start: float
    end: float
    users: int
    events: list[PresenceEvent]
    decisions: list[Decision]
    deliveries: list[Delivery]
    stats: Stats
    counters: dict[str, int]
    tracks: dict[str, Track]
    open_visits: int
    backtest: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    """Opens, clicks, CTR and lift drawn by the scenario's response model (if it has one)."""
    expectations: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        s = self.stats
        by_campaign: dict[str, dict[str, int]] = {}
        for (campaign, variant), n in sorted(s.pushes.items()):
            by_campaign.setdefault(campaign, {})[variant] = n
        days: dict[str, Counter[int]] = {}
        for (_, day), n in s.per_user_day.items():
            days.setdefault(day, Counter())[n] += 1
        per_user_day = {
            day: {
                "users_pushed": sum(hist.values()),
                "max": max(hist),
                "histogram": {str(k): hist[k] for k in sorted(hist)},
            }
            for day, hist in sorted(days.items())
        }
        out: dict[str, Any] = {
            "scenario": self.name,
            "start": iso(self.start, self.tz),
            "end": iso(self.end, self.tz),
            "users": self.users,
            "pings": self.counters,
            "events": {k: s.events[k] for k in ("enter", "dwell", "exit")},
            "visits": sum(s.visits_by_venue.values()),
            "visits_by_venue": dict(sorted(s.visits_by_venue.items())),
            "open_visits_at_end": self.open_visits,
            "decisions": s.decisions,
            "pushes": sum(s.pushes.values()),
            "pushes_by_campaign": by_campaign,
            "held_out_by_campaign": dict(sorted(s.held_out.items())),
            "suppressions_by_reason": dict(sorted(s.suppressions.items())),
            "pushes_per_user_per_day": per_user_day,
        }
        if self.response is not None:
            out["response"] = self.response
        return out

    def to_json_obj(self) -> dict[str, Any]:
        tz = self.tz
        out: dict[str, Any] = {
            "events": [
                {
                    "user_id": e.user_id, "venue_id": e.venue_id, "kind": e.kind.value,
                    "at": iso(e.at, tz), "visit_id": e.visit_id, "dwell_s": number(e.dwell_s),
                    "confidence": e.confidence.value,
                    "reason": None if e.reason is None else e.reason.value, "stale": e.stale,
                }
                for e in self.events
            ],
            "decisions": [decision_json(d, tz) for d in self.decisions],
            "deliveries": [
                {
                    "id": d.key, "user_id": d.user_id, "venue_id": d.venue_id,
                    "campaign_id": d.campaign_id, "variant_id": d.variant_id,
                    "channel": d.channel, "title": d.title, "body": d.body,
                    "at": iso(d.at, tz), "expires_at": iso(d.expires_at, tz),
                    "event": d.event, "event_at": iso(d.event_at, tz), "visit_id": d.visit_id,
                }
                for d in self.deliveries
            ],
            "summary": self.summary(),
        }
        if self.expectations:
            out["expectations"] = self.expectations
        if self.backtest is not None:
            out["backtest"] = self.backtest
        return out


def decision_json(d: Decision, tz: tzinfo) -> dict[str, Any]:
    chosen: dict[str, Any] | None = None
    if d.chosen is not None:
        chosen = {
            "campaign_id": d.chosen.campaign_id, "variant_id": d.chosen.variant_id,
            "title": d.chosen.title, "body": d.chosen.body, "channel": d.chosen.channel,
        }
        if d.chosen.rich is not None:
            chosen["rich"] = d.chosen.rich.as_json()
    return {
        "user_id": d.user_id,
        "venue_id": d.venue_id,
        "event": d.event,
        "at": iso(d.at, tz),
        "decided_at": iso(d.decided_at, tz),
        "visit_id": d.visit_id,
        "chosen": chosen,
        "considered": [
            {"campaign_id": c.campaign_id, "outcome": c.outcome.value, "reason": c.reason.value,
             "variant_id": c.variant_id, "detail": c.detail}
            for c in d.considered
        ],
        "notes": list(d.notes),
    }
