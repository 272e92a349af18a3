"""The live view of a venue: who is inside now, entries in the last hour, how long
visits lasted, the latest events, from the venue's presence events of the last day.

``GET /console/api/live/{id}`` answers it as JSON; the Live page polls it every few
seconds. Someone inside for more than :data:`LOOKBACK_S` without a later event is not
counted (their ENTER is older than what is read).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from server.api.context import CLOCK, LIMITER, json_response, path_id, store
from server.api.registry import not_found
from server.console.bridge import session_principal
from server.store.base import EventRecord

LOOKBACK_S = 86_400.0
"""Events read per view: a day (a mall visit lasts hours, not days)."""
MAX_EVENTS = 5_000
LATEST = 12
DWELL_BINS_MIN: tuple[tuple[float, float], ...] = (
    (0, 5), (5, 15), (15, 30), (30, 60), (60, 120), (120, float("inf")))
"""Visit lengths in minutes, for the dwell histogram."""


def live_summary(records: Sequence[EventRecord], now: float) -> dict[str, Any]:
    """The live view of one venue from its events (oldest first). Pure."""
    last_by_user: dict[str, EventRecord] = {}
    entered: dict[str, float] = {}
    for r in records:
        last_by_user[r.event.user_id] = r
        if r.event.kind.value == "enter":
            entered[r.event.user_id] = r.event.at
    inside = sorted(
        ({"user_id": u, "since": entered.get(u, r.event.at), "confidence": r.event.confidence.value}
         for u, r in last_by_user.items() if r.event.kind.value != "exit"),
        key=lambda row: (-float(row["since"]), str(row["user_id"])))
    exits = [r.event.dwell_s / 60.0 for r in records
             if r.event.kind.value == "exit" and r.event.dwell_s is not None]
    bins = [{"label": _bin_label(lo, hi), "count": sum(lo <= m < hi for m in exits)}
            for lo, hi in DWELL_BINS_MIN]
    return {
        "now": now,
        "inside": inside,
        "entries_last_hour": sum(1 for r in records if r.event.kind.value == "enter"
                                 and r.event.at >= now - 3600),
        "dwell_minutes": bins,
        "latest": [r.event.to_dict() for r in reversed(records[-LATEST:])],
    }


def _bin_label(lo: float, hi: float) -> str:
    return f"≥ {lo:g} min" if hi == float("inf") else f"{lo:g}–{hi:g} min"


async def venue_live(request: web.Request) -> web.Response:
    """``GET /console/api/live/{id}``: :func:`live_summary` of the venue now."""
    session = await session_principal(request, write=False)
    await request.app[LIMITER].acquire(session.principal)
    tenant, vid = session.principal.tenant_id, path_id(request)
    if await store(request).get_venue(tenant, vid) is None:
        raise not_found("venue", vid)
    now = float(request.app[CLOCK]())
    records = await store(request).venue_events(tenant, vid, since=now - LOOKBACK_S,
                                                limit=MAX_EVENTS)
    return json_response({"venue_id": vid, **live_summary(records, now)})
