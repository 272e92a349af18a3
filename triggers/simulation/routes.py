"""The route grammar of generated trajectories, and its resolution into Go/Wait legs.

A route is a list of items, each a string (or the equivalent mapping):

================================  ==========================================================
``"60.1690,24.9410"``             a literal point (``lat,lng`` in degrees)
``venue:<sel>``                   the venue's representative point (inside it)
``edge:<sel>[~<m>]``              a point ``m`` metres inside the venue's edge (negative:
                                  outside; default 0), on the side facing the device's
                                  position (for a first item: ``approach_deg``)
``entrance[~<m>]``                ``m`` metres (default 50) outside the edge of the venue of
                                  the next item, on the side facing the device: walking in
                                  from there crosses the edge on the route
``near:<sel>~<m>``                a uniformly random point within ``m`` metres of the
                                  venue's representative point
``wait:<s>`` / ``wait:<lo>-<hi>`` stand still ``s`` seconds (or a uniform draw per user)
================================  ==========================================================

Any movement item may end in ``@<speed_mps>``: that leg's speed (``@25`` is a train).
The first movement item is where the device starts; waits before it are spent there.

``<sel>`` names a venue: ``<id>``; ``<id>|<id>|...`` (one drawn per user); or one
drawn among the enabled venues with ``kind=<kind>``, ``tag=<tag>`` or
``parent=<venue id>``. Draws use the user's own random stream, so a user's route does
not change when other users are added. Mapping forms: ``{point: [lat, lng]}``,
``{venue: sel}``, ``{edge: sel, inside_m: m}``, ``{entrance: true, outside_m: m}``,
``{near: sel, within_m: m}``, ``{wait_s: s}`` or ``{wait_s: [lo, hi]}``, each with an
optional ``speed_mps``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString

from geo.distance import frame_scales
from geo.latlng import LatLng
from triggers.simulation.errors import SimulationError
from triggers.trajectory import Go, Wait
from venues.geometry import representative
from venues.model import Venue

DEFAULT_ENTRANCE_M = 50.0
"""How far outside a venue ``entrance`` starts: beyond the 30 m exit margin, so the walk
in is a real crossing, and close enough that the ENTER follows within a minute."""
_RAY_M = 20_000.0
_SPEED = re.compile(r"^(?P<item>.*?)\s*@\s*(?P<speed>[0-9]+(?:\.[0-9]+)?)\s*$")
_POINT = re.compile(r"^\s*(-?[0-9]+(?:\.[0-9]+)?)\s*,\s*(-?[0-9]+(?:\.[0-9]+)?)\s*$")
_WAIT = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(?:\s*-\s*([0-9]+(?:\.[0-9]+)?))?$")
_MOVES = ("point", "venue", "edge", "entrance", "near")


@dataclass(frozen=True, slots=True)
class Leg:
    """One parsed route item (see the module docstring)."""

    kind: str
    """``point`` / ``venue`` / ``edge`` / ``entrance`` / ``near`` / ``wait``."""
    text: str
    point: LatLng | None = None
    selector: str | None = None
    metres: float = 0.0
    wait_s: tuple[float, float] = (0.0, 0.0)
    speed_mps: float | None = None


def parse_leg(value: Any) -> Leg:
    """A route item (string or mapping) as a :class:`Leg`; ``ValueError`` says what is
    expected (used as a pydantic validator, so the error carries the item's path)."""
    if isinstance(value, Leg):
        return value
    if isinstance(value, Mapping):
        return _parse_mapping(value)
    if not isinstance(value, str):
        raise ValueError(f"a route item is a string or a mapping, not {type(value).__name__}")
    text = value.strip()
    speed: float | None = None
    match = _SPEED.match(text)
    if match:
        text, speed = match["item"], float(match["speed"])
        if speed <= 0:
            raise ValueError("speed after @ must be > 0")
    leg = _parse_text(text, value)
    if speed is not None:
        if leg.kind == "wait":
            raise ValueError(f"{value!r}: a wait has no speed")
        leg = Leg(leg.kind, leg.text, leg.point, leg.selector, leg.metres, leg.wait_s, speed)
    return leg


def _parse_text(text: str, original: str) -> Leg:
    point = _POINT.match(text)
    if point:
        return Leg("point", original, point=_latlng(float(point[1]), float(point[2])))
    head, _, rest = text.partition(":")
    if text == "entrance" or text.startswith("entrance~"):
        metres = _metres(text.partition("~")[2], DEFAULT_ENTRANCE_M, original)
        return Leg("entrance", original, metres=metres)
    if head == "wait":
        match = _WAIT.match(rest.strip())
        if not match:
            raise ValueError(f"{original!r}: expected wait:<seconds> or wait:<lo>-<hi>")
        lo = float(match[1])
        hi = float(match[2]) if match[2] else lo
        if hi < lo:
            raise ValueError(f"{original!r}: the range must be low-high")
        return Leg("wait", original, wait_s=(lo, hi))
    if head in ("venue", "edge", "near"):
        selector, _, metres_text = rest.rpartition("~") if "~" in rest else (rest, "", "")
        if not selector.strip():
            raise ValueError(f"{original!r}: expected {head}:<venue id or selector>")
        if head == "venue" and metres_text:
            raise ValueError(f"{original!r}: venue: takes no ~metres (use edge: or near:)")
        if head == "near" and not metres_text:
            raise ValueError(f"{original!r}: expected near:<venue>~<metres>")
        metres = _metres(metres_text, 0.0, original)
        return Leg(head, original, selector=selector.strip(), metres=metres)
    raise ValueError(
        f"{original!r} is not a route item: expected 'lat,lng', venue:<id>, edge:<id>[~m], "
        "entrance[~m], near:<id>~m, wait:<seconds> or wait:<lo>-<hi> (movement items may "
        "end in @<speed_mps>)"
    )


def _parse_mapping(value: Mapping[str, Any]) -> Leg:
    keys = set(value) - {"speed_mps"}
    speed = value.get("speed_mps")
    if speed is not None and (not isinstance(speed, int | float) or speed <= 0):
        raise ValueError("speed_mps must be a number > 0")
    speed_f = None if speed is None else float(speed)
    text = repr(dict(value))

    def only(*allowed: str) -> None:
        extra = keys - set(allowed)
        if extra:
            raise ValueError(f"unexpected keys {sorted(extra)} in route item {text}")

    if "point" in keys:
        only("point")
        pair = value["point"]
        if not (isinstance(pair, Sequence) and len(pair) == 2
                and all(isinstance(x, int | float) for x in pair)):
            raise ValueError("point must be [lat, lng]")
        return Leg("point", text, point=_latlng(float(pair[0]), float(pair[1])),
                   speed_mps=speed_f)
    if "wait_s" in keys:
        only("wait_s")
        if speed is not None:
            raise ValueError("a wait has no speed")
        raw = value["wait_s"]
        pair = (raw, raw) if isinstance(raw, int | float) else raw
        if not (isinstance(pair, Sequence) and len(pair) == 2
                and all(isinstance(x, int | float) and x >= 0 for x in pair)
                and pair[0] <= pair[1]):
            raise ValueError("wait_s must be seconds >= 0 or [low, high]")
        return Leg("wait", text, wait_s=(float(pair[0]), float(pair[1])))
    for kind, metres_key, default in (("venue", None, 0.0), ("edge", "inside_m", 0.0),
                                      ("near", "within_m", None)):
        if kind in keys:
            only(kind, *([metres_key] if metres_key else []))
            selector = value[kind]
            if not isinstance(selector, str) or not selector.strip():
                raise ValueError(f"{kind} must be a venue id or selector")
            metres = value.get(metres_key, default) if metres_key else 0.0
            if not isinstance(metres, int | float):
                raise ValueError(f"{kind}: {metres_key} is required and must be a number")
            return Leg(kind, text, selector=selector.strip(), metres=float(metres),
                       speed_mps=speed_f)
    if "entrance" in keys:
        only("entrance", "outside_m")
        metres = value.get("outside_m", DEFAULT_ENTRANCE_M)
        if not isinstance(metres, int | float):
            raise ValueError("outside_m must be a number")
        return Leg("entrance", text, metres=float(metres), speed_mps=speed_f)
    raise ValueError(f"route item {text}: expected one of point, venue, edge, entrance, "
                     "near, wait_s")


def _latlng(lat: float, lng: float) -> LatLng:
    try:
        return LatLng(lat, lng)
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def _metres(text: str, default: float, original: str) -> float:
    if not text.strip():
        return default
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{original!r}: {text!r} after ~ is not metres") from None


# --------------------------------------------------------------------------- selection


def select(
    selector: str, venues: Mapping[str, Venue], cache: dict[str, list[Venue]] | None = None
) -> list[Venue]:
    """The venues a selector may pick, sorted by id (so a draw is reproducible);
    ``cache`` (selector → venues) saves the scan when many users share a route."""
    if cache is not None:
        hit = cache.get(selector)
        if hit is None:
            hit = cache[selector] = select(selector, venues)
        return hit
    for key in ("kind", "tag", "parent"):
        prefix = f"{key}="
        if selector.startswith(prefix):
            want = selector[len(prefix):]
            found = [
                v for v in venues.values() if v.enabled and (
                    (key == "kind" and str(v.kind) == want)
                    or (key == "tag" and want in v.tags)
                    or (key == "parent" and v.parent_id == want)
                )
            ]
            return sorted(found, key=lambda v: v.id)
    ids = selector.split("|") if "|" in selector and selector not in venues else [selector]
    return [venues[i] for i in ids if i in venues]


def check_legs(legs: Sequence[Leg], venues: Mapping[str, Venue], path: str) -> None:
    """Raise :class:`SimulationError` at the first item whose selector finds no venue,
    or an ``entrance`` with no venue item after it, or a route that never moves."""
    for i, leg in enumerate(legs):
        if leg.selector is not None:
            if "|" in leg.selector and leg.selector not in venues:
                missing = [s for s in leg.selector.split("|") if s not in venues]
                if missing:
                    raise SimulationError(f"{path}[{i}]", f"unknown venue(s) {missing}")
            if not select(leg.selector, venues):
                raise SimulationError(
                    f"{path}[{i}]",
                    f"{leg.text!r}: no venue {leg.selector!r} in the scenario's venues "
                    "(expected a venue id, id|id, kind=, tag= or parent=)",
                )
        if leg.kind == "entrance" and not any(
            later.selector is not None for later in legs[i + 1:]
        ):
            raise SimulationError(f"{path}[{i}]",
                                  "entrance needs a venue:/edge:/near: item after it")
    if not any(leg.kind in _MOVES for leg in legs):
        raise SimulationError(path, "a route needs at least one place (not only waits)")


# --------------------------------------------------------------------------- resolution


@dataclass(frozen=True, slots=True)
class Plan:
    """A resolved route: where the device starts and the legs it follows."""

    start: LatLng
    legs: tuple[Go | Wait, ...]


def resolve(
    legs: Sequence[Leg],
    venues: Mapping[str, Venue],
    rng: np.random.Generator,
    approach_deg: float,
    cache: dict[str, list[Venue]] | None = None,
) -> Plan:
    """Draw the random choices with ``rng`` and turn the items into Go/Wait legs.

    Assumes :func:`check_legs` passed. Venue choices are drawn first, in route order,
    then wait durations and near-points, so that ``entrance`` knows the next venue.
    """
    chosen: list[Venue | None] = []
    for leg in legs:
        if leg.selector is None:
            chosen.append(None)
            continue
        options = select(leg.selector, venues, cache)
        chosen.append(options[int(rng.integers(len(options)))] if len(options) > 1
                      else options[0])
    current: LatLng | None = None
    start: LatLng | None = None
    pending_waits: list[Wait] = []
    out: list[Go | Wait] = []
    for i, leg in enumerate(legs):
        if leg.kind == "wait":
            lo, hi = leg.wait_s
            wait = Wait(lo if hi == lo else float(rng.uniform(lo, hi)))
            (out if current is not None else pending_waits).append(wait)
            continue
        if leg.kind == "point":
            assert leg.point is not None
            target = leg.point
        elif leg.kind == "venue":
            target = _inside_point(_venue(chosen[i]))
        elif leg.kind == "near":
            target = _near(_venue(chosen[i]), leg.metres, rng)
        elif leg.kind == "edge":
            target = edge_point(_venue(chosen[i]), leg.metres, current, approach_deg)
        else:  # entrance: outside the next venue item's venue
            nxt = next(v for v in chosen[i + 1:] if v is not None)
            target = edge_point(nxt, -leg.metres, current, approach_deg)
        if current is None:
            start = current = target
            out.extend(pending_waits)
            continue
        out.append(Go(target, leg.speed_mps))
        current = target
    assert start is not None
    return Plan(start, tuple(out))


def _venue(venue: Venue | None) -> Venue:
    assert venue is not None
    return venue


def _inside_point(venue: Venue) -> LatLng:
    if venue.center is not None:
        return venue.center
    assert venue.shape is not None
    return representative(venue.shape)


def _near(venue: Venue, within_m: float, rng: np.random.Generator) -> LatLng:
    centre = _inside_point(venue)
    radius = within_m * math.sqrt(float(rng.random()))
    angle = float(rng.uniform(0.0, 2 * math.pi))
    return _offset(centre, radius * math.sin(angle), radius * math.cos(angle))


def _offset(origin: LatLng, east_m: float, north_m: float) -> LatLng:
    kx, ky = (float(k) for k in frame_scales(origin.lat))
    lng = (origin.lng + east_m / kx + 180.0) % 360.0 - 180.0
    return LatLng(max(-90.0, min(90.0, origin.lat + north_m / ky)), lng)


def edge_point(
    venue: Venue, inside_m: float, facing: LatLng | None, approach_deg: float
) -> LatLng:
    """A point ``inside_m`` metres inside ``venue``'s edge (negative: outside).

    The edge point is where the ray from the venue's representative point towards
    ``facing`` (or, with none, along the compass bearing ``approach_deg``) leaves the
    venue for the last time; the result lies on that ray.
    """
    centre = _inside_point(venue)
    kx, ky = (float(k) for k in frame_scales(centre.lat))
    if facing is not None and (facing.lat, facing.lng) != (centre.lat, centre.lng):
        ux = ((facing.lng - centre.lng + 180.0) % 360.0 - 180.0) * kx
        uy = (facing.lat - centre.lat) * ky
        norm = math.hypot(ux, uy)
        ux, uy = ux / norm, uy / norm
    else:
        rad = math.radians(approach_deg)
        ux, uy = math.sin(rad), math.cos(rad)
    if venue.shape is None:
        assert venue.radius_m is not None
        reach = venue.radius_m
    else:
        local = shapely.transform(
            venue.shape,
            lambda xy: np.column_stack(
                ((xy[:, 0] - centre.lng) * kx, (xy[:, 1] - centre.lat) * ky)
            ),
        )
        ray = LineString([(0.0, 0.0), (ux * _RAY_M, uy * _RAY_M)])
        crossing = local.boundary.intersection(ray)
        points = shapely.get_coordinates(crossing)
        reach = float(max((px * ux + py * uy for px, py in points), default=0.0))
    distance = reach - inside_m
    return _offset(centre, ux * distance, uy * distance)
