"""A worker process: open PostgreSQL and the stream, run a :class:`~.worker.Worker`
until SIGTERM or SIGINT, then hand every partition over (drain, checkpoint, release).

Optionally serves ``GET /metrics`` (Prometheus: per-partition lag, position and
checkpoint time, plus the engine's counters) and ``GET /healthz`` on a port of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from aiohttp import web

from server.arm_stats import ArmStatsRefresher
from server.cluster.owner_rounds import run_owner_rounds
from server.cluster.session_reads import SessionModelStore
from server.cluster.stream import StreamSettings, open_cluster
from server.cluster.worker import Worker, WorkerParts, WorkerSettings
from server.learner import ProfileLearner
from server.metrics import Metrics, PartitionMetrics
from server.models import ModelCache
from server.settings import Settings
from server.store import PostgresStore
from server.tenant_core import TenantCores

log = logging.getLogger("geopush.worker")


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """Everything ``geopush worker`` is started with."""

    nats_urls: tuple[str, ...]
    database_url: str
    worker: WorkerSettings
    stream: StreamSettings
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    worker_id: str | None = None


@contextlib.asynccontextmanager
async def open_worker(options: WorkerOptions, settings: Settings) -> AsyncIterator[Worker]:
    """A worker on its store and cluster (closed at the end; partitions are handed over
    by :func:`run_worker`, not here)."""
    store = await PostgresStore.open(options.database_url)
    try:
        cluster = await open_cluster(options.nats_urls, options.stream, name="geopush-worker")
        try:
            metrics = Metrics()
            cores = worker_cores(store, settings)
            learner = ProfileLearner(store, cores, time.time)
            parts = WorkerParts(cluster, store, cores, options.worker, metrics,
                                PartitionMetrics(metrics.registry), learner=learner)
            worker = Worker(parts) if options.worker_id is None else \
                Worker(parts, options.worker_id)
            learner.start()
            try:
                yield worker
            finally:
                await learner.aclose()
                await parts.cores.aclose()
        finally:
            await cluster.close()
    finally:
        await store.close()


def worker_cores(store: PostgresStore, settings: Settings) -> TenantCores:
    """The worker's cores, holding the promoted models as a node's do
    (``server.app._models_ctx``), read on a partition's session connection inside one
    (:mod:`.session_reads`). Training stays with the nodes: a worker only serves.

    A worker waits for the core of the tenant's current catalogue version before it
    processes a message (``rebuild_wait_s=None``), where a node may answer with the
    older core for up to ``core_rebuild_wait_s``: the change was made on another
    process, whose ``refresh`` this one never sees, and a behaviour event folded with
    an older campaign set would never start its trigger — on replay neither, the
    event's key being stored by then."""
    cores = TenantCores(rebuild_wait_s=None,
                        render_limits=settings.render_limits(), render_clock=time.monotonic)
    cores.learned = ModelCache(SessionModelStore(store))
    return cores


async def run_worker(options: WorkerOptions, settings: Settings,
                     signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
    """Run until one of ``signals``; then hand every partition over and return."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    async with open_worker(options, settings) as worker, _metrics_server(options, worker):
        print(f"geopush: worker {worker.worker_id} on {worker.parts.cluster.partitions} "
              "partitions", flush=True)
        task = asyncio.create_task(worker.run(), name="geopush-worker")
        rounds = asyncio.create_task(run_owner_rounds(worker), name="geopush-owner-rounds")
        # Thompson arm counts and channel priors, as a node's timer-holding role has them.
        arms = asyncio.create_task(
            ArmStatsRefresher(worker.parts.store, worker.parts.cores, time.time).run(),
            name="geopush-arm-stats")
        await stop.wait()
        for running in (arms, rounds, task):
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        # Bounded: with NATS gone, checkpoints and releases cannot be written, and the
        # leases expire by themselves after the lease time anyway.
        try:
            await asyncio.wait_for(worker.stop(), options.worker.lease_s)
        except TimeoutError:
            log.warning("worker %s: shutdown handover not finished in %.0f s; its leases "
                        "expire by themselves", worker.worker_id, options.worker.lease_s)


@contextlib.asynccontextmanager
async def _metrics_server(options: WorkerOptions, worker: Worker) -> AsyncIterator[None]:
    if options.metrics_port is None:
        yield
        return
    metrics = worker.parts.metrics

    async def render(_request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(),
                            headers={"Content-Type": metrics.content_type})

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"worker": worker.worker_id,
                                  "partitions": sorted(worker.runners)})

    app = web.Application()
    app.router.add_get("/metrics", render)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, options.metrics_host, options.metrics_port).start()
    try:
        yield
    finally:
        await runner.cleanup()
