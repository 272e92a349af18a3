"""Partitioned-mode benchmark: workers on a three-node NATS JetStream cluster.

``python -m tests.bench.bench_cluster [--users N] [--probes N]``

Processes as in production: a three-node ``nats-server`` cluster on free ports (stream
and buckets with 3 replicas, 12 partitions: 1, 2 and 3 workers get equal shares), one
``geopush serve --role gateway`` and the workers (``geopush worker``), on a fresh
PostgreSQL database each run. The load is the crowd of ``tests/cluster/test_kills.py``
around Forum (walkers, sitters and strollers; ENTER / DWELL / EXIT, a DWELL campaign),
``--users`` users (~130 pings each), posted in 100-ping batches by 8 client lanes.

Per worker count (``--workers``, default 1, 2, 3, in the order given), once every
worker holds its fair share of the partitions (no rebalancing during the measurement):

- **throughput**: the crowd is published straight into the stream (split and
  acknowledged as a gateway does, 8 batches in flight; the gateway's HTTP and
  validation are measured by bench_service.py): pings per second from the first
  publish until every ping is in PostgreSQL (NATS, PostgreSQL and the publisher share
  the cores with the workers);
- **CPU seconds per million pings**: the workers' own CPU (``/proc/PID/stat``, user +
  system) during that drain, summed over workers —
  the cost a deployment pays per ping, whatever the core count; *efficiency* is one
  worker's cost over n workers' (1.00 = no overhead from partitioning);
- **end-to-end latency**: ``--probes`` single-ping requests (a new user entering
  Forum, 20 a second, no other load): from the gateway's 2xx to the ENTER's decision
  being visible in PostgreSQL (polled every 2 ms), p50 / p99.

Then **catch-up after a kill**: two workers, one killed with SIGKILL, the whole crowd
posted again under new user ids at once; the time until the survivor owns every
partition, and the backlog's drain rate after that.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from server.auth import DEFAULT_TENANT
from server.cluster.gateway import StreamIngest
from server.cluster.local import LocalNats
from server.cluster.stream import open_cluster
from tests.cluster.harness import Deployment, fetch, fresh_database
from tests.cluster.test_kills import LANES, crowd, forum, offset, post, setup_tenant
from triggers.pings import PingBatch

Lanes = list[list[list[dict[str, Any]]]]
CLK_TCK = os.sysconf("SC_CLK_TCK")
PARTITIONS = 12
DATABASE_URL = os.environ.get("TEST_DATABASE_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def workers_cpu(dep: Deployment) -> float:
    return sum(cpu_s(p.proc.pid) for p in dep.workers.values()
               if p.proc is not None and p.proc.poll() is None)


async def publish_all(dep: Deployment, lanes: Lanes) -> int:
    """Every batch of every lane published as a gateway does (split by partition, one
    message per group, acknowledged), 8 batches at a time; the pings published."""
    cluster = await open_cluster(dep.nats_urls, create=False, name="geopush-bench")
    sink = StreamIngest(cluster)
    try:
        async def lane(batches: list[list[dict[str, Any]]]) -> None:
            for batch in batches:
                pings = PingBatch.from_columns(
                    [p["user_id"] for p in batch], [p["ts"] for p in batch],
                    [p["lat"] for p in batch], [p["lng"] for p in batch],
                    accuracy_m=[p["accuracy_m"] for p in batch])
                await sink.ingest(DEFAULT_TENANT, pings, now=time.time())

        await asyncio.gather(*(lane(batches) for batches in lanes))
    finally:
        await cluster.close()
    return sum(len(b) for lane_ in lanes for b in lane_)


async def all_owned(dep: Deployment, workers: set[str]) -> bool:
    owners = await dep.owners()
    return None not in owners.values() and set(owners.values()) == workers


async def balanced(dep: Deployment, workers: set[str]) -> bool:
    """Every partition owned and each worker at its fair share: no handover to come.
    (Workers started together may each take partitions before seeing the other; the
    rebalancing then comes one lease round later, with the handed-over partitions
    unowned until the taker's next round.)"""
    owners = list((await dep.owners()).values())
    share = math.ceil(len(owners) / len(workers))
    return set(owners) == workers and max(owners.count(w) for w in workers) <= share


async def wait(check: Any, timeout_s: float, every_s: float = 0.05) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError
        await asyncio.sleep(every_s)
    return time.monotonic() - started


async def stored_pings(url: str) -> int:
    [[n]] = await fetch(url, "SELECT count(*) FROM pings")
    return int(n)


async def send_all(dep: Deployment, key: str, lanes: list[list[list[dict[str, Any]]]]) -> int:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=LANES + 2)) as s:
        async def lane(batches: list[list[dict[str, Any]]]) -> None:
            for batch in batches:
                while not await post(s, dep.base, key, batch):
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(lane(batches) for batches in lanes))
    return sum(len(b) for lane_ in lanes for b in lane_)


