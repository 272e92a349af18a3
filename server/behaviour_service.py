"""The service's behaviour rounds: due behaviour triggers decided and delivered (run by
the timer loop, :func:`server.pipeline.fire_all_timers`), and retention of raw behaviour
events (run by the housekeeping loop)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from server.outages import FailureLog
from server.store.base import DecisionRecord, DeliveryRecord, KeyedEntry, NewDelivery
from server.store.roles import BatchTx, BehaviourStore, IngestStore
from server.tenant_core import TenantCore, TenantCores, learned_for, learned_unmet_of
from triggers.behaviour.events import BehaviourEvent
from triggers.behaviour.profile import with_behaviour
from triggers.behaviour.rules import DEFAULT_TAG_RULES
from triggers.behaviour.triggers import BEHAVIOUR, BehaviourOccasion, PendingTrigger
from triggers.decisions import Campaign, Decision, InMemoryLedger, Profile, decide

log = logging.getLogger("geopush.behaviour")

DEFAULT_TRIGGER_LIMIT = 200
"""Triggers decided per transaction: bounds one transaction's size and lock set."""
PRUNE_ROUND_EVENTS = 10_000
"""Behaviour events deleted per statement: short deletes, other work between."""


async def prune_old_behaviour(store: BehaviourStore, before: float, *,
                              failures: FailureLog | None = None) -> int:
    """Delete every tenant's behaviour events received before ``before``; how many in
    all. A failing tenant is logged (through ``failures``) and skipped."""
    failures = failures or FailureLog(log, "housekeeping")
    try:
        tenants = await store.list_tenants()
    except Exception as exc:
        failures.failed("listing tenants", exc)
        return 0
    total = 0
    for tenant in tenants:
        step = f"pruning the behaviour events of tenant {tenant.tenant_id}"
        while True:
            try:
                gone = await store.prune_behaviour(tenant.tenant_id, before=before,
                                                   limit=PRUNE_ROUND_EVENTS)
            except Exception as exc:
                failures.failed(step, exc)
                break
            failures.succeeded(step)
            total += gone
            if gone < PRUNE_ROUND_EVENTS:
                break
            await asyncio.sleep(0)
    return total


# --------------------------------------------------------------------------- triggers


class TriggerStore(BehaviourStore, IngestStore, Protocol):
    """What a behaviour-trigger round runs on: the pending triggers, features and tag
    rules, and the batch transaction decisions are written in."""


@dataclass(frozen=True, slots=True)
class TriggerRound:
    """What one round of a tenant's due behaviour triggers did."""

    decisions: tuple[Decision, ...] = ()
    deliveries: tuple[DeliveryRecord, ...] = ()
    fired: int = 0


async def fire_behaviour_triggers(
    store: TriggerStore, cores: TenantCores, tenant_id: str, now: float, *,
    limit: int = DEFAULT_TRIGGER_LIMIT,
) -> TriggerRound:
    """Decide the tenant's behaviour triggers due at ``now`` (at most ``limit``) through
    ``decide`` — caps, quiet hours (a message falling in them is held to the window's
    end within its TTL), fatigue, experiments, reason codes — in ONE batch transaction
    over their users (claimed with ``skip_locked``; the triggers are reread under the
    locks, so one a follow-up cancelled meanwhile fires nothing), then mark them fired.

    Nothing doubled: the decision's key is the trigger's, the delivery's and the ledger
    entry's derive from it, all written ``ON CONFLICT DO NOTHING``; a round that dies
    between the commit and the marking fires them again, writing nothing new."""
    return await fire_due_triggers(store, cores, tenant_id,
                                   await store.due_triggers(tenant_id, now, limit), now)


async def fire_due_triggers(
    store: TriggerStore, cores: TenantCores, tenant_id: str, due: Sequence[PendingTrigger],
    now: float,
) -> TriggerRound:
    """:func:`fire_behaviour_triggers` on the ``due`` triggers a caller found (a
    partition's owner passes its own users' share of them)."""
    if not due:
        return TriggerRound()
    core = await cores.get(store, tenant_id)
    rules = await store.get_tag_rules(tenant_id) or DEFAULT_TAG_RULES
    learned = await learned_for(cores, core, now)
    async with store.batch(tenant_id, sorted({p.user_id for p in due}),
                           skip_locked=True) as tx:
        claimed = set(tx.user_ids)
        pending = await store.open_triggers(tenant_id,
                                            [p.key for p in due if p.user_id in claimed])
        if not pending:
            return TriggerRound()
        users = sorted({p.user_id for p in pending})
        profiles = await tx.load_profiles(users)
        snap = await tx.load_ledger(now - core.ledger_horizon_s, users)
        ledger = InMemoryLedger(snap.entries, dict(snap.streaks))
        features = await store.get_features_of(tenant_id, users)
        decisions: list[Decision] = []
        rows = _Rows()
        for trigger in pending:
            profile = with_behaviour(profiles.get(trigger.user_id)
                                     or Profile(user_id=trigger.user_id),
                                     features.get(trigger.user_id), rules, now)
            decision = decide(BehaviourOccasion.of(trigger), profile, core.campaigns, None,
                              core.policy, ledger, now, campaign_id=trigger.campaign_id,
                              learned_unmet=learned_unmet_of(learned, trigger.user_id, now))
            decisions.append(decision)
            rows.add(trigger, decision, ledger)
        created = await rows.write(tx)
    await store.settle_triggers(tenant_id, [p.key for p in pending])
    return TriggerRound(tuple(decisions), tuple(created), len(pending))


