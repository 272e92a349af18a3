"""The processing pipeline: pings (or due timers) in, events, decisions and deliveries out.

Both entry points run one store transaction, :meth:`IngestStore.batch`, over the users they
touch, and call the very functions the simulator calls:

- :func:`ingest` — load the batch users' presence records, reconcile them with the
  current venues, ``process_batch``; :func:`fire_timers` — claim the users whose timer
  is due, reconcile, ``advance``;
- then, for each event at a venue the catalogue knows, ``decide`` with the user's
  profile, the campaign index, the venue, the tenant policy and an
  :class:`~triggers.decisions.InMemoryLedger` preloaded with the users' ledger rows
  since the horizon (stale events are decided too: the decision records
  ``stale_event`` for every candidate, which answers "why didn't X get it");
- every push chosen becomes a pending outbox row and a ledger entry, held-out
  control users a control entry; pings, events, decisions and the users' new presence
  records (with their next timer due time) are written; the transaction commits, and
  only then does the call return. An answer therefore means committed: an exception
  anywhere leaves no event, no decision, no delivery and the presence unchanged.

Nothing lost, nothing doubled — the mechanism
---------------------------------------------
1. **Per-user serialisation.** ``store.batch`` locks the batch's users for the whole
   transaction (PostgreSQL: ``pg_advisory_xact_lock`` on a 64-bit hash of (tenant,
   user), taken in ascending key order, so two batches sharing users never deadlock;
   memory store: the tenant's asyncio lock). Presence records and ledger rows are read
   *after* the lock is held, so a second batch of the same user — on this process or
   on another node — sees everything the first committed: its pings (overlapping pings
   are then duplicates or late, and produce nothing), its visits and its cap
   consumption. Caps are checked and consumed inside that lock, hence atomically with
   the creation of the delivery.
2. **Idempotency keys.** An event's key is ``sha256(tenant, visit id, kind, dwell
   threshold)``; its decision shares the key; a delivery's idempotency key adds the
   campaign id, and the sent push's ledger entry reuses it (a control entry adds
   ``control``). Every table holding them is UNIQUE on (tenant, key) and written with
   ``ON CONFLICT DO NOTHING``, so even replaying events (a restored state, a retry
   after a lost answer) cannot create a second delivery or count a cap twice.
3. **Timer claiming.** :func:`fire_timers` asks ``due_users`` (a hint) and claims with
   ``skip_locked=True``: a user another batch holds is left to it (that batch fires
   the user's due timers itself, since ``process_batch`` ends with ``advance``). The
   claimed users' records are reread under the lock, so a timer another node fired
   in the meantime is no longer due and fires nothing.

The state machine work runs in the event loop while the users' locks are held; a batch
is at most 1,000 pings (the API's limit), which costs milliseconds.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np

from geo.errors import GeoError
from server.arm_stats import batch_signals
from server.behaviour_service import (
    BehaviourFacts,
    TriggerRound,
    TriggerStore,
    behaviour_facts,
    fire_all_behaviour_triggers,
)
from server.outages import FailureLog
from server.scheduler import RoundResult, ScheduleStore, schedule_round
from server.store.base import DecisionRecord, DeliveryRecord, EventRecord, KeyedEntry, NewDelivery
from server.store.roles import BatchTx, BehaviourStore, IngestStore
from server.tenant_core import (
    NO_LEARNED,
    Learned,
    TenantCore,
    TenantCores,
    learned_for,
    predictions_of,
)
from triggers.behaviour.triggers import unmet_conditions
from triggers.decisions import Decision, InMemoryLedger, Profile, decide
from triggers.errors import TriggerError
from triggers.learning.signals import Signals
from triggers.pings import PingBatch
from triggers.presence import Verdict, advance, process_batch, reconcile_venues
from triggers.presence_events import EventKind, PresenceCounters, PresenceEvent
from triggers.presence_state import PresenceState

log = logging.getLogger("geopush.pipeline")

DEFAULT_TIMER_LIMIT = 500
"""Users claimed per :func:`fire_timers` call: bounds one transaction's size and lock set."""


