"""Exact answers for the (point, fence) pairs a cell lookup leaves in doubt: whether the
fence holds the point, and how far the point is from the fence's edge; and the banded
segment tables (:class:`geo.index_tables.Edges`) both read. Internal to :mod:`geo.index`,
whose module doc states the contract ("Exactness", "Distances").
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import shapely
from numpy.typing import NDArray

from geo.distance import haversine_m, to_local_xy
from geo.index_tables import Edges, Tables, expand, frozen

# Orientation filter (Shewchuk's ccwerrboundA is (3 + 16 eps) eps = 3.3e-16 with eps
# = 2^-53): beyond this relative bound the sign of the float determinant is exact;
# within it (a point on or within ~1e-15 of an edge) the pair goes to GEOS, which is exact.
_ORIENT_REL_BOUND: Final = 1e-15
_ORIENT_ABS_FLOOR: Final = 1e-250
_PIP_CHUNK: Final = 1 << 18
# Numpy measures a point's distance to its window's segments at ~0.05 us a segment,
# GEOS to a whole edge at ~1-2 us a point: numpy while the window holds few segments.
_WINDOW_SEGMENTS: Final = 12
_DIST_CHUNK: Final = 1 << 14


def exact_inside(
    t: Tables,
    point: NDArray[np.int64],
    fence: NDArray[np.int32],
    lat: NDArray[np.float64],
    lng: NDArray[np.float64],
) -> NDArray[np.bool_]:
    """Exact containment of each (point, fence) pair."""
    is_circle = t.is_circle[fence]
    inside = np.empty(point.shape[0], dtype=np.bool_)
    poly = np.flatnonzero(~is_circle)
    if poly.size:
        pp = point[poly]
        inside[poly] = _polygons_hold(t, fence[poly], lng[pp], lat[pp])
    circ = np.flatnonzero(is_circle)
    if circ.size:
        f = fence[circ]
        pc = point[circ]
        c = t.circle
        inside[circ] = haversine_m(lat[pc], lng[pc], c[f, 0], c[f, 1]) <= c[f, 2]
    return inside


def edge_distance(
    t: Tables,
    point: NDArray[np.int64],
    fence: NDArray[np.int32],
    lat: NDArray[np.float64],
    lng: NDArray[np.float64],
    *,
    near: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Distance in metres from each point to its fence's edge, exact where it is at
    most that pair's ``near``; a farther one may come back as ``inf``."""
    out = np.empty(point.shape[0], dtype=np.float64)
    is_circle = t.is_circle[fence]
    poly = np.flatnonzero(~is_circle)
    if poly.size:
        f = fence[poly]
        pp = point[poly]
        out[poly] = _polygon_edge_m(t, f, lat[pp], lng[pp], near[poly])
    circ = np.flatnonzero(is_circle)
    if circ.size:
        f = fence[circ]
        pc = point[circ]
        c = t.circle
        out[circ] = np.abs(c[f, 2] - haversine_m(lat[pc], lng[pc], c[f, 0], c[f, 1]))
    return out


