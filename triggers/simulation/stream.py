"""Pings in delivery order, generated window by window so memory stays flat.

Every generated device is a :class:`Device`: a resolved route laid out in time
(keyframes in a metric frame about its start) and the generator knobs. Its pings are
made by :func:`triggers.trajectory.generate` — the project's one generator — one
``WINDOW_S`` window at a time: the window's piece of the route becomes a small
``TrajectorySpec`` (leg speeds chosen so the device is where the whole route puts it),
sampled on the device's own grid of ``interval_s`` from its start. Noise, accuracy,
outliers, bursts and mock flags are independent per ping, so windowing changes no
statistic; each window draws from its own seed, ``(scenario seed, device, window)``.

:class:`PingStream` merges the devices and the recorded pings (a CSV) and hands out the
pings delivered before a given virtual time, in delivery order. Only the windows that
started before that time are generated: one simulated day of 10k devices at 30 s holds
about an hour of pings (~1.2 M) at a time, not the day's 29 M.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from geo.distance import frame_scales
from geo.latlng import LatLng
from triggers.pings import PingBatch
from triggers.trajectory import Go, PingColumns, TrajectorySpec, Wait, generate

WINDOW_S = 3600.0
"""Virtual time generated at once: long enough that the per-call cost of the generator
is small against its pings, short enough that a window of 10k devices is ~100 MB."""
_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class Device:
    """One generated device: keyframes ``(t, x, y)`` in metres east/north of ``origin``
    at absolute epoch times, and the generator knobs (``template``, whose route and
    start are replaced per window)."""

    user_id: str
    index: int
    origin: LatLng
    key_t: NDArray[np.float64]
    key_x: NDArray[np.float64]
    key_y: NDArray[np.float64]
    template: TrajectorySpec

    @property
    def start_ts(self) -> float:
        return float(self.key_t[0])

    @property
    def end_ts(self) -> float:
        return float(self.key_t[-1])


def lay_out(
    user_id: str, index: int, start: LatLng, legs: Sequence[Go | Wait], *, start_ts: float,
    template: TrajectorySpec,
) -> Device:
    """The device's keyframes, timed exactly as :func:`generate` would time the route."""
    kx, ky = (float(k) for k in frame_scales(start.lat))
    ts, xs, ys = [start_ts], [0.0], [0.0]
    for leg in legs:
        t, x, y = ts[-1], xs[-1], ys[-1]
        if isinstance(leg, Wait):
            ts.append(t + leg.duration_s)
            xs.append(x)
            ys.append(y)
            continue
        nx = ((leg.to.lng - start.lng + 180.0) % 360.0 - 180.0) * kx
        ny = (leg.to.lat - start.lat) * ky
        speed = template.speed_mps if leg.speed_mps is None else leg.speed_mps
        ts.append(t + math.hypot(nx - x, ny - y) / speed)
        xs.append(nx)
        ys.append(ny)
    return Device(user_id, index, start, np.asarray(ts), np.asarray(xs), np.asarray(ys),
                  template)


def _window_spec(device: Device, a: float, b: float) -> TrajectorySpec:
    """The device's route between times ``a`` and ``b`` as a TrajectorySpec."""
    o = device.origin
    kx0, ky0 = (float(k) for k in frame_scales(o.lat))

    def at(t: float) -> tuple[float, float]:
        x = float(np.interp(t, device.key_t, device.key_x))
        y = float(np.interp(t, device.key_t, device.key_y))
        return x, y

    def to_latlng(x: float, y: float) -> LatLng:
        return LatLng(o.lat + y / ky0, (o.lng + x / kx0 + 180.0) % 360.0 - 180.0)

    start_xy = at(a)
    start = to_latlng(*start_xy)
    kx, ky = (float(k) for k in frame_scales(start.lat))
    inner = [float(t) for t in device.key_t if a + _EPS < t < b - _EPS]
    legs: list[Go | Wait] = []
    prev_t, prev = a, start
    for t in [*inner, b]:
        point = to_latlng(*at(t))
        dt = t - prev_t
        dist = math.hypot(((point.lng - start.lng + 180.0) % 360.0 - 180.0) * kx
                          - ((prev.lng - start.lng + 180.0) % 360.0 - 180.0) * kx,
                          (point.lat - start.lat) * ky - (prev.lat - start.lat) * ky)
        if dt <= _EPS:
            continue
        legs.append(Wait(dt) if dist < 1e-6 else Go(point, dist / dt))
        prev_t, prev = t, point
    if not legs:
        legs.append(Wait(0.0))
    offset = a - device.start_ts
    gaps = tuple((g_at - offset, g_s) for g_at, g_s in device.template.gaps
                 if g_at + g_s > offset and g_at < b - device.start_ts)
    return replace(device.template, user_id=device.user_id, start=start, route=tuple(legs),
                   start_ts=a, gaps=gaps)


def device_window(
    device: Device, w0: float, w1: float, seed: int, window_index: int
) -> PingColumns | None:
    """The device's pings with ``w0 <= ts < w1`` (the route end itself included)."""
    step = device.template.interval_s
    start = device.start_ts
    a = start + max(0.0, math.ceil((w0 - start) / step - 1e-9)) * step
    b = min(w1, device.end_ts)
    if a >= w1 or a > b + _EPS:
        return None
    seq = np.random.SeedSequence([seed & 0xFFFFFFFF, device.index, window_index])
    cols = generate(_window_spec(device, a, b), int(seq.generate_state(1)[0]))
    keep = cols.ts < w1
    if b < w1:
        keep &= cols.ts <= device.end_ts + _EPS
    return cols if bool(keep.all()) else cols.take(np.flatnonzero(keep))


