"""The index on awkward fences: holes, multipolygons, tiny and huge, nested, circles,
the antimeridian and high latitudes — always equal to the brute-force answer."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import MultiPolygon, Polygon, box

from geo import Fence, GeofenceIndex, LatLng
from tests.geo.builders import brute_force_pairs, ngon, offset, points_near_edges, reference_edge_m

BEIJING = LatLng(39.9087, 116.3975)
SVALBARD = LatLng(78.2232, 15.6267)
HELSINKI = LatLng(60.1699, 24.9384)


def _square(center: LatLng, half_m: float) -> Polygon:
    (x0, y0), (x1, y1) = offset(center, -half_m, -half_m), offset(center, half_m, half_m)
    return box(x0, y0, x1, y1)


def _with_hole(center: LatLng, outer_m: float, inner_m: float) -> Polygon:
    outer, inner = _square(center, outer_m), _square(center, inner_m)
    return Polygon(outer.exterior.coords, [inner.exterior.coords])


def _antimeridian_fence() -> Fence:
    # ~2 km x 2 km at Fiji's longitude, split at ±180 as GeoJSON requires.
    east = box(179.99, -16.51, 180.0, -16.49)
    west = box(-180.0, -16.51, -179.99, -16.49)
    return Fence("fiji-split", shape=MultiPolygon([east, west]))


CASES: dict[str, list[Fence]] = {
    "polygon with a hole": [Fence("donut", shape=_with_hole(BEIJING, 300, 120))],
    "multipolygon": [
        Fence(
            "pair",
            shape=MultiPolygon(
                [_square(BEIJING, 80), _square(LatLng(BEIJING.lat + 0.005, BEIJING.lng), 60)]
            ),
        )
    ],
    "tiny 6 m fence": [Fence("kiosk", shape=_square(BEIJING, 3))],
    "huge 50 km² fence": [
        Fence("airport", shape=ngon(BEIJING, [4200, 3500, 4000, 3900, 4100, 3600]))
    ],
    "nested fences": [
        Fence("mall", shape=_square(HELSINKI, 200)),
        Fence("store", shape=_square(HELSINKI, 20)),
        Fence("kiosk", center=HELSINKI, radius_m=5.0),
    ],
    "circles": [
        Fence("c-small", center=BEIJING, radius_m=8.0),
        Fence("c-big", center=LatLng(BEIJING.lat, BEIJING.lng + 0.01), radius_m=900.0),
    ],
    "antimeridian split": [
        _antimeridian_fence(),
        Fence("c-dateline", center=LatLng(-16.6, 180.0), radius_m=500.0),
    ],
    "svalbard at 78° north": [
        Fence("longyearbyen", shape=ngon(SVALBARD, [900, 600, 1200, 700, 1000])),
        Fence("c-polar", center=LatLng(89.999, 0.0), radius_m=300.0),
    ],
}


def _points(fences: list[Fence], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return points_near_edges(fences, 30_000, 25.0, rng)


@pytest.mark.parametrize("name", list(CASES))
def test_containment_equals_brute_force_on_awkward_fences(name: str) -> None:
    fences = CASES[name]
    lat, lng = _points(fences, 1)
    hits = GeofenceIndex.build(fences).query(lat, lng)
    want_point, want_fence = brute_force_pairs(fences, lat, lng)
    np.testing.assert_array_equal(hits.point, want_point)
    np.testing.assert_array_equal(hits.fence, want_fence)


@pytest.mark.parametrize("name", list(CASES))
def test_edge_distance_matches_an_independent_geodesic_reference(name: str) -> None:
    fences = CASES[name]
    lat, lng = _points(fences, 2)
    near = 60.0
    hits = GeofenceIndex.build(fences).query(lat, lng, near_m=near)
    for f, fence in enumerate(fences):
        ref = reference_edge_m(fence, lat, lng)
        tol = np.maximum(0.5, 0.005 * np.abs(ref))
        sel = hits.fence == f
        got = np.full(lat.size, np.nan)
        got[hits.point[sel]] = hits.edge_m[sel]
        band = np.abs(ref) <= near - tol
        assert not np.isnan(got[band]).any(), "a point within near_m of the edge is missing"
        assert np.all(np.abs(got[band] - ref[band]) <= tol[band]), (
            name,
            float(np.max(np.abs(got[band] - ref[band]))),
        )
        assert np.all(
            np.sign(got[band & (np.abs(ref) > tol)]) == np.sign(ref[band & (np.abs(ref) > tol)])
        )
        far_inside = ref > near + tol
        assert np.isnan(got[far_inside]).all(), "deeper than near_m must be NaN"
        far_outside = ref < -(near + tol)
        assert np.isnan(got[far_outside]).all(), "outside beyond near_m must not be reported"


def test_point_on_an_edge_or_vertex_is_inside_with_zero_edge_distance() -> None:
    poly = _with_hole(BEIJING, 100, 40)
    index = GeofenceIndex.build([Fence("donut", shape=poly)])
    verts = np.array(list(poly.exterior.coords)[:4] + list(poly.interiors[0].coords)[:4])
    mid = (verts[0] + verts[1]) / 2
    pts = np.vstack([verts, mid])
    hits = index.query(pts[:, 1], pts[:, 0], near_m=10.0)
    assert hits.inside.all()
    np.testing.assert_array_equal(hits.point, np.arange(len(pts)))
    np.testing.assert_allclose(hits.edge_m, 0.0, atol=1e-6)


def test_point_in_a_hole_is_outside_and_reports_its_distance_to_the_hole_edge() -> None:
    index = GeofenceIndex.build([Fence("donut", shape=_with_hole(BEIJING, 100, 40))])
    hits = index.query(np.array([BEIJING.lat]), np.array([BEIJING.lng]), near_m=50.0)
    assert hits.inside.tolist() == [False]
    assert hits.edge_m[0] == pytest.approx(-40.0, rel=0.005)
    assert index.query(np.array([BEIJING.lat]), np.array([BEIJING.lng])).n_pairs == 0


def test_circle_holds_points_up_to_its_radius_by_haversine() -> None:
    index = GeofenceIndex.build([Fence("c", center=BEIJING, radius_m=100.0)])
    lat = np.array([BEIJING.lat + 99.9 / 111_195.08, BEIJING.lat + 100.1 / 111_195.08])
    hits = index.query(lat, np.full(2, BEIJING.lng), near_m=1.0)
    assert hits.inside.tolist() == [True, False]
    np.testing.assert_allclose(hits.edge_m, [0.1, -0.1], atol=1e-3)
