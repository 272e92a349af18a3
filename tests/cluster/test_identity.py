"""One scenario, five deployments, byte-identical events and decisions.

The flagship scenario (``fixtures/scenarios/helsinki_saturday_mall.yaml``: Aino and
Mikko in Forum and Kluuvi, with the Moomin Shop inside Forum, a daily cap, welcome and
dwell campaigns) is driven over HTTP on one virtual clock, the way the simulator
slices it: every 30 virtual seconds the pings delivered by then are posted to
``POST /v1/pings`` at the time the last of them arrived, then the due timers fire at
the slice's end. The deployments:

- a single node on the embedded store;
- a node on PostgreSQL (the shared-PostgreSQL mode);
- the partitioned mode with 1, 2 and 4 workers: a gateway app posting to a real
  three-node JetStream cluster (stream and buckets with 3 replicas, 8 partitions) and
  workers in this process, each with its own compiled cores, processing and firing
  timers in their partitions (the test waits until every partition has caught up with
  the stream before it asks the owners to fire).

Every user's stored events (key, event, recorded time; numbers written as floats, as
PostgreSQL returns them) and decisions (key, the whole decision as the engine's JSON)
must be the same bytes in all five, and must not be empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import NotFoundError, ServiceUnavailableError

from server.api.context import CORES, STORE
from server.app import GatewayOptions, create_app
from server.auth import Role
from server.cli.scenario_files import load_scenario
from server.cli.serve import preload_scenario
from server.cluster.local import LocalNats
from server.cluster.partitions import subject
from server.cluster.process import worker_cores
from server.cluster.stream import (
    CHECKPOINTS,
    LEASES,
    STREAM,
    Cluster,
    StreamSettings,
    connect,
    open_cluster,
)
from server.cluster.worker import Worker, WorkerParts, WorkerSettings
from server.metrics import Metrics, PartitionMetrics
from server.pipeline import fire_all_timers
from server.store import MemoryStore, PostgresStore, Store
from tests.server.api.conftest import FakeClock, add_key, make_settings
from tests.server.conftest import TENANT, truncate_all
from tests.server.serve import ROOT
from triggers.simulation.engine import devices
from triggers.simulation.scenario import Scenario
from triggers.simulation.stream import PingStream
from triggers.trajectory import PingColumns

pytestmark = [pytest.mark.needs_postgres, pytest.mark.asyncio(loop_scope="session")]

SCENARIO = ROOT / "fixtures" / "scenarios" / "helsinki_saturday_mall.yaml"
PARTITIONS = 8

Post = Callable[[list[dict[str, Any]]], Awaitable[None]]
Fire = Callable[[], Awaitable[None]]


def _ping_json(cols: PingColumns) -> list[dict[str, Any]]:
    out = []
    for k in range(len(cols)):
        item: dict[str, Any] = {"user_id": str(cols.user_id[k]), "ts": float(cols.ts[k]),
                                "lat": float(cols.lat[k]), "lng": float(cols.lng[k])}
        for name in ("accuracy_m", "speed_mps", "heading_deg"):
            value = float(getattr(cols, name)[k])
            if math.isfinite(value):
                item[name] = value
        if bool(cols.mock[k]):
            item["mock"] = True
        out.append(item)
    return out


async def drive(scenario: Scenario, clock: FakeClock, post: Post, fire: Fire) -> set[str]:
    """Replay the scenario slice by slice (as the simulator does); the users seen."""
    spec = scenario.spec
    devs, _ = devices(scenario)
    end_hint = max([d.end_ts for d in devs], default=scenario.start_ts)
    stream = PingStream(devs, scenario.recorded, spec.seed, end_hint)
    silence = spec.policy.presence.build().silence_timeout_s
    begin = min(scenario.start_ts, stream.first_delivery)
    end = math.ceil(max(begin, stream.last_activity) + silence + spec.batch_s)
    users: set[str] = set()
    at = begin
    while at < end:
        slice_end = min(at + spec.batch_s, end)
        cols = stream.take_until(slice_end)
        if cols is not None:
            clock.now = float(cols.delivery_ts[-1])
            pings = _ping_json(cols)
            users.update(p["user_id"] for p in pings)
            for i in range(0, len(pings), 1000):
                await post(pings[i:i + 1000])
        clock.now = slice_end
        await fire()
        at = slice_end
    return users


async def stored(store: Store, users: set[str]) -> bytes:
    """Every user's events and decisions as canonical JSON bytes."""
    out: dict[str, Any] = {}
    for user in sorted(users):
        events = await store.list_events(TENANT, user, limit=10_000)
        decisions = await store.list_decisions(TENANT, user, limit=10_000)
        out[user] = {
            "events": sorted([e.event_key, _floats(e.event.to_dict()), float(e.recorded_at)]
                             for e in events),
            "decisions": sorted([d.decision_key, d.decision.to_json()] for d in decisions),
        }
    return json.dumps(out, sort_keys=True).encode()


