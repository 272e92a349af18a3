"""The baselines the learned models must beat, each implemented as well as it can be.

- Category popularity: everyone gets the categories with the most recent engagement
  (decayed counts; the half-life is tuned on held-out time).
- Recency-frequency: a user's own decayed counts per category (half-life tuned on
  held-out time), topped up with popular categories when the user has fewer than K.
- Global peak hours: everyone gets the hours when most users engage.
"""

from __future__ import annotations

import numpy as np

from triggers.learning.coding import FloatArray, IntArray
from triggers.learning.features import Context
from triggers.learning.pairs import HALF_LIVES_D, pair_keys
from triggers.learning.ranking import top_per_user


def popularity_ranking(ctx: Context, users: IntArray, k: int,
                       half_life_index: int = 2) -> tuple[IntArray, FloatArray]:
    """The same top ``k`` categories for every user: most decayed engagement overall."""
    share = ctx.pop_share[:, half_life_index]
    top = np.argsort(-share, kind="stable")
    top = top[ctx.pop_share[top, 3] > 0][:k]
    cats = np.full((len(users), k), -1, dtype=np.int64)
    cats[:, :len(top)] = top
    scores = np.full((len(users), k), np.nan)
    scores[:, :len(top)] = share[top]
    return cats, scores


def recency_frequency_ranking(ctx: Context, users: IntArray, k: int,
                              half_life_index: int) -> tuple[IntArray, FloatArray]:
    """Each user's categories by their decayed count, then popular ones to fill ``k``.

    Scores are the user's share of their decayed counts (history) and, below them, the
    popularity share times what the history leaves (fill-ins); ``users`` sorted, unique.
    """
    table = ctx.table
    in_batch = np.isin(table.users, users)
    hist_keys = table.keys[in_batch]
    counts = table.values[in_batch, half_life_index]
    row = np.searchsorted(users, table.users[in_batch])
    user_total = np.bincount(row, weights=counts, minlength=len(users))
    # Divide by the total itself, not by a floor: months after a user's last event the
    # 1-day counts are near 2 ** -90, and a floor would shrink the shares below the
    # fill-ins' (the rank would no longer follow the score).
    hist_scores = counts / np.where(user_total > 0, user_total, 1.0)[row]
    popular = np.argsort(-ctx.pop_share[:, half_life_index], kind="stable")
    popular = popular[ctx.pop_share[popular, 3] > 0][:k]
    fill_keys = pair_keys(np.repeat(users, len(popular)), np.tile(popular, len(users)))
    fill_scores = np.tile(ctx.pop_share[popular, half_life_index], len(users)) * 1e-6
    keys = np.concatenate([hist_keys, fill_keys])
    scores = np.concatenate([hist_scores + 1.0, fill_scores])
    keys, first = np.unique(keys, return_index=True)
    cats, top_scores = top_per_user(users, keys, scores[first], k)
    return cats, np.where(top_scores >= 1.0, top_scores - 1.0, top_scores)


def global_peak_hours(hour_counts: FloatArray, k: int) -> IntArray:
    """The ``k`` hours with the most engagement summed over users, best first."""
    totals = hour_counts.sum(axis=0) if hour_counts.ndim == 2 else hour_counts
    return np.argsort(-totals, kind="stable")[:k].astype(np.int64)


HALF_LIFE_CHOICES = tuple(range(len(HALF_LIVES_D)))
"""The baselines' half-life is tuned among the pair table's half-lives."""
