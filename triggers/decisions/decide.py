"""``decide``: the one function the service and the simulator call for every presence event.

Pure: time is ``now``, history is the ledger, and the result is a :class:`Decision`; the
caller delivers ``decision.chosen`` and records ``decision.ledger_entries()`` (see
``ledger.py`` for doing both in one transaction).

Checks per candidate campaign, in order; the first that fails is its reason:

1. ``stale_event``  — the event came from a stale ping (every candidate);
2. ``not_in_audience`` — tags (interest + scene), age range, gender, locales, segment;
3. ``outside_schedule`` — start/end, days and hours in local time;
4. ``venue_closed`` — the venue's ``opening_hours`` (venue's zone), when the campaign
   respects them; unparsed opening hours count as open, with a note;
5. ``quiet_hours`` — tenant quiet hours, local time;
6. ``no_channel`` — none of the campaign's channels reaches the user;
7. ``opted_out`` — the user refused every channel that would reach them;
8. ``campaign_cap`` — the campaign's per-user count in its rolling period;
9. ``cooldown`` — the campaign's last push to the user at this venue is too recent;
10. ``global_cap`` — the tenant's per-calendar-day (user's zone) or per-week cap;
11. ``fatigue`` — the halved daily cap of a user who ignored K pushes in a row;
12. ``min_gap`` — the user's last push (any campaign) is too recent.

Eligible campaigns are then taken in arbitration order (priority, then id). A user in the
first one's control group is ``held_out_control`` and the next eligible campaign is tried:
the control group gets what it would get if this campaign did not exist, which is the
counterfactual lift is measured against. A template that fails is ``template_error`` and
the next is tried. The first that renders is ``sent``; the rest are ``lower_priority``.

"Local time" is the user's zone, else the venue's, else the policy's default. Rules are
evaluated at ``now`` (when the push would go out), not at the event time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

from triggers.decisions.content import Rendered, age_band, build_context, pick_rendition
from triggers.decisions.events import EventLike, kind_of
from triggers.decisions.experiments import assign
from triggers.decisions.hours import (
    in_window,
    local_day_bounds,
    local_time,
    minute_of_day,
    parse_window,
)
from triggers.decisions.index import CampaignIndex
from triggers.decisions.ledger import WEEK_S, Ledger
from triggers.decisions.models import (
    ALL_CHANNELS,
    Audience,
    Campaign,
    Profile,
    TenantPolicy,
    norm_locale,
)
from triggers.decisions.opening_hours import OpeningHours, parse_opening_hours
from triggers.decisions.records import Chosen, Considered, Decision, Outcome, Reason
from triggers.decisions.routes import route_tip
from triggers.decisions.segments import segment_of
from triggers.errors import TriggerError
from venues.model import Venue


# The seven positional parameters are the documented contract the service and the
# simulator call with; bundling them would only move the same list elsewhere.
def decide(  # noqa: PLR0917
    event: EventLike,
    profile: Profile,
    campaigns: CampaignIndex,
    venue: Venue,
    policy: TenantPolicy,
    ledger: Ledger,
    now: float,
) -> Decision:
    """Decide what (if anything) to push for ``event``; see the module docstring.

    Reads ``ledger`` and never writes it. Raises :class:`TriggerError` when the event, the
    profile and the venue do not belong together.
    """
    if event.user_id != profile.user_id:
        raise TriggerError(f"event for {event.user_id!r} decided with profile {profile.user_id!r}")
    if event.venue_id != venue.id:
        raise TriggerError(f"event at {event.venue_id!r} decided with venue {venue.id!r}")
    kind = kind_of(event)
    ctx = _Context(event, profile, venue, policy, ledger, now)
    considered: list[Considered] = []
    eligible: list[tuple[Campaign, str]] = []
    candidates = campaigns.candidates(venue, kind, event.dwell_s)
    for campaign in candidates:
        blocked = _first_block(ctx, campaign)
        if isinstance(blocked, str):
            eligible.append((campaign, blocked))
        else:
            considered.append(blocked)
    chosen = _arbitrate(ctx, campaigns, eligible, kind, considered)
    order = {c.id: i for i, c in enumerate(candidates)}
    return Decision(
        user_id=profile.user_id,
        venue_id=venue.id,
        event=kind,
        at=event.at,
        visit_id=event.visit_id,
        decided_at=now,
        chosen=chosen,
        considered=tuple(sorted(considered, key=lambda c: order[c.campaign_id])),
        notes=tuple(ctx.notes),
    )


@dataclass
class _Context:
    """One event's inputs, with the user-level facts each computed at most once."""

    event: EventLike
    profile: Profile
    venue: Venue
    policy: TenantPolicy
    ledger: Ledger
    now: float

    def __post_init__(self) -> None:
        self.notes: list[str] = []
        self.tz = (
            self.profile.attributes.timezone or self.venue.timezone or self.policy.default_timezone
        )
        self.local = local_time(self.now, self.tz)

    @cached_property
    def tags(self) -> frozenset[str]:
        """Interest and scene tags, as audiences see them (once per event, not per campaign)."""
        return self.profile.all_tags

    @cached_property
    def segment(self) -> str:
        return str(segment_of(self.profile, self.now))

    @cached_property
    def venue_open(self) -> bool:
        text = self.venue.opening_hours
        if text is None and isinstance(self.venue.metadata.get("opening_hours"), str):
            # Venue files from OSM often keep opening_hours in metadata only.
            text = self.venue.metadata["opening_hours"]
        if text is None:
            return True
        hours = _parse_cached(text)
        if hours is None:
            self.notes.append(
                f"opening_hours {text!r} of venue {self.venue.id} not understood; treated as open"
            )
            return True
        return hours.is_open(local_time(self.now, self.venue.timezone or self.tz))

    @cached_property
    def quiet(self) -> bool:
        window = self.policy.quiet_hours
        return window is not None and in_window(parse_window(window), minute_of_day(self.local))

    @cached_property
    def global_block(self) -> tuple[Reason, str] | None:
        """``global_cap`` / ``fatigue`` / ``min_gap`` for the user, or ``None``."""
        user_id, policy = self.profile.user_id, self.policy
        if policy.max_per_day is not None:
            day_start, day_end = local_day_bounds(self.now, self.tz)
            today = self.ledger.count_pushes(user_id, day_start, day_end)
            if today >= policy.max_per_day:
                return Reason.GLOBAL_CAP, (
                    f"{today} pushes today ({self.tz}), cap {policy.max_per_day}"
                )
            streak = self.ledger.ignored_streak(user_id)
            if policy.fatigue_after_ignored is not None and streak >= policy.fatigue_after_ignored:
                # Halved, but never below one a day: the user needs a push to click on to
                # leave the fatigued state.
                halved = max(1, policy.max_per_day // 2)
                if today >= halved:
                    return Reason.FATIGUE, (
                        f"{streak} ignored in a row; {today} today, halved cap {halved}"
                    )
        if policy.max_per_week is not None:
            week = self.ledger.count_pushes(user_id, _after(self.now - WEEK_S), math.inf)
            if week >= policy.max_per_week:
                return Reason.GLOBAL_CAP, f"{week} pushes in 7 days, cap {policy.max_per_week}"
        last = self.ledger.last_push_at(user_id)
        if last is not None and self.now - last < policy.min_gap_s:
            return Reason.MIN_GAP, (
                f"last push {self.now - last:.0f} s ago, gap {policy.min_gap_s:.0f} s"
            )
        return None


def _after(t: float) -> float:
    """The smallest time after ``t``: rolling windows are (now - period, now], so a push
    exactly one period ago has just dropped out — the same boundary as cooldown and gap."""
    return math.nextafter(t, math.inf)


@lru_cache(maxsize=1024)
def _parse_cached(text: str) -> OpeningHours | None:
    return parse_opening_hours(text)


def _first_block(ctx: _Context, campaign: Campaign) -> Considered | str:
    """The first rule that stops ``campaign`` (as its ``Considered``), or the channel."""

    def skip(reason: Reason, detail: str | None = None) -> Considered:
        return Considered(
            campaign_id=campaign.id, outcome=Outcome.SKIPPED, reason=reason, detail=detail
        )

    if ctx.event.stale:
        return skip(Reason.STALE_EVENT)
    miss = _audience_miss(campaign.audience, ctx.profile, ctx.segment, ctx.tags)
    if miss is not None:
        return skip(Reason.NOT_IN_AUDIENCE, miss)
    miss = _schedule_miss(campaign, ctx)
    if miss is not None:
        return skip(Reason.OUTSIDE_SCHEDULE, miss)
    if campaign.schedule.respect_opening_hours and not ctx.venue_open:
        return skip(Reason.VENUE_CLOSED)
    if ctx.quiet:
        return skip(Reason.QUIET_HOURS, f"{ctx.local:%H:%M} {ctx.tz} in {ctx.policy.quiet_hours}")
    reachable = [
        ch
        for ch in campaign.channels
        if ctx.profile.channels is None or ch in ctx.profile.channels
    ]
    if not reachable:
        return skip(Reason.NO_CHANNEL, f"user reachable on none of {list(campaign.channels)}")
    refused = set(ctx.profile.opt_outs)
    allowed = [ch for ch in reachable if ch not in refused and ALL_CHANNELS not in refused]
    if not allowed:
        return skip(Reason.OPTED_OUT, f"opted out of {reachable}")
    user_id = ctx.profile.user_id
    cap = campaign.caps.per_user
    if cap is not None:
        sent = ctx.ledger.count_pushes(
            user_id, _after(ctx.now - cap.period_s), math.inf, campaign_id=campaign.id
        )
        if sent >= cap.count:
            return skip(Reason.CAMPAIGN_CAP, f"{sent} in {cap.period_s:.0f} s, cap {cap.count}")
    cooldown = campaign.caps.cooldown_s
    if cooldown is not None:
        last = ctx.ledger.last_push_at(user_id, campaign_id=campaign.id, venue_id=ctx.venue.id)
        if last is not None and ctx.now - last < cooldown:
            return skip(
                Reason.COOLDOWN, f"last here {ctx.now - last:.0f} s ago, cooldown {cooldown:.0f} s"
            )
    block = ctx.global_block
    if block is not None:
        return skip(*block)
    return allowed[0]


def _audience_miss(
    audience: Audience, profile: Profile, segment: str, tags: frozenset[str] | None = None
) -> str | None:
    if tags is None:
        tags = profile.all_tags
    if audience.all_of_tags and not set(audience.all_of_tags) <= tags:
        return f"lacks tags {sorted(set(audience.all_of_tags) - tags)}"
    if audience.any_of_tags and not set(audience.any_of_tags) & tags:
        return f"has none of tags {list(audience.any_of_tags)}"
    if set(audience.none_of_tags) & tags:
        return f"has excluded tags {sorted(set(audience.none_of_tags) & tags)}"
    attrs = profile.attributes
    if audience.age is not None:
        low, high = audience.age.min, audience.age.max
        if attrs.age is None:
            return "age unknown"
        if (low is not None and attrs.age < low) or (high is not None and attrs.age > high):
            return f"age {attrs.age} outside {low}-{high}"
    if audience.gender and attrs.gender not in audience.gender:
        return f"gender {attrs.gender!r} not in {list(audience.gender)}"
    if audience.locales and not _locale_matches(audience.locales, profile.content_locale):
        return f"locale {profile.content_locale!r} not in {list(audience.locales)}"
    if audience.segments and segment not in audience.segments:
        return f"segment {segment} not in {[str(s) for s in audience.segments]}"
    return None


def _locale_matches(wanted: tuple[str, ...], locale: str | None) -> bool:
    have = norm_locale(locale)
    if have is None:
        return False
    for item in wanted:
        want = norm_locale(item)
        if want == have or (want is not None and "-" not in want and have.split("-")[0] == want):
            return True
    return False


def _schedule_miss(campaign: Campaign, ctx: _Context) -> str | None:
    schedule = campaign.schedule
    if schedule.start is not None and ctx.now < schedule.start:
        return "before start"
    if schedule.end is not None and ctx.now >= schedule.end:
        return "after end"
    if schedule.days and ctx.local.weekday() not in schedule.weekdays:
        return f"{ctx.local:%a} not in {list(schedule.days)}"
    if schedule.hours is not None and not in_window(
        parse_window(schedule.hours), minute_of_day(ctx.local)
    ):
        return f"{ctx.local:%H:%M} {ctx.tz} outside {schedule.hours}"
    return None


def _arbitrate(
    ctx: _Context,
    index: CampaignIndex,
    eligible: list[tuple[Campaign, str]],
    kind: str,
    considered: list[Considered],
) -> Chosen | None:
    """Walk the eligible campaigns in arbitration order; append their lines; the push."""
    chosen: Chosen | None = None
    for campaign, channel in eligible:
        if chosen is not None:
            considered.append(
                Considered(
                    campaign_id=campaign.id,
                    outcome=Outcome.SKIPPED,
                    reason=Reason.LOWER_PRIORITY,
                    detail=f"{chosen.campaign_id} won",
                )
            )
            continue
        assignment = assign(campaign.id, ctx.profile.user_id, campaign.control_pct, campaign.arms)
        if assignment.control:
            considered.append(
                Considered(
                    campaign_id=campaign.id,
                    outcome=Outcome.HELD_OUT,
                    reason=Reason.HELD_OUT_CONTROL,
                    variant_id=assignment.arm,
                )
            )
            continue
        variant = pick_rendition(
            campaign.variants,
            assignment.arm,
            ctx.profile.content_locale,
            age_band(ctx.profile.attributes.age),
        )
        context = build_context(
            profile=ctx.profile,
            segment=ctx.segment,
            venue=ctx.venue,
            event_kind=kind,
            event_at=ctx.event.at,
            dwell_s=ctx.event.dwell_s,
            visit_id=ctx.event.visit_id,
            campaign=campaign,
            variant_id=assignment.arm,
            now=ctx.now,
            local=ctx.local,
            holiday=index.content.holiday(
                ctx.profile.attributes.country, ctx.local.date(), ctx.profile.content_locale
            ),
            route=route_tip(ctx.venue, ctx.profile.next_stops.get(ctx.venue.id)),
        )
        rendered = index.content.render(variant, context)
        if not isinstance(rendered, Rendered):
            considered.append(
                Considered(
                    campaign_id=campaign.id,
                    outcome=Outcome.ERROR,
                    reason=Reason.TEMPLATE_ERROR,
                    variant_id=assignment.arm,
                    detail=rendered.message,
                )
            )
            continue
        chosen = Chosen(
            campaign_id=campaign.id,
            variant_id=assignment.arm,
            title=rendered.title,
            body=rendered.body,
            channel=channel,
            locale=variant.locale,
            expires_at=ctx.now + campaign.offer_ttl_s,
        )
        considered.append(
            Considered(
                campaign_id=campaign.id,
                outcome=Outcome.SENT,
                reason=Reason.SENT,
                variant_id=assignment.arm,
            )
        )
    return chosen
