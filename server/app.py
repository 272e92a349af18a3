"""The composition root: :func:`create_app` wires settings, store, cores, metrics, rate
limiter, routes, the live stream fan-out and the background loops into one aiohttp
application.

No globals: everything hangs on the app under typed ``web.AppKey`` s
(``server.api.context``); the store, the stream fan-out's listener and the background
loops live in ``cleanup_ctx`` so they open at start-up and close at shutdown, in reverse
order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, TextIO

from aiohttp import web

from server.api import (
    delivery_routes,
    events_routes,
    ingest_routes,
    manage_routes,
    model_routes,
    service_routes,
    venue_routes,
)
from server.api.context import (
    BODY_LIMITS,
    CLOCK,
    CORES,
    EVENT_GROUPS,
    EVENT_STREAM,
    FANOUT,
    GROUPS,
    HUB,
    LEARNER,
    LIMITER,
    METRICS,
    OPENAPI,
    OUTBOX,
    OUTBOX_METRICS,
    SETTINGS,
    STORE,
    VENUE_BUDGET,
    VENUE_WORKERS,
)
from server.api.registry import Operation, add_routes
from server.arm_stats import ArmStatsRefresher
from server.auth import DEFAULT_TENANT, RateLimiter, Role, generate_key, hash_key, new_key_id
from server.behaviour_group_commit import BehaviourGroupCommitter
from server.behaviour_service import TriggerRound, prune_old_behaviour
from server.channels.inapp import LocalFanout, StreamFanout, StreamHub, stream_frame
from server.channels.pg_fanout import PostgresFanout, Resolve, stream_channel
from server.channels.pg_presence import StreamPresence
from server.console import add_console
from server.errors import error_middleware
from server.group_commit import GroupCommitter
from server.learner import ProfileLearner, ended_visits
from server.logs import request_id_middleware
from server.metrics import Metrics
from server.models import ModelCache, training_loop
from server.openapi import build_openapi
from server.outages import FailureLog
from server.outbox.dispatcher import inbox_message
from server.outbox.metrics import OutboxMetrics
from server.outbox.service import Outbox
from server.pipeline import IngestResult, fire_all_timers
from server.rate_limits import SharedRateLimiter
from server.scheduler import RoundResult
from server.settings import Settings
from server.store import MemoryStore, PostgresStore, Store, open_store
from server.store.roles import HousekeepingStore, TenantStore
from server.tenant_core import TenantCores
from server.venue_budget import VenueWriteBudget
from server.venue_builds import VenueWorkers

if TYPE_CHECKING:
    from server.cluster.stream import StreamSettings

log = logging.getLogger("geopush.app")


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    """A gateway's NATS servers and the stream settings it creates the stream with."""

    nats_urls: tuple[str, ...]
    stream: StreamSettings

OPERATIONS: list[Operation] = [
    *ingest_routes.OPERATIONS,
    *venue_routes.OPERATIONS,
    *manage_routes.OPERATIONS,
    *delivery_routes.OPERATIONS,
    *service_routes.OPERATIONS,
    *events_routes.OPERATIONS,
    *model_routes.OPERATIONS,
]


def _package_version() -> str:
    try:
        return metadata.version("geopush")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0.0.0"


