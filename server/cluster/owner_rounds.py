"""A worker's rounds for what its partitions owe besides pings: due behaviour triggers
(:mod:`server.cluster.behaviour`) and scheduled slots (:mod:`server.cluster.schedule`),
every ``timer_interval_s``, for the partitions it owns and that have caught up with
the stream (:meth:`~server.cluster.worker.PartitionRunner.caught_up`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from server.cluster.behaviour import fire_owned_triggers
from server.cluster.schedule import schedule_owned
from server.cluster.worker import Worker
from server.outages import FailureLog

log = logging.getLogger("geopush.worker")


def owned_lock(worker: Worker, partition: int) -> asyncio.Lock | None:
    """The partition's lock while ``worker`` owns it and it has caught up, else None."""
    runner = worker.runners.get(partition)
    return runner.lock if runner is not None and runner.caught_up() else None


async def owner_round(worker: Worker, failures: FailureLog) -> None:
    """Tenant by tenant, as a node's timer round: fire the owned partitions' due
    behaviour triggers, then fan their users' scheduled slots out (a failing step is
    logged and skipped; the next round tries again)."""
    parts = worker.parts
    partitions = parts.cluster.partitions

    def owned(partition: int) -> asyncio.Lock | None:
        return owned_lock(worker, partition)

    for tenant in await parts.store.list_tenants():
        tenant_id = tenant.tenant_id
        await _step(failures, f"behaviour triggers of tenant {tenant_id}", fire_owned_triggers(
            parts.store, parts.cores, tenant_id, parts.clock(), owned=owned,
            partitions=partitions))
        await _step(failures, f"scheduled slots of tenant {tenant_id}", schedule_owned(
            parts.store, parts.cores, tenant_id, parts.clock(), owned=owned,
            partitions=partitions, page_users=parts.settings.schedule_page_users))


async def _step(failures: FailureLog, step: str, work: Awaitable[object]) -> None:
    try:
        await work
    except Exception as exc:
        failures.failed(step, exc)
    else:
        failures.succeeded(step)


async def run_owner_rounds(worker: Worker) -> None:
    """:func:`owner_round` every ``timer_interval_s`` until cancelled; never dies of a
    failing round (the database went away: it logs and tries again)."""
    interval = worker.parts.settings.timer_interval_s
    if not interval:
        return  # timers only when asked (tests, benchmarks): :func:`owner_round`
    failures = FailureLog(log, f"worker {worker.worker_id} owner rounds")
    while True:
        await asyncio.sleep(interval)
        try:
            await owner_round(worker, failures)
            failures.succeeded("owner round")
        except Exception as exc:
            failures.failed("owner round", exc)
