"""``decide``: the one function the service and the simulator call for every presence event.

Pure: time is ``now``, history is the ledger, and the result is a :class:`Decision`; the
caller delivers ``decision.chosen`` and records ``decision.ledger_entries()`` (see
``ledger.py`` for doing both in one transaction).

Checks per candidate campaign, in order; the first that fails is its reason:

1. ``stale_event``  — the event came from a stale ping (every candidate);
2. ``not_in_audience`` — tags (interest + scene), age range, gender, locales, segment;
3. ``outside_schedule`` — start/end, days and hours in local time;
4. ``venue_closed`` — the venue's ``opening_hours`` (venue's zone), when the campaign
   respects them; hours that do not parse, or that the text leaves unknown, count as
   open, with a note;
5. ``quiet_hours`` — tenant quiet hours, local time;
6. ``no_channel`` — none of the campaign's channels reaches the user;
7. ``opted_out`` — the user refused every channel that would reach them;
8. ``campaign_cap`` — the campaign's per-user count in its rolling period;
9. ``cooldown`` — the campaign's last push to the user at this venue is too recent;
10. ``global_cap`` — the tenant's per-calendar-day (user's zone) or per-week cap;
11. ``fatigue`` — the halved daily cap of a user who ignored K pushes in a row;
    ``learned_cap`` — with ``learned_caps``, the user's own daily cap, learned from how
    many of their recent pushes they opened;
12. ``min_gap`` — the user's last push (any campaign) is too recent.

Eligible campaigns are then taken in arbitration order (priority, then id; with
``ranking``, the top priority band by the expected value of the promoted models'
predictions, see :mod:`~triggers.decisions.ranking`). A user in the
first one's control group is ``held_out_control`` and the next eligible campaign is tried:
the control group gets what it would get if this campaign did not exist, which is the
counterfactual lift is measured against. A template that fails is ``template_error`` and
the next is tried. The first that renders is ``sent``; the rest are ``lower_priority``.

"Local time" is the user's zone, else the venue's, else the policy's default. Rules are
evaluated at ``now`` (when the push would go out), not at the event time.

A scheduled or behaviour event has no venue (``venue`` is ``None``) and names its campaign
(``campaign_id``): that campaign is the only candidate, opening hours do not apply, and a
message that falls in quiet hours is held to the window's end within the campaign's
``offer_ttl_s`` (:func:`~triggers.decisions.hold.quiet_hours_release`): the rules are then
evaluated at the window's end, the decision is ``decided_at`` then (the outbox does not send
it earlier), and the push still expires ``offer_ttl_s`` after the event was decided.

An event has ~30 candidates, so this is the service's hot path: the checks read each
campaign's :class:`~triggers.decisions.rules.CampaignRules` (compiled once by the index:
bit masks, numbers, sets, and the lines it can reuse) against the event's facts, which
``_Facts`` computes once per event, not per candidate.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from triggers.decisions.content import (
    ContentEngine,
    Rendered,
    age_band,
    build_context,
    pick_rendition,
)
from triggers.decisions.events import EventLike, kind_of
from triggers.decisions.experiments import in_control, pick_arm
from triggers.decisions.hold import quiet_hours_release
from triggers.decisions.hours import day_bounds, in_window, local_time, parse_window
from triggers.decisions.index import CampaignIndex
from triggers.decisions.learned import best_channel, learned_block, sampled_arm
from triggers.decisions.ledger import WEEK_S, Ledger
from triggers.decisions.models import ALL_CHANNELS, Profile, TenantPolicy, norm_locale
from triggers.decisions.ranking import ExpectedValue, Ranker, loser_detail, winner_detail
from triggers.decisions.records import Chosen, Considered, Decision, Outcome, Reason
from triggers.decisions.rich import rich_of
from triggers.decisions.routes import route_tip
from triggers.decisions.rules import CampaignRules, TagBits
from triggers.decisions.segments import segment_of
from triggers.decisions.venue_hours import (
    HoursState,
    VenueHours,
    hours_of_venue,
    venue_country,
)
from triggers.errors import TriggerError
from triggers.learning.signals import Signals
from venues.model import Venue

# Enum members read in the hot path, once: on Python 3.11 a member lookup (``Reason.SENT``)
# costs ~45 ns, several times the dict lookup it keys.
_SKIPPED = Outcome.SKIPPED
_VENUE_CLOSED = Reason.VENUE_CLOSED
_CAMPAIGN_CAP = Reason.CAMPAIGN_CAP
_MIN_GAP = Reason.MIN_GAP
_HELD_OUT_CONTROL = Reason.HELD_OUT_CONTROL
_LOWER_PRIORITY = Reason.LOWER_PRIORITY
_SENT = Reason.SENT


# The seven positional parameters are the documented contract the service and the
# simulator call with; bundling them would only move the same list elsewhere.
def decide(  # noqa: PLR0912, PLR0917 - the loop over candidates reads best flat
    event: EventLike,
    profile: Profile,
    campaigns: CampaignIndex,
    venue: Venue | None,
    policy: TenantPolicy,
    ledger: Ledger,
    now: float,
    *,
    campaign_id: str | None = None,
    behaviour_unmet: Mapping[str, str] | None = None,
    learned_unmet: Mapping[str, tuple[Reason, str]] | None = None,
    signals: Signals | None = None,
    ranking: Ranker | None = None,
) -> Decision:
    """Decide what (if anything) to push for ``event``; see the module docstring.

    ``venue`` is the event's venue, ``None`` for a scheduled or behaviour event, which
    names its ``campaign_id`` instead. ``behaviour_unmet``: campaign id → why, for the
    location campaigns whose ``also`` behaviour condition the user does not meet
    (skipped as ``behaviour_condition_unmet`` before any other check).
    ``learned_unmet``: campaign id → (reason, detail) for the campaigns whose conditions
    on learned predictions the user misses
    (:func:`triggers.decisions.predicted.learned_unmet`), skipped with that reason when
    every other rule would let the campaign through (a score is looked up only then). ``signals``:
    the feedback counts of the learning options (``triggers.decisions.learned``).
    ``ranking``: the user's predictions for ordering the top priority band by expected
    value (looked up only when two or more eligible campaigns share it). Reads
    ``ledger`` and ``signals`` and never writes them. Raises
    :class:`TriggerError` when the event, the profile and the venue do not belong together.
    """
    if event.user_id != profile.user_id:
        raise TriggerError(f"event for {event.user_id!r} decided with profile {profile.user_id!r}")
    kind = kind_of(event)
    ttl_from = now
    if venue is None:
        candidates, now = _untargeted(event, profile, campaigns, policy, now=now,
                                        campaign_id=campaign_id)
    else:
        if event.venue_id != venue.id:
            raise TriggerError(f"event at {event.venue_id!r} decided with venue {venue.id!r}")
        candidates = campaigns.candidate_rules(venue, kind, event.dwell_s)
    facts = _Facts(event, profile, venue, policy, ledger, now, campaigns.tags, campaigns.content)
    facts.signals = signals
    if venue is None and candidates:
        _note_best_time(facts, candidates[0])
    if now != ttl_from:
        facts.ttl_from = ttl_from
        facts.notes.append(
            f"held over quiet hours {policy.quiet_hours} ({facts.tz}) until "
            f"{facts.local.hour:02d}:{facts.local.minute:02d}"
        )
    # One line per candidate, in candidate (= arbitration) order; an eligible campaign's
    # line is filled in by the arbitration.
    lines: list[Considered | None]
    eligible: list[tuple[int, CampaignRules, str]] = []
    if event.stale:
        lines = [rules.stale_line for rules in candidates]
    else:
        lines = []
        add = lines.append
        # A LearnedMisses' truth is a Python call: asked once, not per eligible campaign.
        learned = learned_unmet if learned_unmet else None
        for rules in candidates:
            if behaviour_unmet and rules.id in behaviour_unmet:
                add(Considered(rules.id, _SKIPPED, Reason.BEHAVIOUR_CONDITION_UNMET,
                               detail=behaviour_unmet[rules.id]))
                continue
            # Most lines are audience misses: checked here, saving a call per candidate.
            blocked = (not rules.audience_free and _audience_miss(facts, rules)) or (
                _later_block(facts, rules)
            )
            if isinstance(blocked, str):
                # Learned conditions last: only a campaign the user is otherwise
                # eligible for pays for a score lookup.
                miss = learned.get(rules.id) if learned is not None else None
                if miss is not None:
                    add(Considered(rules.id, _SKIPPED, miss[0], detail=miss[1]))
                    continue
                eligible.append((len(lines), rules, blocked))
                add(None)
            else:
                add(blocked)
    chosen = _arbitrate(facts, campaigns, eligible, kind, lines, ranking) if eligible else None
    return Decision(
        user_id=profile.user_id,
        venue_id=None if venue is None else venue.id,
        event=kind,
        at=float(event.at),
        visit_id=event.visit_id,
        decided_at=float(now),
        chosen=chosen,
        # _arbitrate has filled every eligible campaign's line.
        considered=cast("tuple[Considered, ...]", tuple(lines)),
        notes=tuple(facts.notes),
    )


def _untargeted(
    event: EventLike, profile: Profile, campaigns: CampaignIndex, policy: TenantPolicy, *,
    now: float, campaign_id: str | None,
) -> tuple[tuple[CampaignRules, ...], float]:
    """A scheduled or behaviour event's candidates (its campaign, if active and of the
    event's kind) and the time its rules are evaluated at (``now``, or the end of the
    quiet hours it is held over)."""
    if event.venue_id is not None:
        raise TriggerError(f"event at {event.venue_id!r} decided without its venue")
    if campaign_id is None:
        raise TriggerError("an event without a venue is decided for one campaign_id")
    kind = kind_of(event)
    candidates = campaigns.rules_for(campaign_id, kind)
    if candidates and not event.stale:
        tz = profile.attributes.timezone or policy.default_timezone
        ttl_s = candidates[0].campaign.offer_ttl_s
        release = quiet_hours_release(kind, policy.quiet_hours, tz, now, ttl_s)
        if release is not None:
            return candidates, release
    return candidates, now


def _item_context(event: EventLike) -> dict[str, Any] | None:
    """A behaviour event's item for templates (``item``); other events carry none."""
    item_context = getattr(event, "item_context", None)
    return item_context() if callable(item_context) else None


