"""The quiet-hours hold: a scheduled or behaviour message that falls in quiet hours waits
for the window's end instead of being dropped.

A location offer is about where the user is now, so in quiet hours it is dropped
(``quiet_hours``); a scheduled or behaviour message is still worth sending a few hours
later, so ``decide`` evaluates it at the window's end, provided that comes within the
campaign's ``offer_ttl_s`` (the push would otherwise be stale before it went out, and it
is dropped as ``quiet_hours`` after all). Pure.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from triggers.decisions.hours import in_window, parse_window, zone
from triggers.decisions.slots import local_instant

HELD_KINDS = frozenset({"scheduled", "behaviour"})
"""Event kinds whose messages are held over quiet hours; location kinds are dropped."""


def quiet_hours_release(
    kind: str, quiet_hours: str | None, tz: str, now: float, ttl_s: float
) -> float | None:
    """When a ``kind`` message due at ``now`` is held to: the end of the ``quiet_hours``
    window (local to ``tz``) it falls in, if that is at most ``ttl_s`` away. ``None``
    when nothing is held: a location kind, no quiet hours, ``now`` outside them, or an
    end beyond the TTL."""
    if kind not in HELD_KINDS or quiet_hours is None:
        return None
    start, end = parse_window(quiet_hours)
    local = datetime.fromtimestamp(now, zone(tz))
    minute = local.hour * 60 + local.minute
    if not in_window((start, end), minute):
        return None
    # The window ends today, unless it wraps midnight and we are in its evening part.
    day = local.date()
    if start > end and minute >= start:
        day += timedelta(days=1)
    if end == 24 * 60:  # "24:00" is the next day's midnight
        day, end = day + timedelta(days=1), 0
    release = local_instant(day, f"{end // 60:02d}:{end % 60:02d}", tz)
    return release if release - now <= ttl_s else None
