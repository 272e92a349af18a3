"""Local time: daily windows (``"22:00-08:00"``), local dates and calendar-day bounds.

Pure: every function takes the instant as epoch seconds and the zone as an IANA name.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

# \d also matches other scripts' digits ("٠٩:٠٠-٢١:٠٠" is 09:00-21:00, as int() reads
# it): windows stored in them keep working.
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
MINUTES_PER_DAY = 24 * 60


@lru_cache(maxsize=1024)  # decide parses the same few windows per candidate per event
def parse_window(text: str) -> tuple[int, int]:
    """``"HH:MM-HH:MM"`` → (start, end) in minutes after local midnight.

    The end may be ``24:00``. An end before the start wraps midnight (``22:00-08:00``).
    Raises ``ValueError`` on anything else, including an empty window (start == end),
    which would be ambiguous between "never" and "always".
    """
    match = _WINDOW.match(text)
    if match is None:
        raise ValueError(f"time window {text!r} is not 'HH:MM-HH:MM'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or m1 > 59 or m2 > 59 or end > MINUTES_PER_DAY:
        raise ValueError(f"time window {text!r} has an impossible time")
    if start == end:
        raise ValueError(f"time window {text!r} is empty")
    return start, end


def in_window(window: tuple[int, int], minute_of_day: int) -> bool:
    """Whether a local minute falls in ``window`` (start inclusive, end exclusive)."""
    start, end = window
    if start < end:
        return start <= minute_of_day < end
    return minute_of_day >= start or minute_of_day < end


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` for an IANA name (cached: ZoneInfo construction is not free)."""
    return ZoneInfo(name)


def local_time(at: float, tz: str) -> datetime:
    """The aware local datetime of epoch second ``at`` in zone ``tz``."""
    return datetime.fromtimestamp(at, zone(tz))


def minute_of_day(local: datetime) -> int:
    return local.hour * 60 + local.minute


def local_day_bounds(at: float, tz: str) -> tuple[float, float]:
    """Epoch seconds of the local midnight starting the day of ``at`` and the next one.

    The day is 23 or 25 hours long across a DST change (Europe/Helsinki, 2026-03-29 is 23 h);
    building each midnight from the calendar date, not adding 86 400 s, gets that right.
    """
    return day_bounds(local_time(at, tz).date(), tz)


@lru_cache(maxsize=4096)  # decide asks once per event; a zone has one answer per date
def day_bounds(day: date, tz: str) -> tuple[float, float]:
    """Epoch seconds of the local midnights starting ``day`` and the day after, in ``tz``."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone(tz))
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=zone(tz))
    return start.timestamp(), end.timestamp()
