"""Recorded pings in ``geopush simulate`` and ``geopush visits``: every ping is replayed,
each arriving at its own ``ts`` (or its ``received_at``), so the order of the rows in the
file changes nothing; ``pings_arrival: file_order`` models a late upload.

The data is GeoLife-like: several people around Beijing, each walking into a subway
station, waiting, riding to the next station and walking away, sampled every 2-10 s
with GPS noise (the generator of ``triggers/trajectory.py`` through the stations of
``fixtures/venues/beijing_venues.geojson``, © OpenStreetMap contributors, ODbL 1.0).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from geo.distance import frame_scales
from geo.latlng import LatLng
from server.cli import main
from server.cli.scenario_files import load_scenario
from tests.conftest import BEIJING_VENUES
from triggers.simulation import SimulationResult, simulate
from triggers.trajectory import Go, PingColumns, TrajectorySpec, Wait, generate_many
from venues import Venue, load_venues

T0 = 1_795_993_200.0
"""2026-11-30T07:00:00+08:00, a Monday morning in Beijing."""
START = "2026-11-30T07:00:00+08:00"
WALK_AWAY_M = 1_600.0
"""Everyone ends walking this far from the last station at 1.4 m/s (19 min, more than the
900 s silence timeout): every visit is closed by the end of the data."""

CAMPAIGNS = """\
campaigns:
  - id: route-tip
    trigger: {event: enter}
    venues: {kinds: [transit_station]}
    caps: {per_user: {count: 3, period_s: 86400}}
    variants: [{id: a, title: "{{ venue.name }}", body: "Mind the gap"}]
  - id: coffee
    trigger: {event: dwell, dwell_s: 120}
    venues: {kinds: [transit_station]}
    priority: 3
    variants: [{id: a, title: "Coffee at {{ venue.name }}", body: "2 for 1"}]
"""


@cache
def _stations() -> tuple[tuple[Venue, LatLng, LatLng], ...]:
    """Each station with a point inside it and a point inside its nearest neighbour."""
    venues = [v for v in load_venues(BEIJING_VENUES).venues if v.kind == "transit_station"]
    points = []
    for v in venues:
        p = v.shape.representative_point()  # type: ignore[union-attr]
        points.append(LatLng(p.y, p.x))
    lat = np.array([p.lat for p in points])
    lng = np.array([p.lng for p in points])
    kx, ky = (float(k) for k in frame_scales(40.0))
    out = []
    for i, p in enumerate(points):
        d = np.hypot((lng - p.lng) * kx, (lat - p.lat) * ky)
        d[i] = math.inf
        out.append((venues[i], p, points[int(np.argmin(d))]))
    return tuple(out)


def _offset(p: LatLng, east_m: float, north_m: float) -> LatLng:
    kx, ky = (float(k) for k in frame_scales(p.lat))
    return LatLng(p.lat + north_m / ky, p.lng + east_m / kx)


@st.composite
def geolife_like(draw: st.DrawFn) -> PingColumns:
    """2-5 people, each starting within two hours of 07:00: walk 200-500 m into a
    station, wait 1-10 min, ride to the next station at 15 m/s, wait, walk away."""
    stations = _stations()
    specs = []
    for u in range(draw(st.integers(2, 5))):
        _, here, there = stations[draw(st.integers(0, len(stations) - 1))]
        home = _offset(here, draw(st.floats(-400, 400)), draw(st.floats(-400, -200)))
        legs: tuple[Go | Wait, ...] = (
            Go(here), Wait(draw(st.floats(60, 600))), Go(there, 15.0),
            Wait(draw(st.floats(20, 300))), Go(_offset(there, WALK_AWAY_M, 0.0)))
        specs.append(TrajectorySpec(
            f"user-{u:03d}", home, legs, start_ts=T0 + draw(st.integers(0, 7200)),
            interval_s=draw(st.sampled_from([2.0, 5.0, 10.0])),
            noise_m=draw(st.sampled_from([3.0, 8.0, 15.0])), accuracy_m=(5.0, 30.0),
            teleport_rate=0.005, latency_s=0.0))
    return generate_many(specs, draw(st.integers(0, 2**16)))


def _csv(cols: PingColumns, *, grouped: bool,
         received_at: Sequence[float] | NDArray[np.float64] | None = None) -> str:
    """The pings as DESIGN's CSV, sorted by time (ties by user) or grouped by user."""
    order = (np.lexsort((cols.ts, cols.user_id)) if grouped
             else np.lexsort((cols.user_id, cols.ts)))
    text = cols.take(order).to_csv_text()
    if received_at is None:
        return text
    rows = text.splitlines()
    arrived = np.asarray(received_at)[order]
    return "\n".join([rows[0] + ",received_at",
                      *(f"{row},{float(t)!r}" for row, t in zip(rows[1:], arrived, strict=True))]) \
        + "\n"


