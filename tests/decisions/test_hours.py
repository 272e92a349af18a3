"""Local windows, calendar days across DST, and the opening_hours subset."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.decisions.builders import HELSINKI, at
from triggers.decisions import parse_opening_hours
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
        ("Jun-Aug: Su-Sa 09:00-24:00; Sep-May: Su-Sa 09:00-18:00", "2026-11-27 12:00", None),
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
