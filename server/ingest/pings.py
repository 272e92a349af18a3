"""Per-item screening of a ping batch: the good pings go on, each bad one is listed.

One bad ping never sinks a batch: an SDK uploading a day of buffered fixes must not lose
999 of them to one corrupt record, nor loop retrying a batch that can never pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import ValidationError

from server.api.schemas import PingIn, RejectedPing
from server.errors import field_path, validation_details
from triggers.pings import PingBatch

FUTURE_TS = "future_ts"


@dataclass(frozen=True, slots=True)
class Screened:
    """The pings that passed (with their positions in the request) and the rejects."""

    pings: tuple[PingIn, ...]
    indices: tuple[int, ...]
    rejected: tuple[RejectedPing, ...]


def screen(
    items: Sequence[Any], *, now: float, max_future_s: float, prefix: str = "pings"
) -> Screened:
    """Validate every item; reject those that fail or are dated more than
    ``max_future_s`` after ``now`` (the engine's own rule, checked here so that the
    client learns which ping it was)."""
    good: list[PingIn] = []
    indices: list[int] = []
    rejected: list[RejectedPing] = []
    for i, item in enumerate(items):
        if isinstance(item, PingIn):
            ping = item
        else:
            try:
                ping = PingIn.model_validate(item)
            except ValidationError as exc:
                first = validation_details(exc, (prefix, i))[0]
                rejected.append(RejectedPing(index=i, **first))
                continue
        if ping.ts > now + max_future_s:
            rejected.append(RejectedPing(
                index=i, code=FUTURE_TS, field=field_path(("ts",), (prefix, i)),
                message=f"ts is {ping.ts - now:.0f} s in the future (more than "
                        f"{max_future_s:g} s ahead of the server clock)"))
            continue
        good.append(ping)
        indices.append(i)
    return Screened(tuple(good), tuple(indices), tuple(rejected))


def to_batch(pings: Sequence[PingIn]) -> PingBatch:
    """The pings as the engine's columns (absent optional values become NaN)."""

    def col(name: str) -> list[float]:
        return [np.nan if (v := getattr(p, name)) is None else float(v) for p in pings]

    return PingBatch.from_columns(
        np.array([p.user_id for p in pings], dtype=str),
        [p.ts for p in pings],
        [p.lat for p in pings],
        [p.lng for p in pings],
        accuracy_m=col("accuracy_m"),
        speed_mps=col("speed_mps"),
        heading_deg=col("heading_deg"),
        mock=[p.mock for p in pings],
    )
