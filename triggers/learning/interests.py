"""The interest model: for each user and category, the probability that the user engages
with the category (any event on it) in the next period.

Fitting is a time split inside the fit window (:mod:`.accumulate`): at three cutoffs a
period apart (up to eight for a shop with few users: :func:`cutoff_count`), candidate
pairs get :mod:`.features` as of the cutoff and the label "engaged in the following
period". A LightGBM binary classifier learns them (LightGBM: a
well-kept gradient-boosting library, fast on one core, with NaN-aware splits, and a plain
text model format, so the model file holds no pickled code). The most recent cutoff is held
out first: the ranker trained on the older cutoffs is compared there with both baselines
(recall@K), the baselines' half-lives are tuned there, and the ranker is promoted only if
it does at least as well as both baselines on at least ``min_holdout_users`` users (the
service's rule, :func:`~triggers.learning.promotion.verdict`); otherwise predictions come
from the baseline that did better there (recency-frequency when nothing was judged). The
promoted ranker is then retrained on every cutoff.

Users with no history before the prediction get the popularity baseline (its tuned
half-life), scored by the category's share of recent engagement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import lightgbm as lgb
import numpy as np

from triggers.learning.accumulate import CutoffState, InterestAccumulator

__all__ = ["InterestAccumulator", "InterestModel", "InterestParams", "accumulator",
           "cutoff_count", "fit", "rank", "sample_rate", "training_cutoffs"]
from triggers.learning.baselines import (
    HALF_LIFE_CHOICES,
    popularity_ranking,
    recency_frequency_ranking,
)
from triggers.learning.coding import DAY_S, DEFAULT_PERIOD_D, FloatArray, IntArray
from triggers.learning.features import (
    FEATURES,
    Context,
    candidate_keys,
    context,
    pair_features,
    popular_categories,
)
from triggers.learning.metrics import recall_at_k
from triggers.learning.pairs import DAY_BITS, KEY_STRIDE, PairTable
from triggers.learning.promotion import verdict
from triggers.learning.ranking import top_per_user, truth_sets

EVAL_K = 5
"""Recall@5 of next-period categories: the figure models are judged and promoted on."""


@dataclass(frozen=True)
class InterestParams:
    """Everything that shapes a fit; recorded in the model file."""

    period_d: float = DEFAULT_PERIOD_D
    """The "next period" that labels and predictions are about."""
    min_cutoffs: int = 3
    max_cutoffs: int = 8
    max_train_users: int = 10_000
    """Users sampled for training at each cutoff: bounds fit time on any file size."""
    user_periods: int = 30_000
    """Users times cutoffs that training aims at: a shop with fewer users than
    ``user_periods / min_cutoffs`` learns from more cutoffs (further back), up to
    ``max_cutoffs``, so that it has as many examples as a larger one."""
    min_holdout_users: int = 100
    """Fewer held-out users than this cannot show the ranker is better: the baseline serves."""
    popular_candidates: int = 20
    rounds: int = 150
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 50
    seed: int = 0

    @property
    def period_s(self) -> float:
        return self.period_d * DAY_S


def cutoff_count(n_users: int, params: InterestParams) -> int:
    """Cutoffs a fit of ``n_users`` users aims at (fewer when the history is short):
    ``min_cutoffs`` from ``user_periods / min_cutoffs`` users on (training samples
    ``max_train_users`` at each), more for fewer users, at most ``max_cutoffs``.

    On the Complete Journey (2,469 households, eight cutoffs instead of three)
    recall@5 over the 29 weekly cutoffs went from 1.093x to 1.098x the better baseline
    (BENCHMARKS.md)."""
    wanted = -(-params.user_periods // max(1, min(n_users, params.max_train_users)))
    return max(params.min_cutoffs, min(params.max_cutoffs, wanted))


def training_cutoffs(first_t: float, until_t: float, n_users: int,
                     params: InterestParams) -> list[float]:
    """Cutoffs one, two, ... periods before ``until_t`` (:func:`cutoff_count` of them),
    the most recent first. The first ``min_cutoffs`` need a day of history before them
    (the ranker needs two: one to train on, one to be judged on; a window of two periods
    and a day); the ones a small shop adds need as much history as the features read
    (``DAY_BITS`` days of active days), so that they teach from features like those at
    ``until_t``, not from truncated ones."""
    out = []
    for j in range(1, cutoff_count(n_users, params) + 1):
        cutoff = until_t - j * params.period_s
        history_d = DAY_BITS if j > params.min_cutoffs else 1
        if cutoff - history_d * DAY_S < first_t:
            break
        out.append(cutoff)
    return out


def accumulator(first_t: float, until_t: float, n_users: int,
                params: InterestParams) -> InterestAccumulator:
    """The accumulator of a fit until ``until_t`` on ``n_users`` users' events from
    ``first_t`` on: the state at ``until_t`` and at each training cutoff."""
    return InterestAccumulator(until_t, training_cutoffs(first_t, until_t, n_users, params),
                               params.period_s, sample_rate(n_users, params))


def sample_rate(n_users: int, params: InterestParams) -> float:
    """The share of users kept for training."""
    return 1.0 if n_users <= params.max_train_users else params.max_train_users / n_users


@dataclass(frozen=True)
class InterestModel:
    """A fitted interest model: the state at ``until`` and the ranker (or none)."""

    params: InterestParams
    categories: list[str]
    state: PairTable
    booster: str | None
    """LightGBM's text model; ``None`` when a baseline serves (:attr:`serving`)."""
    rf_half_life: int
    pop_half_life: int
    evaluation: dict[str, float] = field(default_factory=dict)

    @property
    def until_t(self) -> float:
        return self.state.ref_t

    @cached_property
    def ranker(self) -> lgb.Booster | None:
        """:attr:`booster` parsed (once per model: a file's model is read once and ranks
        users several times), ``None`` without one."""
        return lgb.Booster(model_str=self.booster) if self.booster else None

    def context(self) -> Context:
        """The summaries its features need, of its state and for its period."""
        return context(self.state, len(self.categories), self.params.period_d)

    @property
    def serving(self) -> str:
        """What ranks the users with history: ``"ranker"``, or the baseline that did
        better on held-out time, ``"popularity"`` or ``"recency_frequency"`` (also when
        nothing was judged)."""
        if self.booster:
            return "ranker"
        judged = self.evaluation
        if judged.get("popularity", -np.inf) > judged.get("recency_frequency", np.inf):
            return "popularity"
        return "recency_frequency"


