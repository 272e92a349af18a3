"""How :meth:`geo.index.GeofenceIndex.build` turns fences into the index's tables
(:class:`geo.index_tables.Tables`): the coverage of every fence by H3 cells, in four
phases (:func:`build_tables`). Pure; internal to :mod:`geo.index`.

**Coverage.** Each fence is covered by H3 cells of one resolution ``r_f``, chosen from
its size: the coarsest resolution whose average hexagon edge is at most 1/8 of the
fence's extent (the larger side of its bounding box in metres; a circle's diameter),
clamped to ``[5, cell_res]``. About eight cells across keeps the boundary band — where
an exact test is needed — a minority of the fence's area while the number of cells
per fence stays ~50-100; every fence up to ~600 m across lands on ``cell_res`` (10 by
default, ~66 m edges), so a city of small venues needs a single lookup per point.

Every cell within reach of the fence (a ``grid_disk`` about the fence's centre wide
enough to cover the fence plus ``halo_m``; its radius ``k`` comes from an estimate of
the cell spacing, so the build checks it: a fence whose outermost ring still holds a
kept cell, or one of whose parts has a point mapping outside the disk, is covered
again with ``k * 1.5 + 1`` until neither holds — see :func:`_cover`, and the corridor
tests in ``tests/geo/test_index_coverage.py``) is classified from the signed distance
``d`` of its centre to the fence's edge (positive inside; see "Distances" in
:mod:`geo.index`) and a bound ``c`` on how far any point that maps to the cell can be
from its centre:

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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import h3ronpy
import numpy as np
import shapely
from h3.api import basic_int as h3i
from numpy.typing import NDArray

from geo.cells import (
    cell_areas_m2,
    cell_centers,
    coarsest_res_with_edge_at_most,
    latlng_to_cells,
    parent_cells,
)
from geo.distance import frame_scales, haversine_m, to_local_xy
from geo.errors import GeoError
from geo.fence import Fence
from geo.index_exact import edge_tables
from geo.index_tables import BOUNDARY, HALO, HASH_MULT, INTERIOR, Level, Tables, frozen, home_slots

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

_K_GROWTH: Final = 1.5
_MAX_COVER_ROUNDS: Final = 24


def build_tables(fences: tuple[Fence, ...], *, halo_m: float, cell_res: int) -> Tables:
    """The query tables of ``fences`` (see the module doc), in four phases: each
    fence's local frame, the disk of candidate cells about it, the coverage (the
    candidates kept, grown until complete), and the per-resolution lookup levels."""
    shapes = _fence_shapes(fences)
    plan = _disk_plan(shapes, halo_m=halo_m, cell_res=cell_res)
    entries = _cover(fences, shapes, plan, halo_m=halo_m, cell_res=cell_res)
    levels, entries = _lookup_levels(entries, plan.fence_res)
    return Tables(
        levels=levels,
        entry_fence=frozen(entries.fence.astype(np.int32)),
        entry_kind=frozen(entries.kind),
        entry_bound=frozen(entries.bound.astype(np.float64)),
        geoms=frozen(shapes.geoms),
        is_circle=frozen(shapes.geometry.is_circle),
        circle=frozen(shapes.geometry.circle),
        frame=frozen(shapes.geometry.frame),
        proj_boundary=frozen(shapes.geometry.proj_boundary),
        edges=edge_tables(shapes.geoms, shapes.poly, shapes.wraps),
    )


@dataclass(frozen=True, slots=True)
class _FenceShapes:
    """Phase 1 of :func:`build_tables`, per fence position: its lon/lat shape
    (``geoms``, None for a circle), its local frame and projected shape (``geometry``),
    the farthest fence point from the frame origin (``reach_m``) and its larger
    projected extent (``extent_m``), both in metres."""

    geoms: NDArray[Any]
    poly: NDArray[np.intp]
    """Positions of the polygon fences."""
    wraps: NDArray[np.bool_]
    geometry: _FenceGeometry
    reach_m: NDArray[np.float64]
    extent_m: NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class _DiskPlan:
    """Phase 2 of :func:`build_tables`, per fence position: its coverage resolution,
    the cell of its frame origin there, the estimated disk radius ``k`` (rings) and
    the cell circumradius bound ``circ_m`` (m) used to classify its cells."""

    fence_res: NDArray[np.int64]
    origin: NDArray[np.uint64]
    k: NDArray[np.int64]
    circ_m: NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class _Entries:
    """(cell, fence position, kind, bound) of every kept coverage entry."""

    cell: NDArray[np.uint64]
    fence: NDArray[np.int32]
    kind: NDArray[np.int8]
    bound: NDArray[np.float64]


def _fence_shapes(fences: tuple[Fence, ...]) -> _FenceShapes:
    """Phase 1: every fence's local frame (lat0, lng0, kx, ky) and projected shape."""
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

    frame = np.zeros((n, 4))
    reach_m = np.zeros(n)
    extent_m = np.zeros(n)
    proj_boundary = np.empty(n, dtype=object)
    proj_geoms = np.empty(n, dtype=object)
    wraps = np.zeros(n, dtype=np.bool_)
    if poly.size:
        bounds = shapely.bounds(geoms[poly])
        lat0 = (bounds[:, 1] + bounds[:, 3]) * 0.5
        lng0 = (bounds[:, 0] + bounds[:, 2]) * 0.5
        # A fence split at the antimeridian spans (almost) 360° of longitude in lon/lat;
        # centring its frame on 180° makes both sides of the cut land on x = 0 exactly,
        # so the parts can be merged again and the cut is no edge.
        crossing = (bounds[:, 2] - bounds[:, 0]) > 180.0
        lng0[crossing] = 180.0
        wraps[poly[crossing]] = True
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
        proj_geoms[poly] = projected
        shapely.prepare(geoms[poly])
    circ_idx = np.flatnonzero(is_circle)
    if circ_idx.size:
        frame[circ_idx, 0] = circle[circ_idx, 0]
        frame[circ_idx, 1] = circle[circ_idx, 1]
        kx, ky = frame_scales(circle[circ_idx, 0])
        frame[circ_idx, 2] = kx
        frame[circ_idx, 3] = ky
        extent_m[circ_idx] = 2.0 * circle[circ_idx, 2]
        reach_m[circ_idx] = circle[circ_idx, 2]
    geometry = _FenceGeometry(is_circle, circle, frame, proj_geoms, proj_boundary)
    return _FenceShapes(geoms, poly, wraps, geometry, reach_m, extent_m)