def _polygons_hold(
    t: Tables, fence: NDArray[np.int32], x: NDArray[np.float64], y: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Exactly ``shapely.intersects_xy(geoms[fence], x, y)`` for polygon fences.

    A crossing-number test over the segments of the point's latitude band, in numpy:
    a segment counts when it straddles the point's latitude (half-open, as GEOS's
    ``RayCrossingCounter``) and the point lies to its left going up. The orientation
    sign is taken from the float determinant only where Shewchuk's error bound proves
    it; a pair with any doubtful sign, or with a segment end at the point's very
    latitude (vertices, horizontal edges: where "on the boundary" must be decided), is
    answered by GEOS itself. So the answer is GEOS's, bit for bit, at ~5x less cost.
    """
    m = fence.shape[0]
    if m > _PIP_CHUNK:
        return np.concatenate([
            _polygons_hold(t, fence[i:i + _PIP_CHUNK], x[i:i + _PIP_CHUNK], y[i:i + _PIP_CHUNK])
            for i in range(0, m, _PIP_CHUNK)
        ])
    e = t.edges
    band = np.floor((y - e.y0[fence]) * e.inv_h[fence])
    np.clip(band, 0.0, e.top[fence], out=band)
    g = e.band_off[fence] + band.astype(np.int64)
    pair, listed = expand(np.arange(m, dtype=np.int64), e.band_start[g], e.band_start[g + 1])
    seg = e.band_seg[listed]
    qy = y[pair]
    y1 = e.y1[seg]
    y2 = e.y2[seg]
    above1 = y1 > qy
    above2 = y2 > qy
    doubt = np.zeros(m, dtype=np.bool_)
    doubt[pair[(y1 == qy) | (y2 == qy)]] = True
    cross = np.flatnonzero(above1 != above2)
    c_pair = pair[cross]
    c_seg = seg[cross]
    qx = x[c_pair]
    qyc = qy[cross]
    left = (e.x1[c_seg] - qx) * (y2[cross] - qyc)
    right = (y1[cross] - qyc) * (e.x2[c_seg] - qx)
    det = left - right
    size = np.abs(left) + np.abs(right)
    unsure = (np.abs(det) <= _ORIENT_REL_BOUND * size) | (size < _ORIENT_ABS_FLOOR)
    doubt[c_pair[unsure]] = True
    # det > 0: the point is left of the directed segment; an upward segment (its end
    # above the point) then crosses the rightward ray, a downward one when det < 0.
    counted = (det > 0.0) == above2[cross]
    inside: NDArray[np.bool_] = (np.bincount(c_pair[counted], minlength=m) & 1).astype(np.bool_)
    check = np.flatnonzero(doubt)
    if check.size:
        inside[check] = shapely.intersects_xy(t.geoms[fence[check]], x[check], y[check])
    return inside


def _polygon_edge_m(
    t: Tables,
    fence: NDArray[np.int32],
    lat: NDArray[np.float64],
    lng: NDArray[np.float64],
    near: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Planar distance in each fence's local frame from the point to the fence's edge;
    exact up to ``near`` metres, possibly ``inf`` beyond.

    The frame is affine in (lng, lat), so a segment within ``near`` of the point has
    a latitude within ``near / ky`` of the point's: the segments listed in the
    latitude bands of that window (contiguous in the band table) are measured in
    numpy, where they are few; otherwise, or where the frame unwraps longitudes (a
    fence cut at the antimeridian, a point across it), GEOS measures the whole edge.
    """
    out = np.empty(fence.shape[0])
    e = t.edges
    fr = t.frame
    ky = fr[fence, 3]
    # A hair wider than near: the window's own rounding must not drop a segment.
    half = near * (1.0 + 1e-9) / ky + 1e-12
    y0 = e.y0[fence]
    inv_h = e.inv_h[fence]
    top = e.top[fence]
    lo = np.clip(np.floor((lat - half - y0) * inv_h), 0.0, top).astype(np.int64)
    hi = np.clip(np.floor((lat + half - y0) * inv_h), 0.0, top).astype(np.int64)
    off = e.band_off[fence]
    start = e.band_start[off + lo]
    stop = e.band_start[off + hi + 1]
    few = (stop - start <= _WINDOW_SEGMENTS) & ~e.wraps[fence]
    few &= np.abs(lng - fr[fence, 1]) < 180.0
    easy = np.flatnonzero(few)
    for i in range(0, easy.shape[0], _DIST_CHUNK):
        sel = easy[i:i + _DIST_CHUNK]
        out[sel] = _window_distance(
            t, fence[sel], lat[sel], lng[sel], start=start[sel], stop=stop[sel]
        )
    hard = np.flatnonzero(~few)
    if hard.size:
        f = fence[hard]
        x, y = to_local_xy(
            lat[hard], lng[hard], lat0=fr[f, 0], lng0=fr[f, 1], kx=fr[f, 2], ky=fr[f, 3]
        )
        out[hard] = shapely.distance(t.proj_boundary[f], shapely.points(x, y))
    return out


def _window_distance(
    t: Tables,
    fence: NDArray[np.int32],
    lat: NDArray[np.float64],
    lng: NDArray[np.float64],
    *,
    start: NDArray[np.int64],
    stop: NDArray[np.int64],
) -> NDArray[np.float64]:
    """Least distance (m, local frame) from each point to band segments start:stop.

    The frame's origin cancels from point-to-segment vectors, so none is subtracted.
    """
    m = fence.shape[0]
    e = t.edges
    pair, listed = expand(np.arange(m, dtype=np.int64), start, stop)
    seg = e.band_seg[listed]
    px = lng[pair]
    py = lat[pair]
    sx = t.frame[fence, 2][pair]
    sy = t.frame[fence, 3][pair]
    ax = (e.x1[seg] - px) * sx
    ay = (e.y1[seg] - py) * sy
    dx = (e.x2[seg] - px) * sx - ax
    dy = (e.y2[seg] - py) * sy - ay
    len2 = dx * dx + dy * dy
    dot = ax * dx + ay * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        u = np.where(len2 > 0.0, -dot / len2, 0.0)
    np.clip(u, 0.0, 1.0, out=u)
    cx = ax + u * dx
    cy = ay + u * dy
    d2 = cx * cx + cy * cy
    best = np.full(m, np.inf)
    if pair.size:
        first = np.flatnonzero(np.concatenate([[True], pair[1:] != pair[:-1]]))
        best[pair[first]] = np.minimum.reduceat(d2, first)
    out: NDArray[np.float64] = np.sqrt(best)
    return out


