"""Property tests: on random odd geometry the index answers exactly as brute force."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon

from geo import Fence, GeofenceIndex, LatLng
from tests.geo.builders import brute_force_pairs, ngon, points_near_edges


@st.composite
def fences(draw: st.DrawFn) -> list[Fence]:
    lat = draw(st.floats(-80, 80))
    lng = draw(st.floats(-179.9, 179.9))
    out: list[Fence] = []
    for i in range(draw(st.integers(1, 4))):
        center = LatLng(lat + draw(st.floats(-0.003, 0.003)), lng + draw(st.floats(-0.003, 0.003)))
        if draw(st.booleans()):
            out.append(Fence(f"c{i}", center=center, radius_m=draw(st.floats(1.0, 800.0))))
            continue
        scale = draw(st.floats(2.0, 1500.0))
        radii = draw(st.lists(st.floats(0.3, 1.0), min_size=3, max_size=12))
        outer = ngon(center, [scale * r for r in radii], phase=draw(st.floats(0, math.pi)))
        poly = outer
        if draw(st.booleans()):  # a hole: the same star, shrunk, strictly inside
            hole = ngon(center, [0.25 * scale * min(radii)] * 6)
            poly = Polygon(outer.exterior.coords, [hole.exterior.coords])
        if poly.is_valid:
            out.append(Fence(f"p{i}", shape=poly))
    return out or [Fence("c", center=LatLng(lat, lng), radius_m=10.0)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fs=fences(), seed=st.integers(0, 2**32 - 1), sigma_m=st.sampled_from([0.01, 1.0, 30.0]))
def test_random_fences_and_points_match_brute_force(
    fs: list[Fence], seed: int, sigma_m: float
) -> None:
    rng = np.random.default_rng(seed)
    lat, lng = points_near_edges(fs, 2_000, sigma_m, rng)
    hits = GeofenceIndex.build(fs).query(lat, lng, near_m=rng.uniform(0, 100, lat.size))
    want_point, want_fence = brute_force_pairs(fs, lat, lng)
    got = hits.inside
    np.testing.assert_array_equal(hits.point[got], want_point)
    np.testing.assert_array_equal(hits.fence[got], want_fence)