def _disk_plan(shapes: _FenceShapes, *, halo_m: float, cell_res: int) -> _DiskPlan:
    """Phase 2: each fence's resolution and a grid disk about its frame origin that
    should hold every cell within ``halo_m`` of it (an estimate, see :func:`_cover`)."""
    n = shapes.reach_m.shape[0]
    frame = shapes.geometry.frame
    fence_res = np.clip(
        coarsest_res_with_edge_at_most(shapes.extent_m / CELLS_ACROSS), MIN_COVER_RES, cell_res
    )
    origin = np.zeros(n, dtype=np.uint64)
    for res in np.unique(fence_res):
        sel = np.flatnonzero(fence_res == res)
        origin[sel] = latlng_to_cells(
            np.ascontiguousarray(frame[sel, 0]), np.ascontiguousarray(frame[sel, 1]), int(res)
        )
    desc = np.where(fence_res < cell_res, _DESCENDANT_FACTOR, 1.0)
    origin_sqrt_area = np.sqrt(cell_areas_m2(origin)) if n else np.zeros(0)
    # The exact area of every candidate costs ~3 µs a cell (over half the build); H3
    # cell areas vary slowly (a few per mille across a fence's disk, except beside the
    # 12 pentagons), so each fence's disk uses its origin cell's area, plus 5 %.
    circ_m = _CIRCUMRADIUS_PER_SQRT_AREA * _NEIGHBOUR_AREA_SLACK * origin_sqrt_area * desc
    circ_m = circ_m + _MARGIN_M
    k = np.ceil(
        (shapes.reach_m + halo_m
         + _CIRCUMRADIUS_PER_SQRT_AREA * origin_sqrt_area * desc + _MARGIN_M)
        / (_SPACING_PER_SQRT_AREA * origin_sqrt_area)
    ).astype(np.int64) + 1
    return _DiskPlan(fence_res, origin, k, circ_m)


