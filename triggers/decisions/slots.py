"""Slots of a scheduled campaign: the instants its local wall-clock times fall on, per zone.

Pure: instants are epoch seconds, zones are IANA names, and nothing reads a clock.

A scheduled trigger (``times: ["10:00", "15:00"]``, ``days``) fires in each user's own zone,
so "10:00" is a different instant in Helsinki and in New York: the service groups users by
zone and asks :func:`slots_between` for each zone's slots. A slot is named by its campaign,
its zone group and its local date and time (:class:`Slot`), never by its instant, so the
same slot has the same id on every node and after a restart.

Daylight saving time, in the user's zone:

- a local time that does not exist (the spring-forward gap, Helsinki 03:30 on the last
  Sunday of March) fires at the first valid instant after it: the instant the clocks jump
  (04:00 EEST);
- a local time that happens twice (the fall-back overlap, Helsinki 03:30 on the last Sunday
  of October) fires once, at its first occurrence (EEST, ``fold=0``).

Catch-up: a slot whose instant passed while the service was down is still sent while
``now <= at + grace_s`` (:func:`slot_state`), and skipped as ``slot_missed`` after that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from triggers.decisions.best_time import best_time_times
from triggers.decisions.hours import zone
from triggers.decisions.models import ScheduledTrigger, TenantPolicy

_DAY_NAMES = ("mo", "tu", "we", "th", "fr", "sa", "su")

@dataclass(frozen=True, slots=True, order=True)
class Slot:
    """One firing of a scheduled campaign in one zone: ``local`` ``"YYYY-MM-DDTHH:MM"`` in
    ``tz``, at epoch second ``at``. Ordered by instant, then zone and local time."""

    at: float
    tz: str
    local: str
    campaign_id: str

    @property
    def slot_id(self) -> str:
        """Stable: the campaign, the zone and the local date and time (not the instant)."""
        return f"{self.campaign_id}@{self.local}@{self.tz}"

    def user_slot(self, user_id: str) -> str:
        """What a (campaign, user, slot) send is keyed by: once per user per slot, however
        many nodes or rounds see it."""
        return f"{self.campaign_id}@{self.local}@{user_id}"


class SlotState(StrEnum):
    """Where a slot stands at ``now``: not yet, send now, or too late."""

    FUTURE = "future"
    DUE = "due"
    MISSED = "missed"


def user_zone(timezone: str | None, policy: TenantPolicy) -> str:
    """The zone a user's slots are in: the user's own, else the tenant policy's
    ``default_timezone`` (itself ``UTC`` unless the tenant says otherwise)."""
    return timezone or policy.default_timezone or "UTC"


def local_instant(day: date, hhmm: str, tz: str) -> float:
    """Epoch seconds of wall-clock ``hhmm`` on ``day`` in ``tz``, DST-resolved as the module
    docstring says: a nonexistent time → the first valid instant after it; an ambiguous
    one → its first occurrence."""
    hour, minute = int(hhmm[:2]), int(hhmm[3:5])
    zone_info = zone(tz)
    wall = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone_info)  # fold=0
    at = wall.timestamp()
    # A wall time that does not exist does not survive the round trip to UTC and back.
    back = datetime.fromtimestamp(at, zone_info)
    if (back.hour, back.minute) == (hour, minute):
        return at
    return _gap_end(at, zone_info)


def _gap_end(inside: float, zone_info: ZoneInfo) -> float:
    """The instant the clocks jumped forward over a gap: the first instant after ``inside``
    (an instant near the missing wall time) whose UTC offset is the post-gap one."""
    # Gaps are at most a few hours and their edges fall on whole minutes; bisect on them.
    low, high = inside - 6 * 3600, inside + 6 * 3600
    offset_after = datetime.fromtimestamp(high, UTC).astimezone(zone_info).utcoffset()
    while high - low > 60:
        mid = (low + high) / 2
        if datetime.fromtimestamp(mid, UTC).astimezone(zone_info).utcoffset() == offset_after:
            high = mid
        else:
            low = mid
    return float(int(high // 60) * 60)


def slots_on(trigger: ScheduledTrigger, campaign_id: str, day: date, tz: str) -> list[Slot]:
    """The campaign's slots on local date ``day`` in ``tz`` (none when ``days`` leaves the
    weekday out), in time order. A ``best_time`` campaign has a slot at each whole hour
    of its window and at its fallback (:func:`~triggers.decisions.best_time.best_time_times`):
    each user is sent at one of them."""
    if trigger.days and _DAY_NAMES[day.weekday()] not in trigger.days:
        return []
    times = best_time_times(trigger.best_time) if trigger.best_time is not None \
        else trigger.times
    found = {
        Slot(local_instant(day, hhmm, tz), tz, f"{day.isoformat()}T{hhmm}", campaign_id)
        for hhmm in times
    }
    return sorted(found)


def slots_between(
    trigger: ScheduledTrigger, campaign_id: str, tz: str, start: float, end: float
) -> list[Slot]:
    """The campaign's slots in ``tz`` whose instant is in ``[start, end)``, in time order."""
    if end <= start:
        return []
    zone_info = zone(tz)
    first = datetime.fromtimestamp(start, zone_info).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end, zone_info).date() + timedelta(days=1)
    found: list[Slot] = []
    day = first
    while day <= last:
        found.extend(s for s in slots_on(trigger, campaign_id, day, tz) if start <= s.at < end)
        day += timedelta(days=1)
    return sorted(found)


def slot_state(slot_at: float, now: float, grace_s: float) -> SlotState:
    """``due`` from the slot's instant until ``grace_s`` after it (inclusive), ``missed``
    after that, ``future`` before."""
    if now < slot_at:
        return SlotState.FUTURE
    if now <= slot_at + grace_s:
        return SlotState.DUE
    return SlotState.MISSED


def open_slots(
    trigger: ScheduledTrigger, campaign_id: str, tz: str, now: float, *, lookback_s: float
) -> list[tuple[Slot, SlotState]]:
    """The slots of the last ``lookback_s`` (at least the grace period) up to ``now``, due
    or missed: what a scheduler round that last ran ``lookback_s`` ago must settle."""
    since = now - max(lookback_s, trigger.grace_s)
    return [
        (slot, slot_state(slot.at, now, trigger.grace_s))
        for slot in slots_between(trigger, campaign_id, tz, since, now + 1e-6)
    ]


@dataclass(frozen=True, slots=True)
class SlotEvent:
    """A slot reaching one user: the event ``decide`` gets for a scheduled campaign (no
    venue; ``visit_id`` is the user's slot key, :meth:`Slot.user_slot`)."""

    user_id: str
    at: float
    visit_id: str
    venue_id: None = None
    kind: str = "scheduled"
    dwell_s: None = None
    confidence: None = None
    reason: None = None
    stale: bool = False

    @classmethod
    def of(cls, slot: Slot, user_id: str) -> SlotEvent:
        return cls(user_id=user_id, at=slot.at, visit_id=slot.user_slot(user_id))
