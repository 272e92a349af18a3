"""The arrays a built :class:`geo.index.GeofenceIndex` is made of, and the cell lookup a
query does in them. Internal to :mod:`geo.index`: :mod:`geo.index_build` fills them once,
:mod:`geo.index` and :mod:`geo.index_exact` read them; every array is read-only.

Each (cell, fence) coverage *entry* has a kind: :data:`INTERIOR` (every point of the cell
is inside the fence), :data:`BOUNDARY` (an exact test per point) or :data:`HALO` (every
point is outside, possibly within ``halo_m`` of the edge).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from geo.cells import MAX_RES

HASH_MULT: Final = np.uint64(0x9E3779B97F4A7C15)
"""Fibonacci hashing's multiplier (2^64 over the golden ratio): cells, (cell, fence) pairs."""
_EMPTY_SLOT: Final = np.uint64(0)  # 0 is no valid H3 index

INTERIOR: Final = np.int8(0)
BOUNDARY: Final = np.int8(1)
HALO: Final = np.int8(2)


def frozen(a: NDArray[Any]) -> NDArray[Any]:
    """``a``, made read-only in place."""
    a.flags.writeable = False
    return a


@dataclass(frozen=True, slots=True)
class Edges:
    """The segments of every polygon fence in lon/lat, bucketed by latitude band, for
    the vectorised exact test and edge distances (:mod:`geo.index_exact`).

    Fence ``i`` has ``top[i] + 1`` bands of equal height from ``y0[i]`` (``inv_h[i]``
    bands per degree; circles: one empty band). A point at latitude ``y`` falls in
    band ``clip(floor((y - y0) * inv_h), 0, top)``, computed alike for segment ends at
    build time: floating-point subtraction, multiplication by a positive constant and
    floor are all monotone, so every segment whose latitude range holds ``y`` is listed
    in that band, exactly. Band ``g = band_off[i] + b`` lists the segments
    ``band_seg[band_start[g]:band_start[g + 1]]`` (indices into ``x1, y1, x2, y2``;
    a segment spanning several bands is listed in each, stored once).
    """

    y0: NDArray[np.float64]
    inv_h: NDArray[np.float64]
    top: NDArray[np.float64]
    wraps: NDArray[np.bool_]
    """The fence is cut at the antimeridian (its frame unwraps longitudes)."""
    band_off: NDArray[np.int64]
    band_start: NDArray[np.int64]
    band_seg: NDArray[np.int32]
    x1: NDArray[np.float64]
    y1: NDArray[np.float64]
    x2: NDArray[np.float64]
    y2: NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Tables:
    """Everything a query reads; all arrays read-only. Per fence position ``i``:
    ``geoms[i]`` the prepared lon/lat shape (None for a circle), ``circle[i]`` its
    (lat, lng, radius_m) (NaN for a polygon), ``frame[i]`` its local frame
    (lat0, lng0, kx, ky), ``proj_boundary[i]`` its edge in that frame. Per entry:
    ``entry_fence``, ``entry_kind`` (interior/boundary/halo), ``entry_bound``
    (clearance or halo distance lower bound, metres)."""

    levels: tuple[Level, ...]
    entry_fence: NDArray[np.int32]
    entry_kind: NDArray[np.int8]
    entry_bound: NDArray[np.float64]
    geoms: NDArray[Any]
    is_circle: NDArray[np.bool_]
    circle: NDArray[np.float64]
    frame: NDArray[np.float64]
    proj_boundary: NDArray[Any]
    edges: Edges


@dataclass(frozen=True, slots=True)
class Level:
    """The sorted cell keys of one coverage resolution and their entry ranges.

    Entries of key ``i`` are ``start[i]:end[i]`` of the index's entry arrays: first the
    interior and boundary ones (up to ``core_end[i]``), then the halo ones, each part
    sorted by fence position. ``slots`` is an open-addressing hash table of the keys
    (linear probing, load <= 1/2, Fibonacci hashing on the top ``64 - shift`` bits):
    each slot holds a key's index or -1, and ``probe_keys`` is ``keys`` followed by a
    0 (no H3 index is 0), so ``probe_keys[slots[h]]`` reads an empty slot as 0 without
    a branch. A lookup is two gathers, where a binary search over ~1e5 keys is ~17
    dependent ones; the table costs 4 bytes a slot (~8-16 bytes a key).
    """

    res: int
    keys: NDArray[np.uint64]
    start: NDArray[np.int64]
    core_end: NDArray[np.int64]
    end: NDArray[np.int64]
    probe_keys: NDArray[np.uint64]
    slots: NDArray[np.int32]
    shift: int

    def find(self, cells: NDArray[np.uint64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(positions in ``cells`` with a key, the key's index), by position."""
        mask = np.uint64(self.slots.shape[0] - 1)
        slot = home_slots(cells, self.res, self.shift)
        key_of = np.full(cells.shape[0], -1, dtype=np.int64)
        active: NDArray[np.int64] | None = None  # None: every position
        want = cells
        while slot.shape[0]:
            index = self.slots[slot]
            held = self.probe_keys[index]
            match = held == want
            where = np.flatnonzero(match)
            key_of[where if active is None else active[where]] = index[where]
            probe = np.flatnonzero(~match & (held != _EMPTY_SLOT))
            active = probe if active is None else active[probe]
            want = want[probe]
            slot = (slot[probe] + np.uint64(1)) & mask
        hit = np.flatnonzero(key_of >= 0)
        return hit, key_of[hit]


def home_slots(cells: NDArray[np.uint64], res: int, shift: int) -> NDArray[np.uint64]:
    """Home slots of cells at ``res``: Fibonacci hashing of the cell's significant bits
    (its unused finer digits, all 7, would otherwise make every key a multiple of
    2^(3 (15 - res)) apart and the table cluster)."""
    out: NDArray[np.uint64] = ((cells >> np.uint64(3 * (MAX_RES - res))) * HASH_MULT) >> (
        np.uint64(shift)
    )
    return out


def expand(
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