def edge_tables(
    geoms: NDArray[Any], poly: NDArray[np.int64], wraps: NDArray[np.bool_]
) -> Edges:
    """The banded segment tables of the polygon fences (see :class:`Edges`)."""
    n = geoms.shape[0]
    y0 = np.zeros(n)
    inv_h = np.zeros(n)
    bands = np.ones(n, dtype=np.int64)
    if poly.size:
        parts, part_of = shapely.get_parts(geoms[poly], return_index=True)
        rings, ring_of = shapely.get_rings(parts, return_index=True)
        coords, coord_of = shapely.get_coordinates(rings, return_index=True)
        seg = np.flatnonzero(coord_of[1:] == coord_of[:-1])
        x1, y1 = coords[seg, 0], coords[seg, 1]
        x2, y2 = coords[seg + 1, 0], coords[seg + 1, 1]
        seg_fence = poly[part_of[ring_of[coord_of[seg]]]]
    else:
        x1 = y1 = x2 = y2 = np.zeros(0)
        seg_fence = np.zeros(0, dtype=np.int64)
    lo_y = np.minimum(y1, y2)
    hi_y = np.maximum(y1, y2)
    n_seg = np.bincount(seg_fence, minlength=n)
    if seg_fence.size:
        y0[:] = np.inf
        np.minimum.at(y0, seg_fence, lo_y)
        ymax = np.full(n, -np.inf)
        np.maximum.at(ymax, seg_fence, hi_y)
        y0[n_seg == 0] = 0.0
        ymax[n_seg == 0] = 0.0
        height = ymax - y0
        bands = np.maximum(n_seg, 1)
        # About one band per segment; fewer where long segments would be listed in
        # many bands (a comb), so memory stays ~linear in the number of segments.
        while True:
            inv_h = np.where(height > 0.0, bands / np.where(height > 0.0, height, 1.0), 0.0)
            top = (bands - 1).astype(np.float64)
            b_lo, b_hi = _bands(lo_y, hi_y, y0=y0, inv_h=inv_h, top=top, seg_fence=seg_fence)
            listed = np.bincount(seg_fence, weights=b_hi - b_lo + 1, minlength=n)
            crowded = (listed > 8 * n_seg + 64) & (bands > 1)
            if not crowded.any():
                break
            bands[crowded] = np.maximum(bands[crowded] // 4, 1)
    else:
        b_lo = b_hi = np.zeros(0, dtype=np.int64)
    band_off = np.concatenate([[0], np.cumsum(bands)[:-1]]).astype(np.int64)
    owner, local = expand(np.arange(seg_fence.shape[0], dtype=np.int64), b_lo, b_hi + 1)
    g = band_off[seg_fence[owner]] + local
    order = np.argsort(g, kind="stable")
    band_seg = owner[order].astype(np.int32)
    total_bands = int(bands.sum())
    band_start = np.concatenate(
        [[0], np.cumsum(np.bincount(g, minlength=total_bands))]
    ).astype(np.int64)
    return Edges(
        y0=frozen(y0),
        inv_h=frozen(inv_h),
        top=frozen((bands - 1).astype(np.float64)),
        wraps=frozen(wraps),
        band_off=frozen(band_off),
        band_start=frozen(band_start),
        band_seg=frozen(band_seg),
        x1=frozen(np.ascontiguousarray(x1)),
        y1=frozen(np.ascontiguousarray(y1)),
        x2=frozen(np.ascontiguousarray(x2)),
        y2=frozen(np.ascontiguousarray(y2)),
    )


def _bands(
    lo_y: NDArray[np.float64],
    hi_y: NDArray[np.float64],
    *,
    y0: NDArray[np.float64],
    inv_h: NDArray[np.float64],
    top: NDArray[np.float64],
    seg_fence: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """First and last band of each segment: the very formula a query point uses."""
    f = seg_fence
    lo = np.clip(np.floor((lo_y - y0[f]) * inv_h[f]), 0.0, top[f]).astype(np.int64)
    hi = np.clip(np.floor((hi_y - y0[f]) * inv_h[f]), 0.0, top[f]).astype(np.int64)
    return lo, hi
