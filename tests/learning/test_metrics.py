"""recall@K and hit@K, and the pieces that rank: small tables with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from triggers.learning.baselines import global_peak_hours
from triggers.learning.metrics import hit_at_k, recall_at_k
from triggers.learning.pairs import pair_keys, table_from_events
from triggers.learning.ranking import top_per_user


@pytest.mark.parametrize(("ranked", "truth", "expected"), [
    ([[1, 2, 3]], [{1, 2, 3}], 1.0),
    ([[1, 2, 3]], [{4}], 0.0),
    # more truth than K: a perfect top-K still scores 1
    ([[1, 2]], [{1, 2, 3, 4}], 1.0),
    ([[1, 9]], [{1, 2, 3, 4}], 0.5),
    # users with nothing next period are not judged; padding never hits
    ([[1, -1], [5, 6]], [{1, 7}, set()], 0.5),
])
def test_recall_at_k(ranked: list[list[int]], truth: list[set[int]], expected: float) -> None:
    assert recall_at_k(np.array(ranked), truth) == pytest.approx(expected)


def test_hit_at_k_counts_users_with_any_hit() -> None:
    ranked = np.array([[20, 21, 22], [8, 9, 10], [1, 2, 3]])
    assert hit_at_k(ranked, [{22}, {23}, set()]) == pytest.approx(0.5)


def test_metrics_with_no_judged_user_are_nan() -> None:
    assert np.isnan(recall_at_k(np.array([[1]]), [set()]))


def test_top_per_user_breaks_ties_by_lower_category_and_pads() -> None:
    users = np.array([3, 7])
    keys = pair_keys(np.array([3, 3, 3, 7]), np.array([5, 2, 9, 4]))
    cats, scores = top_per_user(users, keys, np.array([0.5, 0.5, 0.9, 0.1]), 3)
    assert cats.tolist() == [[9, 2, 5], [4, -1, -1]]
    assert np.isnan(scores[1, 1])


def test_pair_table_decays_by_half_life_and_keeps_last_times() -> None:
    day = 86_400.0
    table = table_from_events(
        10 * day, np.array([0, 0, 0]), np.array([4, 4, 4]),
        np.array([0, 3, 0], dtype=np.int8), np.array([6 * day, 9 * day, 11 * day]))
    assert table.keys.tolist() == [4]  # the event after the reference time is left out
    assert table.column("d4")[0] == pytest.approx(2 ** -1 + 2 ** -0.25)
    assert table.column("purchases")[0] == 1
    assert table.column("last_purchase_t")[0] == 9 * day
    assert table.column("s14")[0] == pytest.approx(2 ** (-4 / 14) + 2 ** (-1 / 14))


def test_global_peak_hours_sum_over_users() -> None:
    counts = np.zeros((2, 24))
    counts[0, 20], counts[1, 8], counts[1, 20], counts[0, 12] = 3, 4, 2, 1
    assert global_peak_hours(counts, 2).tolist() == [20, 8]
