"""The features fold as it was first written (one event at a time, plainly): the
reference the optimised :func:`triggers.behaviour.features.fold` must agree with."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from triggers.behaviour.events import BehaviourEvent, BehaviourKind
from triggers.behaviour.features import (
    _VIEWED_AT,
    HORIZON_DAYS,
    MAX_BOUGHT,
    MAX_COUNTERS,
    MAX_VIEWED,
    NO_CATEGORY,
    UserFeatures,
    counter_key,
    day_of,
)


def reference_fold(features: UserFeatures, events: Iterable[BehaviourEvent]) -> UserFeatures:
    """``features`` with ``events`` (one user's, any order) folded in. Days older than
    :data:`HORIZON_DAYS` before the newest event seen are dropped."""
    counters = dict(features.counters)
    viewed: list[Sequence[Any]] | None = None
    bought: dict[str, float] | None = None
    hours = list(features.hours)
    count, last_at = features.events, features.last_at
    oldest = math.inf
    for event in events:
        item = event.item
        key = counter_key(event.kind, (item.category if item else None) or NO_CATEGORY)
        counters[key] = _counted(counters.get(key), event.ts)
        oldest = min(oldest, event.ts)
        hours[int(event.ts // 3600) % 24] += 1
        count += 1
        last_at = event.ts if last_at is None else max(last_at, event.ts)
        if item is None:
            continue
        if event.kind == BehaviourKind.VIEW:
            viewed = list(features.viewed) if viewed is None else viewed
            _viewed(viewed, features.bought if bought is None else bought, event)
        elif event.kind == BehaviourKind.PURCHASE:
            viewed = list(features.viewed) if viewed is None else viewed
            bought = dict(features.bought) if bought is None else bought
            _bought(viewed, bought, item.id, event.ts)
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


def _counted(counter: Sequence[float] | None, ts: float) -> list[float]:
    day = day_of(ts)
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
