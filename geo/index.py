"""The geofence index: which fences hold (or nearly hold) each of a batch of points.

Pure and immutable: :meth:`GeofenceIndex.build` does all the work once; a query is a
handful of vectorised numpy / shapely calls whatever the batch size, and never loops
in Python per point. Swap a whole new index in when the fences change.

How it works
------------
**Coverage** (:mod:`geo.index_build`, whose module doc gives the rules and their
bounds). Each fence is covered by H3 cells of one resolution chosen from its size
(about eight cells across, between resolution 5 and ``cell_res``). Every cell within
reach of the fence plus ``halo_m`` is classified *interior* (every point of the cell is
inside: no exact test), *boundary* (an exact test per point) or *halo* (every point is
outside, within ``halo_m`` of the edge possibly); anything farther is dropped.

**Query.** H3 of every point at ``cell_res`` (h3ronpy, vectorised; ~60 % of a query's
time, and needed anyway for ``IndexHits.cell``), its parent at each resolution in use
(bit operations), a lookup per resolution in an open-addressing hash table of the cell
keys (two gathers a point, ~5x cheaper than a binary search), a CSR expansion into
candidate (point, fence) pairs, then ONE vectorised exact test for the boundary pairs
and ONE vectorised distance computation (``shapely.distance`` in the local frames)
for the pairs whose ``near_m`` needs an edge distance.

The exact test of a polygon is a crossing-number test in numpy over the segments of
the point's latitude band (about three per point; :mod:`geo.index_exact`), with the orientation
sign taken from the float determinant only where Shewchuk's error bound proves it;
pairs left in doubt (a point on or within ~1e-15 of an edge, or at a vertex's exact
latitude) go to ``shapely.intersects_xy`` on the prepared geometry. Circles: haversine.

Exactness
---------
``inside`` is exactly shapely's ``intersects`` of the point (x=lng, y=lat) with the
fence's lon/lat geometry — so a point on an edge or a vertex is inside — or, for a
circle, ``haversine_m(point, center) <= radius_m``. The cell filter only skips
tests whose answer it knows with a margin; it never changes an answer. The numpy
crossing test decides only what exact arithmetic would decide the same way (GEOS's
own ``RayCrossingCounter`` rules, with a proven orientation sign) and hands every
other pair to GEOS.

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
from types import MappingProxyType
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geo.cells import MAX_RES, latlng_to_cells, parent_cells
from geo.errors import GeoError
from geo.fence import Fence
from geo.hits import IndexHits
from geo.index_build import CELLS_ACROSS, MIN_COVER_RES, build_tables
from geo.index_exact import edge_distance, exact_inside
from geo.index_tables import BOUNDARY, INTERIOR, Tables, expand

__all__ = ["CELLS_ACROSS", "DEFAULT_CELL_RES", "DEFAULT_HALO_M", "MIN_COVER_RES", "GeofenceIndex"]

DEFAULT_HALO_M: Final = 200.0
"""Default halo: the widest ``near_m`` the index answers. Presence asks for
max(exit margin, accuracy), 30 m by default, and drops pings whose accuracy is worse than
200 m (the presence policy's ``max_accuracy_m``)."""

DEFAULT_CELL_RES: Final = 10
"""Resolution of ``IndexHits.cell`` and the finest coverage resolution (~66 m edges)."""


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
        tables: Tables,
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
        tables = build_tables(fences, halo_m=float(halo_m), cell_res=cell_res)
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
            hit, pos = level.find(keys)
            start = level.start[pos]
            stop = (level.end if with_halo else level.core_end)[pos]
            pair_pt, entry = expand(hit, start, stop)
            pts_parts.append(pair_pt)
            ent_parts.append(entry)
        if not pts_parts:
            return _empty_hits(cells)
        point = np.concatenate(pts_parts) if len(pts_parts) > 1 else pts_parts[0]
        entry = np.concatenate(ent_parts) if len(ent_parts) > 1 else ent_parts[0]
        fence = self._t.entry_fence[entry]
        kind = self._t.entry_kind[entry]

        inside = kind == INTERIOR
        boundary = np.flatnonzero(kind == BOUNDARY)
        if boundary.size:
            inside[boundary] = exact_inside(
                self._t, point[boundary], fence[boundary], lat_a, lng_a
            )

        if near is None or not with_halo:
            keep = np.flatnonzero(inside)
            edge_m = np.full(keep.shape[0], np.nan)
        else:
            near_pair = near[point]
            bound = self._t.entry_bound[entry]
            # Interior and halo entries carry a lower bound of the edge distance of
            # every point of their cell: skip the distance when near_m stays below it.
            need = np.where(kind == BOUNDARY, near_pair > 0.0, near_pair >= bound)
            dist = np.full(point.shape[0], np.inf)
            idx = np.flatnonzero(need)
            if idx.size:
                dist[idx] = edge_distance(
                    self._t, point[idx], fence[idx], lat_a, lng_a, near=near_pair[idx]
                )
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


def _empty_hits(cells: NDArray[np.uint64]) -> IndexHits:
    return IndexHits(
        cell=cells,
        point=np.empty(0, dtype=np.int64),
        fence=np.empty(0, dtype=np.int32),
        inside=np.empty(0, dtype=np.bool_),
        edge_m=np.empty(0, dtype=np.float64),
    )