Progress = Callable[[str], None]


def fit(acc: InterestAccumulator, categories: list[str], params: InterestParams,
        progress: Progress | None = None) -> InterestModel:
    """Fit on what an accumulator gathered (see the module docstring)."""
    say = progress or (lambda _step: None)
    n_cat = len(categories)
    examples: list[_Examples] = []
    for state in acc.cutoffs:
        say(f"features at cutoff {len(examples) + 1}/{len(acc.cutoffs)}")
        examples.append(_examples(state, n_cat, params))
    evaluation: dict[str, float] = {}
    rf_hl, pop_hl = 2, 2
    booster_text: str | None = None
    if examples:
        holdout = examples[0]
        rf_hl, pop_hl, evaluation = _tune_baselines(holdout)
        older = [e for e in examples[1:] if len(e.keys)]
        if older and len(holdout.users) >= params.min_holdout_users:
            say("training on older cutoffs, validating on the latest")
            trial = _train(older, params)
            evaluation["model"] = _holdout_recall(holdout, trial)
        promoted = (len(holdout.users) >= params.min_holdout_users
                    and verdict("interests", evaluation)[0])
        if promoted:
            say("training on every cutoff")
            booster_text = _train(examples, params).model_to_string()
        evaluation["promoted"] = float(promoted)
    return InterestModel(params, categories, acc.final, booster_text, rf_hl, pop_hl, evaluation)


@dataclass(frozen=True)
class _Examples:
    ctx: Context
    users: IntArray
    keys: IntArray
    x: Any
    y: Any
    truth: list[set[int]]


