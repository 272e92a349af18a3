"""The slots of a scheduled campaign: local wall-clock times in each user's zone, DST
resolved (a time that does not exist fires when the clocks jump; one that happens twice
fires once, at its first occurrence), stable ids, days, grace."""

from __future__ import annotations

from datetime import date

import pytest

from tests.decisions.builders import at, policy
from triggers.decisions.models import ScheduledTrigger
from triggers.decisions.slots import (
    Slot,
    SlotState,
    local_instant,
    open_slots,
    slot_state,
    slots_between,
    slots_on,
    user_zone,
)

HELSINKI = "Europe/Helsinki"
NEW_YORK = "America/New_York"


def trigger(*times: str, **data: object) -> ScheduledTrigger:
    return ScheduledTrigger.model_validate({"times": list(times), **data})


@pytest.mark.parametrize(("day", "hhmm", "tz", "expected_utc"), [
    # Helsinki springs forward 03:00 -> 04:00 on 2026-03-29: 03:30 never happens, so the
    # slot fires when the clocks jump, 04:00 EEST = 01:00 UTC.
    (date(2026, 3, 29), "03:30", HELSINKI, "2026-03-29 01:00"),
    # ... and 10:00 that day is already summer time (UTC+3).
    (date(2026, 3, 29), "10:00", HELSINKI, "2026-03-29 07:00"),
    # Helsinki falls back 04:00 -> 03:00 on 2026-10-25: 03:30 happens twice; the first
    # (EEST, UTC+3) is the slot.
    (date(2026, 10, 25), "03:30", HELSINKI, "2026-10-25 00:30"),
    (date(2026, 10, 25), "15:00", HELSINKI, "2026-10-25 13:00"),
    # New York springs forward 02:00 -> 03:00 on 2026-03-08: 02:30 fires at 03:00 EDT.
    (date(2026, 3, 8), "02:30", NEW_YORK, "2026-03-08 07:00"),
    # ... and falls back 02:00 -> 01:00 on 2026-11-01: 01:30 fires once, in EDT.
    (date(2026, 11, 1), "01:30", NEW_YORK, "2026-11-01 05:30"),
    (date(2026, 11, 1), "10:00", NEW_YORK, "2026-11-01 15:00"),
])
def test_local_time_resolves_dst_gaps_and_overlaps(
    day: date, hhmm: str, tz: str, expected_utc: str
) -> None:
    assert local_instant(day, hhmm, tz) == at(expected_utc, "UTC")


def test_an_ambiguous_time_fires_once_on_the_fall_back_day() -> None:
    night = trigger("03:30")
    slots = slots_between(night, "c1", HELSINKI, at("2026-10-24 12:00"), at("2026-10-26 12:00"))
    assert [s.local for s in slots] == ["2026-10-25T03:30", "2026-10-26T03:30"]
    assert slots[0].at == at("2026-10-25 00:30", "UTC")


def test_the_spring_forward_day_still_has_its_slot() -> None:
    night = trigger("03:30")
    slots = slots_between(night, "c1", HELSINKI, at("2026-03-28 12:00"), at("2026-03-30 12:00"))
    assert [s.local for s in slots] == ["2026-03-29T03:30", "2026-03-30T03:30"]
    # The 23-hour day: 03:30 EET on the 28th to 04:00 EEST on the 29th is 23.5 h.
    assert slots[1].at - at("2026-03-29 03:30", "UTC") < 86_400


def test_ten_and_fifteen_local_are_different_instants_per_zone() -> None:
    case = trigger("10:00", "15:00")
    day = date(2026, 12, 7)
    helsinki = slots_on(case, "mother-baby", day, HELSINKI)
    new_york = slots_on(case, "mother-baby", day, NEW_YORK)
    assert [s.local for s in helsinki] == ["2026-12-07T10:00", "2026-12-07T15:00"]
    assert helsinki[0].at == at("2026-12-07 08:00", "UTC")
    assert new_york[0].at == at("2026-12-07 15:00", "UTC")
    # New York's 10:00 is Helsinki's 17:00: seven hours later.
    assert new_york[0].at - helsinki[0].at == 7 * 3600


def test_slot_ids_name_campaign_local_time_and_zone_not_the_instant() -> None:
    slot = slots_on(trigger("10:00"), "mother-baby", date(2026, 12, 7), HELSINKI)[0]
    assert slot.slot_id == "mother-baby@2026-12-07T10:00@Europe/Helsinki"
    assert slot.user_slot("u1") == "mother-baby@2026-12-07T10:00@u1"
    again = slots_on(trigger("10:00"), "mother-baby", date(2026, 12, 7), HELSINKI)[0]
    assert again == slot


def test_days_leave_out_the_other_weekdays() -> None:
    weekdays = trigger("10:00", days=["mo", "tu", "we", "th", "fr"])
    saturday, monday = date(2026, 12, 5), date(2026, 12, 7)
    assert slots_on(weekdays, "c1", saturday, HELSINKI) == []
    assert len(slots_on(weekdays, "c1", monday, HELSINKI)) == 1


def test_best_time_has_a_slot_at_each_hour_of_its_window_and_at_its_fallback() -> None:
    best = trigger("10:00", best_time={"fallback": "18:30", "window": "09:00-21:00"})
    slots = slots_on(best, "c1", date(2026, 12, 7), HELSINKI)
    assert [s.local[11:] for s in slots] == [
        *(f"{h:02d}:00" for h in range(9, 19)), "18:30", "19:00", "20:00"]


@pytest.mark.parametrize(("now", "state"), [
    (at("2026-12-07 09:59"), SlotState.FUTURE),
    (at("2026-12-07 10:00"), SlotState.DUE),
    (at("2026-12-07 11:00"), SlotState.DUE),  # the last second of a one-hour grace
    (at("2026-12-07 11:00") + 1, SlotState.MISSED),
])
def test_a_slot_is_due_from_its_time_until_its_grace_ends(now: float, state: SlotState) -> None:
    assert slot_state(at("2026-12-07 10:00"), now, grace_s=3600) is state


def test_open_slots_lists_due_and_missed_slots_of_the_lookback() -> None:
    case = trigger("10:00", "15:00", grace_s=1800)
    found = open_slots(case, "c1", HELSINKI, at("2026-12-07 15:10"), lookback_s=8 * 3600)
    assert [(s.local, state) for s, state in found] == [
        ("2026-12-07T10:00", SlotState.MISSED), ("2026-12-07T15:00", SlotState.DUE)]


def test_users_without_a_zone_use_the_tenant_zone_else_utc() -> None:
    assert user_zone("Asia/Shanghai", policy(default_timezone=HELSINKI)) == "Asia/Shanghai"
    assert user_zone(None, policy(default_timezone=HELSINKI)) == HELSINKI
    assert user_zone(None, policy()) == "UTC"


def test_slots_sort_by_instant() -> None:
    early = Slot(1.0, HELSINKI, "2026-12-07T10:00", "c1")
    late = Slot(2.0, HELSINKI, "2026-12-07T09:00", "c1")
    assert sorted([late, early]) == [early, late]
