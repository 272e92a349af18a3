"""Features of candidate (user, category) pairs for the interest ranker.

A user's candidates are the categories in their history plus the most popular ones (a
user may start on a category they never touched). Each candidate gets the user's decayed
counts of it at four half-lives, purchases and carts, recency, the purchase cycle and how
overdue it is, the user's share of it and its rank among the user's categories, the user's
overall activity, the category's popularity and trend (as shares, so they do not depend on
how long ago the state was taken), how often it co-occurs with the user's other
categories across all users, and where users went next: of the users active on the
user's categories of the last period in the period before, the share active on the
candidate in the last one (needs that move on: maternity wear, then newborn goods).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.sparse.linalg import svds

from triggers.learning.coding import DAY_S, DEFAULT_PERIOD_D, FloatArray, IntArray
from triggers.learning.pairs import (
    COL,
    DAY_BITS,
    HALF_LIVES_D,
    KEY_STRIDE,
    PairTable,
    active_days,
    pair_keys,
    segment_starts,
)

FEATURES = (
    "d1", "d4", "d14", "d60", "purchase_d30", "cart_d7", "log_events", "purchases",
    "s4", "s14", "s60", "active_days_7", "active_days_28", "active_days_52",
    "days_since_last", "days_since_purchase", "purchase_cycle_d", "purchase_overdue",
    "share_d14", "share_d60", "rank_in_user", "user_d14", "user_d60", "user_categories",
    "pop_d4", "pop_d14", "pop_d60", "trend_d1_d14", "trend_d4_d60", "pop_users",
    "cooccurrence", "affinity", "in_history", "transition", "transition_new",
)
"""Columns of the feature matrix, in order (the model file records them)."""

MAX_COOCCURRENCE_CATEGORIES = 500
"""Co-occurrence is counted among the most popular categories only: a dense square of
this side stays small whatever the catalogue."""


@dataclass(frozen=True)
class Context:
    """What the features of one table need beyond the pair itself."""

    table: PairTable
    rank_in_user: FloatArray
    """Per table row: 1 for the user's most engaged category (by ``d14``), 2, ..."""
    user_ids: IntArray
    user_sums: FloatArray
    """Per user in ``user_ids``: total d14, total d60, number of categories."""
    pop_share: FloatArray
    """Per category: share of all decayed counts at each half-life, ``(C, 4)``."""
    pop_users: FloatArray
    cooc_of: IntArray
    """Per category: its row in ``cooc`` or -1."""
    cooc: FloatArray
    """P(j | i) among the users who have i, diagonal zero."""
    embedding: FloatArray
    """Category factors (rows as in ``cooc``) of a truncated SVD of the users' log
    decayed counts: themes that categories share."""
    transition: FloatArray
    """``(2, m, m)``, rows and columns as in ``cooc``: among the users active on i in the
    period before last, the share active on j in the last period, and the share active
    on j in the last period and not in the one before (needs that move on)."""
    period_days: int

    @property
    def n_categories(self) -> int:
        return len(self.pop_users)


def context(table: PairTable, n_categories: int,
            period_d: float = DEFAULT_PERIOD_D) -> Context:
    """Per-user and per-category summaries of a table (computed once, then shared by
    every batch of candidates); ``period_d`` is the period predictions are about."""
    users, cats = table.users, table.categories
    d14, d60 = table.column("d14"), table.column("d60")
    starts = segment_starts(users)
    user_ids = users[starts] if len(users) else np.empty(0, np.int64)
    sums = np.zeros((len(starts), 3))
    if len(starts):
        sums[:, 0] = np.add.reduceat(d14, starts)
        sums[:, 1] = np.add.reduceat(d60, starts)
        sums[:, 2] = np.diff(np.r_[starts, len(users)])
    order = np.lexsort((-d14, users))
    rank = np.empty(len(users))
    seg_start = np.repeat(starts, np.diff(np.r_[starts, len(users)])) if len(users) else starts
    rank[order] = np.arange(len(users)) - seg_start + 1
    pop = np.zeros((n_categories, len(HALF_LIVES_D)))
    for i in range(len(HALF_LIVES_D)):
        pop[:, i] = np.bincount(cats, weights=table.values[:, i], minlength=n_categories)
    pop_share = pop / np.maximum(pop.sum(axis=0, keepdims=True), 1e-12)
    pop_users = np.bincount(cats, minlength=n_categories) / max(len(starts), 1)
    cooc_of, cooc, embedding = _cooccurrence(table, pop[:, 3], n_categories)
    days = transition_days(period_d)
    return Context(table, rank, user_ids, sums, pop_share, pop_users.astype(float),
                   cooc_of, cooc, embedding, _transitions(table, cooc_of, len(cooc), days),
                   days)