def _run(folder: Path, pings_csv: str, *, extra: str = "", campaigns: bool = True,
         ) -> SimulationResult:
    (folder / "pings.csv").write_text(pings_csv, encoding="utf-8")
    (folder / "scenario.yaml").write_text(
        f"name: recorded pings\nstart: {START}\ntimezone: Asia/Shanghai\n"
        f"venues: {json.dumps(str(BEIJING_VENUES))}\npings: pings.csv\n"
        f"policy: {{quiet_hours: null}}\n{extra}{CAMPAIGNS if campaigns else ''}",
        encoding="utf-8")
    return simulate(load_scenario(folder / "scenario.yaml"))


def _json(result: SimulationResult) -> str:
    return json.dumps(result.to_json_obj(), ensure_ascii=False, sort_keys=True)


# --------------------------------------------------------------------------- properties


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cols=geolife_like())
def test_scenario_with_only_csv_pings_and_no_end_replays_every_ping(cols: PingColumns) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = _run(Path(tmp), _csv(cols, grouped=True), campaigns=False)
    assert result.counters["received"] == len(cols)
    assert result.end >= float(cols.ts.max()) + 900.0
    assert result.open_visits == 0
    entered = {e.user_id for e in result.events if e.kind.value == "enter"}
    assert entered == set(np.unique(cols.user_id).tolist())


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cols=geolife_like())
def test_geolife_like_pings_sorted_by_time_or_grouped_by_user_give_identical_results(
    cols: PingColumns,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        by_time = _run(Path(tmp), _csv(cols, grouped=False))
        by_user = _run(Path(tmp), _csv(cols, grouped=True))
    assert _json(by_user) == _json(by_time)
    assert by_time.decisions and by_time.deliveries
    assert not any(e.stale for e in by_time.events)


# --------------------------------------------------------------------------- late arrival


def _commute() -> PingColumns:
    """Three people at three stations, setting off ten minutes apart (~35 min trips)."""
    stations = _stations()
    specs = []
    for u, (k, offset_s) in enumerate([(10, 0.0), (120, 600.0), (250, 1200.0)]):
        _, here, there = stations[k]
        legs = (Go(here), Wait(400.0), Go(there, 15.0), Wait(60.0),
                Go(_offset(there, WALK_AWAY_M, 0.0)))
        specs.append(TrajectorySpec(f"user-{u}", _offset(here, 100.0, -300.0), legs,
                                    start_ts=T0 + offset_s, interval_s=5.0, noise_m=5.0,
                                    accuracy_m=(5.0, 20.0), latency_s=0.0))
    return generate_many(specs, 2026)


def _without_stale(result: SimulationResult) -> list[dict[str, Any]]:
    """Each user's events in order (a late user's come out later), ``stale`` aside."""
    events = [{**e, "stale": None} for e in result.to_json_obj()["events"]]
    return sorted(events, key=lambda e: e["user_id"])


def test_received_at_an_hour_late_gives_the_same_visits_stale_and_no_push(
    tmp_path: Path,
) -> None:
    cols = _commute()
    on_time = _run(tmp_path, _csv(cols, grouped=False))
    late = _run(tmp_path, _csv(cols, grouped=False, received_at=cols.ts + 3600.0))
    assert _without_stale(late) == _without_stale(on_time)
    assert on_time.deliveries and not any(e.stale for e in on_time.events)
    assert late.events and all(e.stale for e in late.events)
    assert late.deliveries == []
    assert {c.reason.value for d in late.decisions for c in d.considered} == {"stale_event"}


def test_file_order_arrival_of_a_file_grouped_by_user_is_a_late_upload(tmp_path: Path) -> None:
    """``pings_arrival: file_order``: each row arrives when the file has reached its
    time, so the 2nd and 3rd person's rows (listed after the 1st's whole trip) arrive
    late: the same visits, but their first events stale and never pushed."""
    cols = _commute()
    grouped = _csv(cols, grouped=True)
    on_time = _run(tmp_path, grouped)
    upload = _run(tmp_path, grouped, extra="pings_arrival: file_order\n")
    assert _without_stale(upload) == _without_stale(on_time)
    assert {e.user_id for e in upload.events if e.stale} == {"user-1", "user-2"}
    fresh = {(e.visit_id, e.kind.value) for e in upload.events if not e.stale}
    assert all((d.visit_id, d.event) in fresh for d in upload.deliveries)
    first = [d for d in on_time.deliveries if d.user_id == "user-0"]
    assert [d for d in upload.deliveries if d.user_id == "user-0"] == first
    stale = {(e.visit_id, e.kind.value) for e in upload.events if e.stale}
    missed = {(d.user_id, d.visit_id, d.event) for d in on_time.deliveries
              if (d.visit_id, d.event) in stale}
    assert {u for u, _, _ in missed} == {"user-1", "user-2"}
    assert not missed & {(d.user_id, d.visit_id, d.event) for d in upload.deliveries}


def test_received_at_that_is_not_a_time_names_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,ts,lat,lng,received_at\nu1,1795993200,39.9,116.4,\n"
                   "u1,1795993210,39.9,116.4,soon\n", encoding="utf-8")
    status = main(["visits", "--venues", str(BEIJING_VENUES), "--pings", str(bad)])
    assert status == 2
    assert "bad.csv:3: received_at: 'soon' is neither ISO-8601 nor epoch seconds" in \
        capsys.readouterr().err


