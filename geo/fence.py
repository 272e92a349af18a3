"""Fences: the geometry the index knows about, free of any venue business fields."""

from __future__ import annotations

from dataclasses import dataclass

from shapely.geometry.base import BaseGeometry

from geo.errors import GeoError
from geo.latlng import LatLng


@dataclass(frozen=True, slots=True)
class Fence:
    """One geofence: a polygonal area or a circle, identified by ``fence_id``.

    Exactly one form is given:

    - ``shape``: a shapely Polygon or MultiPolygon (holes allowed) in lon/lat degrees
      (x=lng, y=lat), already valid and split at the antimeridian;
    - ``center`` + ``radius_m``: a circle; a point is inside when its great-circle
      distance to ``center`` is at most ``radius_m`` (see ``geo.distance``).
    """

    fence_id: str
    shape: BaseGeometry | None = None
    center: LatLng | None = None
    radius_m: float | None = None

    def __post_init__(self) -> None:
        is_circle = self.center is not None and self.radius_m is not None
        if (self.shape is None) == (not is_circle):
            raise GeoError(
                f"fence {self.fence_id!r}: give either shape, or center and radius_m"
            )
        if self.shape is not None and self.shape.geom_type not in {"Polygon", "MultiPolygon"}:
            raise GeoError(
                f"fence {self.fence_id!r}: shape must be a Polygon or MultiPolygon, "
                f"not {self.shape.geom_type}"
            )
        if self.shape is not None and self.shape.is_empty:
            raise GeoError(f"fence {self.fence_id!r}: shape is empty")
        if self.radius_m is not None and not self.radius_m > 0:
            raise GeoError(f"fence {self.fence_id!r}: radius_m must be positive")

    @property
    def is_circle(self) -> bool:
        return self.shape is None
