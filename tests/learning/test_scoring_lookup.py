"""The scorers' decision-path reads (one category's score by a bisect in the user's row,
open chances precomputed at load) give exactly what reading the arrays one numpy scalar
at a time gives: the same floats, so the same decisions; and they allocate nothing the
cyclic garbage collector tracks."""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from server.models import TenantModels
from triggers.learning.explain import Explanations
from triggers.learning.scoring import POPULAR_REASON, InterestScorer, SendTimeScorer

NOON_UTC = 1_765_108_800.0  # 2025-12-07 12:00 UTC
CATEGORIES = ["mother_baby", "books", "electronics", "groceries", "sports", "beauty",
              "garden", "toys"]


def array_scores(scorer: InterestScorer, user_id: str) -> dict[str, float]:
    """The user's scores read element by element from the arrays (the first version)."""
    row = scorer.rows.get(user_id)
    if row is None:
        return dict(scorer.cold)
    lo, hi = int(scorer.offsets[row]), int(scorer.offsets[row + 1])
    return {scorer.categories[int(c)]: float(s)
            for c, s in zip(scorer.category_index[lo:hi], scorer.scores_flat[lo:hi],
                            strict=True)}


def array_open_chance(scorer: SendTimeScorer, user_id: str, hour: int) -> float:
    """The open chance computed from the user's profile row (the first version)."""
    row = scorer.rows.get(user_id)
    profile = scorer.population if row is None else scorer.profiles[row]
    return float(profile[hour] / max(float(profile.max()), 1e-12))


@st.composite
def interest_scorers(draw: st.DrawFn) -> InterestScorer:
    users = draw(st.integers(1, 6))
    lengths = [draw(st.integers(0, len(CATEGORIES))) for _ in range(users)]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    index = np.concatenate([rng.permutation(len(CATEGORIES))[:n] for n in lengths])
    scores = rng.uniform(0, 1, len(index))
    scores[::3] = draw(st.sampled_from([0.0, 0.6, 1.0]))
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    return InterestScorer(CATEGORIES, {f"u{i}": i for i in range(users)}, offsets,
                          index.astype(np.int32), scores.astype(np.float32),
                          {"groceries": 0.31, "books": 0.2})


@st.composite
def sendtime_scorers(draw: st.DrawFn) -> SendTimeScorer:
    users = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    profiles: npt.NDArray[np.float32] = rng.dirichlet(np.ones(24), users).astype(np.float32)
    if draw(st.booleans()):
        profiles[0] = 0.0  # a user with no weight anywhere: every chance 0
    if draw(st.booleans()):
        profiles[-1] = np.float32(1 / 24)  # a flat profile: every chance 1
    return SendTimeScorer({f"u{i}": i for i in range(users)}, profiles,
                          profiles.mean(axis=0, dtype=np.float32))


@settings(max_examples=150, deadline=None)
@given(interest_scorers(), st.integers(0, 7))
def test_one_category_read_equals_the_array_read(scorer: InterestScorer, user: int) -> None:
    user_id = f"u{user}" if user < len(scorer.rows) else "stranger"
    expected = array_scores(scorer, user_id)
    fast = scorer.user_scores(user_id)
    for category in [*CATEGORIES, "no_such_category"]:
        assert fast.get(category, 0.0) == expected.get(category, 0.0)
        assert scorer.score(user_id, category) == expected.get(category, 0.0)
        assert (category in fast) == (category in expected)
    assert dict(fast) == expected == scorer.scores(user_id)
    assert len(fast) == len(expected)


@settings(max_examples=150, deadline=None)
@given(interest_scorers(), st.integers(0, 7), st.permutations([*CATEGORIES, "no_such_category"]))
def test_the_users_view_reads_what_the_scorer_reads_in_any_order(
        scorer: InterestScorer, user: int, asked: list[str]) -> None:
    # The view looks the user's row up at its first read, whichever that is, and reads
    # the scores from the row itself.
    user_id = f"u{user}" if user < len(scorer.rows) else "stranger"
    facts = TenantModels(scorer).facts(user_id, NOON_UTC)
    if user % 2:
        assert facts.interest_base_rate == scorer.base_rate(user_id)
    for category in asked:
        assert facts.interest(category) == scorer.score(user_id, category)
        assert facts.why_interest(category) is None  # no ranker, no explanations
    assert facts.interest_base_rate == scorer.base_rate(user_id)


@settings(max_examples=150, deadline=None)
@given(sendtime_scorers(), st.integers(0, 5), st.integers(0, 23))
def test_precomputed_open_chance_equals_the_profile_division(
        scorer: SendTimeScorer, user: int, hour: int) -> None:
    user_id = f"u{user}" if user < len(scorer.rows) else "stranger"
    assert scorer.open_chance(user_id, hour) == array_open_chance(scorer, user_id, hour)