def _cover(
    fences: tuple[Fence, ...], shapes: _FenceShapes, plan: _DiskPlan, *,
    halo_m: float, cell_res: int,
) -> _Entries:
    """Phase 3: classify every fence's disk cells and keep the interior, boundary and
    near-halo ones; grow the disks of fences whose coverage is not shown complete.

    The disk radius ``k`` is an estimate (cell spacing varies across a disk, most near
    the 12 pentagons and for long fences), so it is checked, and a fence is covered
    again with a larger disk (k x 1.5 + 1) until both hold:

    - the outermost ring of its disk holds no kept cell, and
    - a point of each of its parts (first exterior vertex; a circle's centre) maps
      to a cell inside that ring.

    Together they make the coverage complete whatever the estimate: the cells that
    points within halo_m of a part map to are all kept (their centres lie within
    halo_m + c of it) and form a grid-connected set (the points do), which meets the
    inner disk and so cannot cross the kept-free ring. Raises ``GeoError`` when a
    fence needs more than ``_MAX_COVER_ROUNDS`` rounds.
    """
    n = len(fences)
    geo = shapes.geometry
    k = plan.k.copy()
    anchor_fence, anchor_cell = _anchor_cells(shapes.geoms, geo.circle, geo.is_circle,
                                              plan.fence_res, cell_res)
    parts: list[_Entries] = []
    pending = np.arange(n, dtype=np.int64)
    for _ in range(_MAX_COVER_ROUNDS):
        if not pending.size:
            break
        cells, owner, ring = _disks(plan.origin[pending], k[pending])
        cand_fence = pending[owner].astype(np.int32)
        kind, bound = _classify(geo, cells, cand_fence, plan.circ_m[cand_fence])
        keep = (kind != HALO) | (bound <= halo_m)
        inner = ring < k[cand_fence]
        redo = np.zeros(n, dtype=np.bool_)
        redo[cand_fence[keep & ~inner]] = True
        is_pending = np.zeros(n, dtype=np.bool_)
        is_pending[pending] = True
        mine = np.flatnonzero(is_pending[anchor_fence])
        found = _pairs_present(
            cells[inner], cand_fence[inner], anchor_cell[mine], anchor_fence[mine]
        )
        redo[anchor_fence[mine[~found]]] = True
        done = ~redo[cand_fence] & keep
        parts.append(_Entries(cells[done], cand_fence[done], kind[done], bound[done]))
        pending = pending[redo[pending]]
        k[pending] = np.ceil(k[pending] * _K_GROWTH).astype(np.int64) + 1
    else:
        if pending.size:
            raise GeoError(f"fence {fences[int(pending[0])].fence_id!r}: H3 coverage "
                           f"did not converge in {_MAX_COVER_ROUNDS} rounds")
    if not parts:
        return _Entries(np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int32),
                        np.zeros(0, dtype=np.int8), np.zeros(0))
    return _Entries(
        np.concatenate([q.cell for q in parts]),
        np.concatenate([q.fence for q in parts]),
        np.concatenate([q.kind for q in parts]),
        np.concatenate([q.bound for q in parts]),
    )


def _lookup_levels(
    entries: _Entries, fence_res: NDArray[np.int64]
) -> tuple[tuple[Level, ...], _Entries]:
    """Phase 4: sort the entries by (resolution, cell, core before halo, fence) and
    index each resolution's cells (CSR ranges and a hash table; see :class:`Level`).
    Returns the levels, finest first, and the entries in their order."""
    level_res = fence_res[entries.fence]
    order = np.lexsort((entries.fence, entries.kind == HALO, entries.cell, -level_res))
    cand_cell, kind, level_res = entries.cell[order], entries.kind[order], level_res[order]
    levels: list[Level] = []
    for res in sorted(set(level_res.tolist()), reverse=True):
        lo = int(np.searchsorted(-level_res, -res, side="left"))
        hi = int(np.searchsorted(-level_res, -res, side="right"))
        keys, first = np.unique(cand_cell[lo:hi], return_index=True)
        start = first.astype(np.int64) + lo
        end = np.append(start[1:], hi).astype(np.int64)
        core = np.concatenate([[0], np.cumsum(kind[lo:hi] != HALO)])
        core_count = core[end - lo] - core[start - lo]
        probe_keys = frozen(np.append(keys.astype(np.uint64), np.uint64(0)))
        slots, shift = _hash_table(probe_keys[:-1], int(res))
        levels.append(
            Level(
                res=int(res),
                keys=probe_keys[:-1],
                start=frozen(start),
                core_end=frozen(start + core_count),
                end=frozen(end),
                probe_keys=probe_keys,
                slots=frozen(slots),
                shift=shift,
            )
        )
    return tuple(levels), _Entries(cand_cell, entries.fence[order], kind,
                                   entries.bound[order])