class PipelineError(Exception):
    """The core refused the batch (a malformed presence record, a venue index error):
    nothing was written. The message says what; ``__cause__`` is the core's error."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one committed batch produced.

    ``deliveries``: the outbox rows this call created (a replay creates none);
    ``counters``: ping hygiene of this batch alone.
    """

    events: tuple[PresenceEvent, ...] = ()
    decisions: tuple[Decision, ...] = ()
    deliveries: tuple[DeliveryRecord, ...] = ()
    counters: PresenceCounters = field(default_factory=PresenceCounters)
    users: tuple[str, ...] = ()
    """The users processed (for fire_timers: those claimed)."""


# --------------------------------------------------------------------------- keys


def event_key(tenant_id: str, event: PresenceEvent) -> str:
    """One key per (visit, kind, dwell threshold): ENTER and EXIT happen once per
    visit, DWELL once per threshold. The decision of the event shares the key."""
    threshold = _threshold(event)
    return _sha256(tenant_id, event.visit_id, event.kind.value, threshold)


def delivery_key(tenant_id: str, event: PresenceEvent, campaign_id: str) -> str:
    """The idempotency key of the delivery of ``campaign_id`` for ``event``."""
    return _sha256(tenant_id, event.visit_id, event.kind.value, _threshold(event), campaign_id)


def _threshold(event: PresenceEvent) -> str:
    # EXIT's dwell_s is the visit's length, not a threshold; it is unique per visit anyway.
    if event.kind is EventKind.DWELL and event.dwell_s is not None:
        return repr(float(event.dwell_s))
    return ""


def _sha256(*parts: str) -> str:
    # Unit separator: cannot appear in ids validated as printable text, so no two
    # tuples join to the same bytes.
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


# --------------------------------------------------------------------------- entry points


async def ingest(
    store: IngestStore, cores: TenantCores, tenant_id: str, pings: PingBatch, *, now: float
) -> IngestResult:
    """Process a batch of pings of one tenant at wall time ``now``, in ONE transaction.

    Runs in the event loop. Returns after the commit. Raises ``NotFoundError`` for an
    unknown tenant, :class:`PipelineError` when the core refuses the batch, and
    :class:`~server.store.errors.StoreError` when storage fails (nothing written).
    """
    [result] = await ingest_parts(store, cores, tenant_id, [pings], now=now)
    return result


async def ingest_parts(
    store: IngestStore, cores: TenantCores, tenant_id: str, parts: Sequence[PingBatch], *,
    now: float,
) -> list[IngestResult]:
    """:func:`ingest` of several batches whose users do not overlap (several requests,
    see :mod:`server.ingest.group`) as ONE batch in ONE transaction; returns each part's
    own result: its users' events, decisions and deliveries, and its pings' counters.

    The outcome for each user is the one :func:`ingest` of its part alone would give
    (the engine never looks at two users at once), at a fraction of the cost: one
    state-machine pass, one lock set, one write per table. Raises ``ValueError`` when
    two parts share a user.
    """
    core = await _core(store, cores, tenant_id)
    part_users = [_user_ids(p) for p in parts]
    owner: dict[str, int] = {}
    for i, users in enumerate(part_users):
        for user_id in users:
            if owner.setdefault(user_id, i) != i:
                raise ValueError(f"user {user_id!r} is in two parts of one group")
    if not owner:
        return [IngestResult() for _ in parts]
    pings = parts[0] if len(parts) == 1 else PingBatch.concat(list(parts))
    verdicts = np.zeros(len(pings), dtype=np.int8)
    learned = await learned_for(cores, core, now)
    async with store.batch(tenant_id, sorted(owner)) as tx:
        state = await _load_state(tx)
        try:
            events = reconcile_venues(state, core.index, now, core.presence)
            # Every ping of the batch reached us now: a user whose latest ping is older
            # than live_lag_s is uploading history, and their timers run behind.
            state, more = process_batch(state, core.index, pings, core.presence, now,
                                        received_at=now, verdicts=verdicts)
        except (TriggerError, GeoError) as exc:
            raise PipelineError(f"tenant {tenant_id}: batch refused: {exc}") from exc
        await tx.insert_pings(pings, received_at=now)
        result = await _settle(tx, core, state, _merge(events, more), now,
                               signals=cores.signals(tenant_id),
                               behaviour=_behaviour_role(store), learned=learned)
    if len(parts) == 1:
        return [result]
    return _split(result, parts, part_users, owner, verdicts)


