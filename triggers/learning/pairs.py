"""Per (user, category) state, aggregated as events stream by: the only thing the interest
model keeps of millions of events.

A :class:`PairTable` holds, for each pair seen before a reference time ``r``, decayed
counts (each event weighs ``2 ** -(age / half_life)``, age measured back from ``r``), plain
counts and the times of the last event and of the first and last purchase. Tables from
chunks of events merge by summing, taking the max or the min column by column, so a file
of any size is read in chunks and only the compact table stays in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from triggers.learning.coding import ADD_TO_CART, DAY_S, PURCHASE, FloatArray, IntArray

HALF_LIVES_D = (1.0, 4.0, 14.0, 60.0)
"""Half-lives (days) of the decayed counts of all kinds: a day-long session, a week's
interest, a fortnight's, a season's. The recency-frequency baseline picks one of them."""
PURCHASE_HALF_LIFE_D = 30.0
CART_HALF_LIFE_D = 7.0

COLUMNS = ("d1", "d4", "d14", "d60", "purchase_d30", "cart_d7", "events", "purchases",
           "s4", "s14", "s60",
           "last_t", "last_purchase_t", "first_purchase_t", "day_bits")
"""The columns of :attr:`PairTable.values`, in order."""
COL = {name: i for i, name in enumerate(COLUMNS)}
_SUM = slice(0, 11)
_MAX = slice(11, 13)
_MIN = 13
_BITS = 14
DAY_BITS = 52
"""``day_bits`` has bit ``i`` set when the pair had an event ``i`` whole days before the
reference time, for the last 52 days (exact in a float64); merged by bitwise or."""
SESSION_S = 1800.0
"""Events of a pair within the same half hour are one session: the session counts weigh a
visit once however many views it had."""

KEY_STRIDE = 1 << 24
"""A pair's key is ``user * KEY_STRIDE + category``: up to 16.7M categories, and keys sort
by user first, so one user's pairs are contiguous."""


def pair_keys(user: IntArray, category: IntArray) -> IntArray:
    """The key of each (user, category) pair."""
    return user * KEY_STRIDE + category


@dataclass(frozen=True)
class PairTable:
    """Pairs sorted by key with their :data:`COLUMNS`, as of reference time ``ref_t``
    (epoch seconds): decayed counts are worth their value at ``ref_t``."""

    ref_t: float
    keys: IntArray
    values: FloatArray

    @property
    def users(self) -> IntArray:
        return self.keys // KEY_STRIDE

    @property
    def categories(self) -> IntArray:
        return self.keys % KEY_STRIDE

    def column(self, name: str) -> FloatArray:
        return self.values[:, COL[name]]

    @classmethod
    def empty(cls, ref_t: float) -> PairTable:
        return cls(ref_t, np.empty(0, np.int64), np.empty((0, len(COLUMNS))))

    def user_rows(self, user: int) -> slice:
        """The rows of one user's pairs."""
        lo, hi = np.searchsorted(self.keys, [user * KEY_STRIDE, (user + 1) * KEY_STRIDE])
        return slice(int(lo), int(hi))


def table_from_events(ref_t: float, user: IntArray, category: IntArray,
                      kind: npt.NDArray[np.int8], ts: FloatArray) -> PairTable:
    """The table of the events before ``ref_t`` that have a category."""
    keep = (ts < ref_t) & (category >= 0)
    user, category, kind, ts = user[keep], category[keep], kind[keep], ts[keep]
    age_d = (ref_t - ts) / DAY_S
    bought = kind == PURCHASE
    carted = kind == ADD_TO_CART
    values = np.empty((len(ts), len(COLUMNS)))
    for i, half_life in enumerate(HALF_LIVES_D):
        values[:, i] = np.exp2(-age_d / half_life)
    values[:, COL["purchase_d30"]] = np.where(bought, np.exp2(-age_d / PURCHASE_HALF_LIFE_D), 0)
    values[:, COL["cart_d7"]] = np.where(carted, np.exp2(-age_d / CART_HALF_LIFE_D), 0)
    values[:, COL["events"]] = 1.0
    values[:, COL["purchases"]] = bought
    first_of_session = _first_of_session(pair_keys(user, category), ts)
    for name, half_life in (("s4", 4.0), ("s14", 14.0), ("s60", 60.0)):
        values[:, COL[name]] = np.where(first_of_session, np.exp2(-age_d / half_life), 0)
    values[:, COL["last_t"]] = ts
    values[:, COL["last_purchase_t"]] = np.where(bought, ts, -np.inf)
    values[:, COL["first_purchase_t"]] = np.where(bought, ts, np.inf)
    day = np.floor(age_d).astype(np.int64)
    values[:, COL["day_bits"]] = np.where(day < DAY_BITS,
                                          np.left_shift(1, np.minimum(day, DAY_BITS - 1)), 0)
    return _grouped(ref_t, pair_keys(user, category), values)


def _first_of_session(keys: IntArray, ts: FloatArray) -> npt.NDArray[np.bool_]:
    """Whether each event is the first of its pair in its half-hour slot (within what was
    given: a session cut by a chunk boundary counts twice, which is rare and harmless)."""
    slot = np.floor(ts / SESSION_S).astype(np.int64)
    order = np.lexsort((slot, keys))
    k, s = keys[order], slot[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = (k[1:] != k[:-1]) | (s[1:] != s[:-1])
    out = np.empty(len(keys), dtype=bool)
    out[order] = first
    return out


def merge(a: PairTable, b: PairTable) -> PairTable:
    """One table holding the events of both (same reference time)."""
    if a.ref_t != b.ref_t:
        raise ValueError("merging pair tables of different reference times")
    return _grouped(a.ref_t, np.concatenate([a.keys, b.keys]),
                    np.concatenate([a.values, b.values]))


def _grouped(ref_t: float, keys: IntArray, values: FloatArray) -> PairTable:
    if len(keys) == 0:
        return PairTable.empty(ref_t)
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    out = np.empty((len(starts), len(COLUMNS)))
    out[:, _SUM] = np.add.reduceat(values[:, _SUM], starts, axis=0)
    out[:, _MAX] = np.maximum.reduceat(values[:, _MAX], starts, axis=0)
    out[:, _MIN] = np.minimum.reduceat(values[:, _MIN], starts, axis=0)
    out[:, _BITS] = np.bitwise_or.reduceat(values[:, _BITS].astype(np.int64), starts)
    return PairTable(ref_t, keys[starts], out)


def active_days(bits: FloatArray, days: int, shift_days: int = 0) -> FloatArray:
    """How many of the last ``days`` days (before the reference time plus
    ``shift_days``) the pair was active on."""
    keep = max(min(days - shift_days, DAY_BITS), 0)
    masked = np.bitwise_and(np.nan_to_num(bits).astype(np.int64), (1 << keep) - 1)
    return np.bitwise_count(masked).astype(np.float64)


def segment_starts(sorted_ids: IntArray) -> IntArray:
    """Where each run of equal values starts in a sorted array."""
    if len(sorted_ids) == 0:
        return np.empty(0, np.int64)
    return np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]]).astype(np.int64)
