"""Needs that move on: users who went from one category to another in the last period
teach the interest features where a user now in the first one goes next."""

from __future__ import annotations

import numpy as np

from triggers.learning.coding import kind_codes
from triggers.learning.features import (
    FEATURES,
    Context,
    candidate_keys,
    context,
    pair_features,
)
from triggers.learning.pairs import KEY_STRIDE, PairTable, pair_keys, table_from_events

REF_T = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86_400.0
MATERNITY, NEWBORN, GROCERIES, TOYS = 0, 1, 2, 3
N_CATEGORIES = 4


def _table(movers: int = 30, stayers: int = 30) -> tuple[PairTable, int]:
    """Movers: maternity wear the week before last, newborn goods last week. Stayers:
    groceries both weeks, and toys a month ago. User ``movers + stayers`` (the one
    being predicted) bought maternity wear last week and nothing else."""
    rows: list[tuple[int, int, float]] = []
    for u in range(movers):
        rows += [(u, MATERNITY, REF_T - 10 * DAY), (u, NEWBORN, REF_T - 3 * DAY)]
    for u in range(movers, movers + stayers):
        rows += [(u, GROCERIES, REF_T - 9 * DAY), (u, GROCERIES, REF_T - 2 * DAY),
                 (u, TOYS, REF_T - 30 * DAY)]
    newcomer = movers + stayers
    rows.append((newcomer, MATERNITY, REF_T - 2 * DAY))
    user, category, ts = (np.array(col) for col in zip(*rows, strict=True))
    kind = kind_codes(["view"] * len(rows))
    return table_from_events(REF_T, user, category, kind, ts.astype(float)), newcomer


def _features(ctx: Context, user: int, category: int) -> dict[str, float]:
    row = pair_features(ctx, pair_keys(np.array([user]), np.array([category])), REF_T)[0]
    return dict(zip(FEATURES, row.tolist(), strict=True))


def test_a_user_in_a_category_others_moved_on_from_is_told_where_they_went() -> None:
    table, newcomer = _table()
    ctx = context(table, N_CATEGORIES, period_d=7.0)
    went_on = _features(ctx, newcomer, NEWBORN)
    assert went_on["transition_new"] == 1.0
    assert went_on["transition"] == 1.0
    assert went_on["in_history"] == 0.0
    for elsewhere in (GROCERIES, TOYS):
        assert _features(ctx, newcomer, elsewhere)["transition_new"] == 0.0


def test_staying_on_a_category_is_a_transition_but_not_a_new_one() -> None:
    table, _ = _table()
    ctx = context(table, N_CATEGORIES, period_d=7.0)
    stayer = _features(ctx, 30, GROCERIES)
    assert stayer["transition"] == 1.0
    assert stayer["transition_new"] == 0.0


def test_where_others_went_next_is_a_candidate_even_when_not_popular() -> None:
    table, newcomer = _table(movers=5, stayers=60)
    ctx = context(table, N_CATEGORIES, period_d=7.0)
    keys = candidate_keys(ctx, np.array([newcomer]), popular=np.array([GROCERIES]),
                          by_affinity=1)
    assert set((keys % KEY_STRIDE).tolist()) >= {MATERNITY, NEWBORN, GROCERIES}


def test_the_period_sets_the_windows_of_the_transitions() -> None:
    """With a two-day period, last week's newborn goods and the maternity wear ten days
    ago are not in neighbouring periods: nobody is seen to move."""
    table, newcomer = _table()
    ctx = context(table, N_CATEGORIES, period_d=2.0)
    assert _features(ctx, newcomer, NEWBORN)["transition_new"] == 0.0
