"""A batch of pings as numpy columns: the hot path never builds one object per ping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from triggers.errors import TriggerError


@dataclass(frozen=True, slots=True)
class PingBatch:
    """``n`` pings, one entry per ping in every column.

    - ``user_id``: str/bytes array or integer codes (an int code is the user id
      written in decimal);
    - ``ts``: event time, epoch seconds (float64);
    - ``lat``/``lng``: degrees; ``accuracy_m``: metres, NaN when the device gave none;
    - ``speed_mps``/``heading_deg``: NaN when unknown (carried, not used for rules);
    - ``mock``: the OS flagged the fix as spoofed.
    """

    user_id: NDArray[Any]
    ts: NDArray[np.float64]
    lat: NDArray[np.float64]
    lng: NDArray[np.float64]
    accuracy_m: NDArray[np.float64]
    speed_mps: NDArray[np.float64]
    heading_deg: NDArray[np.float64]
    mock: NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @classmethod
    def from_columns(
        cls,
        user_id: ArrayLike | Sequence[str],
        ts: ArrayLike,
        lat: ArrayLike,
        lng: ArrayLike,
        *,
        accuracy_m: ArrayLike | None = None,
        speed_mps: ArrayLike | None = None,
        heading_deg: ArrayLike | None = None,
        mock: ArrayLike | None = None,
    ) -> PingBatch:
        """Build a batch, filling absent optional columns; raises :class:`TriggerError`
        when columns differ in length or a user id column is neither text nor int."""
        uid = np.asarray(user_id)
        if uid.dtype.kind == "O":
            uid = uid.astype(str)
        if uid.dtype.kind not in "USiu":
            raise TriggerError(f"user_id must be text or integer codes, not {uid.dtype}")
        ts_a = np.asarray(ts, dtype=np.float64)
        n = ts_a.shape[0]

        def col(values: ArrayLike | None, fill: float) -> NDArray[np.float64]:
            if values is None:
                return np.full(n, fill, dtype=np.float64)
            return np.asarray(values, dtype=np.float64)

        batch = cls(
            user_id=uid,
            ts=ts_a,
            lat=col(lat, np.nan),
            lng=col(lng, np.nan),
            accuracy_m=col(accuracy_m, np.nan),
            speed_mps=col(speed_mps, np.nan),
            heading_deg=col(heading_deg, np.nan),
            mock=np.zeros(n, dtype=np.bool_) if mock is None else np.asarray(mock, dtype=np.bool_),
        )
        for name in ("user_id", "lat", "lng", "accuracy_m", "speed_mps", "heading_deg", "mock"):
            column = getattr(batch, name)
            if column.shape != (n,):
                raise TriggerError(f"column {name} has shape {column.shape}, expected ({n},)")
        return batch

    def take(self, idx: NDArray[np.intp] | NDArray[np.bool_] | slice) -> PingBatch:
        """The pings at ``idx`` (an index array, mask or slice), as a new batch."""
        return PingBatch(
            self.user_id[idx], self.ts[idx], self.lat[idx], self.lng[idx],
            self.accuracy_m[idx], self.speed_mps[idx], self.heading_deg[idx], self.mock[idx],
        )

    @staticmethod
    def concat(batches: Sequence[PingBatch]) -> PingBatch:
        """One batch holding ``batches`` one after the other."""
        if not batches:
            return PingBatch.from_columns(np.array([], dtype=str), [], [], [])
        return PingBatch(*(
            np.concatenate([getattr(b, name) for b in batches])
            for name in ("user_id", "ts", "lat", "lng", "accuracy_m", "speed_mps",
                         "heading_deg", "mock")
        ))
