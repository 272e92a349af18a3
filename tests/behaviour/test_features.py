"""Profile features follow events: counts per category and kind by day, recency,
recently viewed and not bought, active hours, and every bound."""

from __future__ import annotations

from tests.behaviour.builders import DAY, MONDAY_NOON, event, views
from triggers.behaviour.features import (
    EMPTY,
    HORIZON_DAYS,
    MAX_COUNTERS,
    MAX_VIEWED,
    UserFeatures,
    active_hours,
    fold,
)


def test_counts_views_per_category_within_the_window() -> None:
    features = fold(EMPTY, views(7, "sports", every_s=DAY))
    now = MONDAY_NOON + 6 * DAY
    assert features.count("view", ("sports",), now=now, within_days=30) == (7, now)
    assert features.count("view", ("sports",), now=now, within_days=3)[0] == 3
    assert features.count("purchase", ("sports",), now=now, within_days=30) == (0, None)
    assert features.count("view", None, now=now, within_days=30)[0] == 7


def test_recently_viewed_is_the_newest_item_not_bought_since() -> None:
    stroller = event("view", at=MONDAY_NOON, item="stroller-9", category="baby",
                     name="City stroller", price=349.0)
    bottle = event("view", at=MONDAY_NOON + 600, item="bottle-2", category="baby",
                   name="Glass bottle")
    bought = event("purchase", at=MONDAY_NOON + 900, item="bottle-2", category="baby")
    features = fold(EMPTY, [stroller, bottle, bought])
    assert [v.id for v in features.viewed_items] == ["stroller-9"]
    assert features.viewed_items[0].name == "City stroller"
    assert features.viewed_items[0].price == 349.0


def test_a_view_older_than_the_purchase_does_not_come_back() -> None:
    bought = event("purchase", at=MONDAY_NOON + 900, item="bottle-2", category="baby")
    late_view = event("view", at=MONDAY_NOON, item="bottle-2", category="baby")
    assert fold(fold(EMPTY, [bought]), [late_view]).viewed_items == ()


def test_viewing_again_after_buying_shows_the_item_again() -> None:
    first = [event("view", at=MONDAY_NOON, item="shoe-1", category="sports"),
             event("purchase", at=MONDAY_NOON + 60, item="shoe-1", category="sports")]
    again = event("view", at=MONDAY_NOON + DAY, item="shoe-1", category="sports")
    assert [v.viewed_at for v in fold(EMPTY, [*first, again]).viewed_items] == [MONDAY_NOON + DAY]


def test_viewed_items_are_bounded_newest_first() -> None:
    features = fold(EMPTY, views(MAX_VIEWED + 5, "books"))
    assert len(features.viewed_items) == MAX_VIEWED
    assert features.viewed_items[0].id == f"books-{MAX_VIEWED + 4}"


def test_active_hours_count_events_per_hour_of_day() -> None:
    # 12:00 UTC three days running, and one at 20:00 UTC.
    events = [event("app_open", at=MONDAY_NOON + d * DAY) for d in range(3)]
    events.append(event("app_open", at=MONDAY_NOON + 8 * 3600))
    features = fold(EMPTY, events)
    assert features.hours[12] == 3 and features.hours[20] == 1
    assert active_hours(features, offset_h=8)[20] == 3  # Beijing: 20:00 local


def test_days_past_the_horizon_are_dropped() -> None:
    old = views(3, "garden")
    features = fold(fold(EMPTY, old), [event("view", at=MONDAY_NOON + HORIZON_DAYS * DAY,
                                             item="x", category="books")])
    assert "view|garden" not in features.counters
    assert features.events == 4


def test_counters_are_bounded_keeping_the_most_recent() -> None:
    events = [event("view", at=MONDAY_NOON + i, item=f"i{i}", category=f"c{i}")
              for i in range(MAX_COUNTERS + 10)]
    features = fold(EMPTY, events)
    assert len(features.counters) == MAX_COUNTERS
    assert f"view|c{MAX_COUNTERS + 9}" in features.counters
    assert "view|c0" not in features.counters


def test_the_stored_form_reads_back_equal() -> None:
    features = fold(EMPTY, [*views(3, "sports"),
                            event("purchase", item="sports-1", category="sports")])
    assert UserFeatures.from_json(features.to_json()) == features


def test_folding_in_two_halves_equals_folding_at_once() -> None:
    events = [*views(4, "baby", every_s=DAY), event("purchase", at=MONDAY_NOON + 5 * DAY,
                                                    item="baby-2", category="baby")]
    assert fold(fold(EMPTY, events[:2]), events[2:]) == fold(EMPTY, events)


def test_folding_nothing_changes_nothing() -> None:
    features = fold(EMPTY, views(3, "sports"))
    assert fold(features, []) == features
    assert fold(EMPTY, []) == EMPTY


def test_a_late_event_past_the_horizon_is_not_kept() -> None:
    features = fold(EMPTY, views(2, "sports", start=MONDAY_NOON + HORIZON_DAYS * DAY))
    late = event("view", at=MONDAY_NOON - DAY, item="old", category="garden")
    assert "view|garden" not in fold(features, [late]).counters