def _note_best_time(facts: _Facts, rules: CampaignRules) -> None:
    """A ``best_time`` campaign sends every user at its fallback until a send-time model
    exists; the decision says so."""
    scheduled = rules.campaign.trigger.scheduled
    if scheduled is not None and scheduled.best_time is not None:
        facts.notes.append(f"best_time: no send-time model yet, so the fallback "
                           f"{scheduled.best_time.fallback} for every user")


_UNKNOWN = object()
"""A fact not computed yet."""
_INF = math.inf
_nextafter = math.nextafter


class _Facts:
    """One event's user, clock and venue facts: computed once, read by every candidate."""

    __slots__ = (
        "_closed_key",
        "_hours",
        "_outside_key",
        "_quiet_key",
        "_reach",
        "age",
        "content",
        "event",
        "gender",
        "global_found",
        "is_open",
        "language",
        "ledger",
        "local",
        "locale",
        "minute",
        "norm_locale",
        "notes",
        "now",
        "open_channels",
        "policy",
        "profile",
        "quiet",
        "segment",
        "signals",
        "tag_mask",
        "tags_not_held",
        "ttl_from",
        "tz",
        "user_id",
        "venue",
        "venue_id",
        "weekday",
    )

    # Mirrors decide's parameters (one event's inputs).
    def __init__(  # noqa: PLR0917
        self,
        event: EventLike,
        profile: Profile,
        venue: Venue | None,
        policy: TenantPolicy,
        ledger: Ledger,
        now: float,
        tags: TagBits,
        content: ContentEngine,
    ) -> None:
        self.content = content
        self.event = event
        self.profile = profile
        self.venue = venue
        self.policy = policy
        self.ledger = ledger
        self.now = now
        self.ttl_from = now
        """What a push's ``offer_ttl_s`` counts from (``now``, before any quiet-hours hold)."""
        self.notes: list[str] = []
        self.user_id = profile.user_id
        self.venue_id = "" if venue is None else venue.id
        attributes = profile.attributes
        self.tz = (attributes.timezone or (venue.timezone if venue is not None else None)
                   or policy.default_timezone)
        self.local = local = local_time(now, self.tz)
        self.minute = local.hour * 60 + local.minute
        self.weekday = local.weekday()
        self.tag_mask = tags.of_user(profile)
        """Interest and scene tags, as audiences see them (see ``TagBits``)."""
        self.tags_not_held = ~self.tag_mask
        self.age = attributes.age
        self.gender = attributes.gender
        self.locale = profile.content_locale
        self.norm_locale = norm_locale(self.locale)
        self.language = None if self.norm_locale is None else self.norm_locale.split("-")[0]
        self.segment = str(segment_of(profile, now))
        window = policy.quiet_hours
        self.quiet = window is not None and in_window(parse_window(window), self.minute)
        self.open_channels = profile.channels is None and not profile.opt_outs
        """Reachable on every channel and refusing none: a campaign's first channel wins."""
        self._outside_key: tuple[Reason, str] | None = None
        self._quiet_key: tuple[Reason, str] | None = None
        self._closed_key: tuple[Reason, str] | None = None
        self._hours: tuple[VenueHours, datetime] | None = None
        """The venue's hours and its local time, once :meth:`venue_open` found it closed."""
        self.is_open: bool | None = None if venue is not None else True
        """The venue's opening hours at ``now`` once :meth:`venue_open` has been asked
        (no venue: open, since opening hours are a venue's)."""
        self._reach: dict[tuple[str, ...], str | tuple[Reason, str]] = {}
        self.global_found: object = _UNKNOWN
        """:meth:`global_block`'s answer once it has been asked."""
        self.signals: Signals | None = None
        """Feedback counts for the learning options (see ``decide``)."""

    def country(self) -> str | None:
        """Whose public holidays the user's templates greet: the user's country, else the
        venue's (``addr:country`` metadata: where they are now), else the tenant's."""
        venue = self.venue
        return (
            self.profile.attributes.country
            or (venue_country(venue) if venue is not None else None)
            or self.policy.country
        )

    def tags(self) -> frozenset[str]:
        """Interest and scene tags by name (for the text of a tag line)."""
        return self.profile.all_tags

    def outside_key(self) -> tuple[Reason, str]:
        """Key of the schedule-hours lines (see ``CampaignRules.remember_clock``): the
        reason and ``"HH:MM zone"``, local."""
        if self._outside_key is None:
            local = self.local
            # f"{local:%H:%M}", without strftime's cost
            clock = f"{local.hour:02d}:{local.minute:02d} {self.tz}"
            self._outside_key = (Reason.OUTSIDE_SCHEDULE, clock)
        return self._outside_key

    def quiet_key(self) -> tuple[Reason, str]:
        """Key of the quiet-hours lines: the reason and the line's detail."""
        if self._quiet_key is None:
            clock = self.outside_key()[1]
            self._quiet_key = (Reason.QUIET_HOURS, f"{clock} in {self.policy.quiet_hours}")
        return self._quiet_key

    def closed_key(self) -> tuple[Reason, str]:
        """Key of the ``venue_closed`` lines (asked only once :meth:`venue_open` said
        closed): the reason and ``"HH:MM zone; opens [Day ]HH:MM"``, local to the venue."""
        if self._closed_key is None:
            detail = ""
            if self._hours is not None:
                hours, local = self._hours
                detail = f"{local.hour:02d}:{local.minute:02d} {local.tzinfo}"
                opens = hours.next_change(local)
                if opens is not None:
                    day = "" if opens.date() == local.date() else f"{opens:%a} "
                    detail += f"; opens {day}{opens.hour:02d}:{opens.minute:02d}"
            self._closed_key = (_VENUE_CLOSED, detail)
        return self._closed_key

    def venue_open(self) -> bool:
        """The venue's opening hours at ``now``; unknown hours count as open, with a note."""
        if self.is_open is None:
            self.is_open = self._compute_venue_open()
        return self.is_open

    def _compute_venue_open(self) -> bool:
        venue = self.venue
        if venue is None:
            return True
        tz = venue.timezone or self.tz
        hours = hours_of_venue(venue, tz, self.policy.country)
        if hours is None:
            return True
        if isinstance(hours, str):
            self.notes.append(f"opening_hours of venue {venue.id}: {hours}; treated as open")
            return True
        if hours.caveat is not None:
            self.notes.append(f"opening_hours of venue {venue.id}: {hours.caveat}")
        local = self.local if tz == self.tz else local_time(self.now, tz)
        state, comment = hours.state_at(local)
        if state is HoursState.UNKNOWN:
            said = f" ({comment})" if comment else ""
            self.notes.append(
                f"opening_hours of venue {venue.id} leave {local.hour:02d}:{local.minute:02d} "
                f"{tz} unknown{said}; treated as open"
            )
            return True
        if state is HoursState.OPEN:
            return True
        self._hours = (hours, local)
        return False

    def reach(self, channels: tuple[str, ...]) -> str | tuple[Reason, str]:
        """The channel a campaign with ``channels`` would use, or why there is none."""
        found = self._reach.get(channels)
        if found is None:
            profile = self.profile
            reachable = [
                ch for ch in channels if profile.channels is None or ch in profile.channels
            ]
            refused = set(profile.opt_outs)
            allowed = [ch for ch in reachable if ch not in refused and ALL_CHANNELS not in refused]
            if not reachable:
                found = (Reason.NO_CHANNEL, f"user reachable on none of {list(channels)}")
            elif not allowed:
                found = (Reason.OPTED_OUT, f"opted out of {reachable}")
            else:
                found = allowed[0]
            self._reach[channels] = found
        return found

    def global_block(self) -> tuple[Reason, str] | None:
        """``global_cap`` / ``fatigue`` / ``min_gap`` for the user, or ``None``."""
        if self.global_found is _UNKNOWN:
            self.global_found = self._compute_global_block()
        return cast("tuple[Reason, str] | None", self.global_found)

    def _compute_global_block(self) -> tuple[Reason, str] | None:
        user_id, policy, ledger, now = self.user_id, self.policy, self.ledger, self.now
        if policy.max_per_day is not None:
            day_start, day_end = day_bounds(self.local.date(), self.tz)
            today = ledger.count_pushes(user_id, day_start, day_end)
            if today >= policy.max_per_day:
                return (
                    Reason.GLOBAL_CAP,
                    f"{today} pushes today ({self.tz}), cap {policy.max_per_day}",
                )
            streak = ledger.ignored_streak(user_id)
            if policy.fatigue_after_ignored is not None and streak >= policy.fatigue_after_ignored:
                # Halved, but never below one a day: the user needs a push to click on to
                # leave the fatigued state.
                halved = max(1, policy.max_per_day // 2)
                if today >= halved:
                    return Reason.FATIGUE, (
                        f"{streak} ignored in a row; {today} today, halved cap {halved}"
                    )
            if policy.learned_caps:
                learned = learned_block(self.signals, user_id, now, today, policy.max_per_day)
                if learned is not None:
                    return learned
        if policy.max_per_week is not None:
            week = ledger.count_pushes(user_id, _after(now - WEEK_S), math.inf)
            if week >= policy.max_per_week:
                return Reason.GLOBAL_CAP, f"{week} pushes in 7 days, cap {policy.max_per_week}"
        last = ledger.last_push_at(user_id)
        if last is not None and now - last < policy.min_gap_s:
            return Reason.MIN_GAP, f"last push {now - last:.0f} s ago, gap {policy.min_gap_s:.0f} s"
        return None


def _after(t: float) -> float:
    """The smallest time after ``t``: rolling windows are (now - period, now], so a push
    exactly one period ago has just dropped out — the same boundary as cooldown and gap."""
    return math.nextafter(t, math.inf)


# Lines remembered per campaign are looked up as ``rules.lines.get(key) or
# rules.remember(key, ...)``: on a hit the detail text is not even formatted.


def _later_block(  # noqa: PLR0912 - hot path: one call per candidate, see the docstring
    facts: _Facts, rules: CampaignRules,
) -> Considered | str:
    """The first rule after the audience that stops the campaign (as its line), or the
    channel it would use. One function for ~10 candidates an event: each call saved counts."""
    if not rules.schedule_free:
        miss = _schedule_miss(facts, rules)
        if miss is not None:
            return miss
    if rules.respects_opening_hours:
        is_open = facts.is_open  # the memo read here saves a call per candidate
        if is_open is None:
            is_open = facts.venue_open()
        if not is_open:
            closed = facts.closed_key()
            return rules.clock_lines.get(closed) or rules.remember_clock(closed, closed[1])
    if facts.quiet:
        key = facts.quiet_key()
        return rules.clock_lines.get(key) or rules.remember_clock(key, key[1])
    if facts.open_channels and rules.channels:
        channel = rules.channels[0]
    else:
        reach = facts.reach(rules.channels)
        if not isinstance(reach, str):
            return rules.lines.get(reach) or rules.remember(reach, *reach)
        channel = reach
    # The ledger's rules: campaign cap, cooldown, then the user's global ones.
    if rules.cap_count is not None:
        sent = facts.ledger.count_pushes(
            facts.user_id,
            _nextafter(facts.now - rules.cap_period_s, _INF),  # _after, inlined
            _INF,
            campaign_id=rules.id,
        )
        if sent >= rules.cap_count:
            cap_key = (_CAMPAIGN_CAP, sent)
            return rules.lines.get(cap_key) or rules.remember(
                cap_key,
                _CAMPAIGN_CAP,
                f"{sent} in {rules.cap_period_s:.0f} s, cap {rules.cap_count}",
            )
    cooldown = rules.cooldown_s
    if cooldown is not None:
        last = facts.ledger.last_push_at(
            facts.user_id, campaign_id=rules.id, venue_id=facts.venue_id
        )
        if last is not None and facts.now - last < cooldown:
            return Considered(
                rules.id,
                _SKIPPED,
                Reason.COOLDOWN,
                None,
                f"last here {facts.now - last:.0f} s ago, cooldown {cooldown:.0f} s",
            )
    found = facts.global_found
    block = facts.global_block() if found is _UNKNOWN else cast("tuple[Reason, str] | None", found)
    if block is None:
        return channel
    if block[0] is _MIN_GAP:  # names seconds: built per decision
        return Considered(rules.id, _SKIPPED, block[0], None, block[1])
    return rules.lines.get(block) or rules.remember(block, *block)


def _audience_miss(facts: _Facts, rules: CampaignRules) -> Considered | None:
    """Tags (interest + scene), age range, gender, locales, segment — in that order."""
    lines = rules.lines
    missing = rules.all_of & facts.tags_not_held
    if missing:
        key: Hashable = ("all_of", missing)
        return lines.get(key) or rules.remember(
            key,
            Reason.NOT_IN_AUDIENCE,
            f"lacks tags {sorted(set(rules.campaign.audience.all_of_tags) - facts.tags())}",
        )
    if rules.any_of and not rules.any_of & facts.tag_mask:
        return lines.get("any_of") or rules.remember(
            "any_of",
            Reason.NOT_IN_AUDIENCE,
            f"has none of tags {list(rules.campaign.audience.any_of_tags)}",
        )
    excluded = rules.none_of & facts.tag_mask
    if excluded:
        key = ("none_of", excluded)
        return lines.get(key) or rules.remember(
            key,
            Reason.NOT_IN_AUDIENCE,
            f"has excluded tags {sorted(set(rules.campaign.audience.none_of_tags) & facts.tags())}",
        )
    if rules.checks_age:
        age, low, high = facts.age, rules.min_age, rules.max_age
        if age is None:
            return lines.get("age") or rules.remember("age", Reason.NOT_IN_AUDIENCE, "age unknown")
        if (low is not None and age < low) or (high is not None and age > high):
            key = ("age", age)
            return lines.get(key) or rules.remember(
                key, Reason.NOT_IN_AUDIENCE, f"age {age} outside {low}-{high}"
            )
    if rules.genders and facts.gender not in rules.genders:
        key = ("gender", facts.gender)
        return lines.get(key) or rules.remember(
            key, Reason.NOT_IN_AUDIENCE, f"gender {facts.gender!r} not in {list(rules.genders)}"
        )
    if rules.locales and not (
        facts.norm_locale in rules.locale_exact or facts.language in rules.locale_language
    ):
        key = ("locale", facts.locale)
        return lines.get(key) or rules.remember(
            key, Reason.NOT_IN_AUDIENCE, f"locale {facts.locale!r} not in {list(rules.locales)}"
        )
    if rules.segments and facts.segment not in rules.segments:
        key = ("segment", facts.segment)
        return lines.get(key) or rules.remember(
            key,
            Reason.NOT_IN_AUDIENCE,
            f"segment {facts.segment} not in {[str(s) for s in rules.campaign.audience.segments]}",
        )
    return None


def _schedule_miss(facts: _Facts, rules: CampaignRules) -> Considered | None:
    """Start, end, days and hours, in local time."""
    if rules.start is not None and facts.now < rules.start:
        return rules.lines.get("start") or rules.remember(
            "start", Reason.OUTSIDE_SCHEDULE, "before start"
        )
    if rules.end is not None and facts.now >= rules.end:
        return rules.lines.get("end") or rules.remember("end", Reason.OUTSIDE_SCHEDULE, "after end")
    if rules.weekdays is not None and facts.weekday not in rules.weekdays:
        days = ("days", facts.weekday)
        return rules.lines.get(days) or rules.remember(
            days,
            Reason.OUTSIDE_SCHEDULE,
            f"{facts.local:%a} not in {list(rules.campaign.schedule.days)}",
        )
    if rules.window is not None and not in_window(rules.window, facts.minute):
        key = facts.outside_key()
        return rules.clock_lines.get(key) or rules.remember_clock(
            key, f"{key[1]} outside {rules.campaign.schedule.hours}"
        )
    return None


Eligible = list[tuple[int, CampaignRules, str]]


_UNRANKED: tuple[ExpectedValue, ...] = ()
"""The values of a band left in its order (shared: nothing allocated for it)."""


def _by_expected_value(eligible: Eligible, ranking: Ranker) -> Sequence[ExpectedValue]:
    """Put ``eligible``'s top priority band in expected-value order (in place: it is
    ``decide``'s own list), and return the band's values in that order: the first
    ``len(values)`` of ``eligible`` are the band's (none when the order stays as it is)."""
    top = eligible[0][1].campaign.priority
    size = 1
    while size < len(eligible) and eligible[size][1].campaign.priority == top:
        size += 1
    if size < 2:
        return _UNRANKED
    band = eligible[:size]
    values = ranking.band([item[1].campaign for item in band])
    if values is None:
        return _UNRANKED
    by_id = {item[1].id: item for item in band}
    eligible[:size] = [by_id[v.campaign_id] for v in values]
    return values


def _arbitrate(  # noqa: PLR0912, PLR0917 - hot path, read flat; decide's parts
    facts: _Facts,
    index: CampaignIndex,
    eligible: Eligible,
    kind: str,
    lines: list[Considered | None],
    ranking: Ranker | None,
) -> Chosen | None:
    """Walk the eligible campaigns in arbitration order; fill in their lines; the push."""
    chosen: Chosen | None = None
    profile = facts.profile
    lower: tuple[Reason, str] | None = None
    values: Sequence[ExpectedValue] = []
    if ranking is not None and len(eligible) > 1:
        values = _by_expected_value(eligible, ranking)
    ranked = len(values)  # eligible[:ranked] is the band, values[i] eligible[i]'s value
    won = 0
    for place, (position, rules, channel) in enumerate(eligible):
        if lower is not None:
            if place < ranked:
                lines[position] = Considered(rules.id, _SKIPPED, _LOWER_PRIORITY, None,
                                             loser_detail(values[place], values[won]))
                continue
            lines[position] = rules.lines.get(lower) or rules.remember(
                lower, _LOWER_PRIORITY, f"{lower[1]} won"
            )
            continue
        # ``assign``'s two draws, without building its ``Assignment``.
        if rules.thompson:
            arm = sampled_arm(rules.id, facts.user_id, facts.event.at, rules.arms, facts.signals)
        else:
            arm = pick_arm(rules.id, facts.user_id, rules.arms)
        if in_control(rules.id, facts.user_id, rules.control_pct):
            lines[position] = rules.lines.get((_HELD_OUT_CONTROL, arm)) or rules.remember(
                (_HELD_OUT_CONTROL, arm),
                _HELD_OUT_CONTROL,
                outcome=Outcome.HELD_OUT,
                variant_id=arm,
            )
            continue
        style = age_band(facts.age)
        variant = rules.rendition(arm, facts.locale, style)
        if variant is None:
            variant = pick_rendition(rules.campaign.variants, arm, facts.locale, style)
            rules.remember_rendition(arm, facts.locale, style, variant)
        event = facts.event
        content = index.content
        # Only the parts of the context the variant's templates read are built: the
        # holiday calendar, the route tip and the user's dict cost a send that names them.
        names = content.names(variant)
        venue = facts.venue
        context = build_context(
            profile=profile,
            segment=facts.segment,
            venue=venue,
            event_kind=kind,
            event_at=event.at,
            dwell_s=event.dwell_s,
            visit_id=event.visit_id,
            campaign=rules.campaign,
            variant_id=arm,
            now=facts.now,
            local=facts.local,
            holiday=content.holiday(facts.country(), facts.local.date(), facts.locale)
            if "holiday" in names
            else None,
            route=route_tip(venue, profile.next_stops.get(venue.id))
            if "route" in names and venue is not None
            else None,
            names=names,
            item=_item_context(event) if "item" in names else None,
        )
        rendered = content.render(variant, context)
        if not isinstance(rendered, Rendered):
            lines[position] = Considered(
                rules.id, Outcome.ERROR, Reason.TEMPLATE_ERROR, arm, rendered.message
            )
            continue
        send_on, why = channel, None
        if rules.auto_channel:  # ranked for the push only, not for every eligible campaign
            send_on, why = best_channel(profile, rules.channels, facts.signals)
        if ranking is not None:
            why = _ranking_detail(facts, ranking, rules, values, place, why)
        chosen = Chosen(
            campaign_id=rules.id,
            variant_id=arm,
            title=rendered.title,
            body=rendered.body,
            channel=send_on,
            locale=variant.locale,
            expires_at=float(facts.ttl_from + rules.campaign.offer_ttl_s),
            rich=rich_of(variant, profile, rendered.title),
        )
        if why is not None:
            lines[position] = Considered(rules.id, Outcome.SENT, _SENT, arm, why)
        else:
            lines[position] = rules.lines.get((_SENT, arm)) or rules.remember(
                (_SENT, arm), _SENT, outcome=Outcome.SENT, variant_id=arm
            )
        lower = (_LOWER_PRIORITY, rules.id)
        won = place
    return chosen


def _ranking_detail(facts: _Facts, ranking: Ranker, rules: CampaignRules,  # noqa: PLR0917
                    values: Sequence[ExpectedValue], place: int,
                    why: str | None) -> str | None:
    """The sent line's words on the expected value that ranked the campaign first (after
    the channel's, if any; ``place``: its place in ``eligible``, which is its value's in
    ``values`` when it is in the ranked band); an interest threshold it met goes to the
    notes, with its features."""
    met = ranking.met_note(rules.campaign)
    if met is not None:
        facts.notes.append(met)
    if place >= len(values):
        return why
    said = winner_detail(values, place, ranking.why_interest(values[place].category))
    return said if why is None else f"{why}; {said}"
