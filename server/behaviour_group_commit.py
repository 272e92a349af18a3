"""Group commit of behaviour events: concurrent ``POST /v1/events`` requests of one
tenant share one ``ingest_behaviour`` transaction.

Every request still gets its own answer (which of its events were new), and only after
the transaction holding them committed — a 2xx means committed, as before. What is
shared is the fixed cost of a transaction: on PostgreSQL one lock-and-load, one insert,
one upsert of the features and one commit (one WAL flush) for the whole group instead
of per request. Under load the groups grow by themselves (requests arriving while a
group is in flight wait for the next one); when idle, a request is a group of one and
waits for nobody.

Rules, per tenant and process:

- one group at a time is in flight, and a group is the waiting requests' records
  concatenated in arrival order, so one user's events are folded in the order they
  arrived and, of two requests giving the same key, the earlier one stores it (the
  later one counts it as a duplicate, as it would have alone);
- a group takes waiting requests while their events fit in ``max_events`` (a request
  is never split, so a group holds at least one);
- when a group fails, each of its requests is retried alone, so a request that cannot
  be stored fails by itself and the others are answered normally;
- a request whose caller went away (cancelled) is dropped from the queue before its
  group starts; once started, its events commit with the group.

Several processes on PostgreSQL still serialise users by the store's advisory locks
and keys by the table's UNIQUE constraint; grouping changes nothing there.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from server.store.roles.behaviour import BehaviourRecord, BehaviourStore
from server.tenant_queues import TenantQueues, settle
from triggers.decisions.models import Campaign

log = logging.getLogger("geopush.behaviour_group_commit")

DEFAULT_MAX_EVENTS = 2_000
"""Events per group: bounds one transaction's lock set (one advisory lock per user, in
PostgreSQL's shared lock table) and its latency; the same bound as a ping group's."""


@dataclass(slots=True)
class _Request:
    records: Sequence[BehaviourRecord]
    campaigns: Sequence[Campaign]
    now: float
    done: asyncio.Future[list[BehaviourRecord]]


class BehaviourGroupCommitter(TenantQueues[_Request]):
    """The per-process group commit of behaviour events (see the module docstring)."""

    def __init__(self, store: BehaviourStore, *, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        super().__init__("behaviour-group-commit")
        self._store = store
        self._max_events = max_events

    async def ingest(self, tenant_id: str, records: Sequence[BehaviourRecord], *,
                     campaigns: Sequence[Campaign] = (),
                     now: float) -> list[BehaviourRecord]:
        """``BehaviourStore.ingest_behaviour`` of ``records``, committed with whatever
        other requests of the tenant are waiting: the records of this request that were
        new, in the order given; raises what storing them alone would."""
        request = _Request(records, campaigns, now, asyncio.get_running_loop().create_future())
        self._submit(tenant_id, request)
        return await request.done

    def _take(self, waiting: deque[_Request]) -> list[_Request]:
        group: list[_Request] = []
        size = 0
        while waiting:
            request = waiting[0]
            if request.done.done():  # the caller went away
                waiting.popleft()
                continue
            if group and size + len(request.records) > self._max_events:
                break  # arrival order: nobody overtakes the request left waiting
            group.append(waiting.popleft())
            size += len(request.records)
        return group

    async def _run(self, tenant_id: str, group: list[_Request]) -> None:
        # The latest request's view of the tenant: its active campaigns and its time.
        last = group[-1]
        try:
            new = await self._store.ingest_behaviour(
                tenant_id, [r for request in group for r in request.records],
                campaigns=last.campaigns, now=max(r.now for r in group))
        except asyncio.CancelledError:
            for request in group:
                request.done.cancel()
            raise
        except Exception as exc:
            if len(group) == 1:
                _answer(last, exc)
                return
            log.warning("group of %d event requests of tenant %s failed (%s); retrying "
                        "each alone", len(group), tenant_id, exc)
            await self._each_alone(tenant_id, group)
            return
        for request, own in zip(group, _split(group, new), strict=True):
            _answer(request, own)

    async def _each_alone(self, tenant_id: str, group: list[_Request]) -> None:
        for request in group:
            try:
                new = await self._store.ingest_behaviour(
                    tenant_id, request.records, campaigns=request.campaigns, now=request.now)
            except Exception as exc:
                _answer(request, exc)
            else:
                _answer(request, new)


def _split(group: Sequence[_Request],
           new: Sequence[BehaviourRecord]) -> list[list[BehaviourRecord]]:
    """Each request's share of ``new`` (the group's new records in the order given, a
    key at most once: the first time it was given)."""
    shares: list[list[BehaviourRecord]] = []
    at = 0
    for request in group:
        own: list[BehaviourRecord] = []
        for record in request.records:
            if at < len(new) and new[at].event_key == record.event_key:
                own.append(record)
                at += 1
        shares.append(own)
    return shares


def _answer(request: _Request, outcome: list[BehaviourRecord] | BaseException) -> None:
    settle(request.done, outcome)