def _floats(fields: dict[str, Any]) -> dict[str, Any]:
    # The embedded store keeps a number as the engine made it (an int dwell_s), the
    # PostgreSQL one reads back a double: the same value, written one way here.
    return {k: float(v) if type(v) is int else v for k, v in fields.items()}


@asynccontextmanager
async def http(app: Any) -> AsyncIterator[TestClient[Any, Any]]:
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


def poster(client: TestClient[Any, Any], key: str) -> Post:
    async def post(pings: list[dict[str, Any]]) -> None:
        resp = await client.post("/v1/pings", json={"pings": pings},
                                 headers={"Authorization": f"Bearer {key}"})
        body = await resp.json()
        assert resp.status == 200 and body["rejected"] == [], body

    return post


async def run_node(store: Store, scenario: Scenario) -> bytes:
    clock = FakeClock(scenario.start_ts)
    await preload_scenario(store, scenario, TENANT)
    key = await add_key(store, TENANT, Role.SDK)
    app = create_app(make_settings(), store=store, clock=clock)
    async with http(app) as client:
        async def fire() -> None:
            await fire_all_timers(app[STORE], app[CORES], clock)

        users = await drive(scenario, clock, poster(client, key), fire)
    return await stored(store, users)


async def reset_stream(urls: list[str]) -> None:
    """Delete the stream and its buckets: each deployment starts from nothing."""
    nc = await connect(urls, name="geopush-test")
    deadline = time.monotonic() + 30
    try:
        js = nc.jetstream()
        while True:
            try:
                with contextlib.suppress(NotFoundError):
                    await js.delete_stream(STREAM)
                break
            except (NatsTimeoutError, NoRespondersError, ServiceUnavailableError):
                # A cluster that just started is still electing its JetStream leader.
                assert time.monotonic() < deadline, "JetStream did not answer"
                await asyncio.sleep(0.25)
        with contextlib.suppress(NotFoundError):
            await js.delete_key_value(LEASES)
        with contextlib.suppress(NotFoundError):
            await js.delete_object_store(CHECKPOINTS)
    finally:
        await nc.close()


async def run_partitioned(store: PostgresStore, scenario: Scenario, urls: list[str],
                          n_workers: int) -> bytes:
    await reset_stream(urls)
    clock = FakeClock(scenario.start_ts)
    await preload_scenario(store, scenario, TENANT)
    key = await add_key(store, TENANT, Role.SDK)
    stream = StreamSettings(partitions=PARTITIONS, replicas=3)
    app = create_app(make_settings(), store=store, clock=clock,
                     gateway=GatewayOptions(tuple(urls), stream))
    cluster = await open_cluster(urls, stream, name="geopush-test-workers")
    workers = in_process_workers(cluster, store, clock, n_workers)
    try:
        await share_partitions(workers)
        owned = [sorted(w.runners) for w in workers]
        assert sorted(p for ps in owned for p in ps) == list(range(PARTITIONS)), owned
        await restored(workers)

        async def fire() -> None:
            await caught_up(cluster.js, workers)
            for worker in workers:
                await worker.fire_timers()

        async with http(app) as client:
            users = await drive(scenario, clock, poster(client, key), fire)
        await caught_up(cluster.js, workers)
    finally:
        for worker in workers:
            await worker.stop()
        await cluster.close()
    return await stored(store, users)


