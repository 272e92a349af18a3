"""Local windows, calendar days across DST, and venues' OSM opening_hours."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.decisions.builders import HELSINKI, at
from triggers.decisions import HoursState, OpeningHoursError, venue_hours
from triggers.decisions.hours import in_window, local_day_bounds, parse_window


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


HELSINKI_CENTRE = (60.1699, 24.9384)
"""Senate Square: where Helsinki's sun rises and sets, for sunrise/sunset rules."""


def _open(text: str, local: str, *, country: str | None = None,
          coords: tuple[float, float] | None = None) -> bool | None:
    """Open / closed / ``None`` (unknown) at a Helsinki wall-clock time."""
    hours = venue_hours(text, HELSINKI, country=country, coords=coords)
    return hours.is_open(datetime.fromisoformat(local))


# Finnish public holidays in 2026: Christmas Day (Friday 25 Dec), Midsummer Day (Saturday
# 20 Jun), Good Friday (3 Apr); 23 Dec and 28 Nov are ordinary days.
@pytest.mark.parametrize(("text", "local", "expected"), [
    ("Mo-Fr 10:00-21:00; PH off", "2026-12-25 12:00", False),
    ("Mo-Fr 10:00-21:00; PH off", "2026-12-23 12:00", True),
    ("Mo-Fr 10:00-21:00; PH off", "2026-04-03 12:00", False),
    ("Mo-Fr 10:00-21:00; PH 12:00-16:00", "2026-12-25 11:00", False),
    ("Mo-Fr 10:00-21:00; PH 12:00-16:00", "2026-12-25 13:00", True),
    # A Saturday holiday: the rule written last for the day wins, as for any rule.
    ("Mo-Fr 10:00-21:00; Sa 10:00-18:00; PH 10:00-21:00", "2026-06-20 19:00", True),
    ("Mo-Fr,PH 10:00-21:00; Sa 10:00-18:00", "2026-06-20 19:00", False),
    ("Mo-Fr 10:00-21:00; Sa 10:00-18:00; PH 10:00-21:00", "2026-11-28 19:00", False),
    ("Mo-Fr 10:00-21:00", "2026-12-25 12:00", True),  # no PH rule: the weekday's hours
])
def test_public_holiday_rules_follow_the_countrys_calendar(
    text: str, local: str, expected: bool
) -> None:
    assert _open(text, local, country="FI") is expected


def test_public_holidays_come_from_the_position_when_no_country_is_given() -> None:
    assert _open("Mo-Su 10:00-21:00; PH off", "2026-12-25 12:00",
                 coords=HELSINKI_CENTRE) is False
    hours = venue_hours("Mo-Su 10:00-21:00; PH off", HELSINKI, coords=HELSINKI_CENTRE)
    assert hours.caveat is None


@pytest.mark.parametrize(("country", "coords", "caveat", "christmas_open"), [
    (None, None, "the venue's country is unknown; PH not applied", True),
    ("XX", None, "no public-holiday calendar for country 'XX'; none; PH not applied", True),
    ("XX", HELSINKI_CENTRE, "no public-holiday calendar for country 'XX'; its position's",
     False),
])
def test_holiday_rules_without_a_calendar_say_so(
    country: str | None, coords: tuple[float, float] | None, caveat: str, christmas_open: bool
) -> None:
    hours = venue_hours("Mo-Su 10:00-21:00; PH off", HELSINKI, country=country, coords=coords)
    assert hours.caveat == caveat
    assert hours.is_open(datetime(2026, 12, 25, 12, 0)) is christmas_open


def test_school_holidays_have_no_calendar_and_say_so() -> None:
    hours = venue_hours("Mo-Fr 10:00-21:00; SH off", HELSINKI, country="FI")
    assert hours.caveat == "school holidays (SH) have no calendar; SH rules not applied"
    assert hours.is_open(datetime(2026, 7, 1, 12, 0)) is True  # Finnish summer break
    assert venue_hours('Mo-Fr 10:00-21:00 "SH hours vary"', HELSINKI).caveat is None


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
        # A later rule for Saturday governs all of Saturday, the small hours included.
        ("Fr 20:00-02:00; Sa 10:00-16:00", "2026-11-28 01:00", False),
        ("10:00-20:00", "2026-11-29 19:59", True),
        ("Mo-Su 09:00-24:00", "2026-11-29 23:59", True),
        ("Mo-Fr", "2026-11-27 03:00", True),
        ("off", "2026-11-27 12:00", False),
        # Dates, years and weeks.
        ("Mo-Su 10:00-18:00; Dec 24-26 off", "2026-12-24 12:00", False),
        ("Mo-Su 10:00-18:00; Dec 24-26 off", "2026-12-27 12:00", True),
        ("Dec 25: off", "2026-12-25 12:00", False),
        ("Jun 15-Aug 31: 10:00-20:00", "2026-06-14 12:00", False),
        ("Jun 15-Aug 31: 10:00-20:00", "2026-06-15 12:00", True),
        ("2026 Jun-Aug: 10:00-20:00", "2026-07-01 12:00", True),
        ("2026 Jun-Aug: 10:00-20:00", "2027-07-01 12:00", False),
        ("week 01-26 Mo-Fr 10:00-18:00", "2026-06-01 12:00", True),
        ("week 01-26 Mo-Fr 10:00-18:00", "2026-07-01 12:00", False),
        ("10:00-18:00; easter off", "2026-04-05 12:00", False),
        ("10:00-18:00; easter off", "2026-04-06 12:00", True),
        # Comments and fallbacks decide as their rules say; "unknown" is unknown.
        ('Mo-Fr 10:00-18:00 "by appointment"', "2026-11-27 12:00", True),
        ("Mo-Fr 10:00-18:00 || Sa 10:00-14:00", "2026-11-27 12:00", True),
        ("Mo-Fr 10:00-18:00; Sa unknown", "2026-11-28 12:00", None),
        ("Mo-Fr 10:00+", "2026-11-27 09:00", False),
    ],
)
def test_opening_hours(text: str, local: str, expected: bool | None) -> None:
    assert _open(text, local) is expected


