"""Seeded synthetic trajectories: walks, waits, vehicles, GPS noise, gaps, outliers,
late and out-of-order delivery. Pure: the same spec and seed give the same pings.

A route is a sequence of :class:`Go` (move in a straight line to a point, at the
spec's speed or the leg's own — 15-25 m/s makes a train through a station) and
:class:`Wait` (stand still). Positions are interpolated in a local metric frame about
the start (``geo.distance``), sampled every ``interval_s``, then perturbed:

- Gaussian noise of ``noise_m`` metres per axis (σ), independent per ping;
- ``accuracy_m``: a fixed value, a (low, high) uniform range, or None (missing);
- ``gaps``: (offset_s, duration_s) windows with no pings (tunnels, a dead phone);
- ``teleport_rate``: the fraction of pings replaced by a fix ``teleport_m`` away;
- ``burst_rate``: the chance a ping starts a burst of ``burst_len`` pings delivered
  together ``burst_delay_s`` after the last of them, in shuffled order (a phone
  uploading a backlog); other pings arrive ``latency_s`` after their ts;
- ``mock_rate``: the fraction of pings flagged as mock locations.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from geo.distance import frame_scales
from geo.latlng import LatLng
from triggers.errors import TriggerError
from triggers.pings import PingBatch

CSV_HEADER = ("user_id", "ts", "lat", "lng", "accuracy_m", "speed_mps", "heading_deg", "mock")
"""The pings CSV columns (the `geopush visits` input) that the generator fills."""


@dataclass(frozen=True, slots=True)
class Go:
    """Move straight to ``to`` at ``speed_mps`` (None: the spec's speed)."""

    to: LatLng
    speed_mps: float | None = None


@dataclass(frozen=True, slots=True)
class Wait:
    """Stand still for ``duration_s`` seconds."""

    duration_s: float


@dataclass(frozen=True, slots=True)
class TrajectorySpec:
    """One device's trip; see the module docstring for each knob."""

    user_id: str
    start: LatLng
    route: tuple[Go | Wait, ...]
    start_ts: float = 0.0
    speed_mps: float = 1.4
    interval_s: float = 10.0
    noise_m: float = 0.0
    accuracy_m: float | tuple[float, float] | None = 10.0
    gaps: tuple[tuple[float, float], ...] = ()
    teleport_rate: float = 0.0
    teleport_m: float = 5_000.0
    burst_rate: float = 0.0
    burst_len: int = 6
    burst_delay_s: float = 120.0
    latency_s: float = 1.0
    mock_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class PingColumns:
    """Generated pings in ts order per user, with their delivery time."""

    user_id: NDArray[np.str_]
    ts: NDArray[np.float64]
    delivery_ts: NDArray[np.float64]
    delivery_tiebreak: NDArray[np.float64]
    lat: NDArray[np.float64]
    lng: NDArray[np.float64]
    accuracy_m: NDArray[np.float64]
    speed_mps: NDArray[np.float64]
    heading_deg: NDArray[np.float64]
    mock: NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def take(self, idx: NDArray[np.intp]) -> PingColumns:
        return PingColumns(*(getattr(self, f)[idx] for f in self.__slots__))

    def delivery_order(self) -> NDArray[np.intp]:
        """Indices in the order a server receives the pings (shuffled within bursts)."""
        return np.lexsort((self.delivery_tiebreak, self.delivery_ts))

    def to_batch(self) -> PingBatch:
        return PingBatch.from_columns(
            self.user_id, self.ts, self.lat, self.lng, accuracy_m=self.accuracy_m,
            speed_mps=self.speed_mps, heading_deg=self.heading_deg, mock=self.mock,
        )

    def to_csv_text(self, *, iso_ts: bool = True) -> str:
        """The pings CSV (rows in this object's order); ``ts`` as ISO-8601 UTC
        with offset, or epoch seconds when ``iso_ts`` is False."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for i in range(len(self)):
            ts = float(self.ts[i])
            when = (dt.datetime.fromtimestamp(ts, dt.UTC).isoformat() if iso_ts else repr(ts))
            acc = float(self.accuracy_m[i])
            speed = float(self.speed_mps[i])
            heading = float(self.heading_deg[i])
            writer.writerow([
                str(self.user_id[i]), when, f"{self.lat[i]:.7f}", f"{self.lng[i]:.7f}",
                "" if math.isnan(acc) else f"{acc:.1f}",
                "" if math.isnan(speed) else f"{speed:.2f}",
                "" if math.isnan(heading) else f"{heading:.1f}",
                "true" if self.mock[i] else "false",
            ])
        return out.getvalue()

    @staticmethod
    def concat(parts: Sequence[PingColumns]) -> PingColumns:
        if not parts:
            raise TriggerError("nothing to concatenate")
        return PingColumns(*(
            np.concatenate([getattr(p, f) for p in parts]) for f in PingColumns.__slots__
        ))


def _keyframes(spec: TrajectorySpec, kx: float,
               ky: float) -> tuple[list[float], list[float], list[float]]:
    """(time offset s, x m, y m) at every corner of the route, in the local frame centred
    on ``spec.start`` with scales ``kx``, ``ky`` (m per degree of lng, lat)."""
    lat0, lng0 = spec.start.lat, spec.start.lng
    key_t, key_x, key_y = [0.0], [0.0], [0.0]
    for leg in spec.route:
        t, x, y = key_t[-1], key_x[-1], key_y[-1]
        if isinstance(leg, Wait):
            key_t.append(t + leg.duration_s)
            key_x.append(x)
            key_y.append(y)
            continue
        nx = ((leg.to.lng - lng0 + 180.0) % 360.0 - 180.0) * kx
        ny = (leg.to.lat - lat0) * ky
        leg_speed = spec.speed_mps if leg.speed_mps is None else leg.speed_mps
        key_t.append(t + math.hypot(nx - x, ny - y) / leg_speed)
        key_x.append(nx)
        key_y.append(ny)
    return key_t, key_x, key_y


def generate(spec: TrajectorySpec, seed: int) -> PingColumns:
    """The pings of ``spec`` with randomness from ``numpy.random.default_rng(seed)``."""
    if spec.interval_s <= 0 or spec.speed_mps <= 0:
        raise TriggerError("interval_s and speed_mps must be > 0")
    rng = np.random.default_rng(seed)
    lat0, lng0 = spec.start.lat, spec.start.lng
    kx, ky = (float(k) for k in frame_scales(lat0))
    key_t, key_x, key_y = _keyframes(spec, kx, ky)

    offsets = np.arange(0.0, key_t[-1] + 1e-9, spec.interval_s)
    for gap_at, gap_s in spec.gaps:
        offsets = offsets[(offsets < gap_at) | (offsets >= gap_at + gap_s)]
    n = offsets.shape[0]
    kt = np.asarray(key_t)
    x = np.interp(offsets, kt, key_x)
    y = np.interp(offsets, kt, key_y)

    seg = np.clip(np.searchsorted(kt, offsets, side="right") - 1, 0, max(len(key_t) - 2, 0))
    dx = np.diff(np.asarray(key_x)) if len(key_t) > 1 else np.zeros(1)
    dy = np.diff(np.asarray(key_y)) if len(key_t) > 1 else np.zeros(1)
    dtk = np.diff(kt) if len(key_t) > 1 else np.ones(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        seg_speed = np.where(dtk > 0, np.hypot(dx, dy) / dtk, 0.0)
    speed = seg_speed[seg]
    heading = np.where(speed > 0, np.degrees(np.arctan2(dx[seg], dy[seg])) % 360.0, np.nan)

    if spec.noise_m > 0:
        x = x + rng.normal(0.0, spec.noise_m, n)
        y = y + rng.normal(0.0, spec.noise_m, n)
    if spec.teleport_rate > 0:
        jump = rng.random(n) < spec.teleport_rate
        angle = rng.uniform(0.0, 2 * math.pi, n)
        x = np.where(jump, x + spec.teleport_m * np.cos(angle), x)
        y = np.where(jump, y + spec.teleport_m * np.sin(angle), y)

    if spec.accuracy_m is None:
        accuracy = np.full(n, np.nan)
    elif isinstance(spec.accuracy_m, tuple):
        accuracy = rng.uniform(spec.accuracy_m[0], spec.accuracy_m[1], n)
    else:
        accuracy = np.full(n, float(spec.accuracy_m))

    ts = spec.start_ts + offsets
    delivery = ts + spec.latency_s
    if spec.burst_rate > 0 and n:
        starts = np.flatnonzero(rng.random(n) < spec.burst_rate)
        for s in starts.tolist():
            end = min(s + spec.burst_len, n)
            delivery[s:end] = ts[end - 1] + spec.burst_delay_s
    mock = rng.random(n) < spec.mock_rate if spec.mock_rate > 0 else np.zeros(n, np.bool_)

    lat = lat0 + y / ky
    lng = (lng0 + x / kx + 180.0) % 360.0 - 180.0
    return PingColumns(
        user_id=np.full(n, spec.user_id),
        ts=ts,
        delivery_ts=delivery,
        delivery_tiebreak=rng.random(n),
        lat=lat,
        lng=lng,
        accuracy_m=accuracy,
        speed_mps=speed,
        heading_deg=heading,
        mock=mock,
    )


def generate_many(specs: Sequence[TrajectorySpec], seed: int) -> PingColumns:
    """Several devices, each with an independent stream spawned from ``seed``."""
    children = np.random.SeedSequence(seed).spawn(len(specs))
    parts = [generate(s, int(c.generate_state(1)[0])) for s, c in zip(specs, children,
                                                                       strict=True)]
    return PingColumns.concat(parts)
