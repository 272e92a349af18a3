"""Profile features that follow a user's behaviour events, folded in the stream.

Pure: :func:`fold` takes a user's :class:`UserFeatures` and new events and returns the
next one; nothing reads a clock (the newest event's time is "now" for what is kept).

What is kept per user, bounded whatever the user does:

- **counters** per (kind, category): event counts per UTC day over the last
  :data:`HORIZON_DAYS` days and the time of the latest one (recency), at most
  :data:`MAX_COUNTERS` pairs (the least recently touched pair goes first);
- **viewed, not bought**: the :data:`MAX_VIEWED` latest items viewed and not purchased
  since, newest first (what ``Profile.recently_viewed`` shows);
- **bought**: the :data:`MAX_BOUGHT` latest purchased item ids with the purchase time
  (a view that arrives late, older than the purchase, does not come back);
- **active hours**: events per UTC hour of day (24 counters).

Counts are by UTC day: "within 30 days" at time ``now`` counts the events of the 30 UTC
days ending with ``now``'s day, so a window is exact to the day, not to the second.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from triggers.behaviour.events import BehaviourEvent, BehaviourKind

HORIZON_DAYS = 90
"""How far back counts go; a tag rule's ``within_days`` is at most this."""
MAX_COUNTERS = 48
"""(kind, category) pairs kept per user: a few kinds times a user's main categories."""
MAX_VIEWED = 8
MAX_BOUGHT = 16
DAY_S = 86_400.0

NO_CATEGORY = ""
"""The category of an event without an item or an item without a category."""


def day_of(ts: float) -> int:
    """The UTC day number (days since 1970-01-01) of an epoch time."""
    return math.floor(ts / DAY_S)


def count_since(counter: Sequence[float], first_day: int) -> int:
    """Events of one counter (``[last_at, day, n, day, n, ...]``) on ``first_day`` or later."""
    return int(sum(counter[i + 1] for i in range(1, len(counter), 2) if counter[i] >= first_day))


def counter_key(kind: str, category: str) -> str:
    """A counter's key: ``"view|sports"`` (a kind has no ``|``; see ``BehaviourKindName``)."""
    return f"{kind}|{category}"


def split_key(key: str) -> tuple[str, str]:
    """(kind, category) of a counter key."""
    kind, _, category = key.partition("|")
    return kind, category


@dataclass(frozen=True, slots=True)
class ViewedItem:
    """An item the user viewed and has not bought since."""

    id: str
    name: str | None
    category: str | None
    price: float | None
    currency: str | None
    url: str | None
    image_url: str | None
    viewed_at: float


_VIEWED_AT = 7
"""Where a viewed row (the fields of :class:`ViewedItem`, in order) holds its time."""


@dataclass(slots=True)
class UserFeatures:
    """One user's behaviour features (see the module docstring for the bounds).

    Held in its stored (JSON) form, so that a store reads and writes it without
    building an object per counter: treat every field as read-only (:func:`fold`
    copies what it changes). Not a frozen dataclass for the same reason: one is built
    per user and batch on the ingest path, and the frozen constructor cost five times
    the plain one (a tenth of a fold)."""

    counters: Mapping[str, Sequence[float]] = field(default_factory=dict)
    """:func:`counter_key` → ``[last_at, day, n, day, n, ...]`` (UTC days ascending)."""
    viewed: Sequence[Sequence[Any]] = ()
    """Rows of :class:`ViewedItem` fields, newest first."""
    bought: Mapping[str, float] = field(default_factory=dict)
    """Item id → the latest purchase's time."""
    hours: Sequence[int] = (0,) * 24
    """Events per UTC hour of day, 0 to 23."""
    events: int = 0
    """Events folded in, all time."""
    last_at: float | None = None
    """The newest event's time."""
    horizon_day: int | None = None
    """The first UTC day the counters keep (:data:`HORIZON_DAYS` before the newest
    event's): while it stays, a fold that adds no older day need not trim."""

    @property
    def viewed_items(self) -> tuple[ViewedItem, ...]:
        """The viewed-not-bought items, newest first."""
        return tuple(ViewedItem(*row) for row in self.viewed)

    def count(self, kind: str, categories: Sequence[str] | None, *, now: float,
              within_days: float) -> tuple[int, float | None]:
        """Events of ``kind`` in ``categories`` (``None``: any category) over the
        ``within_days`` UTC days ending with ``now``'s day, and the latest one's time."""
        first_day = day_of(now) - math.ceil(within_days) + 1
        total, last = 0, None
        for key, counter in self.counters.items():
            k, category = split_key(key)
            if k != kind or (categories is not None and category not in categories):
                continue
            n = count_since(counter, first_day)
            if n:
                total += n
                last = counter[0] if last is None else max(last, counter[0])
        return total, last

    def to_json(self) -> dict[str, Any]:
        """The stored form (JSON)."""
        return {"counters": self.counters, "viewed": self.viewed, "bought": self.bought,
                "hours": self.hours, "events": self.events, "last_at": self.last_at,
                "horizon_day": self.horizon_day}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UserFeatures:
        """Features from :meth:`to_json`'s form (as a store read it back)."""
        return cls(counters=data.get("counters", {}), viewed=data.get("viewed", []),
                   bought=data.get("bought", {}), hours=data.get("hours", [0] * 24),
                   events=int(data.get("events", 0)), last_at=data.get("last_at"),
                   horizon_day=data.get("horizon_day"))


