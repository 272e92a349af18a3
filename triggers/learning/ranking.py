"""Turning scored candidate pairs into each user's top K (pure numpy)."""

from __future__ import annotations

import numpy as np

from triggers.learning.coding import FloatArray, IntArray
from triggers.learning.pairs import KEY_STRIDE, segment_starts


def top_per_user(users: IntArray, keys: IntArray, scores: FloatArray,
                 k: int) -> tuple[IntArray, FloatArray]:
    """For each of ``users`` (sorted, unique), its ``k`` best categories among ``keys``
    and their scores, best first, padded with ``-1`` and ``nan``. Ties go to the lower
    category index, so the order is reproducible."""
    cats_out = np.full((len(users), k), -1, dtype=np.int64)
    scores_out = np.full((len(users), k), np.nan)
    if len(keys) == 0:
        return cats_out, scores_out
    key_users, key_cats = keys // KEY_STRIDE, keys % KEY_STRIDE
    order = np.lexsort((key_cats, -scores, key_users))
    key_users, key_cats, scores = key_users[order], key_cats[order], scores[order]
    starts = segment_starts(key_users)
    lengths = np.diff(np.r_[starts, len(key_users)])
    position = np.arange(len(key_users)) - np.repeat(starts, lengths)
    keep = position < k
    row = np.searchsorted(users, key_users[keep])
    cats_out[row, position[keep]] = key_cats[keep]
    scores_out[row, position[keep]] = scores[keep]
    return cats_out, scores_out


def truth_sets(users: IntArray, label_keys: IntArray) -> list[set[int]]:
    """The categories each of ``users`` (sorted, unique) engaged with, from label keys."""
    out: list[set[int]] = [set() for _ in users]
    key_users, key_cats = label_keys // KEY_STRIDE, label_keys % KEY_STRIDE
    row = np.searchsorted(users, key_users)
    row = np.minimum(row, max(len(users) - 1, 0))
    for r, u, c in zip(row.tolist(), key_users.tolist(), key_cats.tolist(), strict=True):
        if len(users) and users[r] == u:
            out[r].add(c)
    return out
