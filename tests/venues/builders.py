"""Small builders for venue features with real coordinates (central Helsinki, Beijing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Helsinki Central railway station square: a 110 m x 110 m box.
HELSINKI_BOX = (24.9410, 60.1700, 24.9430, 60.1710)
# Beijing, Tiananmen Square.
TIANANMEN = (116.3975, 39.9055)


def box_ring(west: float, south: float, east: float, north: float) -> list[list[float]]:
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


def polygon(*rings: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [list(r) for r in rings]}


def point(lng: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lng, lat]}


def feature(
    vid: str | None, geometry: dict[str, Any] | None = None, **props: Any
) -> dict[str, Any]:
    """A Feature with ``properties.id`` = ``vid``; geometry defaults to the Helsinki box."""
    properties: dict[str, Any] = {"name": f"Venue {vid}", **props}
    if vid is not None:
        properties["id"] = vid
    return {
        "type": "Feature",
        "properties": properties,
        "geometry": geometry if geometry is not None else polygon(box_ring(*HELSINKI_BOX)),
    }


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def write_json(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path