def _split(
    result: IngestResult, parts: Sequence[PingBatch], part_users: Sequence[list[str]],
    owner: dict[str, int], verdicts: np.ndarray[Any, np.dtype[np.int8]],
) -> list[IngestResult]:
    events: list[list[PresenceEvent]] = [[] for _ in parts]
    for event in result.events:
        events[owner[event.user_id]].append(event)
    decisions: list[list[Decision]] = [[] for _ in parts]
    for decision in result.decisions:
        decisions[owner[decision.user_id]].append(decision)
    deliveries: list[list[DeliveryRecord]] = [[] for _ in parts]
    for delivery in result.deliveries:
        deliveries[owner[delivery.user_id]].append(delivery)
    out: list[IngestResult] = []
    start = 0
    for i, part in enumerate(parts):
        end = start + len(part)
        out.append(IngestResult(
            events=tuple(events[i]), decisions=tuple(decisions[i]),
            deliveries=tuple(deliveries[i]),
            counters=_counters(verdicts[start:end], part, events[i]),
            users=tuple(part_users[i]),
        ))
        start = end
    return out


def _counters(
    verdicts: np.ndarray[Any, np.dtype[np.int8]], pings: PingBatch,
    events: Sequence[PresenceEvent],
) -> PresenceCounters:
    """A part's hygiene counters from its pings' verdicts (what the engine counted)."""
    n = np.bincount(verdicts, minlength=len(Verdict)).tolist()
    fresh = ~np.isin(verdicts, (Verdict.INVALID, Verdict.FUTURE, Verdict.MOCK,
                                Verdict.DUPLICATE, Verdict.LATE))
    return PresenceCounters(
        received=len(pings), accepted=n[Verdict.ACCEPTED] + n[Verdict.RELOCATED],
        invalid=n[Verdict.INVALID], future=n[Verdict.FUTURE], mock=n[Verdict.MOCK],
        duplicate=n[Verdict.DUPLICATE], late=n[Verdict.LATE],
        inaccurate=n[Verdict.INACCURATE], teleport=n[Verdict.TELEPORT],
        assumed_accuracy=int((fresh & np.isnan(pings.accuracy_m)).sum()),
        relocated=n[Verdict.RELOCATED], stale_events=sum(e.stale for e in events),
    )


async def fire_timers(
    store: IngestStore,
    cores: TenantCores,
    tenant_id: str,
    now: float,
    *,
    limit: int = DEFAULT_TIMER_LIMIT,
) -> IngestResult:
    """Fire the tenant's timers due at or before ``now`` (DWELL thresholds, silence
    EXITs, ``venue_removed`` exits), decide and deliver, in ONE transaction over the
    claimed users (at most ``limit``). Runs in the event loop; same code path as
    :func:`ingest` after the state machine."""
    core = await _core(store, cores, tenant_id)
    due = await store.due_users(tenant_id, now, limit)
    if not due:
        return IngestResult()
    learned = await learned_for(cores, core, now)
    async with store.batch(tenant_id, due, skip_locked=True) as tx:
        if not tx.user_ids:
            return IngestResult()
        state = await _load_state(tx)
        try:
            events = reconcile_venues(state, core.index, now, core.presence)
            events = _merge(events, advance(state, now, core.presence))
        except (TriggerError, GeoError) as exc:
            raise PipelineError(f"tenant {tenant_id}: timers refused: {exc}") from exc
        return await _settle(tx, core, state, events, now,
                             signals=cores.signals(tenant_id), behaviour=_behaviour_role(store),
                             learned=learned)


