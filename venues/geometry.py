"""Checking a venue's GeoJSON geometry and turning it into a fence shape.

Positions are GeoJSON ``[lng, lat]`` degrees (WGS84); a third value (altitude) is
ignored. Accepted forms: Polygon, MultiPolygon (holes allowed), and Point with
``properties.radius_m`` (a circle, kept as a circle: the geo index handles circles
natively). Areas and distances are geodesic on the WGS84 ellipsoid.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Geod
from shapely.affinity import translate
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from geo.latlng import LatLng
from venues.limits import METRES_PER_DEGREE, SIMPLIFY_INPUT_FACTOR, VenueLimits
from venues.problems import Code, Findings
from venues.values import is_non_finite, is_number, show, type_name

MIN_RADIUS_M = 10.0
"""Smallest circle: below GPS accuracy (typically 5-30 m) a circle cannot be told apart."""

MAX_RADIUS_M = 10_000.0
"""Largest circle: a 10 km radius is a district, not a venue; bigger is most likely a unit
mistake (km given as m)."""

DEFAULT_MAX_AREA_KM2 = 50.0
"""Largest polygon area by default: large airports reach ~30 km²; above 50 km² a venue
is most likely swapped axes or a wrong CRS. Configurable per load."""

_GEOD = Geod(ellps="WGS84")
_ANTIMERIDIAN_JUMP_DEG = 180.0
"""Two consecutive positions whose longitudes differ by more than half the globe are
read as crossing the antimeridian (the short way round), as RFC 7946 §3.1.9 intends."""

_REASON = re.compile(r"^(?P<what>[^\[]*)(?:\[(?P<x>\S+) (?P<y>\S+)\])?")

_Ring = list[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class CheckedGeometry:
    """A geometry that passed its checks: exactly one of ``shape`` or (``center``,
    ``radius_m``) is set; ``repaired`` says make_valid changed it."""

    shape: Polygon | MultiPolygon | None
    center: LatLng | None
    radius_m: float | None
    repaired: bool = False


def geodesic_area_m2(shape: BaseGeometry) -> float:
    """Area of a lon/lat Polygon or MultiPolygon on the WGS84 ellipsoid, in m²."""
    area, _ = _GEOD.geometry_area_perimeter(shape)
    return abs(float(area))


def circle_polygon(center: LatLng, radius_m: float, segments: int = 64) -> Polygon | MultiPolygon:
    """A geodesic circle as a ``segments``-gon in lon/lat, split at the antimeridian.

    The vertices lie on the circle, so the polygon is slightly smaller than it
    (0.16 % of the area at 64 segments); good enough for containment checks and maps.
    """
    azimuths = np.linspace(0.0, 360.0, segments, endpoint=False)
    lngs, lats, _ = _GEOD.fwd(
        np.full(segments, center.lng), np.full(segments, center.lat), azimuths,
        np.full(segments, radius_m),
    )
    ring = [(float(x), float(y)) for x, y in zip(lngs, lats, strict=True)]
    ring.append(ring[0])
    return _split_at_antimeridian(Polygon(_unwrap(ring)))


def check_geometry(
    geometry: object,
    radius_m: object,
    findings: Findings,
    *,
    repair: bool,
    max_area_km2: float,
    limits: VenueLimits | None = None,
) -> CheckedGeometry | None:
    """Check one feature's ``geometry`` (and ``properties.radius_m`` for a Point).

    Problems go to ``findings``, and ``findings.at`` is set to the first usable
    position (for map markers); returns ``None`` when the geometry cannot be used.
    ``limits`` caps the vertices (counted before any shape is built, so an oversized
    geometry costs a count, not a build) and may simplify. Pure: no IO.
    """
    limits = limits or VenueLimits()
    errors_before = findings.error_count()
    if geometry is None:
        findings.error("geometry", Code.MISSING_GEOMETRY, "the feature has no geometry")
        return None
    if not isinstance(geometry, Mapping):
        findings.error(
            "geometry", Code.INVALID_TYPE,
            f"geometry must be a GeoJSON geometry object, not {type_name(geometry)}",
        )
        return None
    kind = geometry.get("type")
    if kind not in ("Point", "Polygon", "MultiPolygon"):
        what = repr(kind) if isinstance(kind, str) else f"a geometry whose type is {show(kind)}"
        findings.error(
            "geometry.type", Code.UNSUPPORTED_GEOMETRY,
            f"{what} cannot be a venue: use a Polygon, a MultiPolygon, "
            "or a Point with properties.radius_m",
        )
        return None
    coords = geometry.get("coordinates")
    if coords is None or (isinstance(coords, list | tuple) and len(coords) == 0):
        findings.error("geometry.coordinates", Code.EMPTY_GEOMETRY, f"the {kind} is empty")
        return None
    if kind == "Point":
        return _check_circle(coords, radius_m, findings)
    if radius_m is not None:
        findings.warning(
            "properties.radius_m", Code.RADIUS_IGNORED,
            f"radius_m is only used with a Point; ignored for a {kind}",
        )
    vertices = _raw_vertices(kind, coords)
    if vertices > limits.max_vertices and (
            limits.simplify_m is None
            or vertices > limits.max_vertices * SIMPLIFY_INPUT_FACTOR):
        findings.error(
            "geometry", Code.TOO_MANY_VERTICES,
            f"the {kind} has {vertices:,} vertices, more than the limit of "
            f"{limits.max_vertices:,}" + ("" if limits.simplify_m is not None else
                                          "; simplify it, or send it with simplify=true"),
        )
        return None
    if kind == "Polygon":
        polygons = [_polygon_rings(coords, "geometry.coordinates", findings)]
    else:
        if not isinstance(coords, list | tuple):
            findings.error(
                "geometry.coordinates", Code.INVALID_TYPE,
                f"MultiPolygon coordinates must be an array of polygons, not {type_name(coords)}",
            )
            return None
        polygons = [
            _polygon_rings(part, f"geometry.coordinates[{i}]", findings)
            for i, part in enumerate(coords)
        ]
    if any(p is None for p in polygons) or findings.error_count() > errors_before:
        return None
    checked = _check_polygons(
        [p for p in polygons if p is not None], kind, findings,
        repair=repair, max_area_km2=max_area_km2,
    )
    if checked is None or checked.shape is None:
        return checked
    return _within_vertex_limit(checked, vertices, findings, limits)


def _raw_vertices(kind: str, coords: object) -> int:
    """Positions in a Polygon's or MultiPolygon's coordinate arrays, without looking at
    them (malformed arrays are reported by the checks that follow)."""
    parts = [coords] if kind == "Polygon" else coords
    total = 0
    if isinstance(parts, list | tuple):
        for part in parts:
            if isinstance(part, list | tuple):
                total += sum(len(ring) for ring in part if isinstance(ring, list | tuple))
    return total


def _within_vertex_limit(
    checked: CheckedGeometry, vertices: int, findings: Findings, limits: VenueLimits
) -> CheckedGeometry | None:
    """``checked`` if it has at most ``limits.max_vertices`` vertices, else simplified
    within ``limits.simplify_m`` (a warning) if that is enough, else ``None``."""
    assert checked.shape is not None
    count = int(shapely.get_num_coordinates(checked.shape))
    if count <= limits.max_vertices:
        return checked
    if limits.simplify_m is None:  # repair or splitting added vertices
        findings.error("geometry", Code.TOO_MANY_VERTICES,
                       f"the geometry has {count:,} vertices, more than the limit of "
                       f"{limits.max_vertices:,}")
        return None
    tolerance_deg = limits.simplify_m / METRES_PER_DEGREE
    simpler = polygonal_part(shapely.simplify(checked.shape, tolerance_deg,
                                              preserve_topology=True))
    left = 0 if simpler is None else int(shapely.get_num_coordinates(simpler))
    if simpler is None or left > limits.max_vertices:
        findings.error(
            "geometry", Code.TOO_MANY_VERTICES,
            f"the geometry has {vertices:,} vertices and still {left:,} when simplified "
            f"within {limits.simplify_m:g} m, more than the limit of {limits.max_vertices:,}")
        return None
    findings.warning(
        "geometry", Code.SIMPLIFIED,
        f"simplified from {vertices:,} to {left:,} vertices; no point moved more than "
        f"{limits.simplify_m:g} m")
    return CheckedGeometry(simpler, None, None, repaired=checked.repaired)


def _check_circle(coords: object, radius_m: object, findings: Findings) -> CheckedGeometry | None:
    position = _position(coords, "geometry.coordinates", findings)
    field = "properties.radius_m"
    radius: float | None = None
    number = float(radius_m) if isinstance(radius_m, int | float) and is_number(radius_m) \
        and not is_non_finite(radius_m) else None
    if radius_m is None:
        findings.error(
            field, Code.MISSING_RADIUS,
            "a Point venue is a circle and needs radius_m (metres, 10 .. 10000)",
        )
    elif is_non_finite(radius_m):
        findings.error(field, Code.NON_FINITE_NUMBER,
                       f"radius {show(radius_m)} is not a finite number")
    elif number is None:
        findings.error(
            field, Code.INVALID_TYPE,
            f"radius_m must be a number of metres, not {type_name(radius_m)} {show(radius_m)}",
        )
    elif not MIN_RADIUS_M <= number <= MAX_RADIUS_M:
        findings.error(field, Code.RADIUS_OUT_OF_RANGE,
                       f"radius {number:g} m is outside 10 m .. 10 km")
    else:
        radius = number
    if position is None:
        return None
    center = LatLng(position[1], position[0])
    findings.at = center
    if radius is None:
        return None
    return CheckedGeometry(None, center, radius)


def _position(value: object, field: str, findings: Findings) -> tuple[float, float] | None:
    """One GeoJSON position as (lng, lat), or ``None`` after reporting why not."""
    if not isinstance(value, list | tuple) or len(value) < 2:
        findings.error(
            field, Code.INVALID_TYPE,
            f"a position must be an array [lng, lat], not {type_name(value)} {show(value)}",
        )
        return None
    lng, lat = value[0], value[1]
    for axis, number in (("longitude", lng), ("latitude", lat)):
        if is_non_finite(number):
            findings.error(field, Code.NON_FINITE_NUMBER,
                           f"{axis} {show(number)} is not a finite number")
            return None
        if not is_number(number):
            findings.error(
                field, Code.INVALID_TYPE,
                f"{axis} must be a number, not {type_name(number)} {show(number)}",
            )
            return None
    lng_f, lat_f = float(lng), float(lat)
    if not -90.0 <= lat_f <= 90.0 or not -180.0 <= lng_f <= 180.0:
        axis, number, limit = (
            ("latitude", lat_f, 90) if not -90.0 <= lat_f <= 90.0 else ("longitude", lng_f, 180)
        )
        hint = ""
        if -90.0 <= lng_f <= 90.0 and -180.0 <= lat_f <= 180.0:
            hint = " (latitude and longitude swapped? GeoJSON positions are [lng, lat])"
        findings.error(
            field, Code.COORDINATE_OUT_OF_RANGE,
            f"{axis} {number:.10g} is outside [-{limit}, {limit}]{hint}",
        )
        return None
    return lng_f, lat_f


def _polygon_rings(value: object, field: str, findings: Findings) -> list[_Ring] | None:
    """A Polygon's rings (shell first) as position lists, or ``None`` after reporting."""
    if not isinstance(value, list | tuple):
        findings.error(
            field, Code.INVALID_TYPE,
            f"Polygon coordinates must be an array of rings, not {type_name(value)}",
        )
        return None
    if len(value) == 0:
        findings.error(field, Code.EMPTY_GEOMETRY, "the polygon has no rings")
        return None
    rings: list[_Ring] = []
    ok = True
    for r, raw_ring in enumerate(value):
        ring_field = f"{field}[{r}]"
        if not isinstance(raw_ring, list | tuple):
            findings.error(
                ring_field, Code.INVALID_TYPE,
                f"a ring must be an array of positions, not {type_name(raw_ring)}",
            )
            ok = False
            continue
        ring: _Ring = []
        for p, raw in enumerate(raw_ring):
            position = _position(raw, f"{ring_field}[{p}]", findings)
            if position is None:
                # One bad position per ring is enough to point at; a broken export
                # would otherwise drown the report in thousands of lines.
                ok = False
                break
            ring.append(position)
        else:
            if len(ring) < 4:
                findings.error(
                    ring_field, Code.RING_TOO_SHORT,
                    f"ring has {len(ring)} positions; a closed ring needs at least 4 "
                    "(the first repeated as the last)",
                )
                ok = False
            elif ring[0] != ring[-1]:
                findings.error(
                    ring_field, Code.UNCLOSED_RING,
                    f"ring is not closed: first position {list(ring[0])} differs from "
                    f"last {list(ring[-1])}",
                )
                ok = False
            rings.append(ring)
    return rings if ok else None


