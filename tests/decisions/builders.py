"""Small builders for decision tests: real venues from the fixtures, events, profiles,
campaigns. Times are built from local wall clocks so tests read like the rules they pin."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from shapely.geometry import shape

from triggers.decisions import (
    Campaign,
    CampaignIndex,
    Decision,
    InMemoryLedger,
    Profile,
    TenantPolicy,
    decide,
)
from triggers.learning.signals import Signals
from venues.model import Venue, VenueKind

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "venues"

# Real venues (© OpenStreetMap contributors, ODbL; see fixtures/venues/SOURCES.md).
GUOMAO = "bjsubway:5430522453"  # 国贸, Line 1 + Line 10
DONGDAN = "bjsubway:5430429324"  # 东单, Line 1 + Line 5
JIANGUOMEN = "bjsubway:5430497283"  # 建国门, Line 1 + Line 2
XIZHIMEN = "bjsubway:5430462574"  # 西直门, Line 2 / 4 / 13
FORUM = "osm:way/289767497"  # Forum, Helsinki
KLUUVI = "osm:way/22273017"  # Kauppakeskus Kluuvi, Helsinki
SANOMATALO = "osm:way/122595236"  # opening_hours in metadata: Mo-Fr 07:00-22:00; Sa,Su 09:00-22:00
MARIMEKKO = "osm:node/6139262278"  # a store inside Forum
# opening_hours in metadata: Jun-Aug: Su-Sa 09:00-24:00; Sep-May: Su-Sa 09:00-18:00
TUOMIOKIRKKO = "osm:way/419479428"  # Helsinki Cathedral

HELSINKI = "Europe/Helsinki"
SHANGHAI = "Asia/Shanghai"


def at(text: str, tz: str = HELSINKI) -> float:
    """Epoch seconds of a local wall-clock time, ``"2026-03-29 10:00"``."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


@lru_cache(maxsize=2)
def _features(name: str) -> dict[str, dict[str, Any]]:
    data = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return {f["properties"]["id"]: f for f in data["features"]}


def venue(venue_id: str, **changes: Any) -> Venue:
    """A fixture venue (Beijing or Helsinki) as a ``Venue`` with its real polygon."""
    features = _features("beijing_venues.geojson") | _features("helsinki_venues.geojson")
    feature = features[venue_id]
    props = feature["properties"]
    fields: dict[str, Any] = {
        "id": props["id"],
        "name": props["name"],
        "kind": VenueKind(props["kind"]),
        "shape": shape(feature["geometry"]),
        "tags": tuple(props.get("tags") or ()),
        "parent_id": props.get("parent_id"),
        "timezone": props.get("timezone"),
        "metadata": props.get("metadata") or {},
        "opening_hours": props.get("opening_hours"),
    }
    fields.update(changes)
    return Venue(**fields)


class Kind(StrEnum):
    """Stands in for the presence engine's event kind enum."""

    ENTER = "enter"
    DWELL = "dwell"
    EXIT = "exit"


@dataclass(frozen=True)
class Event:
    """Satisfies ``EventLike`` the way the presence engine's event does."""

    user_id: str
    venue_id: str
    kind: Kind
    at: float
    visit_id: str = "v1"
    dwell_s: float | None = None
    confidence: str = "high"
    reason: str | None = None
    stale: bool = False


def event(
    venue_id: str = FORUM, when: float = 0.0, kind: Kind = Kind.ENTER, user_id: str = "u1",
    **changes: Any,
) -> Event:
    return Event(user_id=user_id, venue_id=venue_id, kind=kind, at=when, **changes)


def profile(user_id: str = "u1", **data: Any) -> Profile:
    attributes = {"timezone": HELSINKI, "age": 34, "locale": "fi-FI", "first_name": "Aino"}
    attributes.update(data.pop("attributes", {}))
    return Profile.model_validate({"user_id": user_id, "attributes": attributes, **data})


def campaign(campaign_id: str = "c1", **data: Any) -> Campaign:
    base: dict[str, Any] = {
        "id": campaign_id,
        "trigger": {"event": "enter"},
        "venues": {"kinds": ["mall"]},
        "variants": [{"id": "a", "title": "Hei {{ user.first_name }}", "body": "Tervetuloa"}],
    }
    base.update(data)
    return Campaign.model_validate(base)


def policy(**data: Any) -> TenantPolicy:
    return TenantPolicy.model_validate(data)


# Positional like decide() itself, so a test reads in the same order as the call it makes.
def run(  # noqa: PLR0917
    ev: Event,
    user: Profile,
    campaigns: list[Campaign],
    place: Venue,
    pol: TenantPolicy | None = None,
    ledger: InMemoryLedger | None = None,
    now: float | None = None,
    record: bool = True,
    signals: Signals | None = None,
) -> Decision:
    """Decide, then record what was decided, as the service does in one transaction."""
    ledger = ledger if ledger is not None else InMemoryLedger()
    decision = decide(
        ev, user, CampaignIndex(campaigns), place, pol or policy(), ledger,
        ev.at if now is None else now, signals=signals,
    )
    if record:
        for entry in decision.ledger_entries():
            ledger.record(entry)
    return decision


def reasons(decision: Decision) -> dict[str, str]:
    return {c.campaign_id: str(c.reason) for c in decision.considered}
