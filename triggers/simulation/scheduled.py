"""Scheduled campaigns on the simulator's virtual clock.

Every user of the run (the scenario's profiles, the generated devices' users) gets the
slots of every live scheduled campaign in their own zone (the profile's, else the tenant
policy's ``default_timezone``), as the service does (:mod:`triggers.decisions.slots`). The
engine hands out the slots due up to each instant it reaches (:meth:`SlotFeed.take`) and
each is decided at its instant with ``decide`` (event ``scheduled``, venue ``None``), in
every world, so a back-test sees scheduled campaigns too. As in the service, a user
outside the campaign's audience leaves no decision.

A ``best_time`` campaign has a slot at every whole hour of its window and at its
fallback; at each, a world decides only the users whose send time it is, chosen by the
service's :func:`~triggers.decisions.best_time.time_choice` from the world's send-time
model at that instant (:mod:`triggers.simulation.sendtime`), and the decision's note
says which time and why, as in the service. Pure.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from triggers.decisions import CampaignIndex, Decision, InMemoryLedger, Profile, decide
from triggers.decisions.best_time import TimeChoice, time_choice, with_time_note
from triggers.decisions.models import Campaign, TenantPolicy
from triggers.decisions.records import Reason
from triggers.decisions.slots import Slot, SlotEvent, slots_between, user_zone
from triggers.simulation.backtest import BacktestTally
from triggers.simulation.result import Delivery, SimulationResult
from triggers.simulation.sendtime import SendTimeLearner


class SlotWorld(Protocol):
    """What a world of the engine offers a slot: its campaigns, its ledger and its
    send-time model (``None``: it has no ``best_time`` campaign)."""

    index: CampaignIndex
    ledger: InMemoryLedger
    send_time: SendTimeLearner | None


SlotPair = tuple[Slot, str, Campaign]
"""A slot, the user it reaches, and the campaign (as the world that planned it has it)."""


@dataclass
class SlotFeed:
    """The run's (slot, user) pairs in time order (then user id), handed out once."""

    due: list[SlotPair]
    _next: int = 0

    def next_at(self) -> float:
        """The instant of the next pair not handed out (inf when none is left)."""
        return self.due[self._next][0].at if self._next < len(self.due) else math.inf

    def take(self, until: float) -> list[SlotPair]:
        """The pairs whose instant is at or before ``until`` not handed out yet."""
        start = self._next
        end = start
        while end < len(self.due) and self.due[end][0].at <= until:
            end += 1
        self._next = end
        return self.due[start:end]


def slot_feed(
    campaigns: Iterable[Campaign], users: Iterable[Profile], policy: TenantPolicy,
    start: float, end: float,
) -> SlotFeed:
    """Every slot in ``[start, end)`` of the scheduled ``campaigns`` (each world's active
    ones, a campaign given twice counted once) for each of ``users``, in their zones."""
    scheduled: list[Campaign] = []
    for campaign in campaigns:
        if campaign.trigger.scheduled is not None and campaign not in scheduled:
            scheduled.append(campaign)
    if not scheduled:
        return SlotFeed([])
    by_zone: dict[str, list[str]] = {}
    for profile in users:
        by_zone.setdefault(user_zone(profile.attributes.timezone, policy), []).append(
            profile.user_id)
    due: list[SlotPair] = []
    for campaign in scheduled:
        trigger = campaign.trigger.scheduled
        assert trigger is not None
        for tz, user_ids in by_zone.items():
            for slot in slots_between(trigger, campaign.id, tz, start, end):
                if campaign.schedule.start is None or slot.at >= campaign.schedule.start:
                    due.extend((slot, user_id, campaign) for user_id in user_ids)
    due.sort(key=lambda pair: (pair[0].at, pair[1], pair[0].campaign_id))
    return SlotFeed(due)


