"""Late history through the HTTP API: a phone emptying its offline buffer an hour late,
in one request or many, gives one visit — on both stores, with the server's timer loop
running between the requests — and its events stay ``stale`` (never pushed).

The timer loop's round is :func:`server.pipeline.fire_timers` at the fake clock's time,
called between requests exactly as ``server.pipeline.fire_all_timers`` calls it.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.api.context import CORES
from server.auth import Role
from server.cli import main as cli_main
from server.cli.scenario_files import load_scenario
from server.pipeline import fire_timers
from server.store import Store
from tests.server.api.conftest import (
    Api,
    FakeClock,
    campaign_body,
    ping,
    serving,
    venue_feature,
)
from tests.server.conftest import TENANT
from triggers.simulation import simulate

pytestmark = pytest.mark.asyncio(loop_scope="session")

HOUR_S = 3600.0
STILL_PINGS = 60
"""Still pings 10 s apart inside Senate Square (a 100 m circle): ten minutes of a stay."""
INTERVAL_S = 10.0
SILENCE_S = 900.0
DWELL_S = 300.0


@dataclass(frozen=True, slots=True)
class Seen:
    """An event as a user sees it, less the user (visit ids hash the user id)."""

    kind: str
    at: float
    dwell_s: float | None
    confidence: str
    reason: str | None
    stale: bool


async def _setup(api: Api) -> None:
    """Senate Square and a DWELL campaign there (once per app: examples share it)."""
    resp, _ = await api.call("GET", "/v1/campaigns/linger")
    if resp.status == 200:
        return
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    await api.call("POST", "/v1/campaigns", expect=201, json_body=campaign_body(
        "linger", status="active", trigger={"event": "dwell", "dwell_s": 300}))


async def _timer_round(api: Api) -> None:
    """One round of the server's timer loop at the clock's wall time."""
    cores = api.client.app[CORES]
    while len((await fire_timers(api.store, cores, TENANT, api.clock.now, limit=50)).users) \
            == 50:
        pass


def _history(user: str, t0: float) -> list[dict[str, Any]]:
    return [ping(user, ts=t0 + INTERVAL_S * i) for i in range(STILL_PINGS)]


async def _post(api: Api, pings: list[dict[str, Any]], *, owntracks: bool) -> None:
    if not owntracks:
        await api.call("POST", "/v1/pings", role=Role.SDK, expect=200,
                       json_body={"pings": pings})
        return
    [fix] = pings  # OwnTracks HTTP mode posts one location per request
    message = {"_type": "location", "tid": "JJ", "lat": fix["lat"], "lon": fix["lng"],
               "tst": int(fix["ts"]), "acc": int(fix["accuracy_m"]), "t": "u"}
    await api.call("POST", "/v1/owntracks", role=Role.SDK, expect=200, json_body=message,
                   headers={"X-Limit-U": fix["user_id"], "X-Limit-D": "phone"})


async def _events(api: Api, user: str) -> tuple[list[Seen], set[str]]:
    records = await api.store.list_events(TENANT, user)
    seen = [Seen(r.event.kind.value, r.event.at, r.event.dwell_s, r.event.confidence.value,
                 None if r.event.reason is None else r.event.reason.value, r.event.stale)
            for r in records]
    return seen, {r.event.visit_id for r in records}


async def _upload(api: Api, user: str, t0: float, cuts: list[int], *, gaps_s: list[float],
                  timers: list[bool], owntracks: bool = False) -> None:
    """The history of ``user`` from ``t0`` in requests split before the indices ``cuts``,
    the clock moving ``gaps_s[k]`` and the timer loop running (``timers[k]``) after
    request k; then the upload stops and the clock moves on past the silence timeout."""
    pings = _history(user, t0)
    bounds = [0, *cuts, len(pings)]
    for k, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        await _post(api, pings[lo:hi], owntracks=owntracks)
        if k < len(gaps_s):
            api.clock.advance(gaps_s[k])
            if timers[k]:
                await _timer_round(api)
    api.clock.advance(SILENCE_S - 1)
    await _timer_round(api)
    still_open, _ = await _events(api, user)
    assert "exit" not in [e.kind for e in still_open], "closed before 900 s of silence"
    api.clock.advance(2)
    await _timer_round(api)


def _since(events: list[Seen], t0: float) -> list[Seen]:
    return [replace(e, at=e.at - t0) for e in events]


def _expected(t0: float) -> list[Seen]:
    last = t0 + INTERVAL_S * (STILL_PINGS - 1)
    return [Seen("enter", t0, None, "high", None, True),
            Seen("dwell", t0 + DWELL_S, DWELL_S, "high", None, True),
            Seen("exit", last, last - t0, "low", "timeout", True)]


async def test_history_sent_an_hour_late_in_six_requests_is_one_visit(api: Api) -> None:
    await _setup(api)
    t0 = api.clock.now - HOUR_S
    await _upload(api, "split", t0, [10, 20, 30, 40, 50], gaps_s=[2.0] * 5,
                  timers=[True] * 5)
    split, split_visits = await _events(api, "split")
    await _upload(api, "whole", api.clock.now - HOUR_S, [], gaps_s=[], timers=[])
    whole, whole_visits = await _events(api, "whole")
    assert split == _expected(t0)
    assert len(split_visits) == 1 and len(whole_visits) == 1
    assert [e.kind for e in whole] == ["enter", "dwell", "exit"]
    _, log = await api.call("GET", "/v1/users/split/decisions", expect=200)
    assert sorted(d["event"] for d in log["decisions"]) == ["dwell", "enter", "exit"]
    assert all(d["chosen"] is None for d in log["decisions"])
    [dwell] = [d for d in log["decisions"] if d["event"] == "dwell"]
    assert [(c["campaign_id"], c["reason"]) for c in dwell["considered"]] == [
        ("linger", "stale_event")]


async def test_owntracks_buffer_emptied_one_fix_per_request_is_one_visit(api: Api) -> None:
    await _setup(api)
    t0 = api.clock.now - HOUR_S
    await _upload(api, "jane", t0, list(range(1, STILL_PINGS)),
                  gaps_s=[1.0] * (STILL_PINGS - 1), timers=[True] * (STILL_PINGS - 1),
                  owntracks=True)
    events, visits = await _events(api, "jane")
    assert events == _expected(t0)
    assert len(visits) == 1


async def test_late_dwell_waits_for_the_history_to_reach_the_threshold(api: Api) -> None:
    """Two minutes of history an hour late: no DWELL yet — the evidence stops at 110 s —
    until the user's own clock reaches the threshold (wall time since the upload)."""
    await _setup(api)
    t0 = api.clock.now - HOUR_S
    await _post(api, _history("u1", t0)[:12], owntracks=False)
    await _timer_round(api)
    events, _ = await _events(api, "u1")
    assert [e.kind for e in events] == ["enter"]
    api.clock.advance(DWELL_S - 110.0 - 1.0)
    await _timer_round(api)
    assert [e.kind for e in (await _events(api, "u1"))[0]] == ["enter"]
    api.clock.advance(2.0)
    await _timer_round(api)
    events, _ = await _events(api, "u1")
    assert [(e.kind, e.at, e.stale) for e in events] == [
        ("enter", t0, True), ("dwell", t0 + DWELL_S, True)]


