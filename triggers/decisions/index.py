"""The campaign index: active campaigns by trigger and venue id / parent / tag / kind.

Built once from the campaign list and never changed (rebuild and swap whole when a campaign
changes, like the geofence index), so an event looks up a few buckets instead of scanning
every campaign. A campaign is filed under its most selective selector field only (ids, else
parent, else tags, else kinds, else "anywhere"); the exact selector test then runs on the
few candidates (cheap filter, then exact test). The answer for a venue is remembered, as is
the part of it that venues of one kind and tag share, since the index never changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from triggers.decisions.content import ContentEngine
from triggers.decisions.models import Campaign, CampaignStatus, VenueSelector
from triggers.decisions.rules import CampaignRules, TagBits
from triggers.decisions.sandbox import RenderLimits
from venues.model import Venue


def selector_matches(selector: VenueSelector, venue: Venue) -> bool:
    """Every given selector field matches the venue (any value within a field)."""
    if selector.ids and venue.id not in selector.ids:
        return False
    if selector.kinds and str(venue.kind) not in selector.kinds:
        return False
    if selector.tags and not set(selector.tags) & set(venue.tags):
        return False
    return selector.parent is None or venue.parent_id == selector.parent


@dataclass(slots=True)
class _Buckets:
    by_id: dict[str, list[Campaign]] = field(default_factory=dict)
    by_parent: dict[str, list[Campaign]] = field(default_factory=dict)
    by_tag: dict[str, list[Campaign]] = field(default_factory=dict)
    by_kind: dict[str, list[Campaign]] = field(default_factory=dict)
    anywhere: list[Campaign] = field(default_factory=list)

    def add(self, campaign: Campaign) -> None:
        selector = campaign.venues
        if selector.ids:
            for venue_id in selector.ids:
                self.by_id.setdefault(venue_id, []).append(campaign)
        elif selector.parent is not None:
            self.by_parent.setdefault(selector.parent, []).append(campaign)
        elif selector.tags:
            for tag in selector.tags:
                self.by_tag.setdefault(tag, []).append(campaign)
        elif selector.kinds:
            for kind in selector.kinds:
                self.by_kind.setdefault(kind, []).append(campaign)
        else:
            self.anywhere.append(campaign)

    def lookup(self, venue: Venue) -> Iterable[Campaign]:
        yield from self.own(venue)
        yield from self.shared(venue)

    def own(self, venue: Venue) -> Iterable[Campaign]:
        """The campaigns filed under the venue's id or its parent."""
        yield from self.by_id.get(venue.id, ())
        if venue.parent_id is not None:
            yield from self.by_parent.get(venue.parent_id, ())

    def shared(self, venue: Venue) -> Iterable[Campaign]:
        """The campaigns filed under the venue's tags, its kind, or anywhere: their
        selectors name no id and no parent, so they match every venue of the same kind
        with the same tags alike."""
        for tag in venue.tags:
            yield from self.by_tag.get(tag, ())
        yield from self.by_kind.get(str(venue.kind), ())
        yield from self.anywhere


def arbitration_key(campaign: Campaign) -> tuple[int, str]:
    """Order of arbitration: higher ``priority`` first; ties to the smaller campaign id,
    because ids are stable and unique and so the order is the same on every node."""
    return -campaign.priority, campaign.id


MAX_CACHED_LOOKUPS = 1 << 16
"""Entries each lookup memo keeps before it starts over: a few MB at this size; starting
over costs time, never correctness."""


