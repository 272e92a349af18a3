"""Builders and brute-force references for the geo tests (no test functions here)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray
from shapely.geometry import Polygon, shape

from geo import Fence, LatLng, haversine_m
from geo.distance import EARTH_RADIUS_M

M_PER_DEG = math.pi * EARTH_RADIUS_M / 180.0


def load_fences(path: Path) -> list[Fence]:
    """The features of a GeoJSON file as fences (geometry only; ids from properties)."""
    features = json.loads(path.read_text(encoding="utf-8"))["features"]
    return [Fence(f["properties"]["id"], shape=shape(f["geometry"])) for f in features]


def offset(center: LatLng, east_m: float, north_m: float) -> tuple[float, float]:
    """(lng, lat) about ``east_m``/``north_m`` metres from ``center`` (small offsets)."""
    lat = center.lat + north_m / M_PER_DEG
    lng = center.lng + east_m / (M_PER_DEG * math.cos(math.radians(center.lat)))
    return lng, lat


def ngon(center: LatLng, radii_m: Sequence[float], *, phase: float = 0.0) -> Polygon:
    """A star-shaped polygon: vertex ``i`` at ``radii_m[i]`` metres, evenly spaced angles."""
    n = len(radii_m)
    ring = [
        offset(
            center,
            r * math.cos(phase + 2 * math.pi * i / n),
            r * math.sin(phase + 2 * math.pi * i / n),
        )
        for i, r in enumerate(radii_m)
    ]
    return Polygon(ring)


def brute_force_pairs(
    fences: Sequence[Fence], lat: NDArray[np.float64], lng: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(point, fence) containment pairs sorted by point then fence, without the index.

    Polygons: shapely ``intersects`` through an STRtree (the tree only prunes by
    bounding box; the predicate is the exact test). Circles: haversine ≤ radius.
    """
    pts: list[NDArray[np.int64]] = []
    fcs: list[NDArray[np.int64]] = []
    poly_pos = np.array([i for i, f in enumerate(fences) if not f.is_circle], dtype=np.int64)
    if poly_pos.size:
        tree = shapely.STRtree([fences[i].shape for i in poly_pos])
        p, f = tree.query(shapely.points(lng, lat), predicate="intersects")
        pts.append(p.astype(np.int64))
        fcs.append(poly_pos[f])
    for i, fence in enumerate(fences):
        if fence.is_circle:
            assert fence.center is not None and fence.radius_m is not None
            hit = np.flatnonzero(
                haversine_m(lat, lng, fence.center.lat, fence.center.lng) <= fence.radius_m
            )
            pts.append(hit.astype(np.int64))
            fcs.append(np.full(hit.size, i, dtype=np.int64))
    if not pts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    p_all, f_all = np.concatenate(pts), np.concatenate(fcs)
    order = np.lexsort((f_all, p_all))
    return p_all[order], f_all[order]


def reference_edge_m(
    fence: Fence, lat: NDArray[np.float64], lng: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Signed edge distance (positive inside) from an independent method.

    Polygons: planar distance in a WGS84 azimuthal equidistant projection centred on
    the fence (pyproj), whose distances from the centre are exact geodesics.
    Circles: the contract itself, radius minus the haversine distance (that haversine
    is within 0.5 % of the WGS84 geodesic is tested in ``test_distance``).
    """
    if fence.is_circle:
        assert fence.center is not None and fence.radius_m is not None
        return fence.radius_m - haversine_m(lat, lng, fence.center.lat, fence.center.lng)
    assert fence.shape is not None
    minx, miny, maxx, maxy = fence.shape.bounds
    lon0 = 180.0 if maxx - minx > 180 else (minx + maxx) / 2
    crs = pyproj.CRS.from_proj4(f"+proj=aeqd +lat_0={(miny + maxy) / 2} +lon_0={lon0} +ellps=WGS84")
    tr = pyproj.Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    projected = shapely.transform(
        fence.shape, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1]))
    )
    projected = shapely.union_all(shapely.get_parts(projected))
    x, y = tr.transform(lng, lat)
    d = shapely.distance(projected.boundary, shapely.points(x, y))
    inside = shapely.intersects_xy(fence.shape, lng, lat)
    signed: NDArray[np.float64] = np.where(inside, d, -d)
    return signed


def points_near_edges(
    fences: Sequence[Fence], n: int, sigma_m: float, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``n`` points scattered (Gaussian, ``sigma_m``) about vertices and edge points."""
    coords: list[NDArray[np.float64]] = []
    for fence in fences:
        if fence.is_circle:
            assert fence.center is not None and fence.radius_m is not None
            a = np.linspace(0, 2 * np.pi, 16, endpoint=False)
            c_lng, c_lat = offset(fence.center, 0, 0)
            pts = np.column_stack(
                [
                    c_lng + fence.radius_m * np.cos(a)
                    / (M_PER_DEG * math.cos(math.radians(c_lat))),
                    c_lat + fence.radius_m * np.sin(a) / M_PER_DEG,
                ]
            )
        else:
            assert fence.shape is not None  # not a circle, so a polygonal shape
            boundary = fence.shape.boundary
            verts = shapely.get_coordinates(boundary)
            mids = shapely.get_coordinates(
                shapely.line_interpolate_point(boundary, rng.uniform(0, 1, 8), normalized=True)
            )
            pts = np.vstack([verts, mids])
        coords.append(pts)
    base = np.vstack(coords)
    pick = base[rng.integers(0, len(base), n)]
    lat = pick[:, 1] + rng.normal(0, sigma_m, n) / M_PER_DEG
    lng = pick[:, 0] + rng.normal(0, sigma_m, n) / (M_PER_DEG * np.cos(np.radians(pick[:, 1])))
    # Every tenth point exactly on a vertex or edge point: the tie rule matters there.
    lat[::10], lng[::10] = pick[::10, 1], pick[::10, 0]
    lng = (lng + 180.0) % 360.0 - 180.0
    return np.clip(lat, -90, 90), lng