def _check_polygons(
    polygons: list[list[_Ring]],
    kind: str,
    findings: Findings,
    *,
    repair: bool,
    max_area_km2: float,
) -> CheckedGeometry | None:
    first = polygons[0][0][0]
    findings.at = LatLng(first[1], first[0])
    crosses = any(_crosses_antimeridian(ring) for rings in polygons for ring in rings)
    if crosses and any(_winds_around_pole(ring) for rings in polygons for ring in rings):
        findings.error(
            "geometry", Code.INVALID_GEOMETRY,
            "a ring goes all the way round the globe (around a pole); venues cannot",
        )
        return None
    unwrapped = [_unwrapped_polygon(rings) for rings in polygons]
    shape: BaseGeometry = unwrapped[0] if kind == "Polygon" else MultiPolygon(unwrapped)
    repaired = False
    reason = shapely.is_valid_reason(shape)
    if reason != "Valid Geometry":
        code, message, where = _explain_invalid(str(reason))
        if where is not None:
            findings.at = where
        field = "geometry"
        if not repair:
            findings.error(field, code, message + " (--repair fixes it with make_valid)")
            return None
        fixed = polygonal_part(shapely.make_valid(shape))
        if fixed is None:
            findings.error(field, code, message + "; make_valid left no area to keep")
            return None
        findings.warning(
            field, code,
            f"{message}; repaired with make_valid: area {geodesic_area_m2(shape):,.0f} m² "
            f"-> {geodesic_area_m2(fixed):,.0f} m²",
        )
        shape, repaired = fixed, True
    if crosses:
        shape = _split_at_antimeridian(shape)
        findings.warning(
            "geometry", Code.ANTIMERIDIAN_SPLIT,
            f"crosses the antimeridian; split at ±180° into {len(shapely.get_parts(shape))} parts",
        )
    area_m2 = geodesic_area_m2(shape)
    if area_m2 <= 0.0:
        findings.error("geometry", Code.DEGENERATE_POLYGON, "the polygon encloses no area")
        return None
    if area_m2 > max_area_km2 * 1e6:
        findings.error(
            "geometry", Code.AREA_TOO_LARGE,
            f"area {area_m2 / 1e6:,.1f} km² is above the {max_area_km2:g} km² limit "
            "(wrong CRS or swapped axes? raise it with --max-area-km2)",
        )
        return None
    polygonal = polygonal_part(shape)
    assert polygonal is not None  # area > 0 was just checked
    return CheckedGeometry(polygonal, None, None, repaired=repaired)


