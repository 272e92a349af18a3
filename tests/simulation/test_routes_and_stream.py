"""The route grammar, edge points, window-by-window generation, and the loop's skipping
of quiet slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from shapely import Point

from geo.distance import haversine_m
from geo.latlng import LatLng
from server.cli.scenario_files import load_scenario
from tests.decisions.builders import FORUM, venue
from triggers.simulation import simulate
from triggers.simulation.routes import edge_point, parse_leg
from triggers.simulation.stream import WINDOW_S, PingStream, lay_out
from triggers.trajectory import Go, TrajectorySpec, Wait, generate

SCENARIOS = Path(__file__).resolve().parents[2] / "fixtures" / "scenarios"


@pytest.mark.parametrize(("item", "kind", "selector", "metres", "speed"), [
    ("60.1690,24.9410", "point", None, 0.0, None),
    ("venue:osm:way/289767497", "venue", "osm:way/289767497", 0.0, None),
    ("venue:osm:way/289767497@20", "venue", "osm:way/289767497", 0.0, 20.0),
    ("edge:osm:way/289767497~5", "edge", "osm:way/289767497", 5.0, None),
    ("edge:osm:way/289767497~-25", "edge", "osm:way/289767497", -25.0, None),
    ("entrance", "entrance", None, 50.0, None),
    ("near:kind=mall~400", "near", "kind=mall", 400.0, None),
    ({"edge": "a", "inside_m": 3, "speed_mps": 2}, "edge", "a", 3.0, 2.0),
])
def test_route_items_parse(item: object, kind: str, selector: str | None, metres: float,
                           speed: float | None) -> None:
    leg = parse_leg(item)
    assert (leg.kind, leg.selector, leg.metres, leg.speed_mps) == (kind, selector, metres, speed)


def test_wait_ranges_parse() -> None:
    assert parse_leg("wait:600-1500").wait_s == (600.0, 1500.0)
    assert parse_leg("wait:90").wait_s == (90.0, 90.0)


@pytest.mark.parametrize("item", ["sleep:3", "wait:x", "wait:9-3", "near:x", "wait:5@3", 7])
def test_bad_route_items_are_refused(item: object) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_leg(item)


@pytest.mark.parametrize("inside_m", [5.0, -25.0])
def test_edge_point_lies_that_far_from_the_edge(inside_m: float) -> None:
    forum = venue(FORUM)
    point = edge_point(forum, inside_m, None, 180.0)
    assert forum.shape is not None
    edge_deg = forum.shape.boundary.distance(Point(point.lng, point.lat))
    metres = edge_deg * 111_195 * 0.5  # ~cos(60°) for longitude; a bound, not exact
    inside = forum.shape.contains(Point(point.lng, point.lat))
    assert inside == (inside_m > 0)
    assert metres <= abs(inside_m) + 1


def test_windowed_generation_puts_the_device_where_the_whole_route_does() -> None:
    start = LatLng(60.1680, 24.9380)
    legs = (Go(LatLng(60.1693, 24.9381)), Wait(4000.0), Go(LatLng(60.1700, 24.9420), 2.0))
    spec = TrajectorySpec("u", start, legs, start_ts=1_800_000_000.0, interval_s=10.0,
                          noise_m=0.0, latency_s=0.0)
    whole = generate(spec, 1)
    device = lay_out("u", 0, start, legs, start_ts=spec.start_ts, template=spec)
    assert device.end_ts - device.start_ts > WINDOW_S  # spans two windows
    stream = PingStream([device], None, seed=1, end_ts=device.end_ts)
    parts = []
    while (cols := stream.take_until(device.end_ts + 1.0)) is not None:
        parts.append(cols)
    ts = np.concatenate([p.ts for p in parts])
    lat = np.concatenate([p.lat for p in parts])
    lng = np.concatenate([p.lng for p in parts])
    np.testing.assert_array_equal(ts, whole.ts)
    gap = haversine_m(lat, lng, whole.lat, whole.lng)
    assert float(np.max(gap)) < 0.01


def test_a_scenario_that_ends_a_century_after_its_last_ping_skips_the_quiet_slices(
    tmp_path: Path,
) -> None:
    """The loop steps over slices in which nothing is delivered or due: what happens is
    the same as with no end given, and the quiet years are not walked slice by slice."""
    fixture = SCENARIOS / "quiet_hours_night.yaml"
    text = fixture.read_text(encoding="utf-8").replace(
        "venues: ../venues/", f"venues: {SCENARIOS.parent / 'venues'}/")
    century = tmp_path / "century.yaml"
    century.write_text(text.replace("start: 2026-12-04T23:20:00+02:00",
                                    "start: 2026-12-04T23:20:00+02:00\n"
                                    "end: 2126-12-04T23:20:00+02:00"), encoding="utf-8")
    steps: list[float] = []
    long = simulate(load_scenario(century), progress=lambda done, _total: steps.append(done))
    short = simulate(load_scenario(fixture))
    assert [(d.user_id, d.campaign_id, d.at) for d in long.deliveries] == [
        (d.user_id, d.campaign_id, d.at) for d in short.deliveries] != []
    assert long.decisions == short.decisions
    assert steps[-1] == pytest.approx(100 * 365.25 * 86_400, rel=1e-3)
    assert len(steps) < 10_000  # a century of 30-second slices is 105 million
