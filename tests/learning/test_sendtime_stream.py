"""The send-time profile follows new engagement between trainings, with the model's own
shrinkage (``triggers.learning.sendtime_stream``)."""

from __future__ import annotations

import numpy as np
import pytest

from triggers.learning.coding import APP_OPEN, CLICK, OPEN, VIEW, VISIT
from triggers.learning.scoring import SendTimeScorer
from triggers.learning.sendtime import (
    HOURS,
    SendTimeAccumulator,
    SendTimeModel,
    SendTimeParams,
    fit,
    posterior,
)
from triggers.learning.sendtime_stream import added, follow, recent_counts

DAY = 86_400.0
UNTIL = 1_796_083_200.0  # 2026-12-01 00:00 UTC
MIN_EVENTS = 5


def _model(users: int = 60, days: int = 21) -> tuple[SendTimeModel, SendTimeScorer]:
    """Users ``u<n>`` open the app twice a day, mostly within an hour of their habit
    (UTC: 08:00, 13:00, 18:00, 23:00, 04:00... every hour has users), a quarter of the
    time at random."""
    rng = np.random.default_rng(5)
    user, hour, ts = [], [], []
    for u in range(users):
        habit = (8 + 5 * u) % 24
        for day in range(days):
            for _ in range(2):
                h = int(rng.integers(24)) if rng.random() < 0.25 else \
                    (habit + int(rng.choice([-1, 0, 0, 1]))) % 24
                user.append(u)
                hour.append(h)
                ts.append(UNTIL - (day + 1) * DAY + h * 3600 + int(rng.integers(3600)))
    params = SendTimeParams()
    acc = SendTimeAccumulator(UNTIL, params)
    acc.add(np.array(user), np.array(hour), np.zeros(len(user), np.int64),
            np.full(len(user), APP_OPEN, np.int8), np.array(ts))
    model = fit(acc.trimmed(users), params)
    return model, SendTimeScorer.build(model, [f"u{u}" for u in range(users)])


def _hours(n: int, hour: int) -> np.ndarray:
    counts = np.zeros(HOURS, np.float32)
    counts[hour] = n
    return counts


def test_new_opens_add_to_the_trained_counts_with_the_models_shrinkage() -> None:
    model, scorer = _model()
    followed = follow(scorer, {"u0": _hours(6, 21)}, frozenset({"u0"}), MIN_EVENTS)
    expected = posterior(model.segments, (model.hour_counts[0] + _hours(6, 21))[None, :],
                         model.concentration, model.smoothing)[0]
    assert followed.hour_profile("u0") == pytest.approx(expected, rel=1e-5)
    assert followed.hour_profile("u0")[21] > scorer.hour_profile("u0")[21]


def test_new_opens_move_the_best_hour_once_they_outweigh_the_shrinkage() -> None:
    model, scorer = _model()
    assert scorer.best_hours("u0", 1) == [8]
    assert model.hour_counts[0].sum() == 42  # three weeks, twice a day
    a_few = follow(scorer, {"u0": _hours(10, 21)}, frozenset(), MIN_EVENTS)
    as_many = follow(scorer, {"u0": _hours(40, 21)}, frozenset(), MIN_EVENTS)
    assert a_few.best_hours("u0", 1) == [8]
    assert as_many.best_hours("u0", 1) == [21]
    assert as_many.open_chance("u0", 21) == 1.0
    assert as_many.open_chance("u0", 8) < 1.0


def test_users_without_new_engagement_read_the_trained_profile() -> None:
    _, scorer = _model()
    followed = follow(scorer, {"u0": _hours(3, 21)}, frozenset({"u1"}), MIN_EVENTS)
    assert followed.hour_profile("u1").tolist() == scorer.hour_profile("u1").tolist()
    assert followed.open_chance("u1", 19) == scorer.open_chance("u1", 19)
    assert followed.best_hours("nobody", 2) == scorer.best_hours("nobody", 2)


def test_a_new_user_reaches_enough_data_with_opens_since_the_training() -> None:
    _, scorer = _model()
    few = follow(scorer, {"new": _hours(MIN_EVENTS - 1, 12)}, frozenset(), MIN_EVENTS)
    enough = follow(scorer, {"new": _hours(MIN_EVENTS, 12)}, frozenset({"u0"}), MIN_EVENTS)
    assert "new" not in few.enough
    assert enough.enough == {"u0", "new"}


def test_only_app_opens_clicks_and_push_opens_are_counted() -> None:
    counts = recent_counts([("li", APP_OPEN, 21), ("li", OPEN, 21), ("li", CLICK, 9),
                            ("li", VIEW, 9), ("li", VISIT, 10), ("sam", VIEW, 3)])
    assert set(counts) == {"li"}
    assert (counts["li"][21], counts["li"][9], counts["li"].sum()) == (2.0, 1.0, 3.0)


def test_added_counts_sum_per_user_and_change_neither_input() -> None:
    first = {"li": _hours(1, 21)}
    second = {"li": _hours(2, 21), "sam": _hours(1, 8)}
    both = added(first, second)
    assert (both["li"][21], both["sam"][8]) == (3.0, 1.0)
    assert (first["li"][21], second["li"][21]) == (1.0, 2.0)
