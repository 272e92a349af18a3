"""The index against a brute-force join on the shipped Beijing and Helsinki venues."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from geo import Fence, GeofenceIndex
from tests.conftest import BEIJING_VENUES, HELSINKI_VENUES
from tests.geo.builders import brute_force_pairs, load_fences, points_near_edges, reference_edge_m


@pytest.fixture(scope="module")
def fences() -> list[Fence]:
    return load_fences(BEIJING_VENUES) + load_fences(HELSINKI_VENUES)


@pytest.fixture(scope="module")
def index(fences: list[Fence]) -> GeofenceIndex:
    return GeofenceIndex.build(fences)


def _million_points(fences: list[Fence]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    lats, lngs = [], []
    for city in (fences[:372], fences[372:]):
        minx, miny, maxx, maxy = shapely.total_bounds([f.shape for f in city])
        lats.append(rng.uniform(miny, maxy, 300_000))
        lngs.append(rng.uniform(minx, maxx, 300_000))
        lat, lng = points_near_edges(city, 200_000, 15.0, rng)
        lats.append(lat)
        lngs.append(lng)
    return np.concatenate(lats), np.concatenate(lngs)


@pytest.mark.slow
def test_containment_of_a_million_points_equals_brute_force_join(
    fences: list[Fence], index: GeofenceIndex
) -> None:
    lat, lng = _million_points(fences)
    hits = index.query(lat, lng)
    want_point, want_fence = brute_force_pairs(fences, lat, lng)
    assert hits.inside.all()
    np.testing.assert_array_equal(hits.point, want_point)
    np.testing.assert_array_equal(hits.fence, want_fence)


@pytest.mark.slow
def test_near_query_reports_every_fence_within_near_m_with_its_edge_distance(
    fences: list[Fence], index: GeofenceIndex
) -> None:
    rng = np.random.default_rng(11)
    lat, lng = points_near_edges(fences, 20_000, 40.0, rng)
    near = rng.uniform(0, 120, lat.size)
    hits = index.query(lat, lng, near_m=near)
    got = {
        (int(p), int(f)): (bool(i), float(e))
        for p, f, i, e in zip(hits.point, hits.fence, hits.inside, hits.edge_m, strict=True)
    }

    def tol(d: float) -> float:
        return max(0.5, 0.005 * abs(d))

    # Per fence, compare with the independent edge distance of every nearby point.
    tree = shapely.STRtree([f.shape for f in fences])
    pts = shapely.points(lng, lat)
    cand_p, cand_f = tree.query(pts, predicate="dwithin", distance=0.01)  # ~1 km
    for f in np.unique(cand_f):
        p = cand_p[cand_f == f]
        ref = reference_edge_m(fences[f], lat[p], lng[p])
        for pi, d in zip(p.tolist(), ref.tolist(), strict=True):
            entry = got.get((pi, int(f)))
            if d >= 0 or -d <= near[pi] - tol(d):
                if d >= 0 and entry is None:
                    pytest.fail(f"point {pi} inside fence {f} is missing")
                if d < 0:
                    assert entry is not None, f"point {pi} {-d:.2f} m outside fence {f} missing"
            if entry is None:
                continue
            inside, edge = entry
            assert inside == (d >= 0) or abs(d) < 1e-6
            if abs(d) <= near[pi] - tol(d):
                assert abs(edge - d) <= tol(d), (pi, int(f), edge, d)
            elif abs(d) > near[pi] + tol(d):
                assert np.isnan(edge)