def transition_days(period_d: float) -> int:
    """The whole days of a period as the transitions count them: two periods must fit in
    the table's day bits."""
    return int(min(max(round(period_d), 1), DAY_BITS // 2))


def _period_masks(bits: FloatArray, days: int) -> tuple[npt.NDArray[np.bool_],
                                                       npt.NDArray[np.bool_]]:
    """Per pair: active in the last ``days`` days, and in the ``days`` before those."""
    b = np.nan_to_num(bits).astype(np.int64)
    window = (1 << days) - 1
    return (b & window) != 0, ((b >> days) & window) != 0


def _transitions(table: PairTable, cooc_of: IntArray, m: int, days: int) -> FloatArray:
    out = np.zeros((2, m, m))
    col = cooc_of[table.categories]
    keep = col >= 0
    if not keep.any():
        return out
    recent, before = _period_masks(table.column("day_bits")[keep], days)
    _, row = np.unique(table.users[keep], return_inverse=True)
    n = int(row.max()) + 1

    def matrix(mask: npt.NDArray[np.bool_]) -> sparse.csr_matrix:
        return sparse.csr_matrix((np.ones(int(mask.sum())), (row[mask], col[keep][mask])),
                                 shape=(n, m))

    older = matrix(before)
    having = np.maximum(np.asarray(older.sum(axis=0)).ravel(), 1.0)
    out[0] = np.asarray((older.T @ matrix(recent)).todense()) / having[:, None]
    out[1] = np.asarray((older.T @ matrix(recent & ~before)).todense()) / having[:, None]
    return out


def _cooccurrence(table: PairTable, popularity: FloatArray,
                  n_categories: int) -> tuple[IntArray, FloatArray, FloatArray]:
    top = np.argsort(-popularity, kind="stable")
    top = top[popularity[top] > 0][:MAX_COOCCURRENCE_CATEGORIES]
    cooc_of = np.full(n_categories, -1, dtype=np.int64)
    cooc_of[top] = np.arange(len(top))
    col = cooc_of[table.categories]
    keep = col >= 0
    rows = table.users[keep]
    if len(rows) == 0:
        return cooc_of, np.zeros((len(top), len(top))), np.zeros((len(top), 0))
    _, row_index = np.unique(rows, return_inverse=True)
    b = sparse.csr_matrix((np.ones(len(rows)), (row_index, col[keep])),
                          shape=(int(row_index.max()) + 1, len(top)))
    counts = np.asarray((b.T @ b).todense(), dtype=np.float64)
    having = np.maximum(np.diag(counts), 1.0)
    cond = counts / having[:, None]
    np.fill_diagonal(cond, 0.0)
    weights = _user_rows(np.log1p(table.column("d60")[keep]), row_index, col[keep],
                         int(row_index.max()) + 1, len(top))
    return cooc_of, cond, _factors(weights)


EMBEDDING_RANK = 32


def _factors(weights: sparse.csr_matrix) -> FloatArray:
    """The top right singular vectors of the user rows (deterministic start vector)."""
    rank = min(EMBEDDING_RANK, min(weights.shape) - 1)
    if rank < 1:
        return np.zeros((weights.shape[1], 0))
    start = np.full(min(weights.shape), 1.0 / np.sqrt(min(weights.shape)))
    _, _, vt = svds(weights.astype(np.float64), k=rank, v0=start)
    return np.asarray(vt.T, dtype=np.float64)


def _user_rows(values: FloatArray, rows: IntArray, cols: IntArray, n_rows: int,
               n_cols: int) -> sparse.csr_matrix:
    """Users' rows of weights, each scaled to unit length."""
    norms = np.sqrt(np.bincount(rows, weights=values ** 2, minlength=n_rows))
    scaled = values / np.maximum(norms[rows], 1e-12)
    return sparse.csr_matrix((scaled, (rows, cols)), shape=(n_rows, n_cols))


def popular_categories(ctx: Context, n: int) -> IntArray:
    """The ``n`` categories with the most decayed engagement (14-day half-life), among
    those with any engagement before the table's time."""
    order = np.argsort(-ctx.pop_share[:, 2], kind="stable")
    kept: IntArray = order[ctx.pop_share[order, 3] > 0][:n].astype(np.int64)
    return kept


def candidate_keys(ctx: Context, users: IntArray, popular: IntArray,
                   by_affinity: int = 10) -> IntArray:
    """Sorted keys of the candidate pairs of ``users``: their history, ``popular``, their
    ``by_affinity`` categories closest in theme and as many that users in their last
    categories most often took up next."""
    table_users = ctx.table.users
    in_batch = np.isin(table_users, users)
    history = ctx.table.keys[in_batch]
    pop = pair_keys(np.repeat(users, len(popular)), np.tile(popular, len(users)))
    return np.unique(np.concatenate([history, pop, affinity_categories(ctx, users, by_affinity),
                                     transition_categories(ctx, users, by_affinity)]))


def pair_features(ctx: Context, keys: IntArray, at_t: float) -> npt.NDArray[np.float32]:
    """The :data:`FEATURES` of each candidate pair, as of ``at_t`` (not before the
    table's reference time); ``nan`` where a feature does not apply."""
    table = ctx.table
    gap_d = max(at_t - table.ref_t, 0.0) / DAY_S
    users, cats = keys // KEY_STRIDE, keys % KEY_STRIDE
    row = np.searchsorted(table.keys, keys)
    row = np.minimum(row, max(len(table.keys) - 1, 0))
    if len(table.keys):
        found = table.keys[row] == keys
        v = np.where(found[:, None], table.values[row], np.nan)
    else:  # no pair seen before ``at_t``: every pair's columns unknown
        found = np.zeros(len(keys), bool)
        v = np.full((len(keys), table.values.shape[1]), np.nan)
    out = np.empty((len(keys), len(FEATURES)), dtype=np.float32)
    f = {name: i for i, name in enumerate(FEATURES)}
    for i, half_life in enumerate(HALF_LIVES_D):
        out[:, i] = np.nan_to_num(v[:, i]) * np.exp2(-gap_d / half_life)
    out[:, f["purchase_d30"]] = np.nan_to_num(v[:, COL["purchase_d30"]]) * np.exp2(-gap_d / 30)
    out[:, f["cart_d7"]] = np.nan_to_num(v[:, COL["cart_d7"]]) * np.exp2(-gap_d / 7)
    for name, half_life in (("s4", 4.0), ("s14", 14.0), ("s60", 60.0)):
        out[:, f[name]] = np.nan_to_num(v[:, COL[name]]) * np.exp2(-gap_d / half_life)
    shift = int(gap_d)
    for days in (7, 28, 52):
        out[:, f[f"active_days_{days}"]] = active_days(v[:, COL["day_bits"]], days, shift)
    out[:, f["log_events"]] = np.log1p(np.nan_to_num(v[:, COL["events"]]))
    purchases = np.nan_to_num(v[:, COL["purchases"]])
    out[:, f["purchases"]] = purchases
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, f["days_since_last"]] = (at_t - v[:, COL["last_t"]]) / DAY_S
        since_purchase = np.where(purchases > 0, (at_t - v[:, COL["last_purchase_t"]]) / DAY_S,
                                  np.nan)
        cycle = np.where(purchases > 1, (v[:, COL["last_purchase_t"]]
                                         - v[:, COL["first_purchase_t"]]) / DAY_S
                         / np.maximum(purchases - 1, 1), np.nan)
        out[:, f["days_since_purchase"]] = since_purchase
        out[:, f["purchase_cycle_d"]] = cycle
        out[:, f["purchase_overdue"]] = since_purchase / np.maximum(cycle, 1e-3)
    _user_features(ctx, users, row, found, out, f=f, gap_d=gap_d)
    out[:, f["pop_d4"]] = ctx.pop_share[cats, 1]
    out[:, f["pop_d14"]] = ctx.pop_share[cats, 2]
    out[:, f["pop_d60"]] = ctx.pop_share[cats, 3]
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, f["trend_d1_d14"]] = ctx.pop_share[cats, 0] / ctx.pop_share[cats, 2]
        out[:, f["trend_d4_d60"]] = ctx.pop_share[cats, 1] / ctx.pop_share[cats, 3]
    out[:, f["pop_users"]] = ctx.pop_users[cats]
    out[:, f["cooccurrence"]], out[:, f["affinity"]] = _collaborative_scores(ctx, users, cats)
    out[:, f["in_history"]] = found
    out[:, f["transition"]], out[:, f["transition_new"]] = _transition_scores(ctx, users, cats)
    return out


