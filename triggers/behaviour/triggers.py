"""Behaviour triggers: which events start a campaign's pending push, which follow-ups
cancel it, and the event a due one is decided as. Pure.

A campaign with ``trigger: {behaviour: {kind, item?, delay_s, unless?}}`` gets one
:class:`PendingTrigger` per matching event (its key is the campaign and the event's
idempotency key, so a re-posted event starts nothing new), due ``delay_s`` after the
event. An event of ``unless.kind`` (on the same item when ``same_item``) within
``unless.within_s`` of the triggering event cancels it. A due trigger is decided
through ``decide`` as a :class:`BehaviourOccasion`: no venue, event ``behaviour``, the
item in the template context as ``item``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from triggers.behaviour.events import BehaviourEvent, BehaviourItem
from triggers.decisions.models import BehaviourCondition, Campaign, CampaignStatus, ItemFilter
from triggers.decisions.records import Considered, Decision, Outcome, Reason

BEHAVIOUR = "behaviour"
"""The decision's ``event`` for a behaviour trigger."""


class PendingState(StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class PendingTrigger:
    """A behaviour trigger waiting for its time (or for its cancelling follow-up)."""

    key: str
    """UNIQUE per tenant: the campaign and the triggering event's key."""
    user_id: str
    campaign_id: str
    event_key: str
    event_ts: float
    due_at: float
    item: BehaviourItem | None
    unless_kind: str | None = None
    unless_same_item: bool = True
    unless_until: float | None = None
    """The end of the follow-up window (event time + ``unless.within_s``)."""

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "user_id": self.user_id, "campaign_id": self.campaign_id,
                "event_key": self.event_key, "event_ts": self.event_ts,
                "due_at": self.due_at,
                "item": None if self.item is None else self.item.model_dump(mode="json"),
                "unless_kind": self.unless_kind, "unless_same_item": self.unless_same_item,
                "unless_until": self.unless_until}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PendingTrigger:
        item = data.get("item")
        return cls(**{**data, "item": None if item is None else BehaviourItem(**item)})


def item_matches(wanted: ItemFilter | None, item: BehaviourItem | None) -> bool:
    """Whether ``item`` passes the filter: its category, and any one of the tags, when
    given. An empty filter takes any event, with an item or without."""
    if wanted is None or (wanted.category is None and not wanted.tags):
        return True
    if item is None:
        return False
    if wanted.category is not None and item.category != wanted.category:
        return False
    return not wanted.tags or bool(set(wanted.tags) & set(item.tags))


def behaviour_campaigns(campaigns: Iterable[Campaign]) -> tuple[Campaign, ...]:
    """The active campaigns with a behaviour trigger."""
    return tuple(c for c in campaigns if c.status is CampaignStatus.ACTIVE
                 and c.trigger.behaviour is not None)


def pending_key(campaign_id: str, event_key: str) -> str:
    return hashlib.sha256(f"{campaign_id}\x1f{event_key}".encode()).hexdigest()[:40]


def triggered(campaigns: Iterable[Campaign], event_key: str,
              event: BehaviourEvent) -> list[PendingTrigger]:
    """The pending triggers ``event`` starts among ``campaigns`` (active, behaviour)."""
    found: list[PendingTrigger] = []
    for campaign in campaigns:
        trigger = campaign.trigger.behaviour
        if trigger is None or trigger.kind != event.kind or \
                not item_matches(trigger.item, event.item):
            continue
        unless = trigger.unless
        found.append(PendingTrigger(
            key=pending_key(campaign.id, event_key), user_id=event.user_id,
            campaign_id=campaign.id, event_key=event_key, event_ts=event.ts,
            due_at=event.ts + trigger.delay_s, item=event.item,
            unless_kind=None if unless is None else unless.kind,
            unless_same_item=True if unless is None else unless.same_item,
            unless_until=None if unless is None else event.ts + unless.within_s))
    return found


