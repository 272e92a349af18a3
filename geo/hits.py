"""The result of a batch geofence query: plain numpy columns, no per-point objects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class IndexHits:
    """What :meth:`geo.index.GeofenceIndex.query` found for ``n`` points.

    ``cell`` has one entry per point; the other arrays describe ``k`` (point, fence)
    pairs, sorted by point, then fence position:

    - every pair where the point is inside the fence (a point exactly on an edge
      counts as inside, as shapely's ``intersects``/``covers`` has it; a circle holds a
      point whose great-circle distance to the centre is at most ``radius_m``);
    - and every pair where the point is outside but no farther than ``near_m`` of that
      point from the fence's edge.

    ``edge_m`` is the signed distance from the point to the fence's edge in metres,
    positive inside, exact wherever ``|edge_m| <= near_m`` of that point, and NaN for a
    point deeper inside than its ``near_m`` (so "deeper than the band" needs no work).
    """

    cell: NDArray[np.uint64]
    point: NDArray[np.int64]
    fence: NDArray[np.int32]
    inside: NDArray[np.bool_]
    edge_m: NDArray[np.float64]

    @property
    def n_points(self) -> int:
        return int(self.cell.shape[0])

    @property
    def n_pairs(self) -> int:
        return int(self.point.shape[0])
