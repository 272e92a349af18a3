"""Outlines for a validation report's map: each feature's geometry as read from the file,
valid or not, small enough to draw in a browser.

Pure. The outline is the file's own geometry (a bow-tie stays a bow-tie, so the map
shows what is wrong), with coordinates rounded to 6 decimals (about 0.1 m), and
simplified when it has more than ``each`` positions. A report carries at most ``total``
positions: features with problems get their outlines first, then the rest in file
order, and what does not fit is left out, as is a geometry that cannot be read at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.errors import ShapelyError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

MAX_OUTLINE_POSITIONS = 1_000
"""Positions per outline: a venue drawn at city scale needs no more."""
MAX_REPORT_POSITIONS = 50_000
"""Positions per report (about 1 MB of JSON): a browser draws that at once."""
_UNREADABLE = (ShapelyError, ValueError, TypeError, KeyError, AttributeError, IndexError)
"""What shapely raises for a malformed GeoJSON geometry: nothing to draw."""
_DECIMALS = 6
_SIMPLIFY_TRIES = 12


@dataclass(frozen=True, slots=True)
class Outline:
    """One feature's outline: ``geometry`` as GeoJSON (longitude, latitude),
    ``radius_m`` for a circle venue (a Point with a radius), ``simplified`` when the
    outline has fewer positions than the file."""

    feature_index: int
    geometry: dict[str, Any]
    radius_m: float | None
    simplified: bool


def feature_outlines(
    features: Sequence[object],
    flagged: Iterable[int] = (),
    *,
    each: int = MAX_OUTLINE_POSITIONS,
    total: int = MAX_REPORT_POSITIONS,
) -> tuple[Outline, ...]:
    """The outlines of ``features`` (GeoJSON-like Features), in file order; those at the
    ``flagged`` indexes (features with problems) are the first to get the budget."""
    first = [i for i in dict.fromkeys(flagged) if 0 <= i < len(features)]
    chosen = set(first)
    order = first + [i for i in range(len(features)) if i not in chosen]
    out: list[Outline] = []
    left = total
    for index in order:
        if left <= 0:
            break
        found = _outline(index, features[index], min(each, left))
        if found is not None:
            outline, positions = found
            left -= positions
            out.append(outline)
    return tuple(sorted(out, key=lambda o: o.feature_index))


def _outline(index: int, feature: object, each: int) -> tuple[Outline, int] | None:
    if not isinstance(feature, Mapping):
        return None
    geom = _geometry(feature.get("geometry"))
    if geom is None:
        return None
    simplified = False
    if shapely.get_num_coordinates(geom) > each:
        geom = _simplified(geom, each)
        simplified = True
        if geom is None:
            return None
    rounded = shapely.transform(geom, lambda xy: np.round(xy, _DECIMALS))
    mapping: dict[str, Any] = shapely.geometry.mapping(rounded)
    outline = Outline(index, _lists(mapping), _radius(feature, geom), simplified)
    return outline, int(shapely.get_num_coordinates(rounded))


def _geometry(raw: object) -> BaseGeometry | None:
    """The raw GeoJSON geometry as shapely reads it, or ``None`` when it cannot be read,
    is empty or holds coordinates that are not finite."""
    if not isinstance(raw, Mapping):
        return None
    try:
        geom = shape(raw)
    except _UNREADABLE:
        return None
    if geom.is_empty:
        return None
    coords = shapely.get_coordinates(geom)
    if not np.isfinite(coords).all():
        return None
    return geom


def _simplified(geom: BaseGeometry, each: int) -> BaseGeometry | None:
    """``geom`` simplified until it has at most ``each`` positions: the tolerance starts
    at 1/2000 of its extent and doubles; at worst its bounding box."""
    x0, y0, x1, y1 = geom.bounds
    tolerance = max(x1 - x0, y1 - y0, 1e-9) / 2000
    for _ in range(_SIMPLIFY_TRIES):
        candidate = shapely.simplify(geom, tolerance, preserve_topology=False)
        if not candidate.is_empty and shapely.get_num_coordinates(candidate) <= each:
            return candidate
        tolerance *= 2
    envelope = geom.envelope
    return envelope if shapely.get_num_coordinates(envelope) <= each else None


def _radius(feature: Mapping[str, Any], geom: BaseGeometry) -> float | None:
    props = feature.get("properties")
    if geom.geom_type != "Point" or not isinstance(props, Mapping):
        return None
    radius = props.get("radius_m")
    if isinstance(radius, int | float) and not isinstance(radius, bool) \
            and math.isfinite(radius) and radius > 0:
        return float(radius)
    return None


def _lists(value: Any) -> Any:
    """Tuples (shapely's mapping) as lists, for JSON."""
    if isinstance(value, tuple | list):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value