def _recent_rows(ctx: Context, batch_users: IntArray) -> sparse.csr_matrix:
    """The users' categories of the last period (co-occurrence categories), each row
    summing to one."""
    rows, t_row, t_col = _batch_pairs(ctx, batch_users)
    recent, _ = _period_masks(ctx.table.column("day_bits")[rows], ctx.period_days)
    t_row, t_col = t_row[recent], t_col[recent]
    totals = np.bincount(t_row, minlength=len(batch_users))
    return sparse.csr_matrix((1.0 / totals[t_row], (t_row, t_col)),
                             shape=(len(batch_users), len(ctx.cooc)))


def _transition_matrices(ctx: Context, batch_users: IntArray) -> tuple[FloatArray, FloatArray]:
    """Per user and co-occurrence category: the transition shares, averaged over the
    user's categories of the last period (see :attr:`Context.transition`)."""
    rows = _recent_rows(ctx, batch_users)
    return np.asarray(rows @ ctx.transition[0]), np.asarray(rows @ ctx.transition[1])


def _transition_scores(ctx: Context, users: IntArray, cats: IntArray) -> FloatArray:
    """Per pair: the mean over the user's categories of the last period of the share of
    users who went on to the candidate in the period after (and of those new to it)."""
    out = np.zeros((2, len(users)))
    col = ctx.cooc_of[cats]
    has = col >= 0
    if not len(users) or not has.any():
        return out
    batch_users, user_row = np.unique(users, return_inverse=True)
    for i, matrix in enumerate(_transition_matrices(ctx, batch_users)):
        out[i, has] = matrix[user_row[has], col[has]]
    return out


