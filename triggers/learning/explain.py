"""Why the interest ranker scores a (user, category) pair as it does: per-feature
contributions, kept compactly for the decision path's reason lines. Pure.

Contributions are the ranker's raw score (log-odds) split along each tree's decision path
(the "tree interpreter" attribution): every split adds the change in the node's expected
value to its feature, so a pair's contributions plus the bias (the trees' root values) sum
exactly to the raw score, and ``sigmoid(raw)`` is the interest score. LightGBM's own
``pred_contrib`` (TreeSHAP) gives the same additivity, but costs 150-170x a raw prediction
(0.6-0.7 ms a pair on this machine): too slow to explain every user's top categories
when a model is loaded. The path attribution reads the leaf each tree sends the pair to
(``pred_leaf``) and adds up a table built once per model: 2-4x a raw prediction
(``tests/bench/bench_explain.py``).

:class:`Explanations` keeps each explained pair's :data:`TOP_FEATURES` largest
contributions (by size, either sign): the feature's index (``int8``), its contribution
and its value (``float16``; ``nan`` where the feature does not apply, shown as "none"): 15
bytes a pair.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from triggers.learning.coding import FloatArray, IntArray
from triggers.learning.features import FEATURES, Context, pair_features
from triggers.learning.pairs import pair_keys

TOP_FEATURES = 3
"""Contributions kept per pair: a reason line names two or three."""
BATCH_PAIRS = 50_000
"""Pairs attributed at once: bounds the ``(pairs, features)`` matrices."""

FEATURE_NAMES: Mapping[str, str] = {
    "d1": "engagement with it (half-life 1 day)",
    "d4": "engagement with it (half-life 4 days)",
    "d14": "engagement with it (half-life 14 days)",
    "d60": "engagement with it (half-life 60 days)",
    "purchase_d30": "purchases of it (half-life 30 days)",
    "cart_d7": "adds to cart of it (half-life 7 days)",
    "log_events": "events on it (log)",
    "purchases": "purchases of it",
    "s4": "sessions on it (half-life 4 days)",
    "s14": "sessions on it (half-life 14 days)",
    "s60": "sessions on it (half-life 60 days)",
    "active_days_7": "days active on it (last week)",
    "active_days_28": "days active on it (last 4 weeks)",
    "active_days_52": "days active on it (last 52 days)",
    "days_since_last": "days since last engaged with it",
    "days_since_purchase": "days since last bought it",
    "purchase_cycle_d": "days between purchases of it",
    "purchase_overdue": "purchase cycles since the last",
    "share_d14": "share of the user's engagement (half-life 14 days)",
    "share_d60": "share of the user's engagement (half-life 60 days)",
    "rank_in_user": "rank among the user's categories",
    "user_d14": "user's engagement (half-life 14 days)",
    "user_d60": "user's engagement (half-life 60 days)",
    "user_categories": "categories the user engaged with",
    "pop_d4": "popularity (half-life 4 days)",
    "pop_d14": "popularity (half-life 14 days)",
    "pop_d60": "popularity (half-life 60 days)",
    "trend_d1_d14": "popularity trend (half-life 1 day over 14 days)",
    "trend_d4_d60": "popularity trend (half-life 4 days over 60 days)",
    "pop_users": "share of users engaged with it",
    "cooccurrence": "co-occurrence with the user's categories",
    "affinity": "theme affinity with the user's categories",
    "in_history": "in the user's history",
    "transition": "users in the user's last categories went on to it",
    "transition_new": "users in the user's last categories took it up next",
}
"""Each feature of :data:`~triggers.learning.features.FEATURES` in words: the one table
that reason lines read (no commas: a line separates features with them)."""
_LABELS = tuple(FEATURE_NAMES[name] for name in FEATURES)


@dataclass(frozen=True)
class PathAttribution:
    """One booster's attribution tables: per tree, each leaf's contributions."""

    bias: float
    leaves: list[FloatArray]
    """Per tree, ``(leaves, features)``: what the path to each leaf adds to each feature."""

    @classmethod
    def of(cls, booster: lgb.Booster) -> PathAttribution:
        bias, leaves = 0.0, []
        for tree in booster.dump_model()["tree_info"]:
            root = tree["tree_structure"]
            table = np.zeros((max(int(tree["num_leaves"]), 1), len(FEATURES)))
            if "split_feature" not in root:
                bias += float(root["leaf_value"])
            else:
                bias += float(root["internal_value"])
                _fill_paths(root, table)
            leaves.append(table)
        return cls(bias, leaves)

    def contributions(self, booster: lgb.Booster, x: npt.NDArray[Any]) -> FloatArray:
        """``(pairs, features)`` contributions of the rows of ``x``; each row plus
        :attr:`bias` sums to the booster's raw score."""
        columns = x[:, :booster.num_feature()]  # a ranker fitted on fewer features
        leaf = np.asarray(booster.predict(columns, pred_leaf=True), dtype=np.int64).reshape(
            len(x), len(self.leaves))
        out = np.zeros((len(x), len(FEATURES)))
        for tree, table in enumerate(self.leaves):
            out += table[leaf[:, tree]]
        return out