_VIEW = BehaviourKind.VIEW.value
_PURCHASE = BehaviourKind.PURCHASE.value
"""Plain strings: reading a member off the enum class on every event cost several times
the comparison itself."""

EMPTY = UserFeatures(counters={}, viewed=[], bought={}, hours=[0] * 24)


def fold(features: UserFeatures, events: Iterable[BehaviourEvent]) -> UserFeatures:
    """``features`` with ``events`` (one user's, any order) folded in. Days older than
    :data:`HORIZON_DAYS` before the newest event seen are dropped.

    On the ingest path of every event: each event's day is computed once, and a counter
    already at that day is copied and bumped in place of being rebuilt."""
    counters = dict(features.counters)
    viewed: list[Sequence[Any]] | None = None
    bought: dict[str, float] | None = None
    hours = list(features.hours)
    count, last_at = features.events, features.last_at
    oldest = math.inf
    for event in events:
        item, ts = event.item, event.ts
        day = day_of(ts)
        key = f"{event.kind}|{(item.category if item else None) or NO_CATEGORY}"
        counters[key] = _counted(counters.get(key), ts, day)
        oldest = min(oldest, ts)
        hours[int(ts // 3600) % 24] += 1
        count += 1
        if last_at is None or ts > last_at:
            last_at = ts
        if item is None:
            continue
        if event.kind == _VIEW:
            viewed = list(features.viewed) if viewed is None else viewed
            _viewed(viewed, features.bought if bought is None else bought, event)
        elif event.kind == _PURCHASE:
            viewed = list(features.viewed) if viewed is None else viewed
            bought = dict(features.bought) if bought is None else bought
            _bought(viewed, bought, item.id, ts)
    if last_at is None:
        return features
    horizon = day_of(last_at) - HORIZON_DAYS + 1
    if horizon != features.horizon_day or len(counters) > MAX_COUNTERS or (
            oldest != math.inf and day_of(oldest) < horizon):
        counters = _trimmed(counters, last_at)
    return UserFeatures(
        counters,
        features.viewed if viewed is None else viewed[:MAX_VIEWED],
        features.bought if bought is None else _newest(bought, MAX_BOUGHT),
        hours, count, last_at, horizon)


def _counted(counter: Sequence[float] | None, ts: float, day: int) -> list[float]:
    """``counter`` with one more event at ``ts`` (of UTC day ``day``), as a new list."""
    if counter is None:
        return [ts, day, 1]
    out = list(counter)
    out[0] = max(out[0], ts)
    if out[-2] == day:  # the usual case: another event on the latest day
        out[-1] += 1
        return out
    days = {int(out[i]): int(out[i + 1]) for i in range(1, len(out), 2)}
    days[day] = days.get(day, 0) + 1
    return [out[0], *(x for d in sorted(days) for x in (d, days[d]))]


def _trimmed(counters: dict[str, Sequence[float]],
             last_at: float | None) -> dict[str, Sequence[float]]:
    """Counters without days past the horizon (empty ones dropped), the most recent
    :data:`MAX_COUNTERS` of them (ties by key, so the result is deterministic)."""
    if last_at is None:
        return counters
    first_day = day_of(last_at) - HORIZON_DAYS + 1
    stale = [k for k, c in counters.items() if c[1] < first_day]
    for key in stale:
        counter = counters.pop(key)
        days = [x for i in range(1, len(counter), 2) if counter[i] >= first_day
                for x in (counter[i], counter[i + 1])]
        if days:
            counters[key] = [counter[0], *days]
    if len(counters) > MAX_COUNTERS:
        newest = sorted(counters, key=lambda k: (-counters[k][0], k))[:MAX_COUNTERS]
        return {k: counters[k] for k in newest}
    return counters


def _viewed(viewed: list[Sequence[Any]], bought: Mapping[str, float],
            event: BehaviourEvent) -> None:
    item = event.item
    assert item is not None
    if bought.get(item.id, -math.inf) >= event.ts:
        return  # viewed before it was bought: nothing still to think about
    for i, old in enumerate(viewed):
        if old[0] == item.id:
            if old[_VIEWED_AT] >= event.ts:
                return
            del viewed[i]
            break
    new = [item.id, item.name, item.category, item.price, item.currency, item.url,
           item.image_url, event.ts]
    if not viewed or (viewed[0][_VIEWED_AT], viewed[0][0]) < (event.ts, item.id):
        viewed.insert(0, new)  # the usual case: the newest view
    else:
        viewed.append(new)
        viewed.sort(key=lambda v: (-v[_VIEWED_AT], v[0]))


def _bought(viewed: list[Sequence[Any]], bought: dict[str, float], item_id: str,
            ts: float) -> None:
    bought[item_id] = max(bought.get(item_id, ts), ts)
    viewed[:] = [v for v in viewed if not (v[0] == item_id and v[_VIEWED_AT] <= ts)]


def _newest(bought: Mapping[str, float], limit: int) -> dict[str, float]:
    if len(bought) <= limit:
        return dict(bought)
    return dict(sorted(bought.items(), key=lambda kv: (-kv[1], kv[0]))[:limit])


def active_hours(features: UserFeatures, offset_h: int = 0) -> list[int]:
    """The hours histogram shifted to a zone ``offset_h`` hours from UTC (index = local
    hour)."""
    return [features.hours[(h - offset_h) % 24] for h in range(24)]
