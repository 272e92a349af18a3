"""H3 cells as uint64 numpy arrays: indexing, parents by bit arithmetic, sizes.

Every function here is vectorised; none loops in Python per point.

H3 index layout (64 bits, https://h3geo.org/docs/core-library/h3Indexing): bit 63
reserved, bits 59-62 mode, bits 56-58 reserved, bits 52-55 the resolution, bits 45-51
the base cell, then fifteen 3-bit digits, digit ``r`` (resolutions 1..15) at bits
``3 * (15 - r)`` .. ``3 * (15 - r) + 2``; digits finer than the resolution are 7. So a
parent is the same bits with the resolution field replaced and the finer digits set
to 7 — two bit operations for a whole array.

Point indexing uses h3ronpy (Rust, vectorised). It runs single-threaded for
``coordinates_to_cells`` (measured: CPU time equals wall time), so throughput
figures are per core without setting ``RAYON_NUM_THREADS``.
"""

from __future__ import annotations

import h3ronpy
import h3ronpy.vector as h3v
import numpy as np
from numpy.typing import NDArray

MAX_RES = 15

AVG_EDGE_M: tuple[float, ...] = (
    1_281_256.011,
    483_056.8391,
    182_512.9565,
    68_979.22179,
    26_071.75968,
    9_854.090990,
    3_724.532667,
    1_406.475763,
    531.414010,
    200.786148,
    75.863783,
    28.663897,
    10.830188,
    4.092010,
    1.546100,
    0.584169,
)
"""Average hexagon edge length in metres per resolution 0..15 (h3 v4 documentation)."""

_RES_SHIFT = np.uint64(52)
_RES_MASK = np.uint64(0xF << 52)


def latlng_to_cells(
    lat: NDArray[np.float64], lng: NDArray[np.float64], res: int
) -> NDArray[np.uint64]:
    """The H3 cell (uint64) at ``res`` of each point given in degrees.

    The caller validates coordinates (finite, in range); see ``GeofenceIndex.query``.
    """
    out = np.asarray(h3v.coordinates_to_cells(lat, lng, res), dtype=np.uint64)
    return out


def parent_cells(cells: NDArray[np.uint64], res: int) -> NDArray[np.uint64]:
    """The ancestor at ``res`` of each cell (cells must be at ``res`` or finer).

    Same result as ``h3.cell_to_parent`` but for a whole array at once; a cell
    already at ``res`` maps to itself.
    """
    if not 0 <= res <= MAX_RES:
        raise ValueError(f"H3 resolution {res} is outside [0, 15]")
    fill = np.uint64((1 << (3 * (MAX_RES - res))) - 1)
    out: NDArray[np.uint64] = (cells & ~_RES_MASK) | (np.uint64(res) << _RES_SHIFT) | fill
    return out


def cell_centers(cells: NDArray[np.uint64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(lat, lng) in degrees of each cell's centre."""
    batch = h3v.cells_to_coordinates(cells)
    lat = np.asarray(batch.column("lat"), dtype=np.float64)
    lng = np.asarray(batch.column("lng"), dtype=np.float64)
    return lat, lng


def cell_areas_m2(cells: NDArray[np.uint64]) -> NDArray[np.float64]:
    """Area of each cell in square metres (on h3's authalic sphere)."""
    return np.asarray(h3ronpy.cells_area_m2(cells), dtype=np.float64)


def coarsest_res_with_edge_at_most(edge_m: NDArray[np.float64]) -> NDArray[np.int64]:
    """For each length, the coarsest resolution whose average edge is ≤ that length.

    Lengths below the finest resolution's edge give 15.
    """
    # AVG_EDGE_M decreases with resolution; search its negation, which increases.
    neg = -np.asarray(AVG_EDGE_M, dtype=np.float64)
    res = np.searchsorted(neg, -np.asarray(edge_m, dtype=np.float64), side="left")
    return np.minimum(res, MAX_RES).astype(np.int64)
