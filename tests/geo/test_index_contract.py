"""The index's contract: shape of the answer, immutability, determinism, bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from h3.api import basic_int as h3i
from shapely.geometry import Polygon

from geo import Fence, GeoError, GeofenceIndex, LatLng
from tests.geo.builders import ngon

BEIJING = LatLng(39.9087, 116.3975)
FENCES = [
    Fence("a", shape=ngon(BEIJING, [150, 120, 160, 140, 130])),
    Fence("b", center=BEIJING, radius_m=60.0),
    Fence("c", shape=ngon(LatLng(BEIJING.lat + 0.01, BEIJING.lng), [3000, 2800, 3100, 2900])),
]


def _points(n: int = 5_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return BEIJING.lat + rng.uniform(-0.04, 0.04, n), BEIJING.lng + rng.uniform(-0.04, 0.04, n)


def test_empty_index_answers_with_cells_and_no_pairs() -> None:
    index = GeofenceIndex.build([])
    lat, lng = _points(10)
    hits = index.query(lat, lng, near_m=50.0)
    assert len(index) == 0 and hits.n_points == 10 and hits.n_pairs == 0


def test_cell_is_the_h3_cell_of_each_point_at_cell_res() -> None:
    lat, lng = _points(200)
    hits = GeofenceIndex.build(FENCES).query(lat, lng)
    want = [h3i.latlng_to_cell(a, b, 10) for a, b in zip(lat, lng, strict=True)]
    assert hits.cell.dtype == np.uint64 and hits.cell.tolist() == want


def test_pairs_are_sorted_by_point_then_fence_with_contract_dtypes() -> None:
    lat, lng = _points()
    hits = GeofenceIndex.build(FENCES).query(lat, lng, near_m=80.0)
    key = hits.point * len(FENCES) + hits.fence
    assert np.all(np.diff(key) > 0)
    assert (hits.point.dtype, hits.fence.dtype, hits.inside.dtype, hits.edge_m.dtype) == (
        np.dtype(np.int64),
        np.dtype(np.int32),
        np.dtype(np.bool_),
        np.dtype(np.float64),
    )


def test_near_m_none_reports_inside_pairs_only_without_distances() -> None:
    hits = GeofenceIndex.build(FENCES).query(*_points())
    assert hits.n_pairs > 0 and hits.inside.all() and np.isnan(hits.edge_m).all()


def test_near_m_is_clamped_to_the_halo() -> None:
    index = GeofenceIndex.build(FENCES, halo_m=50.0)
    lat, lng = _points()
    wide, clamped = index.query(lat, lng, near_m=500.0), index.query(lat, lng, near_m=50.0)
    np.testing.assert_array_equal(wide.point, clamped.point)
    np.testing.assert_array_equal(wide.edge_m, clamped.edge_m)
    assert np.nanmin(wide.edge_m) >= -50.0


def test_per_point_near_m_widens_only_that_point() -> None:
    index = GeofenceIndex.build(FENCES)
    lat, lng = _points()
    near = np.zeros(lat.size)
    near[::2] = 100.0
    hits = index.query(lat, lng, near_m=near)
    assert np.all(hits.inside[hits.point % 2 == 1])
    assert not np.all(hits.inside[hits.point % 2 == 0])


def test_index_arrays_cannot_be_written() -> None:
    index = GeofenceIndex.build(FENCES)
    t = index._t
    arrays: list[np.ndarray[Any, Any]] = [
        t.entry_fence, t.entry_kind, t.entry_bound, t.geoms, t.frame, t.circle]
    arrays += [a for level in t.levels for a in (level.keys, level.start, level.end)]
    for a in arrays:
        with pytest.raises(ValueError, match="read-only"):
            a[0] = a[0]


def test_the_same_fences_build_the_same_index_and_answers() -> None:
    lat, lng = _points()
    one, two = GeofenceIndex.build(FENCES), GeofenceIndex.build(list(FENCES))
    for a, b in zip(one._t.levels, two._t.levels, strict=True):
        np.testing.assert_array_equal(a.keys, b.keys)
    h1, h2 = one.query(lat, lng, near_m=40.0), two.query(lat, lng, near_m=40.0)
    for name in ("cell", "point", "fence", "inside", "edge_m"):
        np.testing.assert_array_equal(getattr(h1, name), getattr(h2, name))


def test_position_and_len_follow_the_build_order() -> None:
    index = GeofenceIndex.build(FENCES)
    assert len(index) == 3 and index.fence_ids == ("a", "b", "c")
    assert index.position("c") == 2
    with pytest.raises(GeoError, match="'zz'"):
        index.position("zz")


def test_duplicate_fence_ids_are_rejected() -> None:
    with pytest.raises(GeoError, match="duplicate fence id 'a'"):
        GeofenceIndex.build([FENCES[0], FENCES[0]])


@pytest.mark.parametrize(
    ("lat", "lng"), [(np.nan, 116.0), (91.0, 116.0), (39.0, 180.5), (39.0, np.inf)]
)
def test_query_names_the_first_bad_coordinate(lat: float, lng: float) -> None:
    index = GeofenceIndex.build(FENCES)
    with pytest.raises(GeoError, match=r"point 1: "):
        index.query(np.array([39.9, lat, np.nan]), np.array([116.4, lng, 0.0]))


def test_query_rejects_mismatched_shapes_and_nan_near_m() -> None:
    index = GeofenceIndex.build(FENCES)
    with pytest.raises(GeoError, match="1-D arrays of one length"):
        index.query(np.zeros(3), np.zeros(2))
    with pytest.raises(GeoError, match=r"near_m\[1\] is NaN"):
        index.query(np.zeros(2), np.zeros(2), near_m=np.array([1.0, np.nan]))


def test_empty_shape_is_refused_as_a_fence() -> None:
    with pytest.raises(GeoError, match=r"'hole': shape is empty"):
        Fence("hole", shape=Polygon())
