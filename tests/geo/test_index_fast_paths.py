"""The index's vectorised fast paths answer as GEOS does: the crossing-number test
bit for bit, the windowed edge distance to within rounding."""

from __future__ import annotations

import math

import numpy as np
import shapely
from h3.api import basic_int as h3i
from shapely.geometry import Polygon

import geo.index_build
from geo import Fence, GeofenceIndex, LatLng
from geo.distance import frame_scales, to_local_xy
from tests.geo.builders import brute_force_pairs, ngon, offset, points_near_edges

BEIJING = LatLng(39.9087, 116.3975)


def _strip(center: LatLng, length_m: float, width_m: float, angle_deg: float) -> Polygon:
    a = math.radians(angle_deg)
    ca, sa = math.cos(a), math.sin(a)
    return Polygon([
        offset(center, (u * length_m * ca - v * width_m * sa) / 2,
               (u * length_m * sa + v * width_m * ca) / 2)
        for u, v in [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    ])


def test_exact_test_agrees_with_geos_on_vertices_edges_and_their_neighbours() -> None:
    """The vectorised crossing test defers to GEOS wherever float rounding could
    matter: on vertices, on edges, on horizontal edges and at a hair's breadth."""
    square = _strip(BEIJING, 200, 200, 0)
    tilted = _strip(BEIJING, 300, 90, 37)
    holey = Polygon(_strip(BEIJING, 500, 500, 10).exterior.coords,
                    [_strip(BEIJING, 100, 100, 10).exterior.coords])
    fences = [Fence("square", shape=square), Fence("tilted", shape=tilted),
              Fence("holey", shape=holey)]
    index = GeofenceIndex.build(fences)
    pts = [shapely.get_coordinates(f.shape.boundary) for f in fences if f.shape is not None]
    base = np.vstack(pts)
    mids = (base[:-1] + base[1:]) / 2
    base = np.vstack([base, mids])
    ulp = np.spacing(base)
    lng = np.concatenate([base[:, 0] + d * ulp[:, 0] for d in (-2, -1, 0, 1, 2)] * 5)
    lat = np.concatenate([base[:, 1] + d * ulp[:, 1] for d in (-2, -1, 0, 1, 2)
                          for _ in range(5)])
    hits = index.query(lat, lng)
    want_point, want_fence = brute_force_pairs(fences, lat, lng)
    np.testing.assert_array_equal(hits.point, want_point)
    np.testing.assert_array_equal(hits.fence, want_fence)


def _local_frame_distance(fence: Fence, lat: np.ndarray, lng: np.ndarray) -> np.ndarray:
    """GEOS's distance to the fence's edge in the index's frame (bounding-box centre)."""
    assert fence.shape is not None
    minx, miny, maxx, maxy = fence.shape.bounds
    lat0, lng0 = (miny + maxy) / 2, (minx + maxx) / 2
    kx, ky = frame_scales(lat0)

    def project(c: np.ndarray) -> np.ndarray:
        x, y = to_local_xy(c[:, 1], c[:, 0], lat0=lat0, lng0=lng0, kx=kx, ky=ky)
        return np.column_stack([x, y])

    edge = shapely.transform(fence.shape.boundary, project)
    x, y = to_local_xy(lat, lng, lat0=lat0, lng0=lng0, kx=kx, ky=ky)
    return np.asarray(shapely.distance(edge, shapely.points(x, y)))


def test_edge_distances_equal_geos_in_the_fence_frame_for_few_and_many_segments() -> None:
    rng = np.random.default_rng(21)
    fences = [
        Fence("hexagon", shape=ngon(BEIJING, [120] * 6)),
        Fence("star-40", shape=ngon(LatLng(BEIJING.lat + 0.01, BEIJING.lng),
                                    rng.uniform(60, 200, 40).tolist())),
        Fence("strip", shape=_strip(LatLng(BEIJING.lat - 0.01, BEIJING.lng), 900, 40, 25)),
    ]
    index = GeofenceIndex.build(fences)
    lat, lng = points_near_edges(fences, 30_000, 40.0, rng)
    near = rng.uniform(0, 200, lat.size)
    hits = index.query(lat, lng, near_m=near)
    measured = ~np.isnan(hits.edge_m)
    assert measured.sum() > 10_000
    for f, fence in enumerate(fences):
        sel = measured & (hits.fence == f)
        p = hits.point[sel]
        want = _local_frame_distance(fence, lat[p], lng[p])
        np.testing.assert_allclose(np.abs(hits.edge_m[sel]), want, rtol=0, atol=1e-7)
        # And nothing within near_m is left out.
        d = _local_frame_distance(fence, lat, lng)
        inside = shapely.intersects_xy(fence.shape, lng, lat)
        must = inside | (d <= near - 1e-6)
        got = np.zeros(lat.size, dtype=np.bool_)
        got[hits.point[hits.fence == f]] = True
        assert got[must].all()


def test_grid_disks_list_each_disk_with_its_outer_ring_as_h3_py_does() -> None:
    """The vectorised disks (h3ronpy) against the per-disk h3-py fallback, pentagon
    included: the same cells per origin, and the same cells in the outermost ring."""
    pentagon = sorted(h3i.get_pentagons(7))[5]
    origins = np.array(
        [h3i.latlng_to_cell(BEIJING.lat, BEIJING.lng, 10), pentagon,
         h3i.grid_disk(pentagon, 2)[-1]], dtype=np.uint64)
    k = np.array([3, 4, 4])
    cells, owner, ring = geo.index_build._disks(origins, k)
    for i in range(origins.size):
        mine = owner == i
        slow_cells, _, slow_ring = geo.index_build._disks_slow(origins[i:i + 1], int(k[i]))
        assert set(cells[mine].tolist()) == set(slow_cells.tolist())
        outer = set(cells[mine & (ring == k[i])].tolist())
        assert outer == set(slow_cells[slow_ring == k[i]].tolist()) and outer
