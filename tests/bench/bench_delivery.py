"""Delivery benchmark: deliveries per second through the outbox to the webhook channel
(a local aiohttp receiver verifying every HMAC signature) and the MQTT channel
(Mosquitto on 127.0.0.1:1883, QoS 1), on the embedded store and on PostgreSQL.

Each run puts N pending deliveries in the outbox (N users, one each) and times two
dispatchers (the service's default concurrency) until every row is ``sent``; the rate
covers claim, send, and the outcome write. ``--quick``: 1,000 deliveries instead of
5,000. PostgreSQL comes from ``TEST_DATABASE_URL`` (a throwaway schema, dropped after).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.test_utils import TestServer

from server.channels.inapp import StreamHub
from server.channels.webhook import verify_signature
from server.egress import EgressPolicy
from server.outbox.channels import ChannelRegistry
from server.outbox.dispatcher import Dispatcher
from server.store import DeliveryStatus, MemoryStore, NewDelivery, PostgresStore, Store
from tests.bench._common import format_table

TENANT = "bench"
SECRET = "whsec_bench-0123456789abcdef"
WORKERS = 2


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1.0).close()
    except OSError:
        return False
    return True


@asynccontextmanager
async def _receiver() -> AsyncIterator[tuple[str, list[int]]]:
    counts = [0, 0]  # verified, refused

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        ok = verify_signature(SECRET, request.headers["X-Geopush-Timestamp"], body,
                              request.headers["X-Geopush-Signature"], now=time.time())
        counts[0 if ok else 1] += 1
        return web.Response(status=204 if ok else 401)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/hook")), counts
    finally:
        await server.close()


async def _fill(store: Store, n: int, channel: str) -> None:
    now = time.time()
    run = uuid.uuid4().hex[:8]
    for start in range(0, n, 1000):
        rows = [NewDelivery(
            idempotency_key=f"{run}-{channel}-{i:08d}", user_id=f"u{i}", campaign_id="bench",
            variant_id="a", venue_id="mall", visit_id=f"v{i}", event="enter", channel=channel,
            title="Welcome", body="20% off today", locale=None, created_at=now,
            expires_at=now + 3600) for i in range(start, min(n, start + 1000))]
        async with store.batch(TENANT, [r.user_id for r in rows]) as tx:
            await tx.insert_deliveries(rows)


async def _drain(store: Store, n: int) -> float:
    # The service's webhook path: connections through the egress guard (the receiver's
    # address allowed, as an operator would allow an internal one).
    registry = ChannelRegistry(StreamHub(), observer=lambda *_: None, clock=time.time,
                               egress=EgressPolicy.parse(False, ["127.0.0.1"]))
    workers = [Dispatcher(store, registry, clock=time.time) for _ in range(WORKERS)]
    t0 = time.perf_counter()
    try:
        while await store.count_deliveries(TENANT, DeliveryStatus.SENT) < n:
            results = await asyncio.gather(*(w.run_once([TENANT]) for w in workers))
            if not any(r.claimed for r in results):
                failed = await store.count_deliveries(TENANT, DeliveryStatus.FAILED)
                raise RuntimeError(f"outbox stalled: {failed} failed")
    finally:
        elapsed = time.perf_counter() - t0
        await registry.aclose()
    return elapsed


async def _one(store: Store, channel: str, n: int) -> list[object]:
    await store.ensure_tenant(TENANT)
    if channel == "webhook":
        async with _receiver() as (url, counts):
            await store.put_channel_config(TENANT, {"webhook": {"url": url, "secret": SECRET}})
            await _fill(store, n, channel)
            elapsed = await _drain(store, n)
            assert counts == [n, 0], counts
    else:
        await store.put_channel_config(TENANT, {"mqtt": {"host": "127.0.0.1", "port": 1883}})
        await _fill(store, n, channel)
        elapsed = await _drain(store, n)
    return [channel, n, f"{elapsed:.2f}", f"{n / elapsed:,.0f}"]


async def _run(n: int) -> list[list[object]]:
    rows: list[list[object]] = []
    mqtt = _reachable("127.0.0.1", 1883)
    dsn = os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    for label in ("embedded", "postgresql"):
        for channel in ("webhook", "mqtt"):
            if channel == "mqtt" and not mqtt:
                rows.append([label, channel, n, "-", "no broker on 127.0.0.1:1883"])
                continue
            if label == "embedded":
                store: Store = MemoryStore()
                schema = None
            else:
                schema = f"geopush_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
                try:
                    store = await PostgresStore.open(dsn, schema=schema, min_size=2,
                                                     max_size=8)
                except Exception as exc:  # no database: report, keep the other rows
                    rows.append([label, channel, n, "-", f"no PostgreSQL: {exc}"])
                    continue
            try:
                rows.append([label, *(await _one(store, channel, n))])
            finally:
                if isinstance(store, PostgresStore) and schema is not None:
                    async with store._pool.acquire() as conn:
                        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
                await store.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_delivery", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 deliveries per run")
    parser.add_argument("-n", type=int, default=None, help="deliveries per run")
    args = parser.parse_args(argv)
    n = args.n or (1000 if args.quick else 5000)
    rows = asyncio.run(_run(n))
    print(f"outbox → channel, {WORKERS} dispatchers (batch 100, 32 sends in flight each)")
    print(format_table(["store", "channel", "deliveries", "wall s", "deliveries/s"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
