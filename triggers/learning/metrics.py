"""Offline metrics on held-out time: did the top of a ranking contain what happened next?

Both metrics average over the users who did something in the next period (a user with no
next-period activity has nothing to recall), and return ``nan`` when there is none.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from triggers.learning.coding import IntArray


def recall_at_k(ranked: IntArray, truth: list[set[int]]) -> float:
    """Mean over users with a non-empty truth of |top-K ∩ truth| / min(K, |truth|).

    ``ranked`` is ``(users, K)`` item indexes, best first, padded with ``-1``; ``truth``
    the items each user engaged with in the next period. Dividing by ``min(K, |truth|)``
    lets a perfect ranking score 1 for a user with more than K next-period items.
    """
    k = ranked.shape[1]
    total, users = 0.0, 0
    for row, items in zip(ranked, truth, strict=True):
        if not items:
            continue
        hits = sum(1 for item in row if item >= 0 and int(item) in items)
        total += hits / min(k, len(items))
        users += 1
    return total / users if users else float("nan")


def hit_at_k(ranked: IntArray, truth: list[set[int]]) -> float:
    """Share of users with a non-empty truth for whom a top-K item is in the truth
    (for send time: one of the K chosen hours was an hour the user was active)."""
    hits, users = 0, 0
    for row, items in zip(ranked, truth, strict=True):
        if not items:
            continue
        hits += any(int(item) in items for item in row if item >= 0)
        users += 1
    return hits / users if users else float("nan")


def top_k(scores: npt.NDArray[np.float64], k: int) -> IntArray:
    """Column indexes of the ``k`` best scores of each row, best first; ties go to the
    lower index (a stable sort), so rankings are reproducible."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order.astype(np.int64)
