"""Lifecycle segments and scene tags learned from visits. Pure functions of their inputs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from triggers.decisions.hours import in_window, local_time, minute_of_day, parse_window
from triggers.decisions.models import Profile, Segment

NEW_FOR_S = 7 * 86_400
"""A user first seen less than 7 days ago is ``new``: the first week is onboarding."""
DORMANT_AFTER_S = 30 * 86_400
"""A user not active for 30 days or more is ``dormant``: a month is a full shopping cycle."""


def segment_of(profile: Profile, now: float) -> Segment:
    """The user's lifecycle segment at ``now``.

    ``new`` when first seen less than :data:`NEW_FOR_S` ago (or never seen: we are meeting
    them now); otherwise ``dormant`` when the last activity (``last_active``, else
    ``first_seen``) is :data:`DORMANT_AFTER_S` or more ago; otherwise ``active``.
    ``new`` wins over ``dormant``: a week-old user has not had time to lapse.
    """
    if profile.first_seen is None or now - profile.first_seen < NEW_FOR_S:
        return Segment.NEW
    last = profile.last_active if profile.last_active is not None else profile.first_seen
    return Segment.DORMANT if now - last >= DORMANT_AFTER_S else Segment.ACTIVE


@dataclass(frozen=True, slots=True)
class Visit:
    """One finished visit from the presence engine: ENTER at ``start``, EXIT at ``end``."""

    venue_id: str
    venue_kind: str
    start: float
    end: float

    @property
    def duration_s(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class SceneRule:
    """A scene tag earned by enough matching visits in a lookback window.

    A visit matches when its venue kind is in ``venue_kinds``, it lasted at least
    ``min_dwell_s``, it started on one of ``weekdays`` (Monday = 0) and, when given, inside
    the local ``hours`` window. The tag is earned with ``min_visits`` matches (counted
    once per local day when ``distinct_days``, so one long day of hopping between
    stations is not a habit) that started within ``lookback_s`` before ``now``.
    """

    tag: str
    venue_kinds: frozenset[str]
    min_visits: int
    lookback_s: float
    weekdays: frozenset[int] = frozenset(range(7))
    hours: str | None = None
    min_dwell_s: float = 0.0
    distinct_days: bool = True


DEFAULT_SCENE_RULES: tuple[SceneRule, ...] = (
    # Commuting is a weekday-morning habit: three distinct mornings in two weeks.
    SceneRule(
        tag="commuter",
        venue_kinds=frozenset({"transit_station"}),
        weekdays=frozenset(range(5)),
        hours="06:00-10:00",
        min_visits=3,
        lookback_s=14 * 86_400,
    ),
    # A shopper stays: three mall visits of 30 minutes or more, on different days, in 30 days.
    SceneRule(
        tag="shopper",
        venue_kinds=frozenset({"mall"}),
        min_dwell_s=1800.0,
        min_visits=3,
        lookback_s=30 * 86_400,
    ),
)


def derive_scene_tags(
    visits: Iterable[Visit],
    tz: str,
    now: float,
    rules: Sequence[SceneRule] = DEFAULT_SCENE_RULES,
) -> tuple[str, ...]:
    """Scene tags the visit history earns at ``now``, sorted; local times are in ``tz``.

    Visits that start after ``now`` are ignored, so a replay gives the tags as of then.
    """
    history = [v for v in visits if v.start <= now]
    earned = {rule.tag for rule in rules if _earns(rule, history, tz, now)}
    return tuple(sorted(earned))


def _earns(rule: SceneRule, visits: Sequence[Visit], tz: str, now: float) -> bool:
    window = parse_window(rule.hours) if rule.hours is not None else None
    days: set[object] = set()
    count = 0
    for visit in visits:
        if visit.venue_kind not in rule.venue_kinds or visit.duration_s < rule.min_dwell_s:
            continue
        if now - visit.start > rule.lookback_s:
            continue
        local = local_time(visit.start, tz)
        if local.weekday() not in rule.weekdays:
            continue
        if window is not None and not in_window(window, minute_of_day(local)):
            continue
        count += 1
        days.add(local.date())
    return (len(days) if rule.distinct_days else count) >= rule.min_visits
