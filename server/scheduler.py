"""Scheduled campaigns in the service: each slot fanned out to its audience, zone by zone,
in pages, through the same ``decide`` as location events.

A round (:func:`schedule_round`, called by :func:`server.pipeline.fire_all_timers` for
every tenant) looks at every active scheduled campaign and every zone the tenant's
profiles are in (users without a zone are a group of their own, in the tenant policy's
``default_timezone``): the campaign's local times are a different instant in each zone
(:mod:`triggers.decisions.slots`). Each slot of the last ``grace_s`` + :data:`LOOKBACK_S`
that is not settled yet is walked:

- **due** (``slot.at <= now <= slot.at + grace_s``, which also covers a slot missed while
  the service was down and caught up within its grace): a page of the zone group's
  profiles (keyset pagination by user id, so memory is one page whatever the audience
  size) is locked as one batch (``store.batch``, the same per-user locks as location
  events), each user is decided with event ``scheduled`` and venue ``None`` (caps, quiet
  hours — a message in quiet hours is held to the window's end within its TTL —
  fatigue, control group, reason codes), and the pushes, ledger entries and decisions are
  written with keys made of (tenant, campaign, user, slot);
- **missed** (its grace ended first): each audience member gets a decision with the one
  line ``slot_missed``, and nothing is sent.

A campaign's slots start at its ``schedule.start`` when it names one; without it, a
campaign activated within a slot's grace still sends that slot, and one activated later
records the earlier slots of the last hours as ``slot_missed`` (the service cannot tell a
new campaign from one it missed while down).

Decisions whose only line is ``not_in_audience`` are not recorded: a scheduled campaign
would otherwise write one per tenant user per slot.

Durability: once a page and every page before it have committed, the slot's cursor (the
last user id settled) is saved; a crash therefore redoes at most the pages that were in
flight (:data:`DEFAULT_PAGES_IN_FLIGHT`), and redoing them writes nothing new,
since every row of them is keyed and ``ON CONFLICT DO NOTHING``. Two server processes on
one database may walk the same slot at once: the per-user locks serialise them, the
second sees the first's ledger entries, and the keyed inserts keep one push per
(campaign, user, slot) whatever the policy says.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from server.behaviour_service import with_learned
from server.store.base import DecisionRecord, KeyedEntry, NewDelivery, SlotCursor
from server.store.roles import BehaviourStore, IngestStore, ProfileStore
from server.tenant_core import (
    NO_LEARNED,
    Learned,
    TenantCore,
    TenantCores,
    learned_for,
    learned_unmet_of,
)
from triggers.decisions import Decision, InMemoryLedger, Profile, decide
from triggers.decisions.best_time import time_choice, with_time_note
from triggers.decisions.models import Campaign, TenantPolicy
from triggers.decisions.records import Considered, Outcome, Reason
from triggers.decisions.slots import Slot, SlotEvent, SlotState, open_slots, user_zone
from triggers.errors import TriggerError

log = logging.getLogger("geopush.scheduler")

_OUTSIDE = frozenset({Reason.NOT_IN_AUDIENCE, Reason.INTEREST_BELOW_THRESHOLD})
"""A slot's decisions with these reasons are not kept: the user is not in the audience."""

LOOKBACK_S = 6 * 3600.0
"""How far before its grace period a round still looks for unsettled slots: a slot the
service missed by more than this (down for longer) leaves no ``slot_missed`` record."""
DEFAULT_PAGE_USERS = 500
"""Users per fan-out transaction: one page of profiles, locks and rows."""
DEFAULT_PAGES_PER_ROUND = 20
"""Pages one round walks per tenant before it yields to the timer loop's next round."""
DEFAULT_PAGES_IN_FLIGHT = 2
"""Page transactions at once: one is decided (Python) while the other is written
(PostgreSQL), which keeps both busy."""


class ScheduleStore(IngestStore, ProfileStore, Protocol):
    """What the fan-out runs on: batch transactions, and profiles by zone in pages."""


@dataclass(slots=True)
class RoundResult:
    """What one round did for one tenant."""

    decisions: int = 0
    deliveries: int = 0
    missed: int = 0
    """Users given a ``slot_missed`` decision."""
    pages: int = 0
    pending: bool = False
    """Some slot still has users to walk (the page budget ran out)."""
    delivered_users: list[str] | None = None
    """The users pushed, when the round was asked to list them (tests); ``None`` keeps a
    round's memory independent of the audience size."""


def scheduled_key(tenant_id: str, slot: Slot, user_id: str) -> str:
    """The decision key of ``slot`` for ``user_id``: (tenant, campaign, user, local slot)."""
    return _sha256(tenant_id, "scheduled", slot.user_slot(user_id))


def scheduled_delivery_key(tenant_id: str, slot: Slot, user_id: str) -> str:
    """The idempotency key of the push (and of its ledger entry)."""
    return _sha256(tenant_id, "scheduled", slot.user_slot(user_id), slot.campaign_id)


