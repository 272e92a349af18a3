"""The box grid never drops a point that a fence holds, and drops most far ones."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo import Fence, LatLng
from geo.grid import BoxGrid
from tests.conftest import BEIJING_VENUES
from tests.geo.builders import brute_force_pairs, load_fences, points_near_edges
from tests.geo.test_index_properties import fences


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fs=fences(), seed=st.integers(0, 2**32 - 1), sigma_m=st.sampled_from([0.0, 0.01, 5.0]),
       max_cells=st.sampled_from([4, 64, 1 << 20]))
def test_grid_keeps_every_point_a_random_fence_holds(
    fs: list[Fence], seed: int, sigma_m: float, max_cells: int
) -> None:
    rng = np.random.default_rng(seed)
    lat, lng = points_near_edges(fs, 2_000, sigma_m, rng)
    held, _ = brute_force_pairs(fs, lat, lng)
    kept = BoxGrid.of_fences(fs, max_cells=max_cells).may_hold(lat, lng)
    assert kept[held].all()


def test_grid_keeps_every_vertex_of_the_beijing_stations_and_drops_the_open_city() -> None:
    fs = load_fences(BEIJING_VENUES)
    grid = BoxGrid.of_fences(fs)
    # Every vertex lies on an edge: inside by contract, and the tightest case.
    coords = np.concatenate([np.asarray(f.shape.exterior.coords) for f in fs
                             if f.shape is not None and f.shape.geom_type == "Polygon"])
    assert grid.may_hold(coords[:, 1], coords[:, 0]).all()
    # Uniform points over the stations' box: a station is ~100 m across, the box
    # ~65 km, so nearly every point can be dropped before H3.
    rng = np.random.default_rng(7)
    lat = rng.uniform(39.51, 40.09, 200_000)
    lng = rng.uniform(115.97, 116.75, 200_000)
    held, _ = brute_force_pairs(fs, lat, lng)
    kept = grid.may_hold(lat, lng)
    assert kept[held].all()
    assert kept.mean() < 0.03
    assert grid.share_marked < 0.03


def test_grid_of_a_circle_reaching_a_pole_or_the_antimeridian_spans_every_longitude() -> None:
    polar = Fence("polar", center=LatLng(89.99, 10.0), radius_m=5_000.0)
    dateline = Fence("dateline", center=LatLng(-17.0, 179.999), radius_m=1_000.0)
    grid = BoxGrid.of_fences([polar, dateline])
    assert grid.may_hold([90.0, 89.99, -17.0, -17.0], [-170.0, 170.0, -179.999, 179.99]).all()


def test_grid_of_no_fences_holds_nothing_and_drops_nan() -> None:
    assert not BoxGrid.of_fences([]).may_hold([0.0, 39.9], [0.0, 116.4]).any()
    grid = BoxGrid.of_fences([Fence("c", center=LatLng(39.9, 116.4), radius_m=50.0)])
    assert grid.may_hold([39.9, np.nan], [116.4, 116.4]).tolist() == [True, False]
