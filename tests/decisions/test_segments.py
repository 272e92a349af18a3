"""Lifecycle segments and scene tags from visit history."""

from __future__ import annotations

import pytest

from tests.decisions.builders import HELSINKI, SHANGHAI, at, profile
from triggers.decisions import SceneRule, Segment, Visit, derive_scene_tags, segment_of

NOW = at("2026-11-28 12:00")
DAY = 86_400.0


@pytest.mark.parametrize(
    ("first_seen_days_ago", "last_active_days_ago", "segment"),
    [
        (None, None, Segment.NEW),
        (6.9, None, Segment.NEW),
        (7.0, 1.0, Segment.ACTIVE),
        (200.0, 29.9, Segment.ACTIVE),
        (200.0, 30.0, Segment.DORMANT),
        (40.0, None, Segment.DORMANT),
        (3.0, 3.0, Segment.NEW),
    ],
)
def test_segments(first_seen_days_ago: float | None, last_active_days_ago: float | None,
                  segment: Segment) -> None:
    user = profile(
        first_seen=None if first_seen_days_ago is None else NOW - first_seen_days_ago * DAY,
        last_active=None if last_active_days_ago is None else NOW - last_active_days_ago * DAY,
    )
    assert segment_of(user, NOW) is segment


def _transit(local: str, tz: str = SHANGHAI, minutes: float = 3) -> Visit:
    start = at(local, tz)
    return Visit("bjsubway:5430522453", "transit_station", start, start + minutes * 60)


def _mall(local: str, minutes: float) -> Visit:
    start = at(local, HELSINKI)
    return Visit("osm:way/289767497", "mall", start, start + minutes * 60)


def test_three_weekday_mornings_at_stations_make_a_commuter() -> None:
    visits = [_transit(f"2026-11-{d} 08:10") for d in (23, 24, 25)]
    now = at("2026-11-26 12:00", SHANGHAI)
    assert derive_scene_tags(visits, SHANGHAI, now) == ("commuter",)


@pytest.mark.parametrize(
    "visits",
    [
        # Saturday morning is not commuting.
        [_transit(f"2026-11-{d} 08:10") for d in (23, 24, 28)],
        # Evenings are not mornings.
        [_transit(f"2026-11-{d} 18:10") for d in (23, 24, 25)],
        # Three stations on one morning are one habit day.
        [_transit("2026-11-24 08:10"), _transit("2026-11-24 08:40"), _transit("2026-11-24 09:10")],
        # Older than the two-week lookback.
        [_transit(f"2026-10-{d} 08:10") for d in ("05", "06", "07")],
    ],
)
def test_not_a_commuter(visits: list[Visit]) -> None:
    assert derive_scene_tags(visits, SHANGHAI, at("2026-11-28 12:00", SHANGHAI)) == ()


def test_morning_is_in_the_users_zone() -> None:
    # 08:10 in Shanghai is 02:10 in Helsinki: not a Helsinki morning.
    visits = [_transit(f"2026-11-{d} 08:10") for d in (23, 24, 25)]
    assert derive_scene_tags(visits, HELSINKI, at("2026-11-26 12:00", SHANGHAI)) == ()


def test_repeated_long_mall_dwells_make_a_shopper() -> None:
    long_ones = [_mall(f"2026-11-{d} 13:00", 45) for d in ("07", 14, 21)]
    short_ones = [_mall(f"2026-11-{d} 13:00", 10) for d in ("08", 15, 22)]
    assert derive_scene_tags(long_ones, HELSINKI, NOW) == ("shopper",)
    assert derive_scene_tags(short_ones, HELSINKI, NOW) == ()
    assert derive_scene_tags(long_ones[:2] + short_ones, HELSINKI, NOW) == ()


def test_visits_after_now_are_ignored_and_rules_are_configurable() -> None:
    visits = [_mall(f"2026-11-{d} 13:00", 20) for d in ("07", 14, 21)]
    browser = SceneRule(tag="browser", venue_kinds=frozenset({"mall"}), min_visits=2,
                        lookback_s=30 * DAY, min_dwell_s=600)
    assert derive_scene_tags(visits, HELSINKI, NOW, rules=[browser]) == ("browser",)
    assert derive_scene_tags(visits, HELSINKI, at("2026-11-10 12:00"), rules=[browser]) == ()