async def fire_all_timers(
    store: IngestStore,
    cores: TenantCores,
    clock: Callable[[], float],
    *,
    limit: int = DEFAULT_TIMER_LIMIT,
    on_result: Callable[[str, IngestResult], None] | None = None,
    on_error: Callable[[], None] | None = None,
    failures: FailureLog | None = None,
    behaviour: TriggerStore | None = None,
    on_behaviour: Callable[[str, TriggerRound], None] | None = None,
    schedule: ScheduleStore | None = None,
    on_scheduled: Callable[[str, RoundResult], None] | None = None,
) -> None:
    """One round of the service's timer loop: :func:`fire_timers` for every tenant at
    ``clock()``, ``limit`` users per transaction, one transaction after another until
    fewer than ``limit`` were due. ``on_result(tenant_id, result)`` receives each
    transaction's result. With ``behaviour`` (the same store), the tenant's due
    behaviour triggers are then decided
    (:func:`server.behaviour_service.fire_all_behaviour_triggers`); ``on_behaviour``
    receives what that did. With ``schedule`` (the same store, holding profiles too), the
    tenant's scheduled campaigns then fan out their due slots
    (:func:`server.scheduler.schedule_round`); ``on_scheduled`` receives what it did.

    A tenant that fails (or a failure to list the tenants) is logged and reported to
    ``on_error``; the other tenants still fire, and the next round retries: the loop
    must never die of one bad item. ``failures`` (kept by the caller across rounds)
    logs a failure that repeats every round (the database is down) once when it starts
    and once when it ends; without it every failure is logged.
    """
    failures = failures if failures is not None else FailureLog(log, "timers")
    try:
        tenants = await store.list_tenants()
    except Exception as exc:
        failures.failed("listing tenants", exc)
        if on_error is not None:
            on_error()
        return
    failures.succeeded("listing tenants")
    for tenant in tenants:
        step = f"tenant {tenant.tenant_id}"
        # Small transactions, one after another until none is due: a burst of due
        # timers (a crowd that entered together reaching its dwell threshold) must
        # not hold the tenant's users, or the event loop, for long at a time.
        while True:
            try:
                result = await fire_timers(store, cores, tenant.tenant_id, clock(),
                                           limit=limit)
            except Exception as exc:
                failures.failed(step, exc)
                if on_error is not None:
                    on_error()
                break
            failures.succeeded(step)
            if on_result is not None:
                on_result(tenant.tenant_id, result)
            if len(result.users) < limit:
                break
            await asyncio.sleep(0)  # let waiting requests in between transactions
        tid = tenant.tenant_id
        if behaviour is not None:
            await _guarded(
                f"{step} behaviour triggers",
                fire_all_behaviour_triggers(behaviour, cores, tid, clock()), failures, on_error,
                None if on_behaviour is None else functools.partial(on_behaviour, tid))
        if schedule is not None:
            await _guarded(
                f"{step} scheduled slots", schedule_round(schedule, cores, tid, clock()),
                failures, on_error,
                None if on_scheduled is None else functools.partial(on_scheduled, tid))


_T = TypeVar("_T")


async def _guarded(
    step: str, work: Awaitable[_T], failures: FailureLog,
    on_error: Callable[[], None] | None, on_done: Callable[[_T], None] | None,
) -> None:
    """One step of a tenant's timer round (its due behaviour triggers, or its scheduled
    slots): a failure is logged and reported like a failing timer transaction, and the
    work stays due (pending triggers stay pending; a slot's cursor resumes it)."""
    try:
        done = await work
    except Exception as exc:
        failures.failed(step, exc)
        if on_error is not None:
            on_error()
        return
    failures.succeeded(step)
    if on_done is not None:
        on_done(done)


# --------------------------------------------------------------------------- internals


async def _core(store: IngestStore, cores: TenantCores, tenant_id: str) -> TenantCore:
    return await cores.get(store, tenant_id)


def _user_ids(pings: PingBatch) -> list[str]:
    # Integer codes are user ids written in decimal (PingBatch's contract).
    uid = pings.user_id
    return sorted({str(u) for u in np.unique(uid).tolist()}) if len(pings) else []


async def _load_state(tx: BatchTx) -> PresenceState:
    try:
        return await tx.load_state()
    except TriggerError as exc:
        raise PipelineError(f"tenant {tx.tenant_id}: presence record refused: {exc}") from exc


def _merge(first: list[PresenceEvent], second: list[PresenceEvent]) -> list[PresenceEvent]:
    # The engine's own order: by (at, user id), stable within a tie.
    return sorted([*first, *second], key=lambda e: (e.at, e.user_id))