class CampaignIndex:
    """Immutable lookup of active campaigns for an event at a venue.

    Also owns the :class:`ContentEngine` whose templates it compiles at build time, so a
    syntax error is known before the first event (and reported as ``template_error``), and
    each active campaign's :class:`CampaignRules`, compiled once for ``decide``.
    """

    def __init__(
        self,
        campaigns: Iterable[Campaign],
        *,
        render_limits: RenderLimits | None = None,
        render_clock: Callable[[], float] | None = None,
    ) -> None:
        """Index the ``active`` campaigns among ``campaigns``; others are left out.

        ``render_limits`` and ``render_clock`` bound every template render (see
        :class:`ContentEngine`: without a clock, by operations only).
        Raises ``ValueError`` on two campaigns with one id.
        """
        self._all: dict[str, Campaign] = {}
        self._by_trigger: dict[str, _Buckets] = {}
        self.tags = TagBits()
        """The audience tag vocabulary of the active campaigns."""
        self.content = ContentEngine(render_limits, render_clock)
        active: list[Campaign] = []
        for campaign in campaigns:
            if campaign.id in self._all:
                raise ValueError(f"duplicate campaign id {campaign.id!r}")
            self._all[campaign.id] = campaign
            if campaign.status is not CampaignStatus.ACTIVE:
                continue
            active.append(campaign)
            self._by_trigger.setdefault(str(campaign.trigger.kind), _Buckets()).add(campaign)
            self.content.check(campaign)
        self._rules = {
            c.id: CampaignRules(c, self.tags, rank)
            for rank, c in enumerate(sorted(active, key=arbitration_key))
        }
        # Memos of candidate_rules: per venue version, and per (kind, tag) for the parts
        # of the answer that venues of one kind share.
        self._by_venue: dict[_VenueKey, tuple[Venue, tuple[CampaignRules, ...]]] = {}
        self._by_look: dict[_LookKey, tuple[CampaignRules, ...]] = {}

    @property
    def campaigns(self) -> tuple[Campaign, ...]:
        """Every campaign given, active or not, in the order given."""
        return tuple(self._all.values())

    def candidates(self, venue: Venue, event_kind: str, dwell_s: float | None) -> list[Campaign]:
        """Active campaigns whose trigger and venue selector match, in arbitration order.

        A DWELL campaign matches only the DWELL event of its own threshold: its
        ``dwell_s``, or the venue's ``dwell_s`` when it names none. The presence engine
        fires one DWELL per threshold of a visit (the venue's and every campaign's), so
        matching "at least" would offer the same campaign again at each later threshold.
        """
        return [rules.campaign for rules in self.candidate_rules(venue, event_kind, dwell_s)]

    def candidate_rules(
        self, venue: Venue, event_kind: str, dwell_s: float | None
    ) -> tuple[CampaignRules, ...]:
        """The :meth:`candidates`, as their compiled rules (what ``decide`` runs).

        Remembered per (venue id, event kind, whole seconds of a DWELL threshold), for the
        venue they were found for: a venue's candidates depend only on its id, kind, tags,
        parent, dwell threshold and ``enabled``, so another object for the venue reuses the
        answer when those are equal (the service passes the same object until the venue
        changes).
        """
        threshold = None if event_kind != "dwell" or dwell_s is None else int(dwell_s)
        key = (venue.id, event_kind, threshold)
        hit = self._by_venue.get(key)
        if hit is not None and (hit[0] is venue or _same_selection(hit[0], venue)):
            return hit[1]
        found = self._find(venue, event_kind, dwell_s)
        if len(self._by_venue) >= MAX_CACHED_LOOKUPS:
            self._by_venue.clear()
        self._by_venue[key] = (venue, found)
        return found

    def rules_for(self, campaign_id: str, event_kind: str) -> tuple[CampaignRules, ...]:
        """The compiled rules of campaign ``campaign_id`` when it is active and its trigger
        is of ``event_kind`` (a scheduled or behaviour event's one candidate), else ()."""
        rules = self._rules.get(campaign_id)
        if rules is None or str(rules.campaign.trigger.kind) != event_kind:
            return ()
        return (rules,)

    def active_of_kind(self, event_kind: str) -> tuple[Campaign, ...]:
        """The active campaigns whose trigger is of ``event_kind``, in arbitration order."""
        return tuple(r.campaign for r in self._rules.values()
                     if str(r.campaign.trigger.kind) == event_kind)

    def rules_of(self, campaigns: Iterable[Campaign]) -> tuple[CampaignRules, ...]:
        """The compiled rules of active ``campaigns`` (by id), in the order given."""
        return tuple(self._rules[campaign.id] for campaign in campaigns)

    def _find(
        self, venue: Venue, event_kind: str, dwell_s: float | None
    ) -> tuple[CampaignRules, ...]:
        buckets = self._by_trigger.get(event_kind)
        if buckets is None or not venue.enabled:
            return ()
        parts = [self._select(buckets.own(venue), venue, event_kind, dwell_s)]
        # The campaigns filed under a tag or a kind depend on the venue only through its
        # kind (and dwell threshold), so each such bucket's selection is remembered.
        threshold = None if event_kind != "dwell" or dwell_s is None else int(dwell_s)
        for tag in (*venue.tags, None):
            look = (event_kind, venue.kind, tag, threshold, venue.dwell_s)
            part = self._by_look.get(look)
            if part is None:
                campaigns = (
                    buckets.by_tag.get(tag, ())
                    if tag is not None
                    else (*buckets.by_kind.get(str(venue.kind), ()), *buckets.anywhere)
                )
                part = self._select(campaigns, venue, event_kind, dwell_s)
                if len(self._by_look) >= MAX_CACHED_LOOKUPS:
                    self._by_look.clear()
                self._by_look[look] = part
            parts.append(part)
        found = [part for part in parts if part]
        if len(found) <= 1:
            return found[0] if found else ()
        # A campaign filed under two of the venue's tags is in two parts: once each.
        merged = {rules.rank: rules for part in found for rules in part}
        return tuple(merged[rank] for rank in sorted(merged))

    def _select(
        self, campaigns: Iterable[Campaign], venue: Venue, event_kind: str, dwell_s: float | None
    ) -> tuple[CampaignRules, ...]:
        """The exact test on bucket contents: selector and DWELL threshold; sorted."""
        found: dict[str, CampaignRules] = {}
        for campaign in campaigns:
            if campaign.id in found or not selector_matches(campaign.venues, venue):
                continue
            if event_kind == "dwell":
                wanted = campaign.trigger.dwell_s
                if wanted is None:
                    wanted = venue.dwell_s
                if dwell_s is None or int(dwell_s) != int(wanted):
                    continue
            found[campaign.id] = self._rules[campaign.id]
        return tuple(sorted(found.values(), key=_rank))


_VenueKey = tuple[str, str, int | None]
_LookKey = tuple[str, str, str | None, int | None, int]


def _rank(rules: CampaignRules) -> int:
    return rules.rank


def _same_selection(a: Venue, b: Venue) -> bool:
    """Whether two versions of a venue select the same campaigns."""
    return (
        a.kind == b.kind
        and a.tags == b.tags
        and a.parent_id == b.parent_id
        and a.dwell_s == b.dwell_s
        and a.enabled == b.enabled
    )