@dataclass(frozen=True, slots=True)
class _FenceGeometry:
    """What classifying cells needs per fence position (see :class:`Tables`)."""

    is_circle: NDArray[np.bool_]
    circle: NDArray[np.float64]
    frame: NDArray[np.float64]
    proj_geoms: NDArray[Any]
    proj_boundary: NDArray[Any]


def _disks(
    origin: NDArray[np.uint64], k: NDArray[np.int64]
) -> tuple[NDArray[np.uint64], NDArray[np.int64], NDArray[np.int64]]:
    """The grid disk of radius ``k[i]`` about each ``origin[i]``: (cell, i, ring of the cell).

    h3ronpy lists each disk after the previous one, its origin (ring 0) first; that
    layout is checked, and a per-disk h3-py fallback takes over should it ever change.
    """
    cells: list[NDArray[np.uint64]] = []
    owners: list[NDArray[np.int64]] = []
    rings: list[NDArray[np.int64]] = []
    for kk in np.unique(k).tolist():
        sel = np.flatnonzero(k == kk)
        batch = h3ronpy.grid_disk_distances(origin[sel], int(kk), flatten=True)
        cell = np.asarray(batch.column("cell").to_numpy(), dtype=np.uint64)
        ring = np.asarray(batch.column("k").to_numpy(), dtype=np.int64)
        first = np.flatnonzero(ring == 0)
        if first.shape[0] == sel.shape[0] and first[:1].tolist() == [0] and bool(
            np.all(cell[first] == origin[sel])
        ):
            owner = sel[np.cumsum(ring == 0) - 1]
        else:  # pragma: no cover - guards a layout h3ronpy does not produce today
            cell, owner, ring = _disks_slow(origin[sel], int(kk))
            owner = sel[owner]
        cells.append(cell)
        owners.append(owner)
        rings.append(ring)
    if not cells:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(cells), np.concatenate(owners), np.concatenate(rings)


def _disks_slow(
    origin: NDArray[np.uint64], k: int
) -> tuple[NDArray[np.uint64], NDArray[np.int64], NDArray[np.int64]]:
    cells: list[int] = []
    owner: list[int] = []
    ring: list[int] = []
    for i, c in enumerate(origin.tolist()):
        inner = set(h3i.grid_disk(c, k - 1)) if k > 0 else set()
        for cell in h3i.grid_disk(c, k):
            cells.append(cell)
            owner.append(i)
            ring.append(k - 1 if cell in inner else k)  # only "outermost or not" matters
    return (np.array(cells, dtype=np.uint64), np.array(owner, dtype=np.int64),
            np.array(ring, dtype=np.int64))


def _anchor_cells(
    geoms: NDArray[Any],
    circle: NDArray[np.float64],
    is_circle: NDArray[np.bool_],
    fence_res: NDArray[np.int64],
    cell_res: int,
) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
    """One point of every part of every fence (first exterior vertex; a circle's
    centre) and the cell it maps to at its fence's resolution, as a query maps it."""
    poly = np.flatnonzero(~is_circle)
    circ = np.flatnonzero(is_circle)
    lat = [circle[circ, 0]]
    lng = [circle[circ, 1]]
    owner = [circ.astype(np.int64)]
    if poly.size:
        parts, part_of = shapely.get_parts(geoms[poly], return_index=True)
        solid = ~shapely.is_empty(parts)  # an empty part has no point to anchor
        parts, part_of = parts[solid], part_of[solid]
        xy = shapely.get_coordinates(shapely.get_point(shapely.get_exterior_ring(parts), 0))
        lat.append(xy[:, 1])
        lng.append(xy[:, 0])
        owner.append(poly[part_of].astype(np.int64))
    a_lat = np.ascontiguousarray(np.concatenate(lat))
    a_lng = np.ascontiguousarray(np.concatenate(lng))
    a_fence = np.concatenate(owner)
    cells = latlng_to_cells(a_lat, a_lng, cell_res)
    res = fence_res[a_fence]
    for r in np.unique(res).tolist():
        sel = np.flatnonzero(res == r)
        cells[sel] = parent_cells(cells[sel], int(r))
    return a_fence, cells