def test_a_missing_category_reads_as_zero_and_a_stranger_gets_the_cold_ranking() -> None:
    scorer = InterestScorer(CATEGORIES, {"anna": 0}, np.array([0, 2], dtype=np.int64),
                            np.array([0, 1], dtype=np.int32),
                            np.array([0.83, 0.4], dtype=np.float32), {"groceries": 0.31})
    anna = scorer.user_scores("anna")
    assert anna.get("mother_baby") == float(np.float32(0.83))
    assert anna.get("toys", 0.0) == 0.0
    assert "toys" not in anna
    assert dict(scorer.user_scores("stranger")) == {"groceries": 0.31}


def collections_triggered(read: Callable[[], object], times: int = 200) -> int:
    """Collections started while ``read`` runs ``times`` times with the young
    generation's threshold at 1 and one object already counted: any allocation the
    collector counts toward its next collection (an object of a class, say; not a list
    or tuple reused from CPython's free lists), even one freed at once, starts one."""
    started = [0]
    reading = [False]

    def count(phase: str, info: dict[str, int]) -> None:
        started[0] += phase == "start" and reading[0]

    threshold = gc.get_threshold()
    gc.callbacks.append(count)
    gc.collect()
    gc.set_threshold(1)
    try:
        anchor: list[object] = []
        reading[0] = True
        for _ in range(times):
            read()
        reading[0] = False
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(count)
    del anchor
    return started[0]


def scorers_of_two_users() -> tuple[InterestScorer, SendTimeScorer]:
    rows = {"anna": 0, "ben": 1}
    interests = InterestScorer(CATEGORIES, rows, np.array([0, 3, 5], dtype=np.int64),
                               np.array([4, 0, 6, 1, 3], dtype=np.int32),
                               np.array([0.9, 0.7, 0.2, 0.6, 0.5], dtype=np.float32),
                               {"groceries": 0.31})
    profiles = np.random.default_rng(3).dirichlet(np.ones(24), 2).astype(np.float32)
    return interests, SendTimeScorer(rows, profiles, profiles.mean(axis=0))


def test_the_probe_sees_a_short_lived_view() -> None:
    interests, _ = scorers_of_two_users()
    assert collections_triggered(lambda: interests.user_scores("anna")) > 0


def test_score_reads_allocate_nothing_the_collector_tracks() -> None:
    interests, sendtime = scorers_of_two_users()
    assert collections_triggered(lambda: interests.score("anna", "garden")) == 0
    assert collections_triggered(lambda: interests.score("ben", "toys")) == 0
    assert collections_triggered(lambda: interests.row_score(1, "books")) == 0
    assert collections_triggered(lambda: sendtime.open_chance("ben", 19)) == 0


def test_row_score_finds_each_kept_category_and_nothing_else() -> None:
    interests, _ = scorers_of_two_users()
    assert interests.row_score(0, "sports") == float(np.float32(0.9))
    assert interests.row_score(0, "mother_baby") == float(np.float32(0.7))
    assert interests.row_score(0, "garden") == float(np.float32(0.2))
    assert interests.row_score(1, "books") == float(np.float32(0.6))
    assert interests.row_score(1, "sports") is None
    assert interests.row_score(0, "no_such_category") is None
    assert list(interests.scores("anna")) == ["sports", "mother_baby", "garden"]



def test_the_decision_path_reads_one_interest_and_the_chance_without_allocating() -> None:
    interests, sendtime = scorers_of_two_users()
    facts = TenantModels(interests, sendtime).facts("anna", NOON_UTC)
    assert facts.interest("sports") == float(np.float32(0.9))
    assert facts.interest("toys") == 0.0
    assert facts.open_chance == sendtime.open_chance("anna", 12)
    assert collections_triggered(lambda: facts.interest("mother_baby")) == 0
    assert collections_triggered(lambda: facts.interest("toys")) == 0
    assert collections_triggered(lambda: facts.open_chance) == 0


def test_without_models_the_decision_path_reads_nothing() -> None:
    facts = TenantModels().facts("anna", NOON_UTC)
    assert facts.interest("sports") is None
    assert facts.open_chance is None


def test_the_users_view_explains_as_the_scorer_does() -> None:
    interests, _ = scorers_of_two_users()
    features = np.array([[0, 1, -1], [2, -1, -1], [1, 0, 2], [-1, -1, -1], [3, -1, -1]],
                        dtype=np.int8)
    contributions = np.array([[0.9, -0.3, 0], [0.4, 0, 0], [0.2, 0.1, -0.05], [0, 0, 0],
                              [-0.7, 0, 0]], dtype=np.float16)
    values = np.array([[4, np.nan, 0], [1.5, 0, 0], [2, 3, 7], [0, 0, 0], [0.25, 0, 0]],
                      dtype=np.float16)
    explanations = Explanations(features, contributions, values)
    explained = dataclasses.replace(interests, explanations=explanations)
    for user_id in ("anna", "ben", "stranger"):
        facts = TenantModels(explained).facts(user_id, NOON_UTC)
        for category in [*CATEGORIES, "no_such_category"]:
            assert facts.why_interest(category) == explained.explain(user_id, category)
    assert TenantModels(explained).facts("anna", NOON_UTC).why_interest("sports") == (
        explanations.describe(0))
    assert TenantModels(explained).facts("stranger", NOON_UTC).why_interest(
        "groceries") == POPULAR_REASON