def _explain_invalid(reason: str) -> tuple[Code, str, LatLng | None]:
    """Map GEOS's ``is_valid_reason`` text (e.g. ``Self-intersection[x y]``) to a code."""
    match = _REASON.match(reason)
    what = match.group("what").strip() if match else reason
    where: LatLng | None = None
    if match and match.group("x") is not None:
        x, y = float(match.group("x")), float(match.group("y"))
        x = (x + 180.0) % 360.0 - 180.0 if abs(x) > 180.0 else x  # unwrapped space
        if math.isfinite(x) and math.isfinite(y) and -90.0 <= y <= 90.0:
            where = LatLng(y, x)
    near = f" near lat {where.lat:.6f}, lng {where.lng:.6f}" if where else ""
    if what in ("Self-intersection", "Ring Self-intersection"):
        return Code.SELF_INTERSECTION, f"the boundary crosses itself{near}", where
    if what == "Hole lies outside shell":
        return Code.HOLE_OUTSIDE_SHELL, f"a hole lies outside its polygon's shell{near}", where
    return Code.INVALID_GEOMETRY, f"invalid polygon: {what}{near}", where


def polygonal_part(geom: BaseGeometry) -> Polygon | MultiPolygon | None:
    """The polygons inside ``geom`` (make_valid may add lines and points), or ``None``."""
    parts = [
        p for p in shapely.get_parts(geom)
        if isinstance(p, Polygon | MultiPolygon) and not p.is_empty and p.area > 0.0
    ]
    polygons = [q for p in parts for q in shapely.get_parts(p)]
    if not polygons:
        return None
    return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)