@dataclass
class SlotDecider:
    """Decides slots in every world and records the live world's outcome in ``result``."""

    result: SimulationResult
    worlds: Sequence[SlotWorld]
    tally: BacktestTally | None
    profiles: Callable[[str, float], Profile]
    """The user's profile as a decision at a time sees it."""
    tenant: TenantPolicy
    keep_records: bool
    pushed: set[str] = field(default_factory=set)
    respond: Callable[[int, str, Decision, Profile, float], None] | None = None
    """Called with (world number, the push's key, the decision, the profile, the slot's
    instant) for each decided slot: the response model draws the push's open and click."""

    def __call__(self, pairs: Sequence[SlotPair]) -> None:
        for slot, user_id, campaign in pairs:
            profile: Profile | None = None
            event = SlotEvent.of(slot, user_id)
            decided: list[Decision | None] = []
            for world in self.worlds:
                # A back-test's candidate may change a live campaign's times: each world
                # decides only the slots of its own version of the campaign.
                own = world.index.rules_for(slot.campaign_id, "scheduled")
                if not own or own[0].campaign != campaign:
                    decided.append(None)
                    continue
                choice = _time_choice(campaign, world, user_id, slot)
                if choice is not None and choice.local_time != slot.local[11:]:
                    decided.append(None)  # this user's send time is another slot of the day
                    continue
                if profile is None:
                    profile = self.profiles(user_id, slot.at)
                decision = decide(event, profile, world.index, None, self.tenant,
                                  world.ledger, slot.at, campaign_id=slot.campaign_id)
                if not _in_audience(decision):
                    decided.append(None)
                    continue
                if choice is not None:
                    decision = with_time_note(decision, choice)
                for entry in decision.ledger_entries():
                    world.ledger.record(entry)
                if self.respond is not None and decision.chosen is not None:
                    key = _key(decision.visit_id, decision.chosen.campaign_id)
                    self.respond(len(decided), key, decision, profile, slot.at)
                decided.append(decision)
            live = decided[0]
            if live is not None:
                self._record(slot, live)
            if self.tally is not None and len(decided) > 1 and (live or decided[1]):
                self.tally.add(live, decided[1])

    def _record(self, slot: Slot, decision: Decision) -> None:
        result = self.result
        day = datetime.fromtimestamp(decision.decided_at, result.tz).date().isoformat()
        result.stats.add_decision(decision, day)
        if not self.keep_records:
            return
        result.decisions.append(decision)
        chosen = decision.chosen
        if chosen is not None:
            result.deliveries.append(Delivery(
                key=_key(decision.visit_id, chosen.campaign_id), user_id=decision.user_id,
                venue_id=None, campaign_id=chosen.campaign_id, variant_id=chosen.variant_id,
                channel=chosen.channel, title=chosen.title, body=chosen.body,
                at=decision.decided_at, expires_at=chosen.expires_at, event="scheduled",
                event_at=slot.at, visit_id=decision.visit_id,
            ))


def _time_choice(campaign: Campaign, world: SlotWorld, user_id: str,
                 slot: Slot) -> TimeChoice | None:
    """The user's send time on the slot's day when ``campaign`` has a ``best_time``, by
    the world's send-time model at the slot (``None``: no ``best_time``)."""
    trigger = campaign.trigger.scheduled
    best = None if trigger is None else trigger.best_time
    if best is None:
        return None
    view = None if world.send_time is None else world.send_time.view_at(slot.at)
    return time_choice(best, view, user_id, slot.tz, slot.at)


def _in_audience(decision: Decision) -> bool:
    """Whether the decision is worth recording: its campaign was live and the user is in
    its audience."""
    lines = decision.considered
    return bool(lines) and lines[0].reason is not Reason.NOT_IN_AUDIENCE


def _key(user_slot: str, campaign_id: str) -> str:
    """The push's idempotency key: one per (campaign, user, slot)."""
    raw = "\x1f".join((user_slot, "scheduled", campaign_id))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]
