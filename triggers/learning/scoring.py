"""Compact in-memory scorers for the decision path, one per tenant and model.

Built once when a model is loaded (or promoted), then read with a dict lookup and an
array slice per call, no model evaluation:

- :class:`InterestScorer`: each user's top categories with their probability of
  engagement in the next period, stored flat (CSR); users not held get the cold-start
  ranking (popular categories). ``score(user, category)`` is what an audience condition
  such as ``interests: {mother_baby: {min: 0.6}}`` compares with its threshold.
- :class:`SendTimeScorer`: each user's 24-hour profile (float32, local hours) and the
  population's for users not held; ``open_chance(user, hour)`` is what a location
  campaign's "likely to open now" condition compares with its threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from triggers.learning import interests
from triggers.learning.features import context
from triggers.learning.sendtime import HOURS, SendTimeModel


@dataclass(frozen=True)
class InterestScorer:
    """user id → its top categories and scores (see the module docstring)."""

    categories: list[str]
    rows: dict[str, int]
    offsets: npt.NDArray[np.int64]
    category_index: npt.NDArray[np.int32]
    scores_flat: npt.NDArray[np.float32]
    cold: dict[str, float]

    @classmethod
    def build(cls, model: interests.InterestModel, user_ids: list[str], at_t: float,
              top: int = 20) -> InterestScorer:
        """Rank every user of the model (index order of ``user_ids``) as of ``at_t``."""
        ctx = context(model.state, len(model.categories))
        index = np.arange(len(user_ids), dtype=np.int64)
        cats, scores = interests.rank(model, index, at_t, top, ctx)
        cold_cats, cold_scores = interests.rank(model, np.array([len(user_ids)]), at_t, top,
                                                ctx)
        kept = cats >= 0
        offsets = np.r_[0, np.cumsum(kept.sum(axis=1))].astype(np.int64)
        cold = {model.categories[c]: float(s)
                for c, s in zip(cold_cats[0], cold_scores[0], strict=True) if c >= 0}
        return cls(model.categories, {u: i for i, u in enumerate(user_ids)}, offsets,
                   cats[kept].astype(np.int32), scores[kept].astype(np.float32), cold)

    def scores(self, user_id: str) -> dict[str, float]:
        """The user's top categories → probability of engaging in the next period."""
        row = self.rows.get(user_id)
        if row is None:
            return dict(self.cold)
        lo, hi = int(self.offsets[row]), int(self.offsets[row + 1])
        return {self.categories[int(c)]: float(s)
                for c, s in zip(self.category_index[lo:hi], self.scores_flat[lo:hi],
                                strict=True)}

    def score(self, user_id: str, category: str) -> float:
        """One category's probability for the user; 0.0 for a category outside the
        user's top (it scored below every kept one)."""
        return self.scores(user_id).get(category, 0.0)


@dataclass(frozen=True)
class SendTimeScorer:
    """user id → 24-hour engagement profile (see the module docstring)."""

    rows: dict[str, int]
    profiles: npt.NDArray[np.float32]
    population: npt.NDArray[np.float32]

    @classmethod
    def build(cls, model: SendTimeModel, user_ids: list[str]) -> SendTimeScorer:
        """Profiles of every user of the model (index order of ``user_ids``)."""
        profiles = np.empty((len(user_ids), HOURS), dtype=np.float32)
        for lo in range(0, len(user_ids), 50_000):
            index = np.arange(lo, min(lo + 50_000, len(user_ids)), dtype=np.int64)
            profiles[lo:lo + len(index)] = model.hour_profiles(index)
        population = model.hour_profiles(np.array([len(user_ids)]))[0].astype(np.float32)
        return cls({u: i for i, u in enumerate(user_ids)}, profiles, population)

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
        profile = self.hour_profile(user_id)
        return float(profile[local_hour] / max(float(profile.max()), 1e-12))
