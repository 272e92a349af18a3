"""Integer codes for events: kinds, and a vocabulary that turns ids into dense indexes.

The learning code works on numpy arrays; user ids and categories become dense ``int64``
indexes (first seen, first numbered) so that per-user and per-pair state are plain arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

KIND_CODES: dict[str, int] = {
    "view": 0,
    "click": 1,
    "add_to_cart": 2,
    "purchase": 3,
    "search": 4,
    "app_open": 5,
    "open": 6,
    "visit": 8,
}
"""The behaviour kinds of the events API, plus ``open`` (a push opened: feedback) and
``visit`` (a visit to a tagged venue)."""
CUSTOM_KIND = 7
"""Any other kind name: kept, as a custom kind."""
VIEW, CLICK, ADD_TO_CART, PURCHASE, SEARCH, APP_OPEN, OPEN = range(7)
VISIT = 8
"""A visit to a venue with tags: engagement with those tags, weighed as a view is (the
service's training reads visits from presence; a file names the kind ``visit``)."""

ENGAGEMENT_KINDS = (CLICK, APP_OPEN, OPEN)
"""Kinds that show the user had the app in hand: what the send-time profile counts."""

DAY_S = 86_400.0
NO_INDEX = -1
"""The index of an id that a vocabulary does not hold (or of an empty category)."""

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def kind_codes(names: Sequence[str]) -> npt.NDArray[np.int8]:
    """The code of each kind name; unknown names are :data:`CUSTOM_KIND`."""
    return np.fromiter((KIND_CODES.get(n, CUSTOM_KIND) for n in names), dtype=np.int8,
                       count=len(names))


class Vocabulary:
    """Ids numbered densely in the order first seen; ``index`` adds new ones."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._index: dict[str, int] = {}
        self.ids: list[str] = []
        self.index(list(ids))

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, ids: Sequence[str | None]) -> IntArray:
        """The index of each id, numbering the new ones; ``None`` or ``""`` is
        :data:`NO_INDEX`."""
        table, known = self._index, self.ids
        out = np.empty(len(ids), dtype=np.int64)
        for i, key in enumerate(ids):
            if not key:
                out[i] = NO_INDEX
                continue
            code = table.get(key)
            if code is None:
                code = table[key] = len(known)
                known.append(key)
            out[i] = code
        return out

    def lookup(self, ids: Sequence[str]) -> IntArray:
        """The index of each id, :data:`NO_INDEX` for ids not held (adds nothing)."""
        return np.fromiter((self._index.get(k, NO_INDEX) for k in ids), dtype=np.int64,
                           count=len(ids))