API_VERSION = _package_version()
"""Read at import: the lookup reads files, which ``create_app`` (possibly called inside
a running loop, as tests do) must not."""


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Callable[[], float] | None = None,
    announce: TextIO | None = None,
    gateway: GatewayOptions | None = None,
) -> web.Application:
    """The service as an aiohttp application.

    ``store``: a store the caller owns (tests); it is used as is and not closed. Without
    one the app opens the store of ``settings.database_url`` at start-up (PostgreSQL,
    migrations applied; embedded otherwise) and closes it at shutdown.
    ``clock``: wall time in epoch seconds (default ``time.time``; tests pass a fake).
    ``announce``: where a generated admin key is printed (stdout by default).
    ``gateway``: run as a gateway of the partitioned mode (``serve --role gateway``):
    ping batches go to the NATS JetStream stream, the workers fire the timers.
    """
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[request_id_middleware, error_middleware],
        # Compressed bodies are inflated by the body readers (server.api.bodies), so that
        # a bad one is a JSON 4xx rather than a failure inside aiohttp's parser.
        handler_args={"auto_decompress": False},
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock or time.time
    app[METRICS] = Metrics()
    app[OUTBOX_METRICS] = OutboxMetrics(app[METRICS].registry)
    app[HUB] = StreamHub()
    # The render clock is a monotonic one of this process, never the (possibly fake)
    # wall clock: it only measures how long a render takes.
    app[VENUE_WORKERS] = VenueWorkers(settings.venue_workers)
    app[VENUE_BUDGET] = VenueWriteBudget(
        vertices_per_s=settings.venue_write_vertices_per_s,
        burst_vertices=settings.venue_write_burst_vertices,
        max_queued=settings.venue_writes_queued)
    app[CORES] = TenantCores(rebuild_wait_s=settings.core_rebuild_wait_s,
                             render_limits=settings.render_limits(),
                             render_clock=time.monotonic,
                             index_builder=app[VENUE_WORKERS].build_index)
    app[LIMITER] = RateLimiter(lambda role: settings.rate_for(role.value))
    app[OPENAPI] = build_openapi(OPERATIONS, version=API_VERSION, settings=settings)
    # No route reads more than the application-wide limit.
    app[BODY_LIMITS] = {op.operation_id: min(int(getattr(settings, op.body_limit)),
                                             settings.max_body_bytes) for op in OPERATIONS}
    if store is not None:
        app[STORE] = store
    add_routes(app, OPERATIONS)
    add_console(app, OPERATIONS)
    app.cleanup_ctx.append(_store_ctx(store is None, announce))
    app.cleanup_ctx.append(_venue_workers_ctx)
    app.cleanup_ctx.append(_cores_ctx)
    app.cleanup_ctx.append(_limiter_ctx)
    app.cleanup_ctx.append(_fanout_ctx)
    app.cleanup_ctx.append(_groups_ctx if gateway is None else _stream_ctx(gateway))
    if gateway is None:  # a gateway publishes behaviour events to the stream
        app.cleanup_ctx.append(_event_groups_ctx)
    app.cleanup_ctx.append(_learner_ctx)
    app.cleanup_ctx.append(_outbox_ctx)
    if gateway is None:  # a gateway's timers fire in the partitions' workers
        app.cleanup_ctx.append(_timer_ctx)
        app.cleanup_ctx.append(_arm_stats_ctx)
    app.cleanup_ctx.append(_housekeeping_ctx)
    app.cleanup_ctx.append(_models_ctx)
    app.on_shutdown.append(_close_streams)
    return app


async def _venue_workers_ctx(app: web.Application) -> AsyncIterator[None]:
    """The venue worker processes stop at shutdown, after the rebuilds that use them."""
    try:
        yield
    finally:
        await app[VENUE_WORKERS].aclose()


async def _cores_ctx(app: web.Application) -> AsyncIterator[None]:
    """Index rebuilds in flight are cancelled at shutdown, before the store closes."""
    try:
        yield
    finally:
        await app[CORES].aclose()


async def _limiter_ctx(app: web.Application) -> AsyncIterator[None]:
    """Rate limits: with the PostgreSQL store (and ``rate_limit_shared`` on), buckets
    shared by every node (:mod:`server.rate_limits`), this node's own as the fallback;
    otherwise this process's own, set up by :func:`create_app`."""
    the_store, settings = app[STORE], app[SETTINGS]
    local = app[LIMITER]
    if not (isinstance(the_store, PostgresStore) and settings.rate_limit_shared
            and isinstance(local, RateLimiter)):
        yield
        return
    leases = app[METRICS].rate_limit_leases
    shared = SharedRateLimiter(the_store, lambda role: settings.rate_for(role.value),
                               fallback=local,
                               observe=lambda outcome: leases.labels(outcome=outcome).inc())
    app[LIMITER] = shared
    async with _running(shared.prune_loop(), "geopush-rate-limits"):
        yield


