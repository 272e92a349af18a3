"""Behaviour events and behaviour triggers in a partition's owner.

**Events.** The owner reads a partition's event groups (:mod:`server.cluster.events`)
in stream order with its ping groups and stores each group with
``PostgresStore.ingest_behaviour`` — stored once by ``event_id``, folded into the
users' features, triggers of the tenant's active behaviour campaigns started and
follow-ups cancelled, all in one transaction, at the gateway's ``now``. A replay after
a crash stores nothing twice: the events' keys are there, and so are the triggers'.

**Triggers.** Pending triggers live in PostgreSQL (so they outlive any worker) and
fire in the owner of their user's partition: each round, a worker reads each tenant's
due triggers once (:data:`DUE_SCAN` at most, earliest first), keeps those of the
partitions it owns and that have caught up with the stream (a cancelling purchase may
still be in it), and decides each partition's share under that partition's lock
(:func:`server.behaviour_service.fire_due_triggers`), so a trigger's decision and the
partition's pings never write the same users' ledger at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence

from server.behaviour_service import TriggerRound, fire_due_triggers
from server.cluster.events import EventGroup
from server.cluster.partitions import partition_of
from server.store import PostgresStore
from server.store.errors import NotFoundError
from server.store.roles.behaviour import BehaviourRecord
from server.tenant_core import CoreBuildError, TenantCores
from triggers.behaviour.triggers import BEHAVIOUR, PendingTrigger

log = logging.getLogger("geopush.worker")

DUE_SCAN = 5_000
"""Due triggers of a tenant read per round. Those of partitions nobody owns (their
worker died; for at most the lease time and one round) come first when they are the
oldest, so this is well above what the live owners leave due between two rounds."""


async def ingest_event_groups(store: PostgresStore, cores: TenantCores,
                              groups: Sequence[EventGroup]) -> int:
    """Store the groups one after another (stream order); how many events were new. A
    group of an unknown tenant, or of one whose catalogue does not compile, would fail
    on every replay: it is logged and skipped."""
    stored = 0
    for group in groups:
        try:
            core = await cores.get(store, group.tenant_id)
            stored += len(await store.ingest_behaviour(
                group.tenant_id, [BehaviourRecord.of(e, group.now) for e in group.events],
                campaigns=core.campaigns.active_of_kind(BEHAVIOUR), now=group.now))
        except (NotFoundError, CoreBuildError) as exc:
            log.warning("partition %d: events of tenant %s skipped: %s", group.partition,
                        group.tenant_id, exc)
    return stored


def by_partition(tenant_id: str, due: Sequence[PendingTrigger],
                 partitions: int) -> dict[int, list[PendingTrigger]]:
    """The due triggers grouped by their user's partition."""
    found: dict[int, list[PendingTrigger]] = defaultdict(list)
    for trigger in due:
        found[partition_of(tenant_id, trigger.user_id, partitions)].append(trigger)
    return found


async def fire_owned_triggers(
    store: PostgresStore, cores: TenantCores, tenant_id: str, now: float, *,
    owned: Callable[[int], asyncio.Lock | None], partitions: int,
) -> list[TriggerRound]:
    """One round for a tenant (see the module docstring): its due triggers of the
    partitions ``owned(p)`` gives a lock for, each partition's under its lock."""
    due = await store.due_triggers(tenant_id, now, DUE_SCAN)
    rounds = []
    for partition, share in sorted(by_partition(tenant_id, due, partitions).items()):
        lock = owned(partition)
        if lock is None:
            continue
        async with lock:
            rounds.append(await fire_due_triggers(store, cores, tenant_id, share, now))
    return rounds