def renamed(lanes: Lanes, prefix: str) -> Lanes:
    return [[[{**p, "user_id": prefix + p["user_id"]} for p in b] for b in lane] for lane in lanes]


async def probes(dep: Deployment, key: str, url: str, n: int) -> list[float]:
    """Seconds from each probe's 2xx to its decision in PostgreSQL."""
    _, centre = forum()
    inside = offset(centre, 0, 0)
    latencies: list[float] = []
    async with aiohttp.ClientSession() as session:
        conn_url = url

        async def one(i: int) -> None:
            user = f"probe{i:05d}"
            ping = {"user_id": user, "ts": round(time.time(), 3), "lat": inside.lat,
                    "lng": inside.lng, "accuracy_m": 5.0}
            assert await post(session, dep.base, key, [ping])
            acked = time.monotonic()
            import asyncpg  # noqa: PLC0415

            conn = await asyncpg.connect(conn_url)
            try:
                while not await conn.fetchval(
                        "SELECT 1 FROM decisions WHERE user_id = $1", user):
                    await asyncio.sleep(0.002)
            finally:
                await conn.close()
            latencies.append(time.monotonic() - acked)

        tasks = []
        for i in range(n):
            tasks.append(asyncio.create_task(one(i)))
            await asyncio.sleep(0.05)  # 20 probes a second
        await asyncio.gather(*tasks)
    return latencies


async def one_size(n_workers: int, users: int, n_probes: int, tmp: Path) -> dict[str, float]:
    import tests.cluster.test_kills as kills  # noqa: PLC0415

    kills.USERS = users
    feature, centre = forum()
    lanes = crowd(time.time() - 5, centre)
    with LocalNats.start(3, root=tmp / f"nats{n_workers}") as nats:
        async with fresh_database(DATABASE_URL, "geopush_bench_cluster") as url:
            # Leases outlive the stop: the stopped workers keep their partitions.
            dep = Deployment(nats.urls, url, tmp, partitions=PARTITIONS, lease_s=60.0)
            try:
                await dep.start_gateway()
                names = {f"w{i}" for i in range(n_workers)}
                for name in sorted(names):
                    dep.start_worker(name, "--checkpoint-interval-s", "5")
                await wait(lambda: balanced(dep, names), 90)
                async with aiohttp.ClientSession() as session:
                    key = await setup_tenant(session, dep.base, feature)
                # The crowd goes straight into the stream, as fast as JetStream takes
                # it (the gateway's own validation is not what is measured here): the
                # workers work at full speed, on as large runs as they find.
                cpu0 = workers_cpu(dep)
                started = time.monotonic()
                total = await publish_all(dep, lanes)
                published = time.monotonic() - started
                await wait(lambda: _count_is(url, total), 300, every_s=0.02)
                wall = time.monotonic() - started
                cpu = workers_cpu(dep) - cpu0
                lat = await probes(dep, key, url, n_probes) if n_probes else [0.0]
                lat.sort()
                return {"workers": n_workers, "pings": total, "wall_s": wall,
                        "published_s": published,
                        "pings_per_s": total / wall, "cpu_s": cpu,
                        "cpu_s_per_million": cpu / total * 1e6,
                        "p50_ms": statistics.median(lat) * 1000,
                        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000}
            finally:
                dep.stop()


