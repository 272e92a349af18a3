"""Writing venues back out as GeoJSON (RFC 7946), the inverse of validation."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.base import BaseGeometry

from venues.model import Venue


def venue_to_feature(venue: Venue) -> dict[str, Any]:
    """One venue as a GeoJSON Feature: a circle as a Point with ``radius_m``.

    Fields at their default (``dwell_s`` 300, ``enabled`` true, empty ``tags`` /
    ``metadata``) are written anyway, so the file reads the same to a person.
    """
    props: dict[str, Any] = {
        "id": venue.id,
        "name": venue.name,
        "kind": venue.kind.value,
        "tags": list(venue.tags),
        "parent_id": venue.parent_id,
        "dwell_s": venue.dwell_s,
        "opening_hours": venue.opening_hours,
        "timezone": venue.timezone,
        "metadata": venue.metadata,
        "enabled": venue.enabled,
    }
    if venue.shape is not None:
        geometry = _geometry(venue.shape)
    else:
        assert venue.center is not None and venue.radius_m is not None
        geometry = {"type": "Point", "coordinates": [venue.center.lng, venue.center.lat]}
        props["radius_m"] = venue.radius_m
    return {"type": "Feature", "id": venue.id, "properties": props, "geometry": geometry}


def to_feature_collection(
    venues: Iterable[Venue], *, attribution: str | None = None
) -> dict[str, Any]:
    """Venues as a GeoJSON FeatureCollection object (``json.dumps`` it to write a file)."""
    collection: dict[str, Any] = {"type": "FeatureCollection"}
    if attribution:
        collection["attribution"] = attribution
    collection["features"] = [venue_to_feature(v) for v in venues]
    return collection


def _geometry(shape: BaseGeometry) -> dict[str, Any]:
    """A Polygon or MultiPolygon as GeoJSON with list coordinates: what
    ``mapping()`` gives with its tuples made lists, built from numpy arrays (a tenth of
    the Python objects for an outline of thousands of vertices)."""
    if isinstance(shape, Polygon):
        return {"type": "Polygon", "coordinates": _rings(shape)}
    if isinstance(shape, MultiPolygon):
        return {"type": "MultiPolygon", "coordinates": [_rings(p) for p in shape.geoms]}
    return dict(_lists(mapping(shape)))


def _rings(polygon: Polygon) -> list[list[list[float]]]:
    rings = [polygon.exterior, *polygon.interiors]
    return [np.asarray(ring.coords)[:, :2].tolist() for ring in rings]


def _lists(value: Any) -> Any:
    """shapely's mapping() uses tuples; JSON and equality checks want lists."""
    if isinstance(value, tuple | list):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value
