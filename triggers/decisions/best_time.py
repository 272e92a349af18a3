"""``best_time`` on a scheduled campaign, pure: each user's send time is their best whole
hour inside the window (their local hours, from the promoted send-time model), else the
fallback time.

A ``best_time`` campaign has a slot at every whole hour of its window and at its fallback
(:func:`best_time_times`); a user is decided at the one slot whose local time is their
choice (:func:`choose_time`) and skipped, with no row, at the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from triggers.decisions.hours import parse_window
from triggers.decisions.models import BestTime

HOURS = 24


def window_hours(best: BestTime) -> list[int]:
    """The local hours whose whole-hour start lies inside the window (it may wrap
    midnight)."""
    start, end = parse_window(best.window)
    if start < end:
        return [h for h in range(HOURS) if start <= h * 60 < end]
    return [h for h in range(HOURS) if h * 60 >= start or h * 60 < end]


def best_time_times(best: BestTime) -> tuple[str, ...]:
    """The local times a ``best_time`` campaign has slots at: each hour of the window and
    the fallback."""
    return tuple(sorted({f"{h:02d}:00" for h in window_hours(best)} | {best.fallback}))


@dataclass(frozen=True, slots=True)
class TimeChoice:
    """A user's send time (``HH:MM`` local) and the decision's note saying why."""

    local_time: str
    note: str


def choose_time(best: BestTime, local_profile: Sequence[float] | None) -> TimeChoice:
    """The user's best hour in the window by ``local_profile`` (the probability of
    engaging at each local hour 0-23; ``None``: not enough data), else the fallback.
    Ties go to the earlier hour."""
    if local_profile is None:
        return TimeChoice(best.fallback, f"best_time: fallback {best.fallback} (not enough "
                                         "send-time data for this user)")
    hours = window_hours(best)
    hour = max(hours, key=lambda h: (local_profile[h], -h))
    return TimeChoice(f"{hour:02d}:00", f"best_time: {hour:02d}:00, the user's best hour "
                                        f"in {best.window} (send-time model)")
