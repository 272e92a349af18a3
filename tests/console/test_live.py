"""The live view of a venue: who is inside now, entries in the last hour, how long
visits lasted, the latest events — from the venue's events, on both stores."""

from __future__ import annotations

import pytest

from server.auth import Role
from server.console.live import live_summary
from server.store.base import EventRecord
from tests.console.conftest import Api
from tests.console.test_security import sign_in
from tests.server.api.conftest import NOON_UTC, blockbuster, ping, venue_feature  # noqa: F401
from tests.server.conftest import OTHER_TENANT
from triggers.presence_events import Confidence, EventKind, ExitReason, PresenceEvent

SESSION_LOOP = pytest.mark.asyncio(loop_scope="session")


def _event(user: str, kind: EventKind, at: float, dwell_s: float | None = None) -> EventRecord:
    event = PresenceEvent(user_id=user, venue_id="senate", kind=kind, at=at,
                          visit_id=f"{user}-visit", dwell_s=dwell_s,
                          confidence=Confidence.HIGH,
                          reason=ExitReason.LEFT if kind is EventKind.EXIT else None)
    return EventRecord(f"{user}-{kind}-{at}", event, at)


def test_inside_are_those_whose_last_event_is_not_an_exit_newest_entry_first() -> None:
    now = NOON_UTC
    records = [
        _event("ann", EventKind.ENTER, now - 7200),
        _event("ann", EventKind.EXIT, now - 5400, dwell_s=1800),
        _event("bob", EventKind.ENTER, now - 1200),
        _event("bob", EventKind.DWELL, now - 900, dwell_s=300),
        _event("cai", EventKind.ENTER, now - 60),
    ]
    live = live_summary(records, now)
    assert [p["user_id"] for p in live["inside"]] == ["cai", "bob"]
    assert live["inside"][1]["since"] == now - 1200  # the visit's ENTER, not its DWELL
    assert live["entries_last_hour"] == 2
    by_label = {b["label"]: b["count"] for b in live["dwell_minutes"]}
    assert by_label["30–60 min"] == 1 and sum(by_label.values()) == 1
    assert [e["user_id"] for e in live["latest"]][:2] == ["cai", "bob"]


@SESSION_LOOP
async def test_a_walker_who_entered_is_inside_in_the_live_view(api: Api) -> None:
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    now = api.clock.now
    await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={
        "pings": [ping("walker", ts=now - 20), ping("walker", ts=now - 10)]})
    signed = await sign_in(api)
    resp = await api.client.get("/console/api/live/senate", headers=signed.headers)
    live = await resp.json()
    assert resp.status == 200, live
    assert [p["user_id"] for p in live["inside"]] == ["walker"]
    assert live["entries_last_hour"] == 1
    assert live["latest"][0]["kind"] == "enter"


@SESSION_LOOP
async def test_the_live_view_of_another_tenants_venue_is_not_found(api: Api) -> None:
    await api.call("PUT", "/v1/venues/senate", tenant=OTHER_TENANT,
                   json_body=venue_feature(), expect=201)
    signed = await sign_in(api)
    resp = await api.client.get("/console/api/live/senate", headers=signed.headers)
    assert resp.status == 404
