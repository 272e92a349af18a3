"""Small builders for presence tests: pings, walks, circle worlds, Helsinki venues."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from shapely.geometry import Point, Polygon, shape

from geo.distance import frame_scales, haversine_m
from geo.hits import IndexHits
from geo.index import GeofenceIndex
from geo.latlng import LatLng
from tests.conftest import HELSINKI_VENUES
from triggers.pings import PingBatch
from triggers.presence import process_batch
from triggers.presence_events import PresenceEvent
from triggers.presence_policy import PresencePolicy
from triggers.presence_state import PresenceState, new_state
from triggers.trajectory import Go, TrajectorySpec, Wait
from venues import Venue, load_venues

T0 = 1_764_320_400.0  # 2025-11-28T09:00:00Z: a Friday morning in Helsinki
FORUM = "osm:way/289767497"  # Forum mall, Mannerheimintie (© OpenStreetMap contributors)


@dataclass(frozen=True)
class Ping:
    user_id: str
    ts: float
    lat: float
    lng: float
    accuracy_m: float = 10.0
    mock: bool = False


def ping(ts: float, where: LatLng, *, user: str = "u1", accuracy_m: float = 10.0,
         mock: bool = False) -> Ping:
    return Ping(user, T0 + ts, where.lat, where.lng, accuracy_m, mock)


def batch(pings: Sequence[Ping]) -> PingBatch:
    return PingBatch.from_columns(
        np.array([p.user_id for p in pings], dtype=str),
        [p.ts for p in pings], [p.lat for p in pings], [p.lng for p in pings],
        accuracy_m=[p.accuracy_m for p in pings], mock=[p.mock for p in pings],
    )


def run(index: object, pings: Sequence[Ping], *, now: float | None = None,
        policy: PresencePolicy | None = None, state: PresenceState | None = None,
        ) -> tuple[PresenceState, list[PresenceEvent]]:
    """One batch at ``now`` (default: the last ping time)."""
    st = new_state() if state is None else state
    when = max(p.ts for p in pings) if now is None else T0 + now
    return process_batch(st, index, batch(pings), policy or PresencePolicy(), when)  # type: ignore[arg-type]


def stream(index: object, pings: Sequence[Ping], *, policy: PresencePolicy | None = None,
           ) -> list[PresenceEvent]:
    """Ping by ping, each processed at its own ts: a live device."""
    st = new_state()
    out: list[PresenceEvent] = []
    for p in sorted(pings, key=lambda p: p.ts):
        st, ev = process_batch(st, index, batch([p]), policy or PresencePolicy(), p.ts)  # type: ignore[arg-type]
        out += ev
    return out


def kinds(events: Iterable[PresenceEvent]) -> list[str]:
    return [f"{e.kind.value}:{e.venue_id}" for e in events]


# --------------------------------------------------------------------------- a circle world


class CircleIndex:
    """A tiny exact stand-in for GeofenceIndex over circle fences (unit tests)."""

    def __init__(self, circles: dict[str, tuple[LatLng, float]], halo_m: float = 200.0) -> None:
        self.fence_ids = tuple(circles)
        self._c = list(circles.values())
        self.halo_m = halo_m

    def query(self, lat: ArrayLike, lng: ArrayLike,
              near_m: float | NDArray[np.float64] | None = None) -> IndexHits:
        lat_a = np.asarray(lat, dtype=np.float64)
        lng_a = np.asarray(lng, dtype=np.float64)
        n = lat_a.shape[0]
        near = np.clip(np.broadcast_to(np.asarray(0.0 if near_m is None else near_m), (n,)),
                       0.0, self.halo_m)
        pts, fences, inside, edges = [], [], [], []
        for i in range(n):
            for f, (c, r) in enumerate(self._c):
                d = r - float(haversine_m(lat_a[i], lng_a[i], c.lat, c.lng))
                if d >= 0 or -d <= near[i]:
                    pts.append(i)
                    fences.append(f)
                    inside.append(d >= 0)
                    edges.append(d if abs(d) <= near[i] else math.nan)
        return IndexHits(np.zeros(n, np.uint64), np.array(pts, np.int64),
                         np.array(fences, np.int32), np.array(inside, np.bool_),
                         np.array(edges, np.float64))


CENTER = LatLng(60.1690, 24.9380)


def offset(origin: LatLng, east_m: float, north_m: float) -> LatLng:
    kx, ky = frame_scales(origin.lat)
    return LatLng(origin.lat + north_m / float(ky), origin.lng + east_m / float(kx))


# --------------------------------------------------------------------------- Helsinki


@cache
def helsinki_venues() -> tuple[Venue, ...]:
    return load_venues(HELSINKI_VENUES).venues


@cache
def helsinki_index() -> GeofenceIndex:
    return GeofenceIndex.build([v.fence() for v in helsinki_venues() if v.enabled])


def venue(venue_id: str) -> Venue:
    return next(v for v in helsinki_venues() if v.id == venue_id)


def helsinki_policy() -> PresencePolicy:
    return PresencePolicy().with_venues((v.id, v.dwell_s) for v in helsinki_venues())


def inside_point(venue_id: str) -> LatLng:
    p = venue(venue_id).shape.representative_point()  # type: ignore[union-attr]
    return LatLng(p.y, p.x)


@dataclass(frozen=True)
class EdgeFrame:
    """A straight stretch of a venue's edge: ``at(d)`` is ``d`` metres inside (negative:
    outside) on the normal through the edge's midpoint."""

    mid: LatLng
    inward_east: float
    inward_north: float

    def at(self, d_m: float, along_m: float = 0.0) -> LatLng:
        return offset(self.mid, d_m * self.inward_east - along_m * self.inward_north,
                      d_m * self.inward_north + along_m * self.inward_east)


