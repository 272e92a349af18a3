"""The streaming side of fitting the interest model: one pass over chunks of events
builds the state at the fit's end time and the training examples of earlier cutoffs.

Training is a time split inside the fit window: at each cutoff ``c`` (one, two, three
periods before ``until``) the features are what was known before ``c`` and the label is
whether the pair had an event in ``[c, c + period)``. Cutoff tables are kept only for a
sample of users (a fixed hash of their index), which bounds the memory and the time of
training whatever the size of the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from triggers.learning.coding import FloatArray, IntArray
from triggers.learning.pairs import PairTable, merge, pair_keys, table_from_events

_HASH_MULTIPLIER = 2_654_435_761
"""Knuth's multiplicative hash: the sample does not follow the order users were seen in."""


def sampled(user: IntArray, rate: float) -> npt.NDArray[np.bool_]:
    """Whether each user is in the training sample (deterministic, about ``rate`` of them)."""
    if rate >= 1.0:
        return np.ones(len(user), dtype=bool)
    return ((user * _HASH_MULTIPLIER) % (1 << 32)) < rate * (1 << 32)


@dataclass
class CutoffState:
    """What one training cutoff collects: features before it, labels after it."""

    cutoff_t: float
    table: PairTable
    label_keys: list[IntArray] = field(default_factory=list)

    def labels(self) -> IntArray:
        """Keys of the pairs with an event in the label period (sorted, unique)."""
        if not self.label_keys:
            return np.empty(0, np.int64)
        return np.unique(np.concatenate(self.label_keys))


class InterestAccumulator:
    """Feed chunks of events with :meth:`add`; read :attr:`final` and :attr:`cutoffs`.

    ``final`` is the pair table as of ``until`` (every user); each cutoff holds the table
    of the sampled users as of that cutoff and the pairs they engaged with after it.
    Events at or after ``until`` are ignored.
    """

    def __init__(self, until_t: float, cutoffs_t: list[float], period_s: float,
                 sample_rate: float) -> None:
        self.until_t = until_t
        self.period_s = period_s
        self.sample_rate = sample_rate
        self.final = PairTable.empty(until_t)
        self.cutoffs = [CutoffState(c, PairTable.empty(c)) for c in cutoffs_t]
        self.first_t = np.inf
        self.events = 0

    def add(self, user: IntArray, category: IntArray, kind: npt.NDArray[np.int8],
            ts: FloatArray) -> None:
        """Aggregate one chunk (any order of time, any mix of users)."""
        keep = ts < self.until_t
        user, category, kind, ts = user[keep], category[keep], kind[keep], ts[keep]
        if len(ts) == 0:
            return
        self.events += len(ts)
        self.first_t = min(self.first_t, float(ts.min()))
        self.final = merge(self.final, table_from_events(self.until_t, user, category, kind, ts))
        in_sample = sampled(user, self.sample_rate)
        su, sc, sk, st = user[in_sample], category[in_sample], kind[in_sample], ts[in_sample]
        for state in self.cutoffs:
            c = state.cutoff_t
            state.table = merge(state.table, table_from_events(c, su, sc, sk, st))
            after = (st >= c) & (st < c + self.period_s) & (sc >= 0)
            if after.any():
                state.label_keys.append(np.unique(pair_keys(su[after], sc[after])))
