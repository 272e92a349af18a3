"""Compact in-memory scorers for the decision path, one per tenant and model.

Built once when a model is loaded (or promoted), then read with a dict lookup and a
few array reads per call, no model evaluation. The decision path reads them for every
decision with a learned condition, so a read returns plain Python numbers from
:class:`array.array` copies made at load (no numpy scalar in between) and allocates
nothing the cyclic garbage collector tracks; nor does a user held add a tracked object
(numbers in arrays, not Python objects per user: a full collection walks every tracked
object):

- :class:`InterestScorer`: each user's top categories with their probability of
  engagement in the next period, stored flat (CSR); users not held get the cold-start
  ranking (popular categories). ``score(user, category)`` is what an audience condition
  such as ``interests: {mother_baby: {min: 0.6}}`` compares with its threshold: a bisect
  in a copy of the user's row sorted by category (8 bytes more per kept category
  and per user).
- :class:`SendTimeScorer`: each user's 24-hour profile (float32, local hours) and the
  population's for users not held; ``open_chance(user, hour)`` is what a location
  campaign's "likely to open now" condition compares with its threshold, precomputed at
  load (one float32 per user and hour, 96 bytes a user) and read as one element.

With a ranker (not the recency-frequency baseline), :class:`InterestScorer` also keeps
why each held score is what it is (:mod:`triggers.learning.explain`: each pair's top
feature contributions, 15 bytes a pair, plus 8 for its place in the sorted rows):
``explain(user, category)`` is what a reason line quotes; ``base_rate(user)``, the mean
of the user's held scores (4 bytes a user), is what ranking gives an offer without
categories.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from triggers.learning import interests
from triggers.learning.explain import Explanations, explain_pairs
from triggers.learning.sendtime import HOURS, SendTimeModel

POPULAR_REASON = "popular with all users (no history of the user)"


@dataclass(frozen=True)
class InterestScorer:
    """user id → its top categories and scores (see the module docstring)."""

    categories: list[str]
    rows: dict[str, int]
    offsets: npt.NDArray[np.int64]
    category_index: npt.NDArray[np.int32]
    scores_flat: npt.NDArray[np.float32]
    cold: dict[str, float]
    explanations: Explanations | None = None
    """Row ``i``: why ``scores_flat[i]`` is what it is; ``None`` without a ranker."""
    names: npt.NDArray[np.object_] = field(init=False, repr=False, compare=False)
    """``categories`` as an object array: a row's names in one fancy index."""
    category_ids: dict[str, int] = field(init=False, repr=False, compare=False)
    """category → its index in ``categories``."""
    row_bounds: array[int] = field(init=False, repr=False, compare=False)
    """``offsets`` as Python-readable numbers."""
    sorted_index: array[int] = field(init=False, repr=False, compare=False)
    """``category_index`` with each row sorted by category index, for a bisect."""
    sorted_scores: array[float] = field(init=False, repr=False, compare=False)
    """``scores_flat`` in the order of ``sorted_index``."""
    cold_view: Mapping[str, float] = field(init=False, repr=False, compare=False)
    sorted_positions: array[int] = field(init=False, repr=False, compare=False)
    """With explanations: each ``sorted_index`` entry's place in ``scores_flat``."""
    base_rates: array[float] = field(init=False, repr=False, compare=False)
    """Per row, the mean of its scores (:meth:`base_rate`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", np.array(self.categories, dtype=object))
        object.__setattr__(self, "category_ids",
                           {c: i for i, c in enumerate(self.categories)})
        order = _rows_by_category(self.offsets, self.category_index,
                                  len(self.categories))
        object.__setattr__(self, "row_bounds", _python_readable(self.offsets))
        object.__setattr__(self, "sorted_index",
                           _python_readable(self.category_index[order]))
        object.__setattr__(self, "sorted_scores", _python_readable(self.scores_flat[order]))
        object.__setattr__(self, "cold_view", MappingProxyType(self.cold))
        object.__setattr__(self, "sorted_positions", _python_readable(
            order if self.explanations is not None else order[:0]))
        object.__setattr__(self, "base_rates",
                           _python_readable(_row_means(self.offsets, self.scores_flat)))

    @classmethod
    def build(cls, model: interests.InterestModel, user_ids: list[str], at_t: float,
              top: int = 20) -> InterestScorer:
        """Rank every user of the model (index order of ``user_ids``) as of ``at_t``."""
        ctx = model.context()
        index = np.arange(len(user_ids), dtype=np.int64)
        cats, scores = interests.rank(model, index, at_t, top, ctx)
        cold_cats, cold_scores = interests.rank(model, np.array([len(user_ids)]), at_t, top,
                                                ctx)
        kept = cats >= 0
        offsets = np.r_[0, np.cumsum(kept.sum(axis=1))].astype(np.int64)
        cold = {model.categories[c]: float(s)
                for c, s in zip(cold_cats[0], cold_scores[0], strict=True) if c >= 0}
        explanations = None
        if model.booster:
            pair_users = np.repeat(index, cats.shape[1]).reshape(cats.shape)[kept]
            explanations = explain_pairs(model.booster, ctx, pair_users, cats[kept], at_t)
        return cls(model.categories, {u: i for i, u in enumerate(user_ids)}, offsets,
                   cats[kept].astype(np.int32), scores[kept].astype(np.float32), cold,
                   explanations)

    def base_rate(self, user_id: str) -> float:
        """The mean of the user's held scores (of the cold-start ranking for a user not
        held): what ranking gives an offer without categories."""
        return self.row_base_rate(self.rows.get(user_id))

    def row_base_rate(self, row: int | None) -> float:
        """:meth:`base_rate` of the user in row ``row`` (``None``: a user not held)."""
        if row is None:
            return sum(self.cold.values()) / len(self.cold) if self.cold else 0.0
        return self.base_rates[row]

    def explain(self, user_id: str, category: str) -> str | None:
        """Why the user's score of ``category`` is what it is, in words (its largest
        feature contributions), or ``None``: no ranker, or a category outside the
        user's top. A user without history was ranked by popularity, and it says so."""
        return self.row_explain(self.rows.get(user_id), category)

    def row_explain(self, row: int | None, category: str) -> str | None:
        """:meth:`explain` for the user in row ``row`` (``None``: a user not held), for a
        caller that has looked the row up once for several reads."""
        if self.explanations is None:
            return None
        if row is None:
            return POPULAR_REASON if category in self.cold else None
        index = self.category_ids.get(category)
        if index is None:
            return None
        hi = self.row_bounds[row + 1]
        at = bisect_left(self.sorted_index, index, self.row_bounds[row], hi)
        if at == hi or self.sorted_index[at] != index:
            return None
        return self.explanations.describe(self.sorted_positions[at]) or POPULAR_REASON

    def scores(self, user_id: str) -> dict[str, float]:
        """The user's top categories → probability of engaging in the next period."""
        row = self.rows.get(user_id)
        if row is None:
            return dict(self.cold)
        return self.row_scores(row)

    def score(self, user_id: str, category: str) -> float:
        """One category's probability for the user; 0.0 for a category outside the
        user's top (it scored below every kept one)."""
        row = self.rows.get(user_id)
        if row is None:
            return self.cold.get(category, 0.0)
        score = self.row_score(row, category)
        return 0.0 if score is None else score

    def user_scores(self, user_id: str) -> Mapping[str, float]:
        """:meth:`scores` as a read-only mapping that reads one category's score from
        the arrays when asked (the decision path asks for one or two), building the
        whole dict only when iterated."""
        row = self.rows.get(user_id)
        if row is None:
            return self.cold_view
        return UserScores(self, row)

    def row_score(self, row: int, category: str) -> float | None:
        """The score of ``category`` in the user's row ``row``, or ``None`` outside it:
        a bisect in the row's categories, reading Python numbers and allocating no
        container (categories are distinct within a row)."""
        index = self.category_ids.get(category)
        if index is None:
            return None
        hi = self.row_bounds[row + 1]
        at = bisect_left(self.sorted_index, index, self.row_bounds[row], hi)
        if at == hi or self.sorted_index[at] != index:
            return None
        return self.sorted_scores[at]

    def row_scores(self, row: int) -> dict[str, float]:
        """The user's row ``row`` as category → score, in the row's order (best first,
        as :meth:`build` ranks)."""
        lo, hi = self.row_bounds[row], self.row_bounds[row + 1]
        return dict(zip(self.names[self.category_index[lo:hi]].tolist(),
                        self.scores_flat[lo:hi].tolist(), strict=True))