def in_process_workers(cluster: Cluster, store: PostgresStore, clock: FakeClock,
                       n: int) -> list[Worker]:
    """``n`` workers in this process on the worker's own cores, with leases that never
    lapse and no timer or checkpoint rounds of their own: the test drives them."""
    settings = make_settings()
    workers = []
    for i in range(n):
        metrics = Metrics()
        parts = WorkerParts(
            cluster, store, worker_cores(store, settings),
            WorkerSettings(lease_s=3600, checkpoint_interval_s=3600, timer_interval_s=0),
            metrics, PartitionMetrics(metrics.registry), clock=clock)
        workers.append(Worker(parts, f"w{i}"))
    return workers


async def share_partitions(workers: list[Worker]) -> None:
    """Every worker announced, then each takes its share of the partitions."""
    for worker in workers:
        await worker.leases.heartbeat()
    for worker in workers:
        await worker.round()


async def restored(workers: list[Worker], timeout_s: float = 10.0) -> None:
    """Wait until every partition has restored its checkpoint (in its own task)."""
    deadline = time.monotonic() + timeout_s
    while not all(r.restored for w in workers for r in w.runners.values()):
        assert time.monotonic() < deadline, "partitions did not restore"
        await asyncio.sleep(0.005)


async def caught_up(js: Any, workers: list[Worker], timeout_s: float = 10.0) -> None:
    """Wait until each partition's owner processed the partition's last message."""
    deadline = time.monotonic() + timeout_s
    for partition in range(PARTITIONS):
        try:
            last = (await js.get_last_msg(STREAM, subject(TENANT, partition))).seq
        except NotFoundError:
            continue
        [runner] = [w.runners[partition] for w in workers if partition in w.runners]
        while runner.position < last:
            assert time.monotonic() < deadline, f"partition {partition} did not catch up"
            await asyncio.sleep(0.005)


def same(got: bytes, want: bytes, mode: str) -> None:
    """Equal bytes; else the first differing row of each user, to read."""
    if got == want:
        return
    a, b = json.loads(got), json.loads(want)
    for user in sorted(set(a) | set(b)):
        for kind in ("events", "decisions"):
            rows_a, rows_b = a.get(user, {}).get(kind, []), b.get(user, {}).get(kind, [])
            for row_a, row_b in zip(rows_a, rows_b, strict=False):
                assert row_a == row_b, (mode, user, kind)
            assert len(rows_a) == len(rows_b), (mode, user, kind)
    raise AssertionError(f"{mode}: the bytes differ in their formatting only")


async def test_the_flagship_gives_the_same_bytes_single_node_shared_pg_and_partitioned(
    pg_store: PostgresStore, tmp_path: Path,
) -> None:
    scenario = load_scenario(SCENARIO)
    single = await run_node(MemoryStore(clock=FakeClock(scenario.start_ts)), scenario)
    decoded = json.loads(single)
    assert sum(len(u["events"]) for u in decoded.values()) >= 10
    assert any(json.loads(d[1])["chosen"] for u in decoded.values() for d in u["decisions"])
    same(await run_node(pg_store, scenario), single, "shared PostgreSQL")
    with LocalNats.start(3, root=tmp_path / "nats") as nats:
        for n_workers in (1, 2, 4):
            await truncate_all(pg_store)
            got = await run_partitioned(pg_store, scenario, nats.urls, n_workers)
            same(got, single, f"partitioned, {n_workers} workers")