async def test_live_phone_still_closes_by_silence_on_the_wall_clock(api: Api) -> None:
    """A phone whose pings arrive at once (10 s latency) keeps the wall clock: the visit
    ends 900 s (wall) after its last inside ping, as it always has; its events are fresh."""
    await _setup(api)
    now = api.clock.now
    await _post(api, [ping("live", ts=now - 20), ping("live", ts=now - 10)], owntracks=False)
    api.clock.advance(DWELL_S - 20.0)
    await _timer_round(api)
    assert [e.kind for e in (await _events(api, "live"))[0]] == ["enter", "dwell"]
    api.clock.advance(SILENCE_S - DWELL_S + 10.0 - 1.0)
    await _timer_round(api)
    assert [e.kind for e in (await _events(api, "live"))[0]] == ["enter", "dwell"]
    api.clock.advance(2.0)
    await _timer_round(api)
    events, _ = await _events(api, "live")
    assert [(e.kind, e.at, e.stale) for e in events] == [
        ("enter", now - 20, False), ("dwell", now - 20 + DWELL_S, False),
        ("exit", now - 20 + DWELL_S, False)]  # never before the visit's own DWELL


async def test_live_lag_is_a_tenant_presence_setting(api: Api) -> None:
    """``presence.live_lag_s`` of PUT /v1/policy: two hours make an hour-late upload
    live, so the silence timeout ends its visit at once, on the wall clock."""
    await _setup(api)
    _, answer = await api.call("PUT", "/v1/policy", expect=422,
                               json_body={"presence": {"live_lag_s": -1}})
    assert answer["error"]["field"] == "presence.live_lag_s"
    await api.call("PUT", "/v1/policy", expect=200,
                   json_body={"presence": {"live_lag_s": 2 * HOUR_S}})
    t0 = api.clock.now - HOUR_S
    await _post(api, _history("u1", t0), owntracks=False)
    events, _ = await _events(api, "u1")
    assert [e.kind for e in events] == ["enter", "dwell", "exit"]


# --------------------------------------------------------------------------- property


@asynccontextmanager
async def _unthrottled(store: Store) -> AsyncIterator[Api]:
    """The app on ``store`` (examples share it: fresh users each) with rate limits far
    above what an example sends in its (real) fraction of a second."""
    async with serving(store, FakeClock(), rate_sdk_per_s=1e6, rate_sdk_burst=10**6,
                       rate_admin_per_s=1e6, rate_admin_burst=10**6) as api:
        await _setup(api)
        yield api