def cancels(pending: PendingTrigger, event: BehaviourEvent) -> bool:
    """Whether ``event`` is the follow-up that cancels ``pending``: the user's, of the
    ``unless`` kind, within its window after the triggering event, on the same item
    when ``same_item``."""
    if pending.unless_kind is None or pending.unless_until is None:
        return False
    if event.user_id != pending.user_id or event.kind != pending.unless_kind:
        return False
    if not pending.event_ts <= event.ts <= pending.unless_until:
        return False
    if not pending.unless_same_item:
        return True
    return (event.item is not None and pending.item is not None
            and event.item.id == pending.item.id)


@dataclass(frozen=True, slots=True)
class BehaviourOccasion:
    """A due behaviour trigger as ``decide`` takes it (``EventLike``): no venue, event
    ``behaviour`` at the triggering event's time, its item for templates."""

    user_id: str
    at: float
    visit_id: str
    """The pending trigger's key (one decision per trigger)."""
    item: BehaviourItem | None
    venue_id: None = None
    kind: str = BEHAVIOUR
    dwell_s: None = None
    confidence: None = None
    reason: None = None
    stale: bool = False

    @classmethod
    def of(cls, pending: PendingTrigger) -> BehaviourOccasion:
        return cls(pending.user_id, pending.event_ts, pending.key, pending.item)

    def item_context(self) -> dict[str, Any] | None:
        """The template's ``item``."""
        return None if self.item is None else self.item.model_dump(mode="json")


def cancelled_decision(pending: PendingTrigger, follow_up: BehaviourEvent,
                       now: float) -> Decision:
    """The decision log's line for a trigger its follow-up cancelled (its key is the
    trigger's, as the decision it would have fired)."""
    what = follow_up.kind + ("" if follow_up.item is None else f" of {follow_up.item.id}")
    return Decision(
        user_id=pending.user_id, venue_id=None, event=BEHAVIOUR, at=pending.event_ts,
        visit_id=pending.key, decided_at=float(now), chosen=None,
        considered=(Considered(
            pending.campaign_id, Outcome.SKIPPED, Reason.CANCELLED_BY_FOLLOW_UP,
            detail=f"{what} at {follow_up.ts:.0f}, {follow_up.ts - pending.event_ts:.0f} s "
                   "after the triggering event"),))


def cancellations(open_triggers: Iterable[PendingTrigger],
                  events: Iterable[BehaviourEvent]) -> list[tuple[PendingTrigger, BehaviourEvent]]:
    """Each open trigger that one of ``events`` cancels, with the first such event (by
    time)."""
    ordered = sorted(events, key=lambda e: e.ts)
    found = []
    for pending in open_triggers:
        for event in ordered:
            if cancels(pending, event):
                found.append((pending, event))
                break
    return found


def condition_holds(condition: BehaviourCondition, events: Iterable[BehaviourEvent],
                    at: float) -> bool:
    """Whether the user did ``condition.kind`` (on an item passing its filter) within
    ``condition.within_s`` before ``at`` (a location campaign's ``also``)."""
    since = at - condition.within_s
    return any(e.kind == condition.kind and since <= e.ts <= at
               and item_matches(condition.item, e.item) for e in events)


def unmet_conditions(campaigns: Iterable[Campaign], events: Iterable[BehaviourEvent],
                     at: float) -> dict[str, str]:
    """Campaign id → why, for each of ``campaigns`` whose ``also`` condition the user's
    ``events`` do not meet at ``at`` (what ``decide`` skips as
    ``behaviour_condition_unmet``)."""
    mine = list(events)
    unmet: dict[str, str] = {}
    for campaign in campaigns:
        also = campaign.trigger.also
        if also is not None and not condition_holds(also, mine, at):
            what = also.kind + ("" if also.item is None or also.item.category is None
                                else f" of {also.item.category}")
            unmet[campaign.id] = f"no {what} in the {also.within_s:g} s before"
    return unmet
