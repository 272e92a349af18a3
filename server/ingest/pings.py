"""Per-item screening of a ping batch: the good pings go on, each bad one is listed.

One bad ping never sinks a batch: an SDK uploading a day of buffered fixes must not lose
999 of them to one corrupt record, nor loop retrying a batch that can never pass.

:class:`~server.api.schemas.PingIn` is the contract. Validating every ping through
pydantic costs about 2 µs a ping, most of the screening of a 100-ping batch, so a plain
ping (a ``dict`` of exactly-typed values within the bounds) is checked here by hand and
everything else goes to pydantic, which alone writes the rejections: the fast path only
ever accepts, never rejects, so codes, fields and messages cannot drift from the model.
``tests/server/ingest/test_screen_fast.py`` holds the two paths to the same answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import numpy as np
from pydantic import ValidationError

from server.api.schemas import PingIn, RejectedPing
from server.errors import field_path, validation_details
from triggers.pings import PingBatch

FUTURE_TS = "future_ts"


class Fix(NamedTuple):
    """One screened ping: :class:`PingIn`'s fields, values as the model would hold them
    (floats, ``None`` for an absent optional), at a fraction of a model's cost."""

    user_id: str
    ts: float
    lat: float
    lng: float
    accuracy_m: float | None = None
    speed_mps: float | None = None
    heading_deg: float | None = None
    altitude_m: float | None = None
    mock: bool = False
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class Screened:
    """The pings that passed (with their positions in the request) and the rejects."""

    pings: tuple[Fix, ...]
    indices: tuple[int, ...]
    rejected: tuple[RejectedPing, ...]


# PingIn's rules, restated for the fast path (the bounds are written out in _fast);
# tests/server/ingest/test_screen_fast.py checks them against the model.
_FIELDS = frozenset(Fix._fields)
_TS_MAX = 1e11  # 0 <= ts < 1e11 (EpochS)
_ID_MAX = 256
# 1 to 256 characters, no control character (the model's pattern) and no lone surrogate
# (pydantic cannot encode one and rejects it as string_unicode).
_USER_ID = re.compile(r"[^\x00-\x1f\x7f\ud800-\udfff]{1,256}").fullmatch
_SURROGATE = re.compile(r"[\ud800-\udfff]").search
_NUMBER = (float, int)  # exactly these types: pydantic reads a bool as 1.0, we leave it be


def _fast(item: Any) -> Fix | None:
    """``item`` as a :class:`Fix` when it is plainly valid; ``None`` when pydantic must
    decide (strings for numbers, ISO times, bools as numbers, anything out of bounds).

    NaN and the infinities fail the bound comparisons, as the model refuses them."""
    if type(item) is not dict or not item.keys() <= _FIELDS:
        return None
    get: Callable[..., Any] = item.get
    user_id, ts, lat, lng = get("user_id"), get("ts"), get("lat"), get("lng")
    accuracy_m, speed_mps = get("accuracy_m"), get("speed_mps")
    heading_deg, altitude_m = get("heading_deg"), get("altitude_m")
    mock, device_id = get("mock", False), get("device_id")
    if not (
        type(user_id) is str and (
            # printable ASCII is the common case and twice as quick as the pattern
            (0 < len(user_id) <= _ID_MAX and user_id.isascii() and user_id.isprintable())
            or _USER_ID(user_id))
        and type(ts) in _NUMBER and 0.0 <= ts < _TS_MAX
        and type(lat) in _NUMBER and -90.0 <= lat <= 90.0
        and type(lng) in _NUMBER and -180.0 <= lng <= 180.0
        and (accuracy_m is None
             or (type(accuracy_m) in _NUMBER and 0.0 <= accuracy_m <= 1e6))
        and (speed_mps is None or (type(speed_mps) in _NUMBER and 0.0 <= speed_mps <= 1e4))
        and (heading_deg is None
             or (type(heading_deg) in _NUMBER and 0.0 <= heading_deg <= 360.0))
        and (altitude_m is None
             or (type(altitude_m) in _NUMBER and -1e5 <= altitude_m <= 1e6))
        and type(mock) is bool
        and (device_id is None or (type(device_id) is str and len(device_id) <= _ID_MAX
                                   and (device_id.isascii() or not _SURROGATE(device_id))))
    ):
        return None
    # tuple.__new__ skips NamedTuple's Python-level __new__ (half the cost of a Fix).
    return tuple.__new__(Fix, (
        user_id, float(ts), float(lat), float(lng),
        None if accuracy_m is None else float(accuracy_m),
        None if speed_mps is None else float(speed_mps),
        None if heading_deg is None else float(heading_deg),
        None if altitude_m is None else float(altitude_m),
        mock, device_id))


def _from_model(ping: PingIn) -> Fix:
    return Fix(ping.user_id, ping.ts, ping.lat, ping.lng, ping.accuracy_m, ping.speed_mps,
               ping.heading_deg, ping.altitude_m, ping.mock, ping.device_id)


def screen(
    items: Sequence[Any], *, now: float, max_future_s: float, prefix: str = "pings"
) -> Screened:
    """Validate every item (a JSON object or a :class:`PingIn`); reject those that fail
    or are dated more than ``max_future_s`` after ``now`` (the engine's own rule, checked
    here so that the client learns which ping it was)."""
    good: list[Fix] = []
    indices: list[int] = []
    rejected: list[RejectedPing] = []
    latest = now + max_future_s
    for i, item in enumerate(items):
        ping = _fast(item)
        if ping is None:
            if isinstance(item, PingIn):
                ping = _from_model(item)
            else:
                try:
                    ping = _from_model(PingIn.model_validate(item))
                except ValidationError as exc:
                    first = validation_details(exc, (prefix, i))[0]
                    rejected.append(RejectedPing(index=i, **first))
                    continue
        if ping.ts > latest:
            rejected.append(RejectedPing(
                index=i, code=FUTURE_TS, field=field_path(("ts",), (prefix, i)),
                message=f"ts is {ping.ts - now:.0f} s in the future (more than "
                        f"{max_future_s:g} s ahead of the server clock)"))
            continue
        good.append(ping)
        indices.append(i)
    return Screened(tuple(good), tuple(indices), tuple(rejected))


def to_batch(pings: Sequence[Fix | PingIn]) -> PingBatch:
    """The pings as the engine's columns (absent optional values become NaN)."""
    rows = [p if type(p) is Fix else _from_model(cast(PingIn, p)) for p in pings]
    if not rows:
        return PingBatch.from_columns(np.array([], dtype=str), [], [], [])
    user_id, ts, lat, lng, accuracy_m, speed_mps, heading_deg, _, mock, _ = zip(
        *rows, strict=True)

    def col(values: tuple[float | None, ...]) -> np.ndarray[Any, np.dtype[np.float64]]:
        return np.array(values, dtype=np.float64)  # None becomes NaN

    return PingBatch.from_columns(
        np.array(user_id, dtype=str), col(ts), col(lat), col(lng),
        accuracy_m=col(accuracy_m), speed_mps=col(speed_mps),
        heading_deg=col(heading_deg), mock=np.array(mock, dtype=np.bool_),
    )