@st.composite
def _splits(draw: st.DrawFn) -> tuple[list[int], list[float], list[bool]]:
    cuts = sorted(draw(st.sets(st.integers(1, STILL_PINGS - 1), max_size=STILL_PINGS - 1)))
    # A phone emptying its buffer sends request after request; a pause of up to five
    # minutes between two of them (a flaky connection) must not cut the stay either.
    gaps = draw(st.lists(st.floats(0.0, 300.0), min_size=len(cuts), max_size=len(cuts)))
    timers = draw(st.lists(st.booleans(), min_size=len(cuts), max_size=len(cuts)))
    return cuts, gaps, timers


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(split=_splits(), late_s=st.floats(2 * 600.0, 3 * 86_400.0))
async def test_late_history_gives_one_request_s_visits_however_it_is_split(
    store: Store, split: tuple[list[int], list[float], list[bool]], late_s: float
) -> None:
    cuts, gaps, timers = split
    async with _unthrottled(store) as api:
        user, reference = f"u-{uuid.uuid4().hex[:8]}", f"r-{uuid.uuid4().hex[:8]}"
        t0_whole = round(api.clock.now - late_s)
        await _upload(api, reference, t0_whole, [], gaps_s=[], timers=[])
        whole, _ = await _events(api, reference)
        t0 = round(api.clock.now - late_s)  # the same history, as late, in pieces
        await _upload(api, user, t0, cuts, gaps_s=gaps, timers=timers)
        events, visits = await _events(api, user)
    assert _since(events, t0) == _since(whole, t0_whole) == _since(_expected(t0), t0)
    assert len(visits) == 1


@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(gaps=st.lists(st.floats(0.0, 30.0), min_size=STILL_PINGS - 1,
                     max_size=STILL_PINGS - 1))
async def test_owntracks_one_fix_per_request_gives_one_visit_for_any_pacing(
    store: Store, gaps: list[float]
) -> None:
    async with _unthrottled(store) as api:
        user = f"o-{uuid.uuid4().hex[:8]}"
        t0 = round(api.clock.now - HOUR_S)
        await _upload(api, user, t0, list(range(1, STILL_PINGS)), gaps_s=gaps,
                      timers=[i % 7 == 0 for i in range(STILL_PINGS - 1)], owntracks=True)
        events, visits = await _events(api, user)
    assert events == _expected(t0)
    assert len(visits) == 1



# --------------------------------------------------------------------------- three drivers


Row = tuple[str, float, float | None, str | None]


def _offline_drivers(folder: Path, t0: float) -> tuple[list[Row], list[Row]]:
    """``geopush simulate`` and ``geopush visits`` on the history, each ping with a
    ``received_at`` an hour after its ts: their events as (kind, at, dwell_s, reason)."""
    venues = folder / "senate.geojson"
    venues.write_text(json.dumps({"type": "FeatureCollection",
                                  "features": [venue_feature(dwell_s=300)]}), encoding="utf-8")
    rows = ["user_id,ts,lat,lng,accuracy_m,received_at"] + [
        f"u1,{p['ts']!r},{p['lat']},{p['lng']},{p['accuracy_m']},{p['ts'] + HOUR_S!r}"
        for p in _history("u1", t0)]
    (folder / "pings.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "late.yaml").write_text(
        "name: late history\nstart: 2026-03-02T10:00:00+00:00\nvenues: senate.geojson\n"
        "pings: pings.csv\n", encoding="utf-8")
    result = simulate(load_scenario(folder / "late.yaml"))
    assert all(e.stale for e in result.events)
    simulated = [(e.kind.value, e.at, e.dwell_s, None if e.reason is None else e.reason.value)
                 for e in result.events]
    out = folder / "visits.csv"
    assert cli_main(["visits", "--venues", str(venues), "--pings", str(folder / "pings.csv"),
                     "--out", str(out)]) == 0
    listed = [(r["kind"], datetime.fromisoformat(r["at"]).timestamp(),
               float(r["dwell_s"]) if r["dwell_s"] else None, r["reason"] or None)
              for r in csv.DictReader(out.read_text(encoding="utf-8").splitlines())]
    return simulated, listed


async def test_simulator_and_visits_cli_agree_with_the_server_on_late_history(
    api: Api, tmp_path: Path,
) -> None:
    """The same still stay sent an hour late: the server (six requests), ``geopush
    simulate`` and ``geopush visits`` (a ``received_at`` column) give the same visit."""
    await _setup(api)
    t0 = api.clock.now - HOUR_S
    await _upload(api, "u1", t0, [10, 20, 30, 40, 50], gaps_s=[2.0] * 5, timers=[True] * 5)
    served = [(e.kind, e.at, e.dwell_s, e.reason) for e in (await _events(api, "u1"))[0]]
    simulated, listed = await asyncio.to_thread(_offline_drivers, tmp_path, t0)
    assert served == simulated == listed == [
        (e.kind, e.at, e.dwell_s, e.reason) for e in _expected(t0)]
