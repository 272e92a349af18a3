"""How far back the interest model looks for training examples: three periods for a
large shop, more for a small one (as many user-periods as a large shop trains on, at
most eight) where the history before them is as long as the features read."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from triggers.learning.coding import DAY_S
from triggers.learning.interests import InterestParams, cutoff_count, training_cutoffs

PARAMS = InterestParams(period_d=7)
UNTIL = 1_700_000_000.0
YEAR_BEFORE = UNTIL - 365 * DAY_S


def test_a_large_shop_trains_on_three_periods() -> None:
    assert cutoff_count(10_000, PARAMS) == 3
    assert cutoff_count(2_000_000, PARAMS) == 3


def test_a_small_shop_looks_further_back_for_as_many_examples() -> None:
    assert cutoff_count(7_500, PARAMS) == 4  # 30,000 user-periods
    assert cutoff_count(5_000, PARAMS) == 6
    assert cutoff_count(2_469, PARAMS) == 8  # the Complete Journey's households
    assert cutoff_count(1, PARAMS) == 8


def test_cutoffs_are_a_period_apart_most_recent_first() -> None:
    cutoffs = training_cutoffs(YEAR_BEFORE, UNTIL, 5_000, PARAMS)
    assert cutoffs == [UNTIL - j * 7 * DAY_S for j in range(1, 7)]


def test_a_short_history_has_fewer_cutoffs_each_with_a_day_before_it() -> None:
    first = UNTIL - 20 * DAY_S
    assert training_cutoffs(first, UNTIL, 100, PARAMS) == [UNTIL - 7 * DAY_S,
                                                           UNTIL - 14 * DAY_S]
    assert training_cutoffs(UNTIL - 7 * DAY_S, UNTIL, 100, PARAMS) == []


def test_the_cutoffs_a_small_shop_adds_need_the_history_the_features_read() -> None:
    # Beyond the third, a cutoff needs 52 days (the active-day bits) before it: an
    # older one would teach from features truncated by the start of the log.
    assert len(training_cutoffs(UNTIL - 60 * DAY_S, UNTIL, 2_469, PARAMS)) == 3
    assert len(training_cutoffs(UNTIL - 85 * DAY_S, UNTIL, 2_469, PARAMS)) == 4
    assert len(training_cutoffs(UNTIL - 85 * DAY_S, UNTIL, 50_000, PARAMS)) == 3


@given(st.integers(min_value=0, max_value=10**8))
def test_more_users_never_mean_more_cutoffs(n_users: int) -> None:
    count = cutoff_count(n_users, PARAMS)
    assert PARAMS.min_cutoffs <= count <= PARAMS.max_cutoffs
    assert cutoff_count(n_users + 1, PARAMS) <= count