def _examples(state: CutoffState, n_cat: int, params: InterestParams) -> _Examples:
    ctx = context(state.table, n_cat, params.period_d)
    labels = state.labels()
    users = np.unique(labels // KEY_STRIDE)
    keys = candidate_keys(ctx, users, popular_categories(ctx, params.popular_candidates))
    x = pair_features(ctx, keys, state.cutoff_t)
    y = np.isin(keys, labels).astype(np.float32)
    return _Examples(ctx, users, keys, x, y, truth_sets(users, labels))


def _train(examples: list[_Examples], params: InterestParams) -> lgb.Booster:
    x = np.concatenate([e.x for e in examples])
    y = np.concatenate([e.y for e in examples])
    data = lgb.Dataset(x, label=y, feature_name=list(FEATURES), free_raw_data=True,
                       params={"verbose": -1, "max_bin": 63})
    config = {
        "objective": "binary", "max_bin": 63, "learning_rate": params.learning_rate,
        "num_leaves": params.num_leaves, "min_data_in_leaf": params.min_data_in_leaf,
        "feature_fraction": 0.9, "bagging_fraction": 0.8, "bagging_freq": 1,
        "lambda_l2": 1.0, "num_threads": 1, "seed": params.seed, "deterministic": True,
        "verbose": -1,
    }
    return lgb.train(config, data, num_boost_round=params.rounds)


def ranker_columns(booster: lgb.Booster, x: Any) -> Any:
    """The columns of a feature matrix that ``booster`` reads: every one of
    :data:`FEATURES`, or the first ones for a ranker fitted before the last were added
    (model files check that its feature names are such a prefix)."""
    return x[:, :booster.num_feature()]


def _holdout_recall(holdout: _Examples, booster: lgb.Booster) -> float:
    scores = np.asarray(booster.predict(holdout.x), dtype=np.float64)
    cats, _ = top_per_user(holdout.users, holdout.keys, scores, EVAL_K)
    return recall_at_k(cats, holdout.truth)


def _tune_baselines(holdout: _Examples) -> tuple[int, int, dict[str, float]]:
    """The baselines' best half-lives on the held-out cutoff, and their recall there."""
    rf = {i: recall_at_k(recency_frequency_ranking(holdout.ctx, holdout.users, EVAL_K, i)[0],
                         holdout.truth) for i in HALF_LIFE_CHOICES}
    pop = {i: recall_at_k(popularity_ranking(holdout.ctx, holdout.users, EVAL_K, i)[0],
                          holdout.truth) for i in HALF_LIFE_CHOICES}
    rf_best = max(rf, key=lambda i: (rf[i], -i))
    pop_best = max(pop, key=lambda i: (pop[i], -i))
    return rf_best, pop_best, {"recency_frequency": rf[rf_best], "popularity": pop[pop_best],
                               "holdout_users": float(len(holdout.users))}


PREDICT_BATCH_USERS = 20_000
"""Users scored at once: bounds the candidate matrix whatever the number of users."""


def rank(model: InterestModel, users: IntArray, at_t: float, k: int,
         ctx: Context | None = None) -> tuple[IntArray, FloatArray]:
    """Each user's top ``k`` categories and scores as of ``at_t``, best first.

    ``users`` are indexes into the model's users (sorted, unique); an index beyond the
    model's users is a user with no history, who gets the popular categories (as every
    user does when popularity serves, :attr:`InterestModel.serving`). Padded with
    ``-1``/``nan`` when fewer than ``k`` categories exist.
    """
    ctx = ctx or model.context()
    booster = model.ranker
    cats = np.full((len(users), k), -1, dtype=np.int64)
    scores = np.full((len(users), k), np.nan)
    popular = popular_categories(ctx, max(model.params.popular_candidates, k))
    if model.serving == "popularity":
        cold = np.ones(len(users), dtype=bool)
    else:
        cold = ~np.isin(users, ctx.user_ids)
    if cold.any():
        c, s = popularity_ranking(ctx, users[:1], k, model.pop_half_life)
        cats[cold], scores[cold] = c[0], s[0]
    warm = users[~cold]
    warm_cats = np.full((len(warm), k), -1, dtype=np.int64)
    warm_scores = np.full((len(warm), k), np.nan)
    for lo in range(0, len(warm), PREDICT_BATCH_USERS):
        batch = warm[lo:lo + PREDICT_BATCH_USERS]
        if booster is None:
            c, s = recency_frequency_ranking(ctx, batch, k, model.rf_half_life)
        else:
            keys = candidate_keys(ctx, batch, popular)
            x = pair_features(ctx, keys, at_t)
            scores_of = np.asarray(booster.predict(ranker_columns(booster, x)), np.float64)
            c, s = top_per_user(batch, keys, scores_of, k)
        warm_cats[lo:lo + len(batch)], warm_scores[lo:lo + len(batch)] = c, s
    cats[~cold], scores[~cold] = warm_cats, warm_scores
    return cats, scores
