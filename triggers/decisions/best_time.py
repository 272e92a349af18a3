"""``best_time`` on a scheduled campaign, pure: each user's send time is their best whole
hour inside the window (their local hours, from the promoted send-time model), else the
fallback time.

A ``best_time`` campaign has a slot at every whole hour of its window and at its fallback
(:func:`best_time_times`); a user is decided at the one slot whose local time is their
choice (:func:`time_choice`) and skipped, with no row, at the others. The service's
scheduler and the simulator both choose through :func:`time_choice`, from a send-time
model's profiles in the model's zone (:func:`local_profile`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
import numpy.typing as npt

from triggers.decisions.hours import parse_window, zone
from triggers.decisions.models import BestTime
from triggers.decisions.records import Decision

HOURS = 24
MIN_SENDTIME_EVENTS = 5
"""Engagement events (app opens, clicks, opens) a user needs for ``best_time`` to use
their own profile; with fewer the campaign's fallback time applies."""


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
    if not hours:  # stored before windows had to hold a whole hour ("09:15-09:45")
        return TimeChoice(best.fallback, f"best_time: fallback {best.fallback} (no whole "
                                         f"hour in {best.window})")
    hour = max(hours, key=lambda h: (local_profile[h], -h))
    return TimeChoice(f"{hour:02d}:00", f"best_time: {hour:02d}:00, the user's best hour "
                                        f"in {best.window} (send-time model)")


class HourProfiles(Protocol):
    """A send-time model's profiles (``triggers.learning.scoring.SendTimeScorer``)."""

    def hour_profile(self, user_id: str) -> npt.NDArray[np.float32]:
        """The probability of engaging at each hour 0-23 of the model's zone."""
        ...


class LocalProfiles(Protocol):
    """What :func:`time_choice` reads: a user's profile by local hour of ``tz`` around
    ``at``, or ``None`` without a model or enough of the user's data."""

    def local_profile(self, user_id: str, tz: str, at: float) -> Sequence[float] | None: ...


def users_with_enough_data(user_ids: Iterable[str],
                           engagement_counts: Iterable[float]) -> frozenset[str]:
    """The users (in the model's order, with their engagement event counts) who have at
    least :data:`MIN_SENDTIME_EVENTS`."""
    return frozenset(u for u, n in zip(user_ids, engagement_counts, strict=False)
                     if n >= MIN_SENDTIME_EVENTS)


@dataclass(frozen=True, slots=True)
class SendTimeProfiles:
    """A promoted send-time model as ``best_time`` reads it: its ``profiles`` by hour of
    ``model_zone``, and the users with ``enough`` data (:func:`users_with_enough_data`)."""

    profiles: HourProfiles
    enough: frozenset[str]
    model_zone: str = "UTC"

    def local_profile(self, user_id: str, tz: str, at: float) -> list[float] | None:
        """The user's profile by local hour of ``tz``: the model's hours shifted by the
        two zones' UTC offsets at ``at``, to the whole hour; ``None`` for a user without
        enough data."""
        if user_id not in self.enough:
            return None
        profile = self.profiles.hour_profile(user_id)
        shift = round(_offset_h(tz, at) - _offset_h(self.model_zone, at))
        return [float(profile[(hour - shift) % HOURS]) for hour in range(HOURS)]


def _offset_h(tz: str, at: float) -> float:
    offset = datetime.fromtimestamp(at, zone(tz)).utcoffset()
    return 0.0 if offset is None else offset.total_seconds() / 3600


def time_choice(best: BestTime | None, view: LocalProfiles | None, user_id: str, tz: str,
                at: float) -> TimeChoice | None:
    """A ``best_time`` campaign's send time for the user on the day of the slot at
    ``at`` in ``tz`` (``None``: the campaign has no ``best_time``; no ``view``: the
    fallback)."""
    if best is None:
        return None
    profile = view.local_profile(user_id, tz, at) if view is not None else None
    return choose_time(best, profile)


def with_time_note(decision: Decision, choice: TimeChoice) -> Decision:
    """The decision with the choice's note first, in place of ``decide``'s own
    ``best_time:`` note."""
    return dataclasses.replace(decision, notes=(choice.note, *(
        n for n in decision.notes if not n.startswith("best_time:"))))