def transition_categories(ctx: Context, users: IntArray, n: int) -> IntArray:
    """Keys of each user's ``n`` categories that users in the same categories most often
    moved on to in the next period."""
    if n == 0 or not len(ctx.cooc) or not len(users):
        return np.empty(0, np.int64)
    moved = _transition_matrices(ctx, users)[1]
    n = min(n, moved.shape[1])
    best = np.argpartition(-moved, n - 1, axis=1)[:, :n]
    top = np.flatnonzero(ctx.cooc_of >= 0)[np.argsort(ctx.cooc_of[ctx.cooc_of >= 0])]
    return pair_keys(np.repeat(users, n), top[best].ravel())


def _user_features(ctx: Context, users: IntArray, row: IntArray,
                   found: npt.NDArray[np.bool_], out: npt.NDArray[np.float32], *,
                   f: dict[str, int], gap_d: float) -> None:
    at = np.searchsorted(ctx.user_ids, users)
    at = np.minimum(at, max(len(ctx.user_ids) - 1, 0))
    if len(ctx.user_ids):
        sums = np.where((ctx.user_ids[at] == users)[:, None], ctx.user_sums[at], 0.0)
    else:  # no user seen before the table's time
        sums = np.zeros((len(users), ctx.user_sums.shape[1]))
    user_d14 = sums[:, 0] * np.exp2(-gap_d / 14)
    user_d60 = sums[:, 1] * np.exp2(-gap_d / 60)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, f["share_d14"]] = np.where(user_d14 > 0, out[:, f["d14"]] / user_d14, 0.0)
        out[:, f["share_d60"]] = np.where(user_d60 > 0, out[:, f["d60"]] / user_d60, 0.0)
    rank = ctx.rank_in_user[row] if len(ctx.rank_in_user) else np.zeros(len(row))
    out[:, f["rank_in_user"]] = np.where(found, rank, np.nan)
    out[:, f["user_d14"]] = user_d14
    out[:, f["user_d60"]] = user_d60
    out[:, f["user_categories"]] = sums[:, 2]