def edge_frame(venue_id: str) -> EdgeFrame:
    """The frame of the venue's longest exterior edge."""
    geom = venue(venue_id).shape
    assert isinstance(geom, Polygon)
    coords = list(geom.exterior.coords)
    kx, ky = (float(k) for k in frame_scales(coords[0][1]))
    best = max(range(len(coords) - 1), key=lambda i: math.hypot(
        (coords[i + 1][0] - coords[i][0]) * kx, (coords[i + 1][1] - coords[i][1]) * ky))
    (x0, y0), (x1, y1) = coords[best], coords[best + 1]
    mid = LatLng((y0 + y1) / 2, (x0 + x1) / 2)
    ex, ey = (x1 - x0) * kx, (y1 - y0) * ky
    length = math.hypot(ex, ey)
    nx, ny = -ey / length, ex / length
    probe = offset(mid, nx * 2, ny * 2)
    if not geom.contains(Point(probe.lng, probe.lat)):
        nx, ny = -nx, -ny
    return EdgeFrame(mid, nx, ny)


def feature_names() -> dict[str, str]:
    data = json.loads(HELSINKI_VENUES.read_text(encoding="utf-8"))
    return {f["properties"]["id"]: f["properties"]["name"] for f in data["features"]}


_ = shape


def helsinki_mall_walks() -> list[TrajectorySpec]:
    """The specs behind fixtures/pings/helsinki_malls.csv (see its README)."""
    station_square = LatLng(60.1712, 24.9430)
    forum, kluuvi = inside_point(FORUM), inside_point("osm:way/22273017")
    return [
        TrajectorySpec("anna", station_square, (Go(forum), Wait(900), Go(station_square)),
                       start_ts=T0, noise_m=5, accuracy_m=(5, 20)),
        TrajectorySpec("ben", station_square, (Go(kluuvi), Wait(420), Go(forum), Wait(200),
                                               Go(station_square)),
                       start_ts=T0 + 600, noise_m=5, accuracy_m=(5, 20), teleport_rate=0.01),
        TrajectorySpec("chen", station_square, (Go(forum, 1.4), Go(station_square)),
                       start_ts=T0 + 120, noise_m=5, accuracy_m=None),
    ]
