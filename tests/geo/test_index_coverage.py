"""Coverage is complete however long, thin or distorted a fence is: the H3 disk about a
fence grows until nothing it keeps touches its outer ring, so no point is ever missed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from h3.api import basic_int as h3i
from shapely.geometry import MultiPolygon, Polygon

import geo.index_build
from geo import Fence, GeofenceIndex, LatLng
from tests.geo.builders import brute_force_pairs, offset, points_near_edges, reference_edge_m

BEIJING = LatLng(39.9087, 116.3975)
# A resolution-6 pentagon's centre (in the Indian Ocean): cells are most distorted there.
PENTAGON = LatLng(*h3i.cell_to_latlng(sorted(h3i.get_pentagons(6))[3]))


def _strip(center: LatLng, length_m: float, width_m: float, angle_deg: float) -> Polygon:
    """A rectangle ``length_m`` x ``width_m`` about ``center``, turned ``angle_deg`` from east."""
    a = math.radians(angle_deg)
    ca, sa = math.cos(a), math.sin(a)
    corners = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    return Polygon([
        offset(center, (u * length_m * ca - v * width_m * sa) / 2,
               (u * length_m * sa + v * width_m * ca) / 2)
        for u, v in corners
    ])


STRIPS = {
    "40 km x 1 km corridor": Fence("corridor", shape=_strip(BEIJING, 40_000, 1_000, 0)),
    "30 km x 60 m diagonal": Fence("diagonal", shape=_strip(BEIJING, 30_000, 60, 33)),
    "60 km x 100 m at a pentagon": Fence("pent", shape=_strip(PENTAGON, 60_000, 100, 60)),
}


def _points_about(fence: Fence, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three quarters scattered about the edges (σ = 150 m), the rest uniform in the
    fence's bounding box grown by 1 km."""
    rng = np.random.default_rng(seed)
    lat_e, lng_e = points_near_edges([fence], n * 3 // 4, 150.0, rng)
    assert fence.shape is not None
    minx, miny, maxx, maxy = fence.shape.bounds
    pad = 0.01
    m = n - lat_e.size
    lat = np.concatenate([lat_e, rng.uniform(miny - pad, maxy + pad, m)])
    lng = np.concatenate([lng_e, rng.uniform(minx - pad, maxx + pad, m)])
    return lat, lng


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STRIPS))
def test_long_thin_fences_hold_exactly_the_brute_force_points(name: str) -> None:
    fence = STRIPS[name]
    lat, lng = _points_about(fence, 200_000, 4)
    index = GeofenceIndex.build([fence])
    hits = index.query(lat, lng)
    want_point, _ = brute_force_pairs([fence], lat, lng)
    np.testing.assert_array_equal(hits.point, want_point)
    assert want_point.size > 1_000


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STRIPS))
def test_long_thin_fences_report_every_point_within_near_m(name: str) -> None:
    fence = STRIPS[name]
    lat, lng = _points_about(fence, 50_000, 5)
    near = 150.0
    hits = GeofenceIndex.build([fence]).query(lat, lng, near_m=near)
    # The reference projects the fence's vertices; over 30 km a straight lon/lat edge
    # bows tens of metres away from the chord between its projected ends, so the
    # fence is densified first (its lon/lat edges stay where they are).
    assert fence.shape is not None
    dense = Fence(fence.fence_id, shape=shapely.segmentize(fence.shape, 0.0005))
    ref = reference_edge_m(dense, lat, lng)
    # The strips reach ~30 km from their frame's origin, where the frame's lengths
    # are off by up to ~0.5 % (the module doc's model is exact to 0.3 % up to 7 km).
    tol = np.maximum(1.0, 0.01 * np.abs(ref))
    reported = np.zeros(lat.size, dtype=np.bool_)
    reported[hits.point] = True
    must = (ref >= 0) | (-ref <= near - tol)
    assert reported[must].all(), int((~reported[must]).sum())
    assert not reported[ref < -(near + tol)].any()


def _fat_estimate_builds(
    fences: list[Fence], monkeypatch: pytest.MonkeyPatch
) -> tuple[GeofenceIndex, GeofenceIndex]:
    good = GeofenceIndex.build(fences)
    # Pretend cells are five times farther apart than they are: every first disk is
    # far too small, and only the growth loop can make the coverage whole.
    monkeypatch.setattr(
        geo.index_build, "_SPACING_PER_SQRT_AREA", geo.index_build._SPACING_PER_SQRT_AREA * 5
    )
    bad = GeofenceIndex.build(fences)
    return good, bad


@pytest.mark.parametrize(
    "fences",
    [
        [STRIPS["40 km x 1 km corridor"]],
        [STRIPS["60 km x 100 m at a pentagon"]],
        [Fence("far-apart parts", shape=MultiPolygon([
            _strip(BEIJING, 300, 300, 0),
            _strip(LatLng(BEIJING.lat + 0.2, BEIJING.lng + 0.2), 300, 300, 0),
        ]))],
        [Fence("ring", shape=Polygon(
            _strip(BEIJING, 8_000, 8_000, 0).exterior.coords,
            [_strip(BEIJING, 7_000, 7_000, 0).exterior.coords],
        ))],
        [Fence("c-pentagon", center=PENTAGON, radius_m=20_000.0),
         Fence("small", shape=_strip(BEIJING, 120, 80, 20))],
    ],
    ids=["corridor", "pentagon strip", "multipolygon 28 km apart", "hollow square",
         "circle at a pentagon"],
)
def test_coverage_does_not_depend_on_the_disk_size_estimate(
    fences: list[Fence], monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = _fat_estimate_builds(fences, monkeypatch)
    assert good.resolutions == bad.resolutions
    for a, b in zip(good._t.levels, bad._t.levels, strict=True):
        np.testing.assert_array_equal(a.keys, b.keys)
        np.testing.assert_array_equal(a.start, b.start)
        np.testing.assert_array_equal(a.end, b.end)
    np.testing.assert_array_equal(good._t.entry_fence, bad._t.entry_fence)
    np.testing.assert_array_equal(good._t.entry_kind, bad._t.entry_kind)
    rng = np.random.default_rng(9)
    lat, lng = points_near_edges(fences, 20_000, 100.0, rng)
    want_point, want_fence = brute_force_pairs(fences, lat, lng)
    hits = bad.query(lat, lng)
    np.testing.assert_array_equal(hits.point, want_point)
    np.testing.assert_array_equal(hits.fence, want_fence)
