"""The recency-frequency baseline's scores, as `geopush interests predict` prints them."""

from __future__ import annotations

import numpy as np

from triggers.learning.baselines import recency_frequency_ranking
from triggers.learning.features import context
from triggers.learning.pairs import COL, COLUMNS, PairTable, pair_keys

D1 = 0
"""Index of the 1-day half-life in the decayed counts."""


def _table(rows: list[tuple[int, int, float]]) -> PairTable:
    """Pairs (user, category, decayed count at the 1-day half-life), sorted by key."""
    rows = sorted(rows)  # keys sort by user, then category
    keys = pair_keys(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]))
    values = np.zeros((len(rows), len(COLUMNS)))
    values[:, COL["d1"]] = [r[2] for r in rows]
    values[:, COL["d60"]] = 1.0
    return PairTable(0.0, keys, values)


def test_a_user_quiet_for_months_keeps_shares_that_follow_the_rank() -> None:
    # Three months after the user's last events, a 1-day half-life leaves decayed counts
    # near 2 ** -90: the user's shares are still 3/4 and 1/4, above the popular fill-in.
    table = _table([(0, 0, 1e-27), (0, 1, 3e-27), (1, 2, 1.0)])
    cats, scores = recency_frequency_ranking(context(table, 3), np.array([0]), 3, D1)
    assert cats[0].tolist() == [1, 0, 2]
    assert np.allclose(scores[0, :2], [0.75, 0.25])
    assert list(scores[0]) == sorted(scores[0], reverse=True)