class _Rows:
    """The keyed rows of a round's decisions (see :func:`fire_behaviour_triggers`)."""

    def __init__(self) -> None:
        self.decisions: list[DecisionRecord] = []
        self.entries: list[KeyedEntry] = []
        self.outbox: list[NewDelivery] = []

    def add(self, trigger: PendingTrigger, decision: Decision, ledger: InMemoryLedger) -> None:
        self.decisions.append(DecisionRecord(trigger.key, decision))
        for entry in decision.ledger_entries():
            ledger.record(entry)  # the next trigger of the user sees the cap consumed
            key = f"{trigger.key}:{entry.campaign_id}"
            self.entries.append(KeyedEntry(key + (":control" if entry.control else ""),
                                           entry))
        chosen = decision.chosen
        if chosen is not None:
            self.outbox.append(NewDelivery(
                idempotency_key=f"{trigger.key}:{chosen.campaign_id}",
                user_id=trigger.user_id, campaign_id=chosen.campaign_id,
                variant_id=chosen.variant_id, venue_id="", visit_id=trigger.key,
                event=BEHAVIOUR, channel=chosen.channel, title=chosen.title,
                body=chosen.body, locale=chosen.locale,
                # Held over quiet hours: created (and so sent) at the window's end.
                created_at=decision.decided_at, expires_at=chosen.expires_at))

    async def write(self, tx: BatchTx) -> list[DeliveryRecord]:
        created = await tx.insert_deliveries(self.outbox) if self.outbox else []
        if self.entries:
            await tx.insert_ledger(self.entries)
        await tx.insert_decisions(self.decisions)
        return created


async def fire_all_behaviour_triggers(
    store: TriggerStore, cores: TenantCores, tenant_id: str, now: float, *,
    limit: int = DEFAULT_TRIGGER_LIMIT,
) -> TriggerRound:
    """:func:`fire_behaviour_triggers` until fewer than ``limit`` were due (small
    transactions, the event loop free between them); what they did together."""
    decisions: list[Decision] = []
    deliveries: list[DeliveryRecord] = []
    fired = 0
    while True:
        done = await fire_behaviour_triggers(store, cores, tenant_id, now, limit=limit)
        decisions.extend(done.decisions)
        deliveries.extend(done.deliveries)
        fired += done.fired
        if done.fired < limit:
            return TriggerRound(tuple(decisions), tuple(deliveries), fired)
        await asyncio.sleep(0)


# --------------------------------------------------------------------------- also


def also_campaigns(core: TenantCore) -> tuple[Campaign, ...]:
    """The tenant's active location campaigns with an ``also`` behaviour condition."""
    return tuple(c for kind in ("enter", "dwell", "exit")
                 for c in core.campaigns.active_of_kind(kind) if c.trigger.also is not None)


async def recent_behaviour(store: BehaviourStore, tenant_id: str, users: Sequence[str],
                           campaigns: Sequence[Campaign],
                           now: float) -> dict[str, list[BehaviourEvent]]:
    """The users' behaviour events as far back as the longest ``also`` window of
    ``campaigns`` (read under the caller's batch locks, so no ingest of theirs is
    half-way)."""
    reach = max(c.trigger.also.within_s for c in campaigns if c.trigger.also is not None)
    return {u: [r.event for r in await store.list_behaviour(
        tenant_id, u, since=now - reach, limit=ALSO_EVENTS)] for u in users}


ALSO_EVENTS = 1000
"""A user's latest events an ``also`` condition looks at."""


async def with_learned(store: BehaviourStore, tenant_id: str, profiles: dict[str, Profile],
                       users: Sequence[str], now: float) -> dict[str, Profile]:
    """``profiles`` (by user; a user without one gets an empty one if they have
    features) with learned tags and the viewed-not-bought item evaluated at ``now``
    (:func:`triggers.behaviour.profile.with_behaviour`): what audiences and templates
    of location decisions see. Two reads: the users' features and the tag rules."""
    features = await store.get_features_of(tenant_id, users)
    if not features:
        return profiles
    rules = await store.get_tag_rules(tenant_id) or DEFAULT_TAG_RULES
    out = dict(profiles)
    for user_id, found in features.items():
        out[user_id] = with_behaviour(out.get(user_id) or Profile(user_id=user_id), found,
                                      rules, now)
    return out


@dataclass(frozen=True, slots=True)
class BehaviourFacts:
    """What location decisions of a batch take from behaviour: the profiles with learned
    tags, the campaigns with an ``also`` condition and the users' recent events."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    also: tuple[Campaign, ...] = ()
    recent: dict[str, list[BehaviourEvent]] = field(default_factory=dict)


async def behaviour_facts(store: BehaviourStore, core: TenantCore, profiles: dict[str, Profile],
                          users: Sequence[str], now: float) -> BehaviourFacts:
    """:class:`BehaviourFacts` for the ``users`` a batch decides (read under its locks)."""
    tenant_id = core.tenant_id
    learned = await with_learned(store, tenant_id, profiles, users, now)
    also = also_campaigns(core)
    recent = await recent_behaviour(store, tenant_id, users, also, now) if also else {}
    return BehaviourFacts(learned, also, recent)
