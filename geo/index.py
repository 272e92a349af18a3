"""The geofence index: which fences hold (or nearly hold) each of a batch of points.

Pure and immutable: :meth:`GeofenceIndex.build` does all the work once; a query is a
handful of vectorised numpy / shapely calls whatever the batch size, and never loops
in Python per point. Swap a whole new index in when the fences change.

How it works
------------
**Coverage.** Each fence is covered by H3 cells of one resolution ``r_f``, chosen from
its size: the coarsest resolution whose average hexagon edge is at most 1/8 of the
fence's extent (the larger side of its bounding box in metres; a circle's diameter),
clamped to ``[5, cell_res]``. About eight cells across keeps the boundary band — where
an exact test is needed — a minority of the fence's area while the number of cells
per fence stays ~50-100; every fence up to ~600 m across lands on ``cell_res`` (10 by
default, ~66 m edges), so a city of small venues needs a single lookup per point.

Every cell within reach of the fence (a ``grid_disk`` about the fence's centre wide
enough to cover the fence plus ``halo_m``) is classified from the signed distance
``d`` of its centre to the fence's edge (positive inside; see "Distances") and a
bound ``c`` on how far any point that maps to the cell can be from its centre:

- *interior* (``d >= c``): every point of the cell is inside; no exact test. The
  entry keeps its *clearance* ``d - c``, a lower bound of the edge distance of every
  point in it, so the edge distance is computed only when ``near_m`` reaches it;
- *boundary* (``|d| < c``): exact test per point;
- *halo* (``d <= -c`` and ``-d - c <= halo_m``): every point is outside, within
  ``halo_m`` of the edge possibly. The entry keeps ``-d - c`` and is only examined
  by points whose ``near_m`` reaches it;
- anything farther is dropped.

``c = 0.72 * 1.05 * sqrt(area of the fence's origin cell) (* 1.10 when r_f <
cell_res) + 0.5 m`` (the 1.05 covers area changes across the fence's disk). The largest
centre-to-vertex distance of an H3 cell is at most 0.696·sqrt(area) (measured over
the globe at resolutions 4-10, pentagon neighbours included; 0.620 for a regular
hexagon); 0.72 leaves 3 % for the difference between h3's sphere and our
ellipsoidal frames. A point is looked up at ``r_f`` through the ``cell_res`` parent
chain of its own cell (``geo.cells.parent_cells``), and H3 children stick out of
their parent: the points of a cell's descendants lie within 1.045 of its
circumradius (measured two levels down), hence 1.10. The 0.5 m absorbs rounding.

**Query.** H3 of every point at ``cell_res`` (h3ronpy, vectorised), its parent at each
resolution in use (bit operations), a ``searchsorted`` per resolution against the
sorted cell keys, a CSR expansion into candidate (point, fence) pairs, then ONE
vectorised exact test for the boundary pairs (``shapely.intersects_xy`` on prepared
geometries; haversine for circles) and ONE vectorised distance computation for the
pairs whose ``near_m`` needs an edge distance.

Exactness
---------
``inside`` is exactly shapely's ``intersects`` of the point (x=lng, y=lat) with the
fence's lon/lat geometry — so a point on an edge or a vertex is inside — or, for a
circle, ``haversine_m(point, center) <= radius_m``. The cell filter only skips
tests whose answer it knows with a margin; it never changes an answer.

Distances
---------
``edge_m`` of a polygon fence is the planar distance to its boundary (exterior and
hole rings) in the fence's local frame (:mod:`geo.distance`: equirectangular about
the fence's bounding-box centre on WGS84 radii; < 0.3 % error for fences up to
50 km² below 78° latitude, ~< 0.5 % to 83°); of a circle ``radius_m - haversine``.
With ``near_m`` 0 (or None) no distance is computed and ``edge_m`` is NaN.

Input
-----
Coordinates must be finite, ``lat`` in [-90, 90] and ``lng`` in [-180, 180]; a query
raises :class:`geo.GeoError` naming the first offending index otherwise (the check
costs ~2 ns per point).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import shapely
from h3.api import basic_int as h3i
from numpy.typing import ArrayLike, NDArray

from geo.cells import (
    MAX_RES,
    cell_areas_m2,
    cell_centers,
    coarsest_res_with_edge_at_most,
    latlng_to_cells,
    parent_cells,
)
from geo.distance import frame_scales, haversine_m, to_local_xy
from geo.errors import GeoError
from geo.fence import Fence
from geo.hits import IndexHits

DEFAULT_HALO_M: Final = 200.0
"""Default halo: the widest ``near_m`` the index answers. Presence asks for
max(30 m, accuracy) and ignores pings with accuracy worse than 200 m (DESIGN.md)."""

DEFAULT_CELL_RES: Final = 10
"""Resolution of ``IndexHits.cell`` and the finest coverage resolution (~66 m edges)."""

MIN_COVER_RES: Final = 5
"""Coarsest coverage resolution (~9.9 km edges): fences larger than ~80 km across
still get at least one cell per ~10 km, i.e. exact tests only near their edge."""

CELLS_ACROSS: Final = 8.0
"""Target number of average cell edges across a fence's extent (see module doc)."""

