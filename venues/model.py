"""The venue model: a place, its geofence (a polygon or a circle) and what campaigns read."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shapely.geometry.base import BaseGeometry

from geo.fence import Fence
from geo.latlng import LatLng

DEFAULT_DWELL_S = 300
"""Dwell threshold when a venue names none: five minutes separates a visit from a walk-by."""


class VenueKind(StrEnum):
    MALL = "mall"
    TRANSIT_STATION = "transit_station"
    AIRPORT = "airport"
    STADIUM = "stadium"
    STORE = "store"
    CAMPUS = "campus"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Venue:
    """A venue and its geofence.

    Geometry is either ``shape`` (Polygon / MultiPolygon with holes, lon/lat degrees,
    valid, split at the antimeridian) or ``center`` + ``radius_m`` (a circle).
    """

    id: str
    name: str
    kind: VenueKind
    shape: BaseGeometry | None = None
    center: LatLng | None = None
    radius_m: float | None = None
    tags: tuple[str, ...] = ()
    parent_id: str | None = None
    dwell_s: int = DEFAULT_DWELL_S
    opening_hours: str | None = None
    timezone: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True

    def fence(self) -> Fence:
        """The geometry as the geo layer's :class:`Fence`, keyed by the venue id."""
        return Fence(self.id, shape=self.shape, center=self.center, radius_m=self.radius_m)
