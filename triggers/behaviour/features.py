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
from dataclasses import dataclass, field, replace
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


@dataclass(frozen=True, slots=True)
class Counter:
    """Events of one (kind, category): per UTC day, ascending, and the latest one's time."""

    days: tuple[tuple[int, int], ...]
    last_at: float

    def count_since(self, first_day: int) -> int:
        return sum(n for day, n in self.days if day >= first_day)


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


@dataclass(frozen=True, slots=True)
class UserFeatures:
    """One user's behaviour features (see the module docstring for the bounds)."""

    counters: Mapping[tuple[str, str], Counter] = field(default_factory=dict)
    viewed: tuple[ViewedItem, ...] = ()
    bought: Mapping[str, float] = field(default_factory=dict)
    hours: tuple[int, ...] = (0,) * 24
    """Events per UTC hour of day, 0 to 23."""
    events: int = 0
    """Events folded in, all time."""
    last_at: float | None = None
    """The newest event's time."""

    def count(self, kind: str, categories: Sequence[str] | None, *, now: float,
              within_days: float) -> tuple[int, float | None]:
        """Events of ``kind`` in ``categories`` (``None``: any category) over the
        ``within_days`` UTC days ending with ``now``'s day, and the latest one's time."""
        first_day = day_of(now) - math.ceil(within_days) + 1
        total, last = 0, None
        for (k, category), counter in self.counters.items():
            if k != kind or (categories is not None and category not in categories):
                continue
            n = counter.count_since(first_day)
            if n:
                total += n
                last = counter.last_at if last is None else max(last, counter.last_at)
        return total, last

    def to_json(self) -> dict[str, Any]:
        """The stored form (JSON)."""
        return {
            "counters": [[k, c, [list(d) for d in ctr.days], ctr.last_at]
                         for (k, c), ctr in self.counters.items()],
            "viewed": [[v.id, v.name, v.category, v.price, v.currency, v.url, v.image_url,
                        v.viewed_at] for v in self.viewed],
            "bought": dict(self.bought), "hours": list(self.hours), "events": self.events,
            "last_at": self.last_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UserFeatures:
        return cls(
            counters={(k, c): Counter(tuple((int(d), int(n)) for d, n in days), float(last))
                      for k, c, days, last in data.get("counters", [])},
            viewed=tuple(ViewedItem(*row) for row in data.get("viewed", [])),
            bought={str(k): float(v) for k, v in data.get("bought", {}).items()},
            hours=tuple(int(h) for h in data.get("hours", [0] * 24)),
            events=int(data.get("events", 0)), last_at=data.get("last_at"),
        )


EMPTY = UserFeatures()


def fold(features: UserFeatures, events: Iterable[BehaviourEvent]) -> UserFeatures:
    """``features`` with ``events`` (one user's, any order) folded in. Days older than
    :data:`HORIZON_DAYS` before the newest event seen are dropped."""
    counters = dict(features.counters)
    viewed = list(features.viewed)
    bought = dict(features.bought)
    hours = list(features.hours)
    count, last_at = features.events, features.last_at
    for event in events:
        key = (event.kind, (event.item.category if event.item else None) or NO_CATEGORY)
        counters[key] = _counted(counters.get(key), event.ts)
        hours[int(event.ts // 3600) % 24] += 1
        count += 1
        last_at = event.ts if last_at is None else max(last_at, event.ts)
        if event.item is None:
            continue
        if event.kind == BehaviourKind.VIEW:
            _viewed(viewed, bought, event)
        elif event.kind == BehaviourKind.PURCHASE:
            _bought(viewed, bought, event.item.id, event.ts)
    return UserFeatures(_trimmed(counters, last_at), tuple(viewed[:MAX_VIEWED]),
                        _newest(bought, MAX_BOUGHT), tuple(hours), count, last_at)


def _counted(counter: Counter | None, ts: float) -> Counter:
    day = day_of(ts)
    if counter is None:
        return Counter(((day, 1),), ts)
    days = dict(counter.days)
    days[day] = days.get(day, 0) + 1
    return Counter(tuple(sorted(days.items())), max(counter.last_at, ts))


def _trimmed(counters: dict[tuple[str, str], Counter],
             last_at: float | None) -> dict[tuple[str, str], Counter]:
    """Counters without days past the horizon (empty ones dropped), the most recent
    :data:`MAX_COUNTERS` of them (ties by key, so the result is deterministic)."""
    if last_at is None:
        return counters
    first_day = day_of(last_at) - HORIZON_DAYS + 1
    kept: dict[tuple[str, str], Counter] = {}
    for key, counter in counters.items():
        days = tuple(d for d in counter.days if d[0] >= first_day)
        if days:
            kept[key] = counter if len(days) == len(counter.days) else replace(counter,
                                                                                days=days)
    if len(kept) > MAX_COUNTERS:
        newest = sorted(kept, key=lambda k: (-kept[k].last_at, k))[:MAX_COUNTERS]
        kept = {k: kept[k] for k in newest}
    return kept


def _viewed(viewed: list[ViewedItem], bought: Mapping[str, float],
            event: BehaviourEvent) -> None:
    item = event.item
    assert item is not None
    if bought.get(item.id, -math.inf) >= event.ts:
        return  # viewed before it was bought: nothing still to think about
    for i, old in enumerate(viewed):
        if old.id == item.id:
            if old.viewed_at >= event.ts:
                return
            del viewed[i]
            break
    viewed.append(ViewedItem(item.id, item.name, item.category, item.price, item.currency,
                             item.url, item.image_url, event.ts))
    viewed.sort(key=lambda v: (-v.viewed_at, v.id))


def _bought(viewed: list[ViewedItem], bought: dict[str, float], item_id: str,
            ts: float) -> None:
    bought[item_id] = max(bought.get(item_id, ts), ts)
    viewed[:] = [v for v in viewed if not (v.id == item_id and v.viewed_at <= ts)]


def _newest(bought: Mapping[str, float], limit: int) -> dict[str, float]:
    if len(bought) <= limit:
        return dict(bought)
    return dict(sorted(bought.items(), key=lambda kv: (-kv[1], kv[0]))[:limit])


def active_hours(features: UserFeatures, offset_h: int = 0) -> list[int]:
    """The hours histogram shifted to a zone ``offset_h`` hours from UTC (index = local
    hour)."""
    return [features.hours[(h - offset_h) % 24] for h in range(24)]
