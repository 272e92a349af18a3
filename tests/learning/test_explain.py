"""Why the interest ranker scores a pair as it does: path contributions that add up to the
ranker's raw score, kept compactly by the scorer and said in words."""

# ruff: noqa: F811 - the tests take test_models' fitted model as a fixture (fitted once)

from __future__ import annotations

import pickle

import lightgbm as lgb
import numpy as np

from tests.learning.test_models import UNTIL, Data, data, interest_model  # noqa: F401
from triggers.learning import interests
from triggers.learning.explain import (
    FEATURE_NAMES,
    Explanations,
    PathAttribution,
    explain_pairs,
)
from triggers.learning.features import FEATURES, pair_features
from triggers.learning.pairs import pair_keys
from triggers.learning.scoring import POPULAR_REASON, InterestScorer


def _top_pairs(model: interests.InterestModel, users: int, k: int) -> tuple[np.ndarray, ...]:
    index = np.arange(users, dtype=np.int64)
    cats, scores = interests.rank(model, index, UNTIL, k)
    return np.repeat(index, k), cats.ravel(), scores.ravel()


def test_contributions_and_bias_add_up_to_the_rankers_raw_score(
        interest_model: interests.InterestModel) -> None:
    booster = lgb.Booster(model_str=interest_model.booster)
    users, cats, scores = _top_pairs(interest_model, 200, 5)
    ctx = interest_model.context()
    x = pair_features(ctx, pair_keys(users, cats), UNTIL)
    attribution = PathAttribution.of(booster)
    contributions = attribution.contributions(booster, x)
    raw = contributions.sum(axis=1) + attribution.bias
    np.testing.assert_allclose(raw, booster.predict(x, raw_score=True), atol=1e-9)
    ranked = np.isin(users, ctx.user_ids)  # the others have no history: popularity
    np.testing.assert_allclose(1 / (1 + np.exp(-raw[ranked])), scores[ranked], rtol=1e-6)


def test_the_largest_path_contribution_is_mostly_among_treeshaps_top_three(
        interest_model: interests.InterestModel) -> None:
    booster = lgb.Booster(model_str=interest_model.booster)
    users, cats, _ = _top_pairs(interest_model, 100, 5)
    ctx = interest_model.context()
    x = pair_features(ctx, pair_keys(users, cats), UNTIL)
    path = PathAttribution.of(booster).contributions(booster, x)
    shap = np.asarray(booster.predict(x, pred_contrib=True))[:, :-1]
    top_shap = np.argsort(-np.abs(shap), axis=1)[:, :3]
    agree = (top_shap == np.argmax(np.abs(path), axis=1)[:, None]).any(axis=1)
    assert agree.mean() >= 0.7


def test_kept_contributions_are_the_largest_with_the_features_values(
        interest_model: interests.InterestModel) -> None:
    users, cats, _ = _top_pairs(interest_model, 20, 3)
    ctx = interest_model.context()
    kept = explain_pairs(interest_model.booster or "", ctx, users, cats, UNTIL)
    booster = lgb.Booster(model_str=interest_model.booster)
    x = pair_features(ctx, pair_keys(users, cats), UNTIL)
    full = PathAttribution.of(booster).contributions(booster, x)
    largest = np.sort(np.abs(full), axis=1)[:, ::-1][:, :3]
    np.testing.assert_allclose(np.abs(kept.contributions.astype(float)), largest, rtol=2e-3,
                               atol=2e-3)
    rows = np.arange(len(x))[:, None]
    features = kept.features.astype(np.int64)
    np.testing.assert_allclose(kept.values.astype(float), x[rows, features], rtol=2e-3)


def test_every_feature_has_a_readable_name() -> None:
    assert set(FEATURE_NAMES) == set(FEATURES)
    assert all("_" not in name and "," not in name for name in FEATURE_NAMES.values())


def test_every_float16_is_worded_as_formatting_the_number_words_it() -> None:
    # describe reads a number's words from a memo indexed by its float16 bits: all 65,536
    # patterns, nan ("none"), infinities, subnormals and -0.0 (its sign kept) included.
    numbers = np.arange(65_536, dtype=np.uint16).view(np.float16)
    contributions = np.roll(numbers, 1)
    explained = Explanations(np.zeros((len(numbers), 1), dtype=np.int8),
                             contributions.reshape(-1, 1), numbers.reshape(-1, 1))
    label = FEATURE_NAMES[FEATURES[0]]
    for pair, (value, contribution) in enumerate(zip(numbers.tolist(),
                                                     contributions.tolist(), strict=True)):
        shown = "none" if np.isnan(value) else f"{value:.3g}"
        assert explained.describe(pair) == f"{label} {shown} {contribution:+.2f}"


def test_a_pair_without_contributions_has_no_words() -> None:
    explained = Explanations(np.array([[2, -1, -1], [-1, -1, -1]], dtype=np.int8),
                             np.array([[-0.0, 0, 0], [0, 0, 0]], dtype=np.float16),
                             np.array([[np.nan, 0, 0], [0, 0, 0]], dtype=np.float16))
    assert explained.describe(0) == f"{FEATURE_NAMES[FEATURES[2]]} none -0.00"
    assert explained.describe(1) is None


def test_explanations_pickle_after_describing() -> None:
    explained = Explanations(np.array([[1, 0, -1]], dtype=np.int8),
                             np.array([[0.5, -0.25, 0]], dtype=np.float16),
                             np.array([[3, 7, 0]], dtype=np.float16))
    said = explained.describe(0)
    loaded = pickle.loads(pickle.dumps(explained))
    for name in ("features", "contributions", "values"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(explained, name))
    assert loaded.describe(0) == said


def test_the_scorer_says_why_in_words(data: Data,
                                      interest_model: interests.InterestModel) -> None:
    ids = data.users.ids
    scorer = InterestScorer.build(interest_model, ids, UNTIL, top=5)
    favourite = max(scorer.scores(ids[0]).items(), key=lambda item: item[1])[0]
    said = scorer.explain(ids[0], favourite)
    assert said is not None
    parts = said.split(", ")
    assert 1 <= len(parts) <= 3
    names = sorted(FEATURE_NAMES.values(), key=len, reverse=True)
    for part in parts:
        name = next(n for n in names if part.startswith(n + " "))
        value, contribution = part[len(name) + 1:].split(" ")
        assert value == "none" or float(value) == float(value)
        assert contribution[0] in "+-" and abs(float(contribution)) < 20
    cold_favourite = next(iter(scorer.scores("stranger")))
    assert scorer.explain("stranger", cold_favourite) == POPULAR_REASON
    outside = next(c for c in interest_model.categories if c not in scorer.scores(ids[0]))
    assert scorer.explain(ids[0], outside) is None