def _crosses_antimeridian(ring: _Ring) -> bool:
    return any(
        abs(b[0] - a[0]) > _ANTIMERIDIAN_JUMP_DEG for a, b in itertools.pairwise(ring)
    )


def _winds_around_pole(ring: _Ring) -> bool:
    """After unwrapping, a ring that ends a whole turn away from its start circles a pole."""
    unwrapped = _unwrap(ring)
    return abs(unwrapped[-1][0] - unwrapped[0][0]) > 1e-9


def _unwrap(ring: _Ring) -> _Ring:
    """Make longitudes continuous: each jump of more than 180° is taken the short way."""
    out = [ring[0]]
    offset = 0.0
    for (prev_x, _), (x, y) in itertools.pairwise(ring):
        step = x - prev_x
        if step > _ANTIMERIDIAN_JUMP_DEG:
            offset -= 360.0
        elif step < -_ANTIMERIDIAN_JUMP_DEG:
            offset += 360.0
        out.append((x + offset, y))
    return out


def _unwrapped_polygon(rings: list[_Ring]) -> Polygon:
    """A polygon with continuous longitudes, shell shifted into [-180, 540), and each
    hole shifted by whole turns to sit over the shell."""
    shell = _unwrap(rings[0])
    min_x = min(x for x, _ in shell)
    if min_x < -180.0:
        shell = [(x + 360.0, y) for x, y in shell]
    shell_mid = (min(x for x, _ in shell) + max(x for x, _ in shell)) / 2.0
    holes = []
    for ring in rings[1:]:
        hole = _unwrap(ring)
        turns = round((shell_mid - hole[0][0]) / 360.0)
        holes.append([(x + 360.0 * turns, y) for x, y in hole])
    return Polygon(shell, holes)


def _split_at_antimeridian(shape: BaseGeometry) -> Polygon | MultiPolygon:
    """Cut a shape drawn in [-180, 540) longitudes into parts within [-180, 180]."""
    west = shape.intersection(box(-180.0, -90.0, 180.0, 90.0))
    east = translate(shape.intersection(box(180.0, -90.0, 540.0, 90.0)), xoff=-360.0)
    polygons = [
        p for half in (west, east) if (part := polygonal_part(half)) is not None
        for p in shapely.get_parts(part)
    ]
    return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)


def representative(shape: BaseGeometry) -> LatLng:
    """A position inside ``shape`` (for labels and markers)."""
    point = shape.representative_point()
    return LatLng(float(point.y), float(point.x))


__all__ = [
    "DEFAULT_MAX_AREA_KM2",
    "MAX_RADIUS_M",
    "MIN_RADIUS_M",
    "CheckedGeometry",
    "check_geometry",
    "circle_polygon",
    "geodesic_area_m2",
    "polygonal_part",
    "representative",
]
