"""Local windows, calendar days across DST, and the opening_hours subset."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.decisions.builders import HELSINKI, at
from triggers.decisions import parse_opening_hours
from triggers.decisions.hours import in_window, local_day_bounds, parse_window
from triggers.decisions.opening_hours import ALWAYS_OPEN


@pytest.mark.parametrize(
    ("text", "window"),
    [("10:00-21:00", (600, 1260)), ("22:00-08:00", (1320, 480)), ("00:00-24:00", (0, 1440)),
     ("8:30 - 9:15", (510, 555))],
)
def test_parse_window(text: str, window: tuple[int, int]) -> None:
    assert parse_window(text) == window


@pytest.mark.parametrize("text", ["10-21", "25:00-26:00", "10:00-10:00", "10:61-11:00", ""])
def test_parse_window_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_window(text)


@pytest.mark.parametrize(
    ("minute", "inside"), [(1319, False), (1320, True), (0, True), (479, True), (480, False)]
)
def test_window_wrapping_midnight(minute: int, inside: bool) -> None:
    assert in_window((1320, 480), minute) is inside


def test_calendar_day_is_23_hours_on_dst_day_in_helsinki() -> None:
    start, end = local_day_bounds(at("2026-03-29 12:00"), HELSINKI)
    assert (start, end) == (at("2026-03-29 00:00"), at("2026-03-30 00:00"))
    assert end - start == 23 * 3600
    start, end = local_day_bounds(at("2026-10-25 12:00"), HELSINKI)
    assert end - start == 25 * 3600


def _open(text: str, local: str, *, holiday: bool = False) -> bool | None:
    hours = parse_opening_hours(text)
    if hours is None:
        return None
    return hours.is_open(datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(HELSINKI)),
                         holiday=holiday)


# 2026-11-27 is a Friday.
@pytest.mark.parametrize(("text", "local", "expected"), [
    ("Mo-Fr 10:00-21:00; PH off", "2026-11-27 12:00", False),
    ("Mo-Fr 10:00-21:00; PH 12:00-16:00", "2026-11-27 11:00", False),
    ("Mo-Fr 10:00-21:00; PH 12:00-16:00", "2026-11-27 13:00", True),
    ("Mo-Fr,PH 10:00-21:00; Sa 10:00-18:00", "2026-11-28 19:00", True),  # a Saturday holiday
    ("Mo-Fr 10:00-21:00", "2026-11-27 12:00", True),  # no PH rule: the weekday's hours
    ("PH off; Mo-Su 08:00-20:00", "2026-11-27 12:00", False),  # order of rules irrelevant
])
def test_public_holiday_rules_apply_on_holidays(text: str, local: str, expected: bool) -> None:
    assert _open(text, local, holiday=True) is expected


# 2026-11-27 is a Friday, 28 Saturday, 29 Sunday, 30 Monday.
@pytest.mark.parametrize(
    ("text", "local", "expected"),
    [
        ("24/7", "2026-11-29 03:00", True),
        ("Mo-Fr 10:00-21:00; Sa 10:00-18:00", "2026-11-27 20:59", True),
        ("Mo-Fr 10:00-21:00; Sa 10:00-18:00", "2026-11-27 21:00", False),
        ("Mo-Fr 10:00-21:00; Sa 10:00-18:00", "2026-11-28 09:59", False),
        ("Mo-Fr 10:00-21:00; Sa 10:00-18:00", "2026-11-29 12:00", False),
        ("Mo-Fr 10:00-21:00; Sa 10:00-18:00; Su off", "2026-11-29 12:00", False),
        ("Mo-Sa 10:00-20:00; Sa 10:00-16:00", "2026-11-28 17:00", False),
        ("Mo-Sa 10:00-20:00; Sa 10:00-16:00", "2026-11-27 17:00", True),
        ("Tu, Fr 10:00-18:00; We-Th 10:00-20:00; Sa-Su 10:00-17:00", "2026-11-30 12:00", False),
        ("Tu, Fr 10:00-18:00; We-Th 10:00-20:00; Sa-Su 10:00-17:00", "2026-11-27 12:00", True),
        ("Mo-Fr 07:00-22:00; Sa,Su 09:00-22:00", "2026-11-29 09:30", True),
        ("Fr-Mo 10:00-12:00", "2026-11-30 11:00", True),
        ("Mo-Fr 08:00-12:00,13:00-17:00", "2026-11-27 12:30", False),
        ("Fr 18:00-02:00", "2026-11-28 01:30", True),
        ("Fr 18:00-02:00", "2026-11-28 02:00", False),
        ("10:00-20:00", "2026-11-29 19:59", True),
        ("Mo-Su 09:00-24:00", "2026-11-29 23:59", True),
        ("Mo-Fr", "2026-11-27 03:00", True),
        ("off", "2026-11-27 12:00", False),
        # Unsupported syntax: unknown (None), which decide() treats as open with a note.
        ("Mo-Fr 10:00-21:00; SH off", "2026-11-27 12:00", None),
        ("Mo-Fr 10:00-21:00; PH off", "2026-11-27 12:00", True),  # not a holiday here
        ("Mo-Fr 10:00+", "2026-11-27 12:00", None),
        ("sunrise-sunset", "2026-11-27 12:00", None),
        ('Mo-Fr 10:00-18:00 "by appointment"', "2026-11-27 12:00", None),
        ("Mo-Fr 10:00-18:00 || Sa 10:00-14:00", "2026-11-27 12:00", None),
    ],
)
def test_opening_hours_subset(text: str, local: str, expected: bool | None) -> None:
    assert _open(text, local) is expected


# Helsingin tuomiokirkko (osm:way/419479428), in the Helsinki venue file.
CATHEDRAL_HOURS = "Jun-Aug: Su-Sa 09:00-24:00; Sep-May: Su-Sa 09:00-18:00"


@pytest.mark.parametrize(("local", "expected"), [
    ("2026-06-01 22:30", True),
    ("2026-05-31 22:30", False),
    ("2026-08-31 23:59", True),
    ("2026-09-01 00:30", False),  # 24:00 ends 31 August; nothing spills
    ("2026-09-01 20:00", False),
    ("2026-01-15 17:59", True),
    ("2026-01-15 18:00", False),
])
def test_summer_hours_apply_from_june_to_august(local: str, expected: bool) -> None:
    assert _open(CATHEDRAL_HOURS, local) is expected


@pytest.mark.parametrize("text", [
    "Jun-Aug Su-Sa 09:00-24:00; Sep-May Su-Sa 09:00-18:00",
    "Jun-Aug:Su-Sa 09:00-24:00; Sep-May:Su-Sa 09:00-18:00",
    "Jun-Aug: 09:00-24:00; Sep-May: 09:00-18:00",  # no days: every day
    "Sep-May: Mo-Su 09:00-18:00; Jun,Jul,Aug: Mo-Su 09:00-24:00",
])
def test_colon_after_months_is_optional(text: str) -> None:
    assert parse_opening_hours(text) == parse_opening_hours(CATHEDRAL_HOURS)


# An ice rink open over the turn of the year only.
@pytest.mark.parametrize(("local", "expected"), [
    ("2026-10-31 12:00", False),
    ("2026-11-01 12:00", True),
    ("2026-12-31 12:00", True),
    ("2027-01-01 12:00", True),
    ("2026-02-28 12:00", True),
    ("2026-03-01 12:00", False),
])
def test_month_range_wraps_over_new_year(local: str, expected: bool) -> None:
    assert _open("Nov-Feb: 10:00-16:00", local) is expected


# Saturdays: 2026-01-03, 02-07, 03-07, 04-25, 05-02.
@pytest.mark.parametrize(("text", "local", "expected"), [
    ("Jan,Mar-Apr: Sa 10:00-14:00", "2026-01-03 12:00", True),
    ("Jan,Mar-Apr: Sa 10:00-14:00", "2026-02-07 12:00", False),
    ("Jan,Mar-Apr: Sa 10:00-14:00", "2026-03-07 12:00", True),
    ("Jan,Mar-Apr: Sa 10:00-14:00", "2026-04-25 12:00", True),
    ("Jan, Mar-Apr: Sa 10:00-14:00", "2026-05-02 12:00", False),
    ("Jan, Mar-Apr: Sa 10:00-14:00", "2026-04-25 12:00", True),
    ("Jun-Aug", "2026-07-16 03:00", True),  # months alone: open all day
    ("Jun-Aug", "2026-09-16 03:00", False),
])
def test_month_lists_select_their_months(text: str, local: str, expected: bool) -> None:
    assert _open(text, local) is expected


# 2026-07-04 and 2026-06-27 are Saturdays, 2026-07-03 a Friday.
@pytest.mark.parametrize(("text", "local", "expected"), [
    ("Mo-Su 10:00-20:00; Jul: Sa 10:00-14:00", "2026-07-04 15:00", False),
    ("Mo-Su 10:00-20:00; Jul: Sa 10:00-14:00", "2026-07-03 15:00", True),  # July's Fridays kept
    ("Mo-Su 10:00-20:00; Jul: Sa 10:00-14:00", "2026-06-27 15:00", True),  # June's Saturdays kept
    ("Jul: Sa 10:00-14:00; Mo-Su 10:00-20:00", "2026-07-04 15:00", True),  # the later rule wins
    ("Mo-Su 10:00-19:00; Jun off", "2026-06-10 12:00", False),
    ("Mo-Su 10:00-19:00; Jun off", "2026-07-10 12:00", True),
])
def test_later_rule_overrides_only_in_its_months(text: str, local: str, expected: bool) -> None:
    assert _open(text, local) is expected


# Public holidays in Finland: 2026-06-19 (Midsummer Eve), 2026-05-01, 2026-12-25, all Fridays.
@pytest.mark.parametrize(("text", "local", "expected"), [
    ("Mo-Su 10:00-18:00; Jun-Aug: PH off", "2026-06-19 12:00", False),
    ("Mo-Su 10:00-18:00; Jun-Aug: PH off", "2026-12-25 12:00", True),  # weekday hours
    ("Mo-Su 10:00-18:00; PH off; Dec: PH 12:00-16:00", "2026-12-25 13:00", True),
    ("Mo-Su 10:00-18:00; PH off; Dec: PH 12:00-16:00", "2026-12-25 11:00", False),
    ("Mo-Su 10:00-18:00; PH off; Dec: PH 12:00-16:00", "2026-05-01 13:00", False),
])
def test_public_holiday_rules_may_name_months(text: str, local: str, expected: bool) -> None:
    assert _open(text, local, holiday=True) is expected


def test_holiday_rule_in_some_months_mentions_holidays() -> None:
    hours = parse_opening_hours("Mo-Su 10:00-18:00; Jun-Aug: PH off")
    assert hours is not None and hours.mentions_holidays


# A terrace bar: 2026-08-31 is a Monday, 2026-05-31 a Sunday.
BAR_HOURS = "Jun-Aug: 18:00-03:00; Sep-May: 18:00-24:00"


@pytest.mark.parametrize(("local", "expected"), [
    ("2026-09-01 02:00", True),  # the night of 31 August, under summer hours
    ("2026-09-02 02:00", False),
    ("2026-06-01 02:00", False),  # the night of 31 May closed at midnight
    ("2026-06-02 02:00", True),
    ("2027-01-01 02:00", False),
])
def test_night_past_midnight_follows_the_month_it_started_in(local: str, expected: bool) -> None:
    assert _open(BAR_HOURS, local) is expected


def test_is_open_at_takes_yesterdays_month_for_the_night_spilling_into_the_1st() -> None:
    hours = parse_opening_hours(BAR_HOURS)
    assert hours is not None
    tuesday, two_am = 1, 120
    assert hours.is_open_at(tuesday, two_am, month=9, yesterday_month=8)
    assert not hours.is_open_at(tuesday, two_am, month=9)  # the day of the month unknown


@pytest.mark.parametrize(("month", "yesterday_month"), [(0, None), (13, None), (1, 0)])
def test_is_open_at_rejects_months_outside_1_to_12(month: int, yesterday_month: int | None) -> None:
    with pytest.raises(ValueError, match="not 1-12"):
        ALWAYS_OPEN.is_open_at(0, 600, month=month, yesterday_month=yesterday_month)


@pytest.mark.parametrize("text", [
    # Malformed month selectors.
    "Foo-Aug: Su-Sa 09:00-24:00",
    "Jun-: Su-Sa 09:00-24:00",
    "Jun-Aug-Sep: 10:00-18:00",
    "Jun,: 10:00-18:00",
    "Jun-Aug:: 10:00-18:00",
    "jun-aug: 10:00-18:00",
    "Jun-Aug Mo-Fr: 10:00-18:00",
    # Valid OSM this parser leaves unknown: dates, years, weeks, ':' after days.
    "Mo-Su 10:00-18:00; Dec 25 off",
    "Mo-Su 10:00-18:00; Dec 24-26 off",
    "Dec 25: off",
    "Jun 15-Aug 31: 10:00-20:00",
    "2026 Jun-Aug: 10:00-20:00",
    "week 01-26 Mo-Fr 10:00-18:00",
    "Mo-Fr: 10:00-18:00",
    "Jun-Aug: Mo-Fr 10:00-18:00; SH off",
])
def test_unknown_month_and_date_forms_are_not_understood(text: str) -> None:
    assert parse_opening_hours(text) is None