async def _count_is(url: str, total: int) -> bool:
    return await stored_pings(url) >= total


async def catch_up(users: int, tmp: Path) -> dict[str, float]:
    import tests.cluster.test_kills as kills  # noqa: PLC0415

    kills.USERS = users
    feature, centre = forum()
    lanes = crowd(time.time() - 5, centre)
    with LocalNats.start(3, root=tmp / "nats-kill") as nats:
        async with fresh_database(DATABASE_URL, "geopush_bench_cluster") as url:
            dep = Deployment(nats.urls, url, tmp, partitions=PARTITIONS, lease_s=5.0)
            try:
                await dep.start_gateway()
                dep.start_worker("alpha")
                dep.start_worker("beta")
                await wait(lambda: all_owned(dep, {"alpha", "beta"}), 60)
                async with aiohttp.ClientSession() as session:
                    key = await setup_tenant(session, dep.base, feature)
                first = await send_all(dep, key, lanes)
                await wait(lambda: _count_is(url, first), 300, every_s=0.1)
                dep.workers["alpha"].kill(signal.SIGKILL)
                killed = time.monotonic()
                sent = asyncio.create_task(send_all(dep, key, renamed(lanes, "x")))
                moved = await wait(lambda: all_owned(dep, {"beta"}), 60, every_s=0.1)
                backlog = await stored_pings(url)
                second = await sent
                await wait(lambda: _count_is(url, first + second), 300, every_s=0.1)
                done = time.monotonic() - killed
                return {"moved_s": moved, "drained_s": done,
                        "backlog_rate": (first + second - backlog) / max(1e-9, done - moved)}
            finally:
                dep.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--workers", default="1,2,3",
                        help="worker counts in the order run, e.g. 1,2,1,2 (interleaved)")
    parser.add_argument("--no-catch-up", action="store_true",
                        help="skip the kill -9 catch-up measurement")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="geopush-bench-cluster-"))
    sizes = [int(n) for n in args.workers.split(",")]
    rows = [asyncio.run(one_size(n, args.users, args.probes, tmp)) for n in sizes]
    base = rows[0]["cpu_s_per_million"]
    print(f"partitioned mode, {PARTITIONS} partitions, 3 NATS nodes (R=3), {os.cpu_count()} "
          f"cores shared by NATS, PostgreSQL, gateway, workers and clients")
    print(f"{'workers':>7} {'pings':>7} {'published s':>11} {'stored s':>8} {'pings/s':>8} "
          f"{'cpu s/1M':>9} {'efficiency':>10} {'e2e p50 ms':>10} {'e2e p99 ms':>10}")
    for r in rows:
        print(f"{r['workers']:>7} {r['pings']:>7} {r['published_s']:>11.1f} "
              f"{r['wall_s']:>8.1f} {r['pings_per_s']:>8.0f} "
              f"{r['cpu_s_per_million']:>9.1f} {base / r['cpu_s_per_million']:>10.2f} "
              f"{r['p50_ms']:>10.1f} {r['p99_ms']:>10.1f}")
    if args.no_catch_up:
        return 0
    kill = asyncio.run(catch_up(args.users, tmp))
    print(f"catch-up after kill -9 of 1 of 2 workers (lease 5 s): partitions moved in "
          f"{kill['moved_s']:.1f} s; backlog drained {kill['drained_s']:.1f} s after the kill, "
          f"at {kill['backlog_rate']:.0f} pings/s once moved")
    return 0


if __name__ == "__main__":
    sys.exit(main())