async def _groups_ctx(app: web.Application) -> AsyncIterator[None]:
    """Group commit of ping requests (see :mod:`server.group_commit`)."""
    groups = GroupCommitter(app[STORE], app[CORES], max_pings=app[SETTINGS].group_max_pings)
    app[GROUPS] = groups
    try:
        yield
    finally:
        await groups.close()


async def _event_groups_ctx(app: web.Application) -> AsyncIterator[None]:
    """Group commit of behaviour events on PostgreSQL (see
    :mod:`server.behaviour_group_commit`). Not on the embedded store: it has no
    transaction cost to share, and grouping cost its server a fifth more CPU per request
    (one long ingest call per group; ``BENCHMARKS.md``, issue 16)."""
    if not isinstance(app[STORE], PostgresStore):
        yield
        return
    groups = BehaviourGroupCommitter(app[STORE])
    app[EVENT_GROUPS] = groups
    try:
        yield
    finally:
        await groups.close()


def _stream_ctx(options: GatewayOptions) -> Callable[[web.Application], AsyncIterator[None]]:
    """The gateway's ping stream (see :mod:`server.cluster.gateway`), in place of the
    group commit: connected at start-up (stream and buckets created when missing)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        from server.cluster.events import StreamEvents  # noqa: PLC0415 - nats only here
        from server.cluster.gateway import StreamIngest  # noqa: PLC0415
        from server.cluster.stream import open_cluster  # noqa: PLC0415

        cluster = await open_cluster(options.nats_urls, options.stream, name="geopush-gateway")
        sink = StreamIngest(cluster)
        app[GROUPS] = sink
        app[EVENT_STREAM] = StreamEvents(cluster)
        try:
            yield
        finally:
            await sink.close()

    return ctx


async def _learner_ctx(app: web.Application) -> AsyncIterator[None]:
    """Profile learning from finished visits (see :mod:`server.learner`)."""
    learner = ProfileLearner(app[STORE], app[CORES], app[CLOCK])
    app[LEARNER] = learner
    learner.start()
    try:
        yield
    finally:
        await learner.aclose()


async def _outbox_ctx(app: web.Application) -> AsyncIterator[None]:
    """The outbox dispatchers (``outbox_workers`` of them; none when 0)."""
    settings = app[SETTINGS]
    if settings.outbox_workers == 0:
        yield
        return
    outbox = Outbox(app[STORE], settings, hub=app[HUB], metrics=app[OUTBOX_METRICS],
                    clock=app[CLOCK], fanout=app[FANOUT])
    app[OUTBOX] = outbox
    outbox.start()
    try:
        yield
    finally:
        await outbox.aclose()


async def _fanout_ctx(app: web.Application) -> AsyncIterator[None]:
    """Where in-app frames are published: with the PostgreSQL store (and
    ``stream_fanout`` on), to the user's streams on every node over ``LISTEN``/
    ``NOTIFY`` (:mod:`server.channels.pg_fanout`; its listener connection opens here and
    closes at shutdown), and who has a stream open on this node is kept in
    ``stream_presence`` for every node's dispatcher (:mod:`server.channels.pg_presence`;
    this node's rows go at shutdown); otherwise to this node's streams only — the
    embedded store is one process, so that reaches every stream there is."""
    the_store, settings = app[STORE], app[SETTINGS]
    fanout: StreamFanout
    if isinstance(the_store, PostgresStore) and settings.stream_fanout:
        observe = app[OUTBOX_METRICS].observe_fanout
        node_id = uuid.uuid4().hex
        presence = StreamPresence(app[HUB], the_store, node_id=node_id,
                                  refresh_s=settings.stream_presence_refresh_s,
                                  observer=observe)
        fanout = PostgresFanout(
            app[HUB], connect=lambda: the_store.connect(application_name="geopush-stream"),
            notify=the_store.notify, channel=stream_channel(the_store.schema),
            resolve=_inbox_frames(the_store), observer=observe, node_id=node_id,
            presence=presence)
    else:
        fanout = LocalFanout(app[HUB])
    app[FANOUT] = fanout
    await fanout.start()
    try:
        yield
    finally:
        await fanout.aclose()


def _inbox_frames(store: Store) -> Resolve:
    """Reads back the frame of a message another node sent by reference."""

    async def resolve(tenant_id: str, user_id: str, delivery_id: str) -> dict[str, object] | None:
        message = await inbox_message(store, tenant_id, delivery_id)
        if message is None or message.user_id != user_id:
            return None
        return stream_frame(message)

    return resolve


async def _close_streams(app: web.Application) -> None:
    """End every live stream at shutdown, so the WebSocket handlers return."""
    app[HUB].close_all()


def _store_ctx(
    owned: bool, announce: TextIO | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        if owned:
            app[STORE] = await open_store(settings.database_url, clock=app[CLOCK])
        the_store = app[STORE]
        try:
            await _bootstrap_admin(the_store, settings, generate=owned and isinstance(
                the_store, MemoryStore), announce=announce)
            yield
        finally:
            if owned:
                await the_store.close()

    return ctx


async def _bootstrap_admin(
    store: TenantStore, settings: Settings, *, generate: bool, announce: TextIO | None
) -> None:
    """``--admin-key`` / ``GEOPUSH_ADMIN_KEY`` becomes an admin key of tenant
    ``default``; without one, an embedded store gets a generated key, printed once."""
    key = settings.admin_key
    if key is None and not generate:
        return
    await store.ensure_tenant(DEFAULT_TENANT, name="default")
    if key is not None:
        if await store.find_key(hash_key(key)) is None:
            await store.create_key(DEFAULT_TENANT, key_id=new_key_id(), key_hash=hash_key(key),
                                   role=Role.ADMIN, name="--admin-key")
        return
    key = generate_key()
    await store.create_key(DEFAULT_TENANT, key_id=new_key_id(), key_hash=hash_key(key),
                           role=Role.ADMIN, name="generated at start-up")
    out = announce or sys.stdout
    print(f"geopush: admin key of tenant 'default' (shown once; embedded store): {key}",
          file=out, flush=True)


@contextlib.asynccontextmanager
async def _running(loop: Awaitable[None], name: str) -> AsyncIterator[None]:
    """Run ``loop`` as a background task for the block's duration, then cancel it."""
    task = asyncio.ensure_future(loop)
    task.set_name(name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _timer_ctx(app: web.Application) -> AsyncIterator[None]:
    async with _running(_timer_loop(app), "geopush-timers"):
        yield


async def _models_ctx(app: web.Application) -> AsyncIterator[None]:
    """The promoted models held for the decision path, and the training schedule
    (``model_training_interval_s``; 0 keeps it off)."""
    cache = ModelCache(app[STORE])
    app[model_routes.MODEL_CACHE] = cache
    app[CORES].learned = cache
    interval = app[SETTINGS].model_training_interval_s
    if not interval:
        yield
        return

    async def trained(tenant_id: str) -> None:
        await cache.refresh(tenant_id, app[CLOCK]())

    async with _running(training_loop(app[STORE], app[CLOCK], interval, trained),
                        "geopush-training"):
        yield


async def _arm_stats_ctx(app: web.Application) -> AsyncIterator[None]:
    """Thompson sampling's arm counts, cached per tenant (see :mod:`server.arm_stats`)."""
    refresher = ArmStatsRefresher(app[STORE], app[CORES], app[CLOCK])
    async with _running(refresher.run(), "geopush-arm-stats"):
        yield


PRUNE_ROUND_PINGS = 10_000
"""Pings deleted per statement by the housekeeping loop: short deletes, other work between."""


async def _housekeeping_ctx(app: web.Application) -> AsyncIterator[None]:
    if app[SETTINGS].ping_retention_days == 0 and app[SETTINGS].behaviour_retention_days == 0:
        yield
        return
    async with _running(_housekeeping_loop(app), "geopush-housekeeping"):
        yield


async def _housekeeping_loop(app: web.Application) -> None:
    """Every ``housekeeping_interval_s``: delete each tenant's raw pings older than the
    retention period, :data:`PRUNE_ROUND_PINGS` at a time. A failure is logged (once
    while it lasts, see :class:`FailureLog`) and the loop goes on (the next round
    catches up)."""
    settings, metrics = app[SETTINGS], app[METRICS]
    failures = FailureLog(log, "housekeeping")
    while True:
        await asyncio.sleep(settings.housekeeping_interval_s)
        if settings.ping_retention_days:
            await prune_old_pings(app[STORE],
                                  app[CLOCK]() - settings.ping_retention_days * 86_400,
                                  on_pruned=metrics.pings_pruned.inc, failures=failures)
        if settings.behaviour_retention_days:
            await prune_old_behaviour(
                app[STORE], app[CLOCK]() - settings.behaviour_retention_days * 86_400,
                failures=failures)


async def prune_old_pings(
    store: HousekeepingStore, before: float, *, on_pruned: Callable[[int], None] | None = None,
    failures: FailureLog | None = None,
) -> int:
    """Delete every tenant's pings received before ``before``; how many in all.
    ``failures``: where failures go (a loop passes its own, which logs a failure that
    repeats every round once)."""
    failures = failures or FailureLog(log, "housekeeping")
    total = 0
    try:
        tenants = await store.list_tenants()
    except Exception as exc:
        failures.failed("listing tenants", exc)
        return 0
    failures.succeeded("listing tenants")
    for tenant in tenants:
        step = f"pruning the pings of tenant {tenant.tenant_id}"
        while True:
            try:
                gone = await store.prune_pings(tenant.tenant_id, before=before,
                                               limit=PRUNE_ROUND_PINGS)
            except Exception as exc:
                failures.failed(step, exc)
                break
            failures.succeeded(step)
            total += gone
            if on_pruned is not None and gone:
                on_pruned(gone)
            if gone < PRUNE_ROUND_PINGS:
                break
            await asyncio.sleep(0)
    return total


TIMER_ROUND_USERS = 50
"""Users per timer transaction: ~50 decisions, a few milliseconds of the event loop."""


async def _timer_loop(app: web.Application) -> None:
    """Every ``timer_interval_s``, fire the due DWELL / silence-EXIT timers of every
    tenant (:func:`server.pipeline.fire_all_timers`: a failing tenant is logged,
    counted in ``geopush_timer_errors_total`` and skipped). Only cancellation ends the
    loop. Runs in the event loop."""
    settings, metrics = app[SETTINGS], app[METRICS]

    def after(tenant_id: str, result: IngestResult) -> None:
        metrics.count_result(result)
        if result.deliveries and OUTBOX in app:
            app[OUTBOX].wake()
        app[LEARNER].visits_ended(tenant_id, ended_visits(result.events))

    def scheduled(tenant_id: str, result: RoundResult) -> None:
        if result.deliveries and OUTBOX in app:
            app[OUTBOX].wake()

    def behaviour(tenant_id: str, result: TriggerRound) -> None:
        if result.deliveries and OUTBOX in app:
            app[OUTBOX].wake()

    failures = FailureLog(log, "timer loop")
    while True:
        await asyncio.sleep(settings.timer_interval_s)
        await fire_all_timers(app[STORE], app[CORES], app[CLOCK], limit=TIMER_ROUND_USERS,
                              on_result=after, on_error=metrics.timer_errors.inc,
                              failures=failures, behaviour=app[STORE],
                              on_behaviour=behaviour, schedule=app[STORE],
                              on_scheduled=scheduled)
