"""A coarse raster of fence bounding boxes: the cheapest first filter for a sparse batch.

When most points of a batch are far from every fence (a city's GPS points against its
subway stations), the H3 cell of each point (~330 ns) is most of a query's cost. A
:class:`BoxGrid` says, with a handful of numpy operations a point (~20 ns), which
points *may* lie in some fence: each fence's bounding box, widened by one grid cell
on every side so that rounding at a box's edge can never drop a point, is marked in a
grid of at most ``max_cells`` square cells over the boxes' extent. It never says no
to a point that a fence holds (``tests/geo/test_grid.py``); it says yes to some that
none holds, which the index then rules out. Pure and immutable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geo.distance import EARTH_RADIUS_M
from geo.fence import Fence

DEFAULT_MAX_CELLS: Final = 1 << 20
"""Grid cells at most (one byte each): 1 MiB, built in milliseconds."""

_WORLD: Final = (-90.0, -180.0, 90.0, 180.0)
_MARGIN: Final = 1.001
"""Circle boxes are widened by 0.1 % (and a cell): the sphere formulas below are exact,
the margin only absorbs their floating-point rounding."""


@dataclass(frozen=True, slots=True)
class BoxGrid:
    """Cells of ``step_deg`` degrees from (``south``, ``west``); ``mask`` (rows, cols)
    is True where some fence's widened bounding box reaches the cell."""

    south: float
    west: float
    step_deg: float
    mask: NDArray[np.bool_]

    @classmethod
    def of_fences(cls, fences: Sequence[Fence], *, max_cells: int = DEFAULT_MAX_CELLS
                  ) -> BoxGrid:
        """The grid of ``fences``' bounding boxes (degrees, fences in lon/lat).

        The cell size is the larger of half the median box side (finer cells would
        not drop more points) and what keeps the grid within ``max_cells``.
        """
        if not fences:
            return cls(0.0, 0.0, 1.0, np.zeros((1, 1), dtype=np.bool_))
        boxes = np.array([_box(f) for f in fences], dtype=np.float64)  # s, w, n, e
        south, west = float(boxes[:, 0].min()), float(boxes[:, 1].min())
        north, east = float(boxes[:, 2].max()), float(boxes[:, 3].max())
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        area = max(north - south, 1e-9) * max(east - west, 1e-9)
        step = max(float(np.median(sides)) / 2.0, math.sqrt(area / max_cells), 1e-7)
        # One cell of margin around the extent, so the widened boxes stay inside.
        south, west = south - step, west - step
        rows = math.ceil((north - south) / step) + 2
        cols = math.ceil((east - west) / step) + 2
        while rows * cols > max_cells:  # the margins can tip a tight fit over
            step *= 1.01
            rows = math.ceil((north - south) / step) + 2
            cols = math.ceil((east - west) / step) + 2
        mask = np.zeros((rows, cols), dtype=np.bool_)
        first = np.floor((boxes[:, :2] - (south, west)) / step).astype(np.int64) - 1
        last = np.floor((boxes[:, 2:] - (south, west)) / step).astype(np.int64) + 1
        first = np.maximum(first, 0)
        last = np.minimum(last, (rows - 1, cols - 1))
        for (i0, j0), (i1, j1) in zip(first.tolist(), last.tolist(), strict=True):
            mask[i0:i1 + 1, j0:j1 + 1] = True
        return cls(south, west, step, mask)

    def may_hold(self, lat: ArrayLike, lng: ArrayLike) -> NDArray[np.bool_]:
        """For each point (degrees), False when no fence can hold it.

        Points outside the grid, and NaN coordinates, are False: callers validate
        coordinates first (``GeofenceIndex.query`` raises on bad ones).
        """
        lat_a = np.asarray(lat, dtype=np.float64)
        lng_a = np.asarray(lng, dtype=np.float64)
        rows, cols = self.mask.shape
        i = np.floor((lat_a - self.south) / self.step_deg)
        j = np.floor((lng_a - self.west) / self.step_deg)
        ok = (i >= 0) & (i < rows) & (j >= 0) & (j < cols)
        flat = np.where(ok, i * cols + j, 0).astype(np.int64)
        out: NDArray[np.bool_] = ok & self.mask.ravel()[flat]
        return out

    @property
    def share_marked(self) -> float:
        """The share of cells that let points through, in [0, 1]."""
        return float(self.mask.mean())


def _box(fence: Fence) -> tuple[float, float, float, float]:
    """(south, west, north, east) in degrees around everything ``fence`` holds."""
    if fence.shape is not None:
        west, south, east, north = fence.shape.bounds
        return south, west, north, east
    assert fence.center is not None and fence.radius_m is not None  # a circle
    lat, lng = fence.center.lat, fence.center.lng
    # On the sphere of the haversine distance, a circle of angular radius d about
    # latitude p spans p +- d, and longitudes within asin(sin d / cos p) while it
    # does not reach a pole; one that does, or that crosses the antimeridian, gets
    # every longitude.
    d = fence.radius_m / EARTH_RADIUS_M * _MARGIN
    d_deg = math.degrees(d)
    south, north = lat - d_deg, lat + d_deg
    if south <= -90.0 or north >= 90.0 or d >= math.pi / 2:
        return max(south, -90.0), _WORLD[1], min(north, 90.0), _WORLD[3]
    ratio = math.sin(d) / math.cos(math.radians(lat))
    if ratio >= 1.0:
        return south, _WORLD[1], north, _WORLD[3]
    half = math.degrees(math.asin(ratio)) * _MARGIN
    west, east = lng - half, lng + half
    if west < -180.0 or east > 180.0:
        return south, _WORLD[1], north, _WORLD[3]
    return south, west, north, east
