"""The campaign index: active campaigns by trigger and venue id / parent / tag / kind.

Built once from the campaign list and never changed (rebuild and swap whole when a campaign
changes, like the geofence index), so an event looks up a few buckets instead of scanning
every campaign. A campaign is filed under its most selective selector field only (ids, else
parent, else tags, else kinds, else "anywhere"); the exact selector test then runs on the
few candidates (cheap filter, then exact test).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from triggers.decisions.content import ContentEngine
from triggers.decisions.models import Campaign, CampaignStatus, VenueSelector
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
        yield from self.by_id.get(venue.id, ())
        if venue.parent_id is not None:
            yield from self.by_parent.get(venue.parent_id, ())
        for tag in venue.tags:
            yield from self.by_tag.get(tag, ())
        yield from self.by_kind.get(str(venue.kind), ())
        yield from self.anywhere


def arbitration_key(campaign: Campaign) -> tuple[int, str]:
    """Order of arbitration: higher ``priority`` first; ties to the smaller campaign id,
    because ids are stable and unique and so the order is the same on every node."""
    return -campaign.priority, campaign.id


class CampaignIndex:
    """Immutable lookup of active campaigns for an event at a venue.

    Also owns the :class:`ContentEngine` whose templates it compiles at build time, so a
    syntax error is known before the first event (and reported as ``template_error``).
    """

    def __init__(self, campaigns: Iterable[Campaign]) -> None:
        """Index the ``active`` campaigns among ``campaigns``; others are left out.

        Raises ``ValueError`` on two campaigns with one id.
        """
        self._all: dict[str, Campaign] = {}
        self._by_trigger: dict[str, _Buckets] = {}
        self.content = ContentEngine()
        for campaign in campaigns:
            if campaign.id in self._all:
                raise ValueError(f"duplicate campaign id {campaign.id!r}")
            self._all[campaign.id] = campaign
            if campaign.status is not CampaignStatus.ACTIVE:
                continue
            self._by_trigger.setdefault(str(campaign.trigger.event), _Buckets()).add(campaign)
            self.content.check(campaign)

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
        buckets = self._by_trigger.get(event_kind)
        if buckets is None or not venue.enabled:
            return []
        found: dict[str, Campaign] = {}
        for campaign in buckets.lookup(venue):
            if campaign.id in found or not selector_matches(campaign.venues, venue):
                continue
            if event_kind == "dwell":
                wanted = campaign.trigger.dwell_s
                if wanted is None:
                    wanted = venue.dwell_s
                if dwell_s is None or int(dwell_s) != int(wanted):
                    continue
            found[campaign.id] = campaign
        return sorted(found.values(), key=arbitration_key)