def test_state_carries_the_rules_comment() -> None:
    hours = venue_hours('Mo-Fr 10:00-18:00 "by appointment"', HELSINKI)
    assert hours.state_at(datetime(2026, 11, 27, 12, 0)) == (HoursState.OPEN, "by appointment")


# Helsinki at the winter solstice: the sun rises ~09:23 and sets ~15:12.
@pytest.mark.parametrize(("local", "expected"), [
    ("2026-12-21 09:00", False), ("2026-12-21 12:00", True), ("2026-12-21 16:00", False),
    ("2026-06-21 22:00", True),  # midsummer: sunset ~22:50
])
def test_sunrise_and_sunset_follow_the_venues_position(local: str, expected: bool) -> None:
    assert _open("sunrise-sunset", local, country="FI", coords=HELSINKI_CENTRE) is expected


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
    for local in ("2026-07-16 20:00", "2026-01-15 20:00", "2026-01-15 10:00", "2026-08-31 23:30"):
        assert _open(text, local) is _open(CATHEDRAL_HOURS, local), local


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


# Public holidays in Finland: 2026-06-20 (Midsummer Day, a Saturday), 2026-05-01 and
# 2026-12-25 (Fridays).
@pytest.mark.parametrize(("text", "local", "expected"), [
    ("Mo-Su 10:00-18:00; Jun-Aug: PH off", "2026-06-20 12:00", False),
    ("Mo-Su 10:00-18:00; Jun-Aug: PH off", "2026-12-25 12:00", True),  # weekday hours
    ("Mo-Su 10:00-18:00; PH off; Dec: PH 12:00-16:00", "2026-12-25 13:00", True),
    ("Mo-Su 10:00-18:00; PH off; Dec: PH 12:00-16:00", "2026-12-25 11:00", False),
    ("Mo-Su 10:00-18:00; PH off; Dec: PH 12:00-16:00", "2026-05-01 13:00", False),
])
def test_public_holiday_rules_may_name_months(text: str, local: str, expected: bool) -> None:
    assert _open(text, local, country="FI") is expected


# A terrace bar: 2026-08-31 is a Monday, 2026-05-31 a Sunday.
BAR_HOURS = "Jun-Aug: 18:00-03:00; Sep-May: 18:00-24:00"


@pytest.mark.parametrize(("local", "expected"), [
    ("2026-08-31 23:30", True),
    ("2026-08-01 02:00", True),  # the night of 31 July, under summer hours
    # The Sep-May rule governs all of 1 September, so the summer night ends at midnight
    # (OSM: a later rule replaces earlier ones for the days it selects).
    ("2026-09-01 02:00", False),
    ("2026-09-02 02:00", False),
    ("2026-06-01 02:00", False),  # the night of 31 May closed at midnight
    ("2026-06-02 02:00", True),
    ("2027-01-01 02:00", False),
])
def test_night_past_midnight_continues_unless_a_later_rule_takes_the_day(
    local: str, expected: bool
) -> None:
    assert _open(BAR_HOURS, local) is expected


@pytest.mark.parametrize(("text", "column"), [
    ("Foo-Aug: Su-Sa 09:00-24:00", 1),
    ("Jun-: Su-Sa 09:00-24:00", 5),
    ("Jun-Aug-Sep: 10:00-18:00", 8),
    ("Jun,: 10:00-18:00", 5),
    ("Jun-Aug:: 10:00-18:00", 9),
    ("Jun-Aug Mo-Fr: 10:00-18:00", 14),
    ("Mo-Fr: 10:00-18:00", 6),  # ':' after days is a common slip, not OSM
    ("Mo-Fr 25:00-26:00", 7),
    ("10-18", 1),
    ("", 1),
])
def test_malformed_opening_hours_are_refused_with_the_column(text: str, column: int) -> None:
    with pytest.raises(OpeningHoursError) as refused:
        venue_hours(text, HELSINKI)
    assert str(refused.value) == f"{text!r} is not OSM opening_hours syntax (at column {column})"