_CIRCUMRADIUS_PER_SQRT_AREA: Final = 0.72
_DESCENDANT_FACTOR: Final = 1.10
_MARGIN_M: Final = 0.5
_NEIGHBOUR_AREA_SLACK: Final = 1.05
# A disk of radius k covers centres at least k * (centre spacing) away; the spacing of
# neighbouring centres is sqrt(3) * edge = 1.0746 * sqrt(area) for a regular hexagon,
# and H3 cells near the fence are within ~20 % of its centre cell, hence the 0.8.
_SPACING_PER_SQRT_AREA: Final = 0.8 * 1.0746

_INTERIOR: Final = np.int8(0)
_BOUNDARY: Final = np.int8(1)
_HALO: Final = np.int8(2)


def _frozen(a: NDArray[Any]) -> NDArray[Any]:
    a.flags.writeable = False
    return a


@dataclass(frozen=True, slots=True)
class _Tables:
    """Everything a query reads; all arrays read-only. Per fence position ``i``:
    ``geoms[i]`` the prepared lon/lat shape (None for a circle), ``circle[i]`` its
    (lat, lng, radius_m) (NaN for a polygon), ``frame[i]`` its local frame
    (lat0, lng0, kx, ky), ``proj_boundary[i]`` its edge in that frame. Per entry:
    ``entry_fence``, ``entry_kind`` (interior/boundary/halo), ``entry_bound``
    (clearance or halo distance lower bound, metres)."""

    levels: tuple[_Level, ...]
    entry_fence: NDArray[np.int32]
    entry_kind: NDArray[np.int8]
    entry_bound: NDArray[np.float64]
    geoms: NDArray[Any]
    is_circle: NDArray[np.bool_]
    circle: NDArray[np.float64]
    frame: NDArray[np.float64]
    proj_boundary: NDArray[Any]


@dataclass(frozen=True, slots=True)
class _Level:
    """The sorted cell keys of one coverage resolution and their entry ranges.

    Entries of key ``i`` are ``start[i]:end[i]`` of the index's entry arrays: first the
    interior and boundary ones (up to ``core_end[i]``), then the halo ones, each part
    sorted by fence position.
    """

    res: int
    keys: NDArray[np.uint64]
    start: NDArray[np.int64]
    core_end: NDArray[np.int64]
    end: NDArray[np.int64]