def _fill_paths(root: dict[str, Any], table: FloatArray) -> None:
    """Each leaf's row of ``table``: the sum, along its path, of every split's change in
    expected value, credited to the split's feature."""
    stack = [(root, np.zeros(table.shape[1]))]
    while stack:
        node, path = stack.pop()
        for child in (node["left_child"], node["right_child"]):
            step = path.copy()
            is_leaf = "split_feature" not in child
            value = child["leaf_value"] if is_leaf else child["internal_value"]
            step[node["split_feature"]] += float(value) - float(node["internal_value"])
            if is_leaf:
                table[int(child.get("leaf_index", 0))] = step
            else:
                stack.append((child, step))


@dataclass(frozen=True)
class Explanations:
    """The largest contributions of explained pairs, row ``i`` for pair ``i`` (see the
    module docstring); a row of ``-1`` features is a pair the ranker did not score (a
    user without history gets the popular categories)."""

    features: npt.NDArray[np.int8]
    contributions: npt.NDArray[np.float16]
    values: npt.NDArray[np.float16]

    def describe(self, pair: int, limit: int = TOP_FEATURES) -> str | None:
        """The pair's contributions in words, largest first ("purchases of it 6 +0.91,
        ..."), or ``None`` for a pair without them. Values are the features' (``float16``:
        three significant digits), contributions in log-odds. On the decision path: each
        element read from flat views (no copy of the pair's slice), and each number's
        words read from a memo indexed by the ``float16`` it is (65,536 entries of each
        kind), not formatted again."""
        width, features_at, contributions_at, values_at = self._flat
        lo = pair * width
        # Element reads and one growing string: no slice, list or memoryview a call
        # (each would be an object the cyclic collector counts).
        said = ""
        for i in range(lo, lo + min(limit, width)):
            feature = features_at[i]
            if feature < 0:
                break
            value, contribution = values_at[i], contributions_at[i]
            part = (f"{_LABELS[feature]} "
                    f"{_value_texts[value] or _value_text(value)} "
                    f"{_contribution_texts[contribution] or _contribution_text(contribution)}")
            said = f"{said}, {part}" if said else part
        return said or None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without :attr:`_flat`'s memoryviews (they do not pickle; the first
        :meth:`describe` after loading makes them again)."""
        return {k: v for k, v in self.__dict__.items() if k != "_flat"}

    @cached_property
    def _flat(self) -> tuple[int, memoryview, memoryview, memoryview]:
        """Pairs per row, and the features, the contributions' and the values' ``float16``
        bit patterns as flat memoryviews (a pair's slice of one is cheaper than a numpy
        row; no copy of C-ordered arrays). Bits, not floats, key the memos:
        ``-0.0 == 0.0`` and ``nan != nan``."""
        return (self.features.shape[1], self.features.reshape(-1).data,
                self.contributions.view(np.uint16).reshape(-1).data,
                self.values.view(np.uint16).reshape(-1).data)


_HALF_PATTERNS = 1 << 16
"""``float16`` bit patterns: the size of each number-words memo."""
_value_texts: list[str | None] = [None] * _HALF_PATTERNS
"""A feature value's words by its ``float16`` bits, filled as read (:func:`_value_text`).
Lists, not dicts: one read of an index instead of a hash-table probe, which on the
decision path (one explanation every few decisions, its memo entries cold in the
cache) cost ~2 µs a call more (BENCHMARKS.md, issue 17's ranking section)."""
_contribution_texts: list[str | None] = [None] * _HALF_PATTERNS
"""A contribution's words by its ``float16`` bits (:func:`_contribution_text`)."""


def _value_text(bits: int) -> str:
    """A feature value's words, from its ``float16`` bits: three significant digits,
    "none" for ``nan`` (a feature that does not apply); remembered."""
    value = float(np.array(bits, dtype=np.uint16).view(np.float16))
    text = _value_texts[bits] = "none" if math.isnan(value) else f"{value:.3g}"
    return text


def _contribution_text(bits: int) -> str:
    """A contribution's words, from its ``float16`` bits: signed, two decimals;
    remembered."""
    text = _contribution_texts[bits] = (
        f"{float(np.array(bits, dtype=np.uint16).view(np.float16)):+.2f}")
    return text


def explain_pairs(booster_text: str, ctx: Context, users: IntArray, categories: IntArray,
                  at_t: float) -> Explanations:
    """The largest contributions to the ranker's score of each (user, category) pair as
    of ``at_t`` (``users``: model indexes). A user without history in ``ctx`` was ranked
    by popularity, not by the ranker: their pairs get none."""
    booster = lgb.Booster(model_str=booster_text)
    attribution = PathAttribution.of(booster)
    n = len(users)
    features = np.full((n, TOP_FEATURES), -1, dtype=np.int8)
    contributions = np.zeros((n, TOP_FEATURES), dtype=np.float16)
    values = np.zeros((n, TOP_FEATURES), dtype=np.float16)
    scored = np.flatnonzero(np.isin(users, ctx.user_ids))
    for lo in range(0, len(scored), BATCH_PAIRS):
        part = scored[lo:lo + BATCH_PAIRS]
        x = pair_features(ctx, pair_keys(users[part], categories[part]), at_t)
        contrib = attribution.contributions(booster, x)
        top = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :TOP_FEATURES]
        rows = np.arange(len(x))[:, None]
        features[part] = top
        contributions[part] = contrib[rows, top]
        values[part] = x[rows, top]
    return Explanations(features, contributions, values)
