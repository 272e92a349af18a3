"""The one coordinate type of the project."""

from __future__ import annotations

import math
from dataclasses import dataclass

from geo.errors import GeoError


@dataclass(frozen=True, slots=True)
class LatLng:
    """A WGS84 position in degrees: ``lat`` in [-90, 90], ``lng`` in [-180, 180].

    Construction validates the range and rejects NaN/inf so that a bad coordinate is
    caught where it enters, not deep inside an index query.
    """

    lat: float
    lng: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lat) and -90.0 <= self.lat <= 90.0):
            raise GeoError(f"latitude {self.lat!r} is outside [-90, 90]")
        if not (math.isfinite(self.lng) and -180.0 <= self.lng <= 180.0):
            raise GeoError(f"longitude {self.lng!r} is outside [-180, 180]")