# --------------------------------------------------------------------------- geopush visits


def _visits(tmp_path: Path, text: str, chunk_rows: int) -> list[tuple[Any, ...]]:
    pings, out = tmp_path / "pings.csv", tmp_path / "visits.csv"
    pings.write_text(text, encoding="utf-8")
    assert main(["visits", "--venues", str(BEIJING_VENUES), "--pings", str(pings),
                 "--out", str(out), "--chunk-rows", str(chunk_rows)]) == 0
    rows = csv.DictReader(io.StringIO(out.read_text(encoding="utf-8")))
    return sorted((r["user_id"], r["venue_id"], r["kind"],
                   dt.datetime.fromisoformat(r["at"]).timestamp(), r["visit_id"],
                   round(float(r["dwell_s"]), 3) if r["dwell_s"] else None,
                   r["confidence"], r["reason"] or None) for r in rows)


def _simulated(result: SimulationResult) -> list[tuple[Any, ...]]:
    return sorted((e.user_id, e.venue_id, e.kind.value, e.at, e.visit_id,
                   None if e.dwell_s is None else round(float(e.dwell_s), 3),
                   e.confidence.value, None if e.reason is None else e.reason.value)
                  for e in result.events)


@pytest.mark.parametrize("chunk_rows", [97, 100_000])
def test_visits_of_a_file_grouped_by_user_are_those_of_the_file_sorted_by_time_and_simulate(
    tmp_path: Path, chunk_rows: int,
) -> None:
    cols = _commute()
    by_time = _visits(tmp_path, _csv(cols, grouped=False), chunk_rows)
    by_user = _visits(tmp_path, _csv(cols, grouped=True), chunk_rows)
    assert by_user == by_time
    assert by_time == _simulated(_run(tmp_path, _csv(cols, grouped=True), campaigns=False))
    assert {r[2] for r in by_time} == {"enter", "dwell", "exit"}