def recorded_columns(
    batch: PingBatch, received_at: NDArray[np.float64] | None = None, *,
    arrival: Literal["ts", "file_order"] = "ts",
) -> PingColumns:
    """Recorded pings (in file order) with their delivery times.

    Each ping is delivered at its ``received_at`` (NaN or ``None``: at its own ``ts``).
    ``arrival="file_order"`` makes the file order the order of arrival: a ping is
    delivered when the file has reached its time, the running maximum of those times
    (a user exported after others arrives late, as a phone emptying its buffer does).
    Ties keep the file order.
    """
    n = len(batch)
    delivery = batch.ts.copy()
    if received_at is not None:
        delivery = np.where(np.isnan(received_at), delivery, received_at)
    if arrival == "file_order" and n:
        delivery = np.maximum.accumulate(delivery)
    return PingColumns(
        user_id=batch.user_id.astype(str), ts=batch.ts, delivery_ts=delivery,
        delivery_tiebreak=np.arange(n, dtype=np.float64) / max(n, 1),
        lat=batch.lat, lng=batch.lng, accuracy_m=batch.accuracy_m, speed_mps=batch.speed_mps,
        heading_deg=batch.heading_deg, mock=batch.mock,
    )


class PingStream:
    """Devices and recorded pings, handed out in delivery order up to a virtual time."""

    def __init__(
        self, devices: Sequence[Device], recorded: PingColumns | None, seed: int,
        end_ts: float,
    ) -> None:
        self._devices = sorted(devices, key=lambda d: d.start_ts)
        self._seed = seed
        self._end = end_ts
        self._pending: PingColumns | None = None
        self._cursor = 0
        """Pings before it in ``_pending`` were handed out (no copy per slice)."""
        if recorded is not None and len(recorded):
            keep = np.flatnonzero(recorded.delivery_ts <= end_ts)
            self._pending = _sorted(recorded.take(keep))
        starts = [d.start_ts for d in self._devices]
        self._origin = min(starts) if starts else math.inf
        self._next_window = 0
        self._active: list[Device] = []
        self._waiting = 0
        """Devices [0, _waiting) of the start-sorted list have joined ``_active``."""

    @property
    def first_delivery(self) -> float:
        """The earliest time anything is delivered (inf when nothing is)."""
        pending = self._pending
        head = float(pending.delivery_ts[0]) if pending is not None and len(pending) else math.inf
        return min(head, self._origin)

    @property
    def last_activity(self) -> float:
        """The latest ping time any source can produce (for the default scenario end)."""
        ends = [d.end_ts for d in self._devices]
        pending = self._pending
        rec = float(pending.delivery_ts[-1]) if pending is not None and len(pending) else -math.inf
        return max([rec, *ends], default=-math.inf)

    def next_at(self) -> float:
        """No ping not handed out yet is delivered before this time (inf: none is left).
        A lower bound: the start of the next window when devices may still ping."""
        pending = self._pending
        if pending is not None and self._cursor < len(pending):
            return float(pending.delivery_ts[self._cursor])
        window = self._origin + self._next_window * WINDOW_S
        if window > self._end + _EPS:
            return math.inf
        if self._active:
            return window
        if self._waiting < len(self._devices):
            return max(window, self._devices[self._waiting].start_ts)
        return math.inf

    def take_until(self, until: float) -> PingColumns | None:
        """The pings delivered before ``until`` not handed out yet, in delivery order."""
        while self._origin + self._next_window * WINDOW_S < min(until, self._end + _EPS):
            self._generate_window(self._next_window)
            self._next_window += 1
        pending = self._pending
        if pending is None or self._cursor >= len(pending):
            return None
        cut = int(np.searchsorted(pending.delivery_ts, until, side="left"))
        if cut <= self._cursor:
            return None
        out = pending.take(np.arange(self._cursor, cut))
        self._cursor = cut
        return out

    def _generate_window(self, k: int) -> None:
        w0 = self._origin + k * WINDOW_S
        w1 = w0 + WINDOW_S
        while self._waiting < len(self._devices) and self._devices[self._waiting].start_ts < w1:
            self._active.append(self._devices[self._waiting])
            self._waiting += 1
        parts: list[PingColumns] = []
        still: list[Device] = []
        for device in self._active:
            cols = device_window(device, w0, min(w1, self._end + _EPS), self._seed, k)
            if cols is not None and len(cols):
                parts.append(cols)
            if device.end_ts >= w1:
                still.append(device)
        self._active = still
        if not parts:
            return
        pending = self._pending
        if pending is not None and self._cursor < len(pending):
            parts.append(pending.take(np.arange(self._cursor, len(pending))))
        self._pending = _sorted(PingColumns.concat(parts))
        self._cursor = 0


def _sorted(cols: PingColumns) -> PingColumns:
    order = np.lexsort((cols.delivery_tiebreak, cols.delivery_ts))
    return cols.take(order)