def _behaviour_role(store: IngestStore) -> BehaviourStore | None:
    """The store's behaviour role, which ``also`` conditions read (a test double of the
    ingest role alone has none: its campaigns' conditions then count as unmet)."""
    return cast("BehaviourStore", store) if hasattr(store, "list_behaviour") else None


async def _settle(
    tx: BatchTx, core: TenantCore, state: PresenceState, events: Sequence[PresenceEvent],
    now: float, *, signals: Signals | None = None, behaviour: BehaviourStore | None = None,
    learned: Learned = NO_LEARNED,
) -> IngestResult:
    """Decide every event and write everything; the caller's ``async with`` commits.
    ``signals``: the tenant's cached feedback counts (``server.arm_stats``);
    ``behaviour``: where the users' behaviour events are read for the campaigns with an
    ``also`` condition; ``learned``: the campaigns with conditions on learned
    predictions and the promoted models' view
    (:func:`server.tenant_core.learned_for`)."""
    tenant_id = tx.tenant_id
    # Only the users with events are decided: their profiles and ledger rows, not the
    # whole batch's (a group commit locks up to thousands of users).
    deciding = sorted({e.user_id for e in events})
    profiles = await tx.load_profiles(deciding) if events else {}
    signals = await batch_signals(tx, core, signals, deciding, now)
    facts = BehaviourFacts()
    if events and behaviour is not None:
        facts = await behaviour_facts(behaviour, core, profiles, deciding, now)
        profiles = facts.profiles
    also, recent = facts.also, facts.recent
    ledger = InMemoryLedger()
    if events:
        snap = await tx.load_ledger(now - core.ledger_horizon_s, deciding)
        ledger = InMemoryLedger(snap.entries, dict(snap.streaks))

    event_rows: list[EventRecord] = []
    decision_rows: list[DecisionRecord] = []
    entries: list[KeyedEntry] = []
    outbox: list[NewDelivery] = []
    decisions: list[Decision] = []
    for event in events:
        key = event_key(tenant_id, event)
        event_rows.append(EventRecord(key, event, now))
        venue = core.venues.get(event.venue_id)
        if venue is None:
            continue  # the venue is gone (venue_removed exit): nothing to decide on
        profile = profiles.get(event.user_id) or Profile(user_id=event.user_id)
        unmet = unmet_conditions(also, recent.get(event.user_id, ()), event.at) if also \
            else None
        learned_misses, ranking = predictions_of(learned, event.user_id, now)
        try:
            decision = decide(event, profile, core.campaigns, venue, core.policy, ledger, now,
                              behaviour_unmet=unmet, learned_unmet=learned_misses,
                              signals=signals, ranking=ranking)
        except TriggerError as exc:
            raise PipelineError(f"tenant {tenant_id}: decision refused: {exc}") from exc
        decisions.append(decision)
        decision_rows.append(DecisionRecord(key, decision))
        for entry in decision.ledger_entries():
            # Record at once: a second event of this batch must see the cap consumed.
            ledger.record(entry)
            if entry.control:
                entries.append(KeyedEntry(
                    delivery_key(tenant_id, event, entry.campaign_id) + ":control", entry))
            else:
                entries.append(KeyedEntry(delivery_key(tenant_id, event, entry.campaign_id),
                                          entry))
        chosen = decision.chosen
        if chosen is not None:
            outbox.append(NewDelivery(
                idempotency_key=delivery_key(tenant_id, event, chosen.campaign_id),
                user_id=event.user_id, campaign_id=chosen.campaign_id,
                variant_id=chosen.variant_id, venue_id=event.venue_id,
                visit_id=event.visit_id, event=event.kind.value, channel=chosen.channel,
                title=chosen.title, body=chosen.body, locale=chosen.locale,
                created_at=now, expires_at=chosen.expires_at, rich=chosen.rich,
            ))

    created = await tx.insert_deliveries(outbox) if outbox else []
    if entries:
        await tx.insert_ledger(entries)
    if event_rows:
        await tx.insert_events(event_rows)
    if decision_rows:
        await tx.insert_decisions(decision_rows)
    counters = state.counters
    await tx.save_state(state)  # handed over: ``state`` is not used after this
    return IngestResult(
        events=tuple(events),
        decisions=tuple(decisions),
        deliveries=tuple(created),
        counters=counters,
        users=tx.user_ids,
    )