class GeofenceIndex:
    """An immutable H3-backed index of fences, queried with batches of points.

    Build with :meth:`build`; query with :meth:`query`. Fences are numbered by their
    position in the sequence given to :meth:`build` (``fence_ids[i]``), and
    ``IndexHits.fence`` holds those positions. Pure: no IO, no clock; deterministic
    (same fences, same answers, same arrays).
    """

    __slots__ = ("_positions", "_t", "cell_res", "fence_ids", "halo_m")

    def __init__(
        self,
        *,
        fence_ids: tuple[str, ...],
        halo_m: float,
        cell_res: int,
        tables: _Tables,
    ) -> None:
        """Private: use :meth:`build`."""
        self.fence_ids = fence_ids
        self.halo_m = halo_m
        self.cell_res = cell_res
        self._positions = MappingProxyType({fid: i for i, fid in enumerate(fence_ids)})
        self._t = tables

    # -- construction ---------------------------------------------------------------

    @classmethod
    def build(
        cls,
        fences: Sequence[Fence],
        *,
        halo_m: float = DEFAULT_HALO_M,
        cell_res: int = DEFAULT_CELL_RES,
    ) -> GeofenceIndex:
        """Index ``fences`` (an empty sequence gives an empty index).

        ``halo_m`` (metres, ≥ 0) bounds the ``near_m`` that queries can use: outside
        pairs farther than ``halo_m`` from a fence are never reported. ``cell_res``
        is the resolution of ``IndexHits.cell`` and the finest coverage resolution.
        Raises :class:`GeoError` on duplicate fence ids or bad parameters. Building
        100k small fences takes tens of seconds (see the report in the tests).
        """
        if not (math.isfinite(halo_m) and halo_m >= 0.0):
            raise GeoError(f"halo_m must be a finite number >= 0, not {halo_m!r}")
        if not (isinstance(cell_res, int) and MIN_COVER_RES <= cell_res <= MAX_RES):
            raise GeoError(f"cell_res must be an int in [{MIN_COVER_RES}, {MAX_RES}]")
        fences = tuple(fences)
        ids = tuple(f.fence_id for f in fences)
        seen: set[str] = set()
        for fid in ids:
            if fid in seen:
                raise GeoError(f"duplicate fence id {fid!r}")
            seen.add(fid)
        tables = _build_tables(fences, halo_m=float(halo_m), cell_res=cell_res)
        return cls(fence_ids=ids, halo_m=float(halo_m), cell_res=cell_res, tables=tables)

    # -- introspection --------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.fence_ids)

    def __repr__(self) -> str:
        return (
            f"GeofenceIndex({len(self)} fences, halo_m={self.halo_m}, "
            f"cell_res={self.cell_res}, entries={self._t.entry_fence.shape[0]})"
        )

    def position(self, fence_id: str) -> int:
        """The position of ``fence_id`` (as used in ``IndexHits.fence``).

        Raises :class:`GeoError` for an id the index does not hold.
        """
        try:
            return self._positions[fence_id]
        except KeyError:
            raise GeoError(f"no fence {fence_id!r} in this index") from None

    @property
    def resolutions(self) -> tuple[int, ...]:
        """The coverage resolutions in use, finest first (one lookup per point each)."""
        return tuple(level.res for level in self._t.levels)

    @property
    def n_entries(self) -> int:
        """Number of (cell, fence) entries: a measure of the index's memory."""
        return int(self._t.entry_fence.shape[0])

    # -- query ----------------------------------------------------------------------

    def query(
        self,
        lat: ArrayLike,
        lng: ArrayLike,
        near_m: float | NDArray[np.float64] | None = None,
    ) -> IndexHits:
        """Find the fences holding, or within ``near_m`` of, each point.

        ``lat``/``lng``: 1-D arrays in degrees, same length ``n`` (validated: finite and
        in range, else :class:`GeoError` naming the first bad index). ``near_m``:
        metres, a scalar or one value per point; None means 0; values are clamped to
        ``[0, halo_m]`` (NaN raises). See :class:`geo.hits.IndexHits` for the pairs and
        ``edge_m``; pairs are sorted by point, then fence position.
        """
        lat_a, lng_a = _coordinates(lat, lng)
        n = lat_a.shape[0]
        near = self._near(near_m, n)
        cells = latlng_to_cells(lat_a, lng_a, self.cell_res)
        with_halo = near is not None and bool(np.any(near > 0.0))

        pts_parts: list[NDArray[np.int64]] = []
        ent_parts: list[NDArray[np.int64]] = []
        for level in self._t.levels:
            keys = cells if level.res == self.cell_res else parent_cells(cells, level.res)
            pos = np.searchsorted(level.keys, keys)
            np.minimum(pos, level.keys.shape[0] - 1, out=pos)
            hit = np.flatnonzero(level.keys[pos] == keys)
            pos = pos[hit]
            start = level.start[pos]
            stop = (level.end if with_halo else level.core_end)[pos]
            pair_pt, entry = _expand(hit, start, stop)
            pts_parts.append(pair_pt)
            ent_parts.append(entry)
        if not pts_parts:
            return _empty_hits(cells)
        point = np.concatenate(pts_parts) if len(pts_parts) > 1 else pts_parts[0]
        entry = np.concatenate(ent_parts) if len(ent_parts) > 1 else ent_parts[0]
        fence = self._t.entry_fence[entry]
        kind = self._t.entry_kind[entry]

        inside = kind == _INTERIOR
        boundary = np.flatnonzero(kind == _BOUNDARY)
        if boundary.size:
            inside[boundary] = self._exact_inside(
                point[boundary], fence[boundary], lat_a, lng_a
            )

        if near is None or not with_halo:
            keep = np.flatnonzero(inside)
            edge_m = np.full(keep.shape[0], np.nan)
        else:
            near_pair = near[point]
            bound = self._t.entry_bound[entry]
            # Interior and halo entries carry a lower bound of the edge distance of
            # every point of their cell: skip the distance when near_m stays below it.
            need = np.where(kind == _BOUNDARY, near_pair > 0.0, near_pair >= bound)
            dist = np.full(point.shape[0], np.inf)
            idx = np.flatnonzero(need)
            if idx.size:
                dist[idx] = self._edge_distance(point[idx], fence[idx], lat_a, lng_a)
            within = dist <= near_pair
            keep = np.flatnonzero(inside | within)
            signed = np.where(inside, dist, -dist)[keep]
            edge_m = np.where(within[keep], signed, np.nan)

        point = point[keep]
        fence = fence[keep]
        inside = inside[keep]
        if len(self._t.levels) > 1 or with_halo:
            # Entries come per level, and within a cell core before halo: restore the
            # (point, fence) order of the contract. Stable, so ties cannot occur anyway.
            order = np.lexsort((fence, point))
            point, fence, inside, edge_m = point[order], fence[order], inside[order], edge_m[order]
        return IndexHits(
            cell=cells,
            point=point.astype(np.int64, copy=False),
            fence=fence.astype(np.int32, copy=False),
            inside=inside,
            edge_m=edge_m.astype(np.float64, copy=False),
        )

    def _near(
        self, near_m: float | NDArray[np.float64] | None, n: int
    ) -> NDArray[np.float64] | None:
        if near_m is None:
            return None
        arr = np.asarray(near_m, dtype=np.float64)
        if arr.ndim == 0:
            arr = np.full(n, float(arr))
        elif arr.shape != (n,):
            raise GeoError(f"near_m has shape {arr.shape}; expected a scalar or ({n},)")
        bad = np.isnan(arr)
        if bad.any():
            raise GeoError(f"near_m[{int(np.argmax(bad))}] is NaN")
        out: NDArray[np.float64] = np.clip(arr, 0.0, self.halo_m)
        return out

    def _exact_inside(
        self,
        point: NDArray[np.int64],
        fence: NDArray[np.int32],
        lat: NDArray[np.float64],
        lng: NDArray[np.float64],
    ) -> NDArray[np.bool_]:
        """Exact containment of each (point, fence) pair."""
        is_circle = self._t.is_circle[fence]
        inside = np.empty(point.shape[0], dtype=np.bool_)
        poly = np.flatnonzero(~is_circle)
        if poly.size:
            pp = point[poly]
            inside[poly] = shapely.intersects_xy(self._t.geoms[fence[poly]], lng[pp], lat[pp])
        circ = np.flatnonzero(is_circle)
        if circ.size:
            f = fence[circ]
            pc = point[circ]
            c = self._t.circle
            inside[circ] = haversine_m(lat[pc], lng[pc], c[f, 0], c[f, 1]) <= c[f, 2]
        return inside

    def _edge_distance(
        self,
        point: NDArray[np.int64],
        fence: NDArray[np.int32],
        lat: NDArray[np.float64],
        lng: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        """Unsigned distance in metres from each point to its fence's edge."""
        out = np.empty(point.shape[0], dtype=np.float64)
        is_circle = self._t.is_circle[fence]
        poly = np.flatnonzero(~is_circle)
        if poly.size:
            f = fence[poly]
            pp = point[poly]
            fr = self._t.frame
            x, y = to_local_xy(
                lat[pp], lng[pp], lat0=fr[f, 0], lng0=fr[f, 1], kx=fr[f, 2], ky=fr[f, 3]
            )
            out[poly] = shapely.distance(self._t.proj_boundary[f], shapely.points(x, y))
        circ = np.flatnonzero(is_circle)
        if circ.size:
            f = fence[circ]
            pc = point[circ]
            c = self._t.circle
            out[circ] = np.abs(c[f, 2] - haversine_m(lat[pc], lng[pc], c[f, 0], c[f, 1]))
        return out


def _coordinates(lat: ArrayLike, lng: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    try:
        lat_a = np.ascontiguousarray(lat, dtype=np.float64)
        lng_a = np.ascontiguousarray(lng, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GeoError(f"coordinates must be numeric arrays: {exc}") from exc
    if lat_a.ndim != 1 or lat_a.shape != lng_a.shape:
        raise GeoError(
            f"lat and lng must be 1-D arrays of one length, not {lat_a.shape} and {lng_a.shape}"
        )
    # Written as "not (in range)" so that NaN, which fails every comparison, is caught.
    ok = (lat_a >= -90.0) & (lat_a <= 90.0) & (lng_a >= -180.0) & (lng_a <= 180.0)
    if not ok.all():
        i = int(np.argmin(ok))
        raise GeoError(
            f"point {i}: lat={lat_a[i]!r}, lng={lng_a[i]!r} is not a finite position "
            "with lat in [-90, 90] and lng in [-180, 180]"
        )
    return lat_a, lng_a


def _expand(
    owner: NDArray[np.int64], start: NDArray[np.int64], stop: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """CSR expansion: ``(owner[i], j)`` for each ``i`` and ``j`` in ``start[i]:stop[i]``."""
    counts = stop - start
    total = int(counts.sum())
    pair_owner = np.repeat(owner, counts)
    # Entry j of the flat output is start[i] + (j - first output slot of i).
    first_slot = np.cumsum(counts) - counts
    entry = np.arange(total, dtype=np.int64) + np.repeat(start - first_slot, counts)
    return pair_owner.astype(np.int64, copy=False), entry


def _empty_hits(cells: NDArray[np.uint64]) -> IndexHits:
    return IndexHits(
        cell=cells,
        point=np.empty(0, dtype=np.int64),
        fence=np.empty(0, dtype=np.int32),
        inside=np.empty(0, dtype=np.bool_),
        edge_m=np.empty(0, dtype=np.float64),
    )


def _build_tables(fences: tuple[Fence, ...], *, halo_m: float, cell_res: int) -> _Tables:
    """The query tables of ``fences`` (see the module doc)."""
    n = len(fences)
    is_circle = np.array([f.is_circle for f in fences], dtype=np.bool_)
    geoms = np.empty(n, dtype=object)
    circle = np.full((n, 3), np.nan)  # lat, lng, radius_m
    for i, fence in enumerate(fences):
        if fence.center is not None and fence.radius_m is not None:
            circle[i] = (fence.center.lat, fence.center.lng, fence.radius_m)
        else:
            geoms[i] = fence.shape
    poly = np.flatnonzero(~is_circle)

    # Local frames: (lat0, lng0, kx, ky) per fence.
    frame = np.zeros((n, 4))
    reach_m = np.zeros(n)  # farthest fence point from the frame origin
    extent_m = np.zeros(n)
    proj_boundary = np.empty(n, dtype=object)
    if poly.size:
        bounds = shapely.bounds(geoms[poly])
        lat0 = (bounds[:, 1] + bounds[:, 3]) * 0.5
        lng0 = (bounds[:, 0] + bounds[:, 2]) * 0.5
        # A fence split at the antimeridian spans (almost) 360° of longitude in lon/lat;
        # centring its frame on 180° makes both sides of the cut land on x = 0 exactly,
        # so the parts can be merged again and the cut is no edge.
        crossing = (bounds[:, 2] - bounds[:, 0]) > 180.0
        lng0[crossing] = 180.0
        kx, ky = frame_scales(lat0)
        frame[poly] = np.column_stack([lat0, lng0, kx, ky])
        projected = _project(geoms[poly], frame[poly])
        for j in np.flatnonzero(crossing):
            projected[j] = shapely.union_all(shapely.get_parts(projected[j]))
        pb = shapely.bounds(projected)
        extent_m[poly] = np.maximum(pb[:, 2] - pb[:, 0], pb[:, 3] - pb[:, 1])
        reach_m[poly] = np.hypot(
            np.maximum(np.abs(pb[:, 0]), np.abs(pb[:, 2])),
            np.maximum(np.abs(pb[:, 1]), np.abs(pb[:, 3])),
        )
        shapely.prepare(projected)
        proj_boundary[poly] = shapely.boundary(projected)
        proj_geoms = np.empty(n, dtype=object)
        proj_geoms[poly] = projected
        shapely.prepare(geoms[poly])
    else:
        proj_geoms = np.empty(n, dtype=object)
    circ_idx = np.flatnonzero(is_circle)
    if circ_idx.size:
        frame[circ_idx, 0] = circle[circ_idx, 0]
        frame[circ_idx, 1] = circle[circ_idx, 1]
        kx, ky = frame_scales(circle[circ_idx, 0])
        frame[circ_idx, 2] = kx
        frame[circ_idx, 3] = ky
        extent_m[circ_idx] = 2.0 * circle[circ_idx, 2]
        reach_m[circ_idx] = circle[circ_idx, 2]

    fence_res = np.clip(
        coarsest_res_with_edge_at_most(extent_m / CELLS_ACROSS), MIN_COVER_RES, cell_res
    )

    # Candidate cells: a grid disk about each fence's frame origin.
    origin = np.zeros(n, dtype=np.uint64)
    for res in np.unique(fence_res):
        sel = np.flatnonzero(fence_res == res)
        origin[sel] = latlng_to_cells(
            np.ascontiguousarray(frame[sel, 0]), np.ascontiguousarray(frame[sel, 1]), int(res)
        )
    desc = np.where(fence_res < cell_res, _DESCENDANT_FACTOR, 1.0)
    origin_sqrt_area = np.sqrt(cell_areas_m2(origin)) if n else np.zeros(0)
    k = np.ceil(
        (reach_m + halo_m + _CIRCUMRADIUS_PER_SQRT_AREA * origin_sqrt_area * desc + _MARGIN_M)
        / (_SPACING_PER_SQRT_AREA * origin_sqrt_area)
    ).astype(np.int64) + 1
    disks = [
        h3i.grid_disk(int(c), int(kk)) for c, kk in zip(origin.tolist(), k.tolist(), strict=True)
    ]
    lengths = np.fromiter((len(d) for d in disks), dtype=np.int64, count=n)
    cand_cell = np.fromiter(
        (c for d in disks for c in d), dtype=np.uint64, count=int(lengths.sum())
    )
    del disks
    cand_fence = np.repeat(np.arange(n, dtype=np.int32), lengths)

    # Signed distance of each candidate's centre to its fence's edge, in metres.
    clat, clng = cell_centers(cand_cell) if cand_cell.size else (np.zeros(0), np.zeros(0))
    # The exact area of every candidate costs ~3 µs a cell (over half the build); H3
    # cell areas vary slowly (a few per mille across a fence's disk, except beside the
    # 12 pentagons), so each fence's disk uses its origin cell's area, plus 5 %.
    circ_m = (
        _CIRCUMRADIUS_PER_SQRT_AREA * _NEIGHBOUR_AREA_SLACK * origin_sqrt_area * desc
    )[cand_fence] + _MARGIN_M
    d = np.empty(cand_cell.shape[0])
    cand_circle = is_circle[cand_fence]
    sel = np.flatnonzero(cand_circle)
    if sel.size:
        f = cand_fence[sel]
        d[sel] = circle[f, 2] - haversine_m(clat[sel], clng[sel], circle[f, 0], circle[f, 1])
    sel = np.flatnonzero(~cand_circle)
    if sel.size:
        f = cand_fence[sel]
        x, y = to_local_xy(
            clat[sel], clng[sel], lat0=frame[f, 0], lng0=frame[f, 1], kx=frame[f, 2], ky=frame[f, 3]
        )
        inside = shapely.intersects_xy(proj_geoms[f], x, y)
        dist = shapely.distance(proj_boundary[f], shapely.points(x, y))
        d[sel] = np.where(inside, dist, -dist)

    kind = np.full(cand_cell.shape[0], _BOUNDARY, dtype=np.int8)
    kind[d >= circ_m] = _INTERIOR
    kind[d <= -circ_m] = _HALO
    bound = np.where(kind == _INTERIOR, d - circ_m, np.where(kind == _HALO, -d - circ_m, 0.0))
    keep = (kind != _HALO) | (bound <= halo_m)
    cand_cell, cand_fence, kind, bound = cand_cell[keep], cand_fence[keep], kind[keep], bound[keep]
    level_res = fence_res[cand_fence]

    # Sort entries by (resolution, cell, core before halo, fence): CSR per level.
    order = np.lexsort((cand_fence, kind == _HALO, cand_cell, -level_res))
    cand_cell, cand_fence = cand_cell[order], cand_fence[order]
    kind, bound, level_res = kind[order], bound[order], level_res[order]
    levels: list[_Level] = []
    for res in sorted(set(level_res.tolist()), reverse=True):
        lo = int(np.searchsorted(-level_res, -res, side="left"))
        hi = int(np.searchsorted(-level_res, -res, side="right"))
        cells = cand_cell[lo:hi]
        keys, first = np.unique(cells, return_index=True)
        start = first.astype(np.int64) + lo
        end = np.append(start[1:], hi).astype(np.int64)
        core = np.concatenate([[0], np.cumsum(kind[lo:hi] != _HALO)])
        core_count = core[end - lo] - core[start - lo]
        levels.append(
            _Level(
                res=int(res),
                keys=_frozen(keys.astype(np.uint64)),
                start=_frozen(start),
                core_end=_frozen(start + core_count),
                end=_frozen(end),
            )
        )

    return _Tables(
        levels=tuple(levels),
        entry_fence=_frozen(cand_fence.astype(np.int32)),
        entry_kind=_frozen(kind),
        entry_bound=_frozen(bound.astype(np.float64)),
        geoms=_frozen(geoms),
        is_circle=_frozen(is_circle),
        circle=_frozen(circle),
        frame=_frozen(frame),
        proj_boundary=_frozen(proj_boundary),
    )


def _project(geoms: NDArray[Any], frame: NDArray[np.float64]) -> NDArray[Any]:
    """Each geometry in its own local frame (row of ``frame``: lat0, lng0, kx, ky)."""
    owner = np.repeat(np.arange(geoms.shape[0]), shapely.get_num_coordinates(geoms))

    def to_xy(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        fr = frame[owner]
        x, y = to_local_xy(
            coords[:, 1], coords[:, 0], lat0=fr[:, 0], lng0=fr[:, 1], kx=fr[:, 2], ky=fr[:, 3]
        )
        return np.column_stack([x, y])

    out: NDArray[Any] = shapely.transform(geoms, to_xy)
    return out
