"""Integer codes for events: kinds, and a vocabulary that turns ids into dense indexes;
and the time units both models share (the day, the period a fit window allows).

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
KIND_ALIASES: dict[str, str] = {
    "pv": "view", "page_view": "view", "pageview": "view", "detail_view": "view",
    "cart": "add_to_cart", "addtocart": "add_to_cart", "add-to-cart": "add_to_cart",
    "add_to_basket": "add_to_cart",
    "buy": "purchase", "order": "purchase", "transaction": "purchase",
    "checkout": "purchase",
}
"""Names other exports give these kinds (public e-commerce logs write ``pv``, ``cart``,
``buy``, ``addtocart``, ``transaction``); matched after lower-casing, as the kinds are."""
CUSTOM_KIND = 7
"""Any other kind name: kept, as a custom kind."""
VIEW, CLICK, ADD_TO_CART, PURCHASE, SEARCH, APP_OPEN, OPEN = range(7)
VISIT = 8
"""A visit to a venue with tags: engagement with those tags, weighed as a view is (the
service's training reads visits from presence; a file names the kind ``visit``)."""

ENGAGEMENT_KINDS = (CLICK, APP_OPEN, OPEN)
"""Kinds that show the user had the app in hand: what the send-time profile counts."""

DAY_S = 86_400.0
DEFAULT_PERIOD_D = 7.0
"""The "next period" of the models: a week, when the fit window is long enough."""
NO_INDEX = -1
"""The index of an id that a vocabulary does not hold (or of an empty category)."""

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def window_period_d(first_t: float, until_t: float, cutoffs: int = 3) -> float:
    """The period a fit window allows: :data:`DEFAULT_PERIOD_D` when ``cutoffs`` periods
    and a day of history fit between the first event and ``until``, else the most whole
    days that do (at least one). A log of nine days is judged on days, not weeks: with a
    week the window would hold no training period at all."""
    span_d = (until_t - first_t) / DAY_S
    period = DEFAULT_PERIOD_D
    while period > 1.0 and cutoffs * period + 1.0 > span_d:
        period -= 1.0
    return period


def kind_code(name: str) -> int:
    """The code of one kind name: a kind of the events API or an alias of one, in any
    case; any other name is :data:`CUSTOM_KIND`."""
    code = KIND_CODES.get(name)
    if code is None:
        lower = name.lower()
        code = KIND_CODES.get(KIND_ALIASES.get(lower, lower), CUSTOM_KIND)
    return code


def kind_codes(names: Sequence[str]) -> npt.NDArray[np.int8]:
    """The code of each kind name (:func:`kind_code`); a file's few kind names are each
    resolved once."""
    known = dict(KIND_CODES)
    for name in set(names) - known.keys():
        known[name] = kind_code(name)
    return np.fromiter((known[n] for n in names), dtype=np.int8, count=len(names))


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
