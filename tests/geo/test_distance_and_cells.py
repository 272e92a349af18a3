"""Distances and H3 helpers against h3-py and pyproj."""

from __future__ import annotations

import numpy as np
import pyproj
from h3.api import basic_int as h3i

from geo.cells import coarsest_res_with_edge_at_most, latlng_to_cells, parent_cells
from geo.distance import frame_scales, haversine_m, to_local_xy


def test_haversine_is_within_0_57_percent_of_the_wgs84_geodesic() -> None:
    rng = np.random.default_rng(5)
    lat1, lng1 = rng.uniform(-85, 85, 2000), rng.uniform(-180, 180, 2000)
    lat2, lng2 = lat1 + rng.normal(0, 0.05, 2000), lng1 + rng.normal(0, 0.05, 2000)
    _, _, geo = pyproj.Geod(ellps="WGS84").inv(lng1, lat1, lng2, lat2)
    # The sphere vs the ellipsoid: at most 0.56 % (north-south at the equator).
    assert np.all(np.abs(haversine_m(lat1, lng1, lat2, lng2) / geo - 1) < 0.0057)


def test_local_frame_distances_are_within_half_a_percent_up_to_78_degrees() -> None:
    geod = pyproj.Geod(ellps="WGS84")
    rng = np.random.default_rng(6)
    for lat0 in (0.0, 39.9, 60.2, 78.2):
        kx, ky = frame_scales(lat0)
        # points up to ~4 km from the frame origin, as in a 50 km² fence with its halo
        lat = lat0 + rng.uniform(-0.035, 0.035, 500)
        lng = 10.0 + rng.uniform(-0.035, 0.035, 500) / np.cos(np.radians(lat0))
        x, y = to_local_xy(lat, lng, lat0=lat0, lng0=10.0, kx=kx, ky=ky)
        d = np.hypot(np.diff(x), np.diff(y))
        _, _, ref = geod.inv(lng[:-1], lat[:-1], lng[1:], lat[1:])
        assert np.all(np.abs(d - ref) <= np.maximum(0.5, 0.005 * ref)), lat0


def test_local_frame_unwraps_longitudes_across_the_antimeridian() -> None:
    kx, ky = frame_scales(-16.5)
    x, _ = to_local_xy(
        np.array([-16.5, -16.5]),
        np.array([179.999, -179.999]),
        lat0=-16.5,
        lng0=180.0,
        kx=kx,
        ky=ky,
    )
    assert x[0] < 0 < x[1] and abs(x[1] - x[0] - 0.002 * kx) < 1e-6


def test_parent_cells_by_bits_equal_h3_cell_to_parent() -> None:
    rng = np.random.default_rng(8)
    lat, lng = rng.uniform(-89, 89, 500), rng.uniform(-180, 180, 500)
    cells = latlng_to_cells(lat, lng, 12)
    for res in (0, 5, 9, 12):
        want = [h3i.cell_to_parent(int(c), res) for c in cells]
        assert parent_cells(cells, res).tolist() == want


def test_resolution_rule_picks_the_coarsest_edge_not_longer_than_asked() -> None:
    got = coarsest_res_with_edge_at_most(np.array([1e9, 600.0, 75.9, 75.8, 0.1]))
    assert got.tolist() == [0, 8, 10, 11, 15]