class UserScores(Mapping[str, float]):
    """One user's top categories → scores, read from the scorer's arrays one category
    at a time (``get``, ``[]``, ``in``: :meth:`InterestScorer.row_score`); the whole dict
    is built only when iterated."""

    __slots__ = ("_row", "_scorer")

    def __init__(self, scorer: InterestScorer, row: int) -> None:
        self._scorer, self._row = scorer, row

    def get(self, category: str, default: float | None = None) -> float | None:  # type: ignore[override]
        """The category's score, or ``default`` outside the user's top categories."""
        score = self._scorer.row_score(self._row, category)
        return default if score is None else score

    def __getitem__(self, category: str) -> float:
        score = self._scorer.row_score(self._row, category)
        if score is None:
            raise KeyError(category)
        return score

    def __contains__(self, category: object) -> bool:
        return isinstance(category, str) and \
            self._scorer.row_score(self._row, category) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._scorer.row_scores(self._row))

    def __len__(self) -> int:
        return self._scorer.row_bounds[self._row + 1] - self._scorer.row_bounds[self._row]


@dataclass(frozen=True)
class SendTimeScorer:
    """user id → 24-hour engagement profile (see the module docstring)."""

    rows: dict[str, int]
    profiles: npt.NDArray[np.float32]
    population: npt.NDArray[np.float32]
    model: SendTimeModel | None = field(default=None, repr=False, compare=False)
    """The model the profiles came from (:func:`build` keeps it): its counts, segments
    and shrinkage let :mod:`triggers.learning.sendtime_stream` follow the stream."""
    chances: npt.NDArray[np.float32] = field(init=False, repr=False, compare=False)
    """:meth:`open_chance` of every user (rows of ``profiles``) and hour, precomputed: a
    view of ``flat_chances``."""
    flat_chances: array[float] = field(init=False, repr=False, compare=False)
    """``chances`` row after row, read as Python floats."""
    population_chances: list[float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        chances = relative_to_best(self.profiles)
        flat = _python_readable(chances)
        object.__setattr__(self, "flat_chances", flat)
        object.__setattr__(self, "chances",
                           np.frombuffer(flat, dtype=chances.dtype).reshape(chances.shape))
        object.__setattr__(self, "population_chances",
                           relative_to_best(self.population[None, :])[0].tolist())

    @classmethod
    def build(cls, model: SendTimeModel, user_ids: list[str]) -> SendTimeScorer:
        """Profiles of every user of the model (index order of ``user_ids``)."""
        profiles = np.empty((len(user_ids), HOURS), dtype=np.float32)
        for lo in range(0, len(user_ids), 50_000):
            index = np.arange(lo, min(lo + 50_000, len(user_ids)), dtype=np.int64)
            profiles[lo:lo + len(index)] = model.hour_profiles(index)
        population = model.hour_profiles(np.array([len(user_ids)]))[0].astype(np.float32)
        return cls({u: i for i, u in enumerate(user_ids)}, profiles, population, model)

    def hour_profile(self, user_id: str) -> npt.NDArray[np.float32]:
        """Probability of engaging at each local hour 0-23 (sums to 1)."""
        row = self.rows.get(user_id)
        return self.population if row is None else self.profiles[row]

    def best_hours(self, user_id: str, k: int = 3) -> list[int]:
        """The ``k`` likeliest local hours, best first (ties: the earlier hour)."""
        order = np.argsort(-self.hour_profile(user_id), kind="stable")[:k]
        return [int(h) for h in order]

    def open_chance(self, user_id: str, local_hour: int) -> float:
        """The profile's weight of ``local_hour`` relative to the user's best hour
        (1.0 at the best hour): comparable across users with flat or peaked profiles."""
        row = self.rows.get(user_id)
        if row is None:
            return self.population_chances[local_hour]
        return self.flat_chances[row * HOURS + local_hour]


def relative_to_best(profiles: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Each profile's hours divided by its best hour's weight (at least 1e-12), in the
    profiles' precision, as dividing one profile's value by its maximum is."""
    floor = np.asarray(1e-12, dtype=profiles.dtype)
    best = np.maximum(profiles.max(axis=1, keepdims=True), floor)
    chances: npt.NDArray[np.float32] = profiles / best
    return chances


def _row_means(offsets: npt.NDArray[np.int64],
               scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """The mean of each CSR row's scores (0 for an empty row)."""
    counts = np.diff(offsets)
    sums = np.zeros(len(counts))
    filled = counts > 0
    if filled.any():
        sums[filled] = np.add.reduceat(scores.astype(np.float64), offsets[:-1][filled])
    means: npt.NDArray[np.float64] = sums / np.maximum(counts, 1)
    return means


def _rows_by_category(offsets: npt.NDArray[np.int64], category_index: npt.NDArray[np.int32],
                      categories: int) -> npt.NDArray[np.int64]:
    """The permutation of a CSR matrix's entries that sorts each row by category index
    (rows stay where they are): one stable sort of row × ``categories`` + category,
    4x faster than ``lexsort`` on 20M entries."""
    row_of = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
    order: npt.NDArray[np.int64] = np.argsort(row_of * categories + category_index,
                                              kind="stable")
    return order


def _python_readable(values: npt.NDArray[Any]) -> array[Any]:
    """A flat copy whose elements read as Python ints or floats with no numpy scalar in
    between (same type and precision: numpy's type character is the array module's)."""
    return array(values.dtype.char, np.ascontiguousarray(values).tobytes())