def _pairs_present(
    cells: NDArray[np.uint64],
    fence: NDArray[np.int32],
    want_cell: NDArray[np.uint64],
    want_fence: NDArray[np.int64],
) -> NDArray[np.bool_]:
    """Whether each (want_cell, want_fence) is among the (cells, fence) pairs.

    Searched through a 64-bit mix of the pair, then confirmed on the pair itself (a
    collision can only answer "absent", which costs a larger disk, never a miss).
    """
    if not want_cell.size:
        return np.zeros(0, dtype=np.bool_)
    if not cells.size:
        return np.zeros(want_cell.shape[0], dtype=np.bool_)
    mix = (cells * HASH_MULT) ^ fence.astype(np.uint64)
    order = np.argsort(mix)
    sorted_mix = mix[order]
    want = (want_cell * HASH_MULT) ^ want_fence.astype(np.uint64)
    pos = np.minimum(np.searchsorted(sorted_mix, want), sorted_mix.shape[0] - 1)
    at = order[pos]
    found: NDArray[np.bool_] = (
        (sorted_mix[pos] == want) & (cells[at] == want_cell) & (fence[at] == want_fence)
    )
    return found


def _classify(
    geo: _FenceGeometry,
    cells: NDArray[np.uint64],
    fence: NDArray[np.int32],
    circ_m: NDArray[np.float64],
) -> tuple[NDArray[np.int8], NDArray[np.float64]]:
    """Kind of each (cell, fence) candidate and its distance bound (see the module doc)."""
    clat, clng = cell_centers(cells) if cells.size else (np.zeros(0), np.zeros(0))
    d = np.empty(cells.shape[0])
    cand_circle = geo.is_circle[fence]
    sel = np.flatnonzero(cand_circle)
    if sel.size:
        f = fence[sel]
        c = geo.circle
        d[sel] = c[f, 2] - haversine_m(clat[sel], clng[sel], c[f, 0], c[f, 1])
    sel = np.flatnonzero(~cand_circle)
    if sel.size:
        f = fence[sel]
        fr = geo.frame
        x, y = to_local_xy(
            clat[sel], clng[sel], lat0=fr[f, 0], lng0=fr[f, 1], kx=fr[f, 2], ky=fr[f, 3]
        )
        inside = shapely.intersects_xy(geo.proj_geoms[f], x, y)
        dist = shapely.distance(geo.proj_boundary[f], shapely.points(x, y))
        d[sel] = np.where(inside, dist, -dist)
    kind = np.full(cells.shape[0], BOUNDARY, dtype=np.int8)
    kind[d >= circ_m] = INTERIOR
    kind[d <= -circ_m] = HALO
    bound = np.where(kind == INTERIOR, d - circ_m, np.where(kind == HALO, -d - circ_m, 0.0))
    return kind, bound


def _hash_table(keys: NDArray[np.uint64], res: int) -> tuple[NDArray[np.int32], int]:
    """An open-addressing table of distinct non-zero ``keys`` (see :class:`Level`)."""
    if keys.shape[0] >= 2**31 - 1:
        raise GeoError("more than 2**31 - 2 cells at one resolution")
    bits = max(4, int(keys.shape[0] * 2 - 1).bit_length())
    size = 1 << bits
    shift = 64 - bits
    slot_val = np.full(size, -1, dtype=np.int32)
    pending = np.arange(keys.shape[0], dtype=np.int64)
    slot = home_slots(keys, res, shift)
    mask = np.uint64(size - 1)
    while pending.shape[0]:
        free = slot_val[slot] < 0
        # Of several keys wanting one free slot, the first (lowest index) takes it.
        taken, first = np.unique(slot[free], return_index=True)
        winner = pending[free][first]
        slot_val[taken] = winner
        placed = np.zeros(pending.shape[0], dtype=np.bool_)
        placed[np.flatnonzero(free)[first]] = True
        pending = pending[~placed]
        slot = (slot[~placed] + np.uint64(1)) & mask
    return slot_val, shift


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