def _sha256(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def cursor_id(slot: Slot, zone: str | None) -> str:
    """A slot's cursor in one zone group (``~`` = the users without a zone)."""
    return f"{slot.campaign_id}@{slot.local}@{zone if zone is not None else '~'}"


async def schedule_round(
    store: ScheduleStore, cores: TenantCores, tenant_id: str, now: float, *,
    page_users: int = DEFAULT_PAGE_USERS, max_pages: int = DEFAULT_PAGES_PER_ROUND,
    pages_in_flight: int = DEFAULT_PAGES_IN_FLIGHT, list_users: bool = False,
) -> RoundResult:
    """Settle the tenant's open slots at ``now`` (see the module docstring), at most
    ``max_pages`` pages of ``page_users``, ``pages_in_flight`` page transactions at a
    time; ``list_users``: name the users pushed in the result. Runs in the event loop."""
    result = RoundResult(delivered_users=[] if list_users else None)
    core = await cores.get(store, tenant_id)
    campaigns = core.campaigns.active_of_kind("scheduled")
    if not campaigns:
        return result
    zones = await store.profile_zones(tenant_id)
    work = open_work(campaigns, zones, core.policy, now)
    if not work:
        return result
    since = min(slot.at for slot, _, _ in work)
    cursors = await store.slot_cursors(tenant_id, since)
    walk = _Walk(store, core, now, page_users, max(1, pages_in_flight), result,
                 await learned_for(cores, core, now))
    for slot, state, zone in work:
        cursor = cursors.get(cursor_id(slot, zone))
        if cursor is not None and cursor.done:
            continue
        if not await walk.group(slot, state, zone, None if cursor is None else cursor.after_user,
                                max_pages):
            result.pending = True
            return result
    return result


@dataclass(slots=True)
class _Walk:
    """One round's walk over zone groups, page by page."""

    store: ScheduleStore
    core: TenantCore
    now: float
    page_users: int
    in_flight: int
    result: RoundResult
    learned: Learned = NO_LEARNED

    async def group(
        self, slot: Slot, state: SlotState, zone: str | None, after: str | None,
        max_pages: int,
    ) -> bool:
        """Walk the zone group's users after ``after`` for ``slot``; False when the page
        budget ran out first. Pages are read one after another (keyset), and up to
        ``in_flight`` of them are decided and written at once (their users differ, so
        their locks never meet); the cursor moves only past pages whose every earlier
        page has committed, so a crash redoes at most ``in_flight`` pages."""
        store, result = self.store, self.result
        tenant_id = self.core.tenant_id
        running: deque[tuple[asyncio.Task[None], str]] = deque()

        async def settle_oldest() -> None:
            task, last = running.popleft()
            await task
            await store.save_slot_cursor(tenant_id, SlotCursor(
                cursor_id(slot, zone), slot.campaign_id, slot.at, last, False))

        try:
            while True:
                if result.pages >= max_pages:
                    while running:
                        await settle_oldest()
                    return False
                page = await store.profiles_page(tenant_id, timezone=zone, after=after,
                                                 limit=self.page_users)
                if page:
                    result.pages += 1
                    after = page[-1].user_id
                    learned = await with_learned_tags(store, tenant_id, page, self.now)
                    running.append((asyncio.create_task(self._page(slot, state, learned)),
                                    after))
                while running and (len(running) >= self.in_flight
                                   or len(page) < self.page_users):
                    await settle_oldest()
                if len(page) < self.page_users:
                    break
        finally:
            for task, _ in running:  # a page failed: the others stop where they are
                task.cancel()
            for task, _ in running:
                with contextlib.suppress(BaseException):
                    await task
        await store.save_slot_cursor(tenant_id, SlotCursor(
            cursor_id(slot, zone), slot.campaign_id, slot.at, after, True))
        return True

    async def _page(self, slot: Slot, state: SlotState, page: Sequence[Profile]) -> None:
        await settle_page(self.store, self.core, slot, state, page, now=self.now,
                          learned=self.learned, result=self.result)


async def settle_page(
    store: ScheduleStore, core: TenantCore, slot: Slot, state: SlotState,
    page: Sequence[Profile], *, now: float, learned: Learned, result: RoundResult,
) -> None:
    """Decide one page of profiles for ``slot`` and write its rows in one transaction
    (the users' batch locks); what it did is added to ``result``."""
    users = [p.user_id for p in page]
    async with store.batch(core.tenant_id, users) as tx:
        snap = await tx.load_ledger(now - core.ledger_horizon_s, users)
        ledger = InMemoryLedger(snap.entries, dict(snap.streaks))
        decisions, entries, outbox = _decide_page(core, slot, state, page, ledger=ledger,
                                                  now=now, learned=learned)
        created = await tx.insert_deliveries(outbox) if outbox else []
        if entries:
            await tx.insert_ledger(entries)
        if decisions:
            await tx.insert_decisions(decisions)
    result.decisions += len(decisions)
    result.deliveries += len(created)
    if result.delivered_users is not None:
        result.delivered_users.extend(d.user_id for d in created)
    if state is SlotState.MISSED:
        result.missed += len(decisions)


async def with_learned_tags(store: ScheduleStore, tenant_id: str, page: Sequence[Profile],
                             now: float) -> Sequence[Profile]:
    """The page's profiles with the tags learned from their behaviour at ``now`` (an
    audience of ``mother_baby`` reaches the users who bought baby things), when the store
    keeps behaviour; two reads per page: the users' features and the tag rules."""
    if not hasattr(store, "get_features_of"):
        return page
    users = [p.user_id for p in page]
    learned = await with_learned(cast("BehaviourStore", store), tenant_id,
                                 {p.user_id: p for p in page}, users, now)
    return [learned[u] for u in users]


def open_work(
    campaigns: Sequence[Campaign], zones: Sequence[str | None], policy: TenantPolicy,
    now: float,
) -> list[tuple[Slot, SlotState, str | None]]:
    """(slot, due or missed, zone group) for every campaign and zone group: the due
    ones first."""
    work: list[tuple[Slot, SlotState, str | None]] = []
    for campaign in campaigns:
        trigger = campaign.trigger.scheduled
        assert trigger is not None
        start = campaign.schedule.start
        for zone in zones:
            tz = user_zone(zone, policy)
            for slot, state in open_slots(trigger, campaign.id, tz, now,
                                          lookback_s=trigger.grace_s + LOOKBACK_S):
                if start is None or slot.at >= start:
                    work.append((slot, state, zone))
    # Due slots first, oldest first: they are still worth sending; a missed slot only
    # leaves records, which can wait for the next round.
    work.sort(key=lambda w: (w[1] is SlotState.MISSED, w[0].at, w[0].campaign_id, w[2] or ""))
    return work


def _decide_page(
    core: TenantCore, slot: Slot, state: SlotState, page: Sequence[Profile], *,
    ledger: InMemoryLedger, now: float, learned: Learned = NO_LEARNED,
) -> tuple[list[DecisionRecord], list[KeyedEntry], list[NewDelivery]]:
    """The rows a page writes: decisions, ledger entries and pushes (pure work). A user
    outside the audience (its tags or, with ``audience.interests``, its predicted
    interests) leaves no row."""
    tenant_id = core.tenant_id
    decisions: list[DecisionRecord] = []
    entries: list[KeyedEntry] = []
    outbox: list[NewDelivery] = []
    best = core.campaigns.rules_for(slot.campaign_id, "scheduled")
    best_time = best[0].campaign.trigger.scheduled.best_time \
        if best and best[0].campaign.trigger.scheduled is not None else None
    for profile in page:
        choice = time_choice(best_time, learned[1], profile.user_id, slot.tz, slot.at)
        if choice is not None and choice.local_time != slot.local[11:]:
            continue  # this user's send time is another slot of the day
        event = SlotEvent.of(slot, profile.user_id)
        try:
            decision = decide(event, profile, core.campaigns, None, core.policy, ledger, now,
                              campaign_id=slot.campaign_id,
                              learned_unmet=learned_unmet_of(learned, profile.user_id, now))
        except TriggerError:
            log.exception("tenant %s: slot %s: user %s not decided", tenant_id,
                          slot.slot_id, profile.user_id)
            continue
        if not decision.considered or decision.considered[0].reason in _OUTSIDE:
            continue
        if choice is not None:
            decision = with_time_note(decision, choice)
        key = scheduled_key(tenant_id, slot, profile.user_id)
        if state is SlotState.MISSED:
            decisions.append(DecisionRecord(key, _missed(decision, slot, now)))
            continue
        decisions.append(DecisionRecord(key, decision))
        delivery_key = scheduled_delivery_key(tenant_id, slot, profile.user_id)
        for entry in decision.ledger_entries():
            ledger.record(entry)
            entries.append(KeyedEntry(delivery_key + (":control" if entry.control else ""),
                                      entry))
        chosen = decision.chosen
        if chosen is not None:
            outbox.append(NewDelivery(
                idempotency_key=delivery_key, user_id=profile.user_id,
                campaign_id=chosen.campaign_id, variant_id=chosen.variant_id, venue_id="",
                visit_id=event.visit_id, event="scheduled", channel=chosen.channel,
                title=chosen.title, body=chosen.body, locale=chosen.locale,
                # A message held over quiet hours is decided at the window's end: the
                # outbox sends nothing before a row's created_at.
                created_at=decision.decided_at, expires_at=chosen.expires_at,
                rich=chosen.rich,
            ))
    return decisions, entries, outbox


def _missed(decision: Decision, slot: Slot, now: float) -> Decision:
    """The record of a slot that was not sent: its one line says ``slot_missed``."""
    late = now - slot.at
    line = Considered(slot.campaign_id, Outcome.SKIPPED, Reason.SLOT_MISSED, None,
                      f"slot {slot.local} {slot.tz} reached {late:.0f} s late, after its grace")
    return Decision(user_id=decision.user_id, venue_id=None, event="scheduled", at=slot.at,
                    visit_id=decision.visit_id, decided_at=now, chosen=None,
                    considered=(line,), notes=())