def _collaborative_scores(ctx: Context, users: IntArray,
                          cats: IntArray) -> tuple[FloatArray, FloatArray]:
    """Per pair: Σ_i share_d60(user, i) · P(cat | i) over the user's other categories,
    and the user's affinity to the category in the SVD's theme space."""
    cooc, affinity = np.zeros(len(users)), np.zeros(len(users))
    col = ctx.cooc_of[cats]
    if not len(users) or not (col >= 0).any():
        return cooc, affinity
    batch_users, user_row = np.unique(users, return_inverse=True)
    shares, unit = _batch_rows(ctx, batch_users)
    dense = np.asarray(shares @ ctx.cooc)
    has = col >= 0
    cooc[has] = dense[user_row[has], col[has]]
    themes = np.asarray(unit @ ctx.embedding) @ ctx.embedding.T
    affinity[has] = themes[user_row[has], col[has]]
    return cooc, affinity


def _batch_pairs(ctx: Context, batch_users: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """The table rows of the batch's pairs on co-occurrence categories, with each one's
    row in the batch (``batch_users`` sorted) and column in ``cooc``."""
    table = ctx.table
    rows = np.flatnonzero(np.isin(table.users, batch_users))
    col = ctx.cooc_of[table.categories[rows]]
    rows, col = rows[col >= 0], col[col >= 0]
    return rows, np.searchsorted(batch_users, table.users[rows]), col


def _batch_rows(ctx: Context, batch_users: IntArray) -> tuple[sparse.csr_matrix,
                                                              sparse.csr_matrix]:
    """The users' d60 shares and unit log-count rows over the co-occurrence categories."""
    rows, t_row, t_col = _batch_pairs(ctx, batch_users)
    d60 = ctx.table.column("d60")[rows]
    n, m = len(batch_users), len(ctx.cooc)
    totals = np.bincount(t_row, weights=d60, minlength=n)
    shares = sparse.csr_matrix((d60 / np.maximum(totals[t_row], 1e-12), (t_row, t_col)),
                               shape=(n, m))
    return shares, _user_rows(np.log1p(d60), t_row, t_col, n, m)


def affinity_categories(ctx: Context, users: IntArray, n: int) -> IntArray:
    """Keys of each user's ``n`` categories of highest theme affinity (new ones too)."""
    if n == 0 or ctx.embedding.shape[1] == 0 or not len(users):
        return np.empty(0, np.int64)
    _, unit = _batch_rows(ctx, users)
    themes = np.asarray(unit @ ctx.embedding) @ ctx.embedding.T
    n = min(n, themes.shape[1])
    best = np.argpartition(-themes, n - 1, axis=1)[:, :n]
    top = np.flatnonzero(ctx.cooc_of >= 0)[np.argsort(ctx.cooc_of[ctx.cooc_of >= 0])]
    return pair_keys(np.repeat(users, n), top[best].ravel())
