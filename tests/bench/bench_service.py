"""HTTP service benchmark: ``POST /v1/pings`` over loopback against ``geopush serve``.

The server runs as its own process (embedded store, then PostgreSQL in a fresh
database); the load generator is another process (aiohttp client, keep-alive). Every
batch holds 100 pings; users come from a pool of 10,000: 90 % stand still 2-12 km from
Forum (no venue near), 10 % walk at 1.4 m/s from 200 m south of Forum into it (the
engine opens visits: ENTER, decided against an active DWELL campaign). Two batch shapes
(``--shape``): ``users`` (default), 100 distinct users a batch (a gateway relaying many
devices: 100 presence records loaded and saved per batch); ``device``, one user's 100
buffered fixes 1 s apart (an SDK uploading its buffer). Two phases per store:

1. saturation: 16 requests in flight for the whole duration (closed loop) -> pings/s;
2. latency: open loop at half that rate (batches sent on schedule whatever the answers
   do), latency measured from the scheduled send time -> p50 / p99 per batch.

Targets (the issue): >= 100k pings/s embedded, >= 30k pings/s PostgreSQL, p99 <= 20 ms at
half rate. On a small machine the server and the load generator share the cores, so
the figures are a lower bound of what the server alone does. ``--profile DIR`` runs
the server under cProfile and writes ``DIR/<store>.prof`` (stopped by SIGTERM).

Usage: ``python -m tests.bench.bench_service [--quick] [--no-postgres] [--shape S]``;
the exit status is 0 when the measurement ran (PASS/FAIL against the targets is
printed, not returned).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parents[2]
VENUES = ROOT / "fixtures" / "venues" / "helsinki_venues.geojson"
FORUM_OSM_ID = "osm:way/289767497"
ADMIN_KEY = "bench-service-admin-key-0123456789"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
USERS = 10_000
WALKERS = 0.10
BATCH = 100
CONCURRENCY = 16
TARGETS = {"embedded": 100_000.0, "postgres": 30_000.0}
P99_TARGET_MS = 20.0

_PROFILED = (
    "import cProfile, signal, sys\n"
    "from server.cli import main\n"
    "p = cProfile.Profile()\n"
    "def stop(*_):\n"
    "    raise KeyboardInterrupt\n"
    "signal.signal(signal.SIGTERM, stop)\n"
    "p.enable()\n"
    "try:\n"
    "    main(sys.argv[2:])\n"
    "except (KeyboardInterrupt, SystemExit):\n"
    "    pass\n"
    "finally:\n"
    "    p.disable(); p.dump_stats(sys.argv[1])\n"
)


# --------------------------------------------------------------------------- load side


def _forum() -> tuple[dict[str, Any], float, float]:
    features = json.loads(VENUES.read_text())["features"]
    [feature] = [f for f in features if f["properties"]["id"] == FORUM_OSM_ID]
    feature = {**feature, "id": "forum", "properties": {**feature["properties"], "id": "forum"}}
    ring = feature["geometry"]["coordinates"][0][:-1]
    return (feature, sum(p[1] for p in ring) / len(ring), sum(p[0] for p in ring) / len(ring))


class Stream:
    """Batch after batch of 100 pings; every user's ts increases.

    ``shape="users"``: 100 distinct users a batch (a gateway relaying many devices; the
    server loads and saves 100 presence records per batch). ``shape="device"``: one
    user's 100 buffered fixes, 1 s apart (an SDK uploading its buffer)."""

    def __init__(self, shape: str = "users", seed: int = 1) -> None:
        _, self.lat0, self.lng0 = _forum()
        rng = random.Random(seed)
        self.shape = shape
        self.m_lat = 111_320.0
        self.m_lng = 111_320.0 * math.cos(math.radians(self.lat0))
        self.home: list[tuple[float, float]] = []
        self.walker = [i < USERS * WALKERS for i in range(USERS)]
        for _ in range(USERS):
            r, a = rng.uniform(2_000, 12_000), rng.uniform(0, 2 * math.pi)
            self.home.append((self.lat0 + r * math.cos(a) / self.m_lat,
                              self.lng0 + r * math.sin(a) / self.m_lng))
        rng.shuffle(self.walker)
        self.rng = rng
        self.seq = 0
        self.t0 = time.time() - (60.0 if shape == "users" else 250.0)

    def _ping(self, u: int, n: int, ts: float) -> dict[str, Any]:
        """User ``u``'s ``n``-th fix: walkers move north 1.4 m/s, 10 s a fix, from
        200 m south of Forum's centre into it; the others stand at home."""
        if self.walker[u]:
            north = max(-200.0 + 14.0 * n, 0.0)
            lat, lng = self.lat0 + north / self.m_lat, self.lng0
        else:
            lat, lng = self.home[u]
        return {"user_id": f"u{u}", "ts": round(ts, 3),
                "lat": lat + self.rng.gauss(0, 3) / self.m_lat,
                "lng": lng + self.rng.gauss(0, 3) / self.m_lng, "accuracy_m": 10.0}

    def next_body(self) -> bytes:
        i = self.seq
        self.seq += 1
        if self.shape == "users":
            first = (i * BATCH) % USERS
            rounds = (i * BATCH) // USERS  # how many pings each user already sent
            ts = self.t0 + i * 0.002
            pings = [self._ping(u, rounds, ts) for u in range(first, first + BATCH)]
        else:
            u, rounds = i % USERS, i // USERS
            start = self.t0 + rounds * BATCH
            pings = [self._ping(u, (rounds * BATCH + k) // 10, start + k)
                     for k in range(BATCH)]
        return json.dumps({"pings": pings}).encode()


async def _load(port: int, key: str, duration_s: float, rate: float | None,
                shape: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}/v1/pings"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    stream = Stream(shape)
    latencies: list[float] = []
    errors = 0
    ok = 0
    connector = aiohttp.TCPConnector(limit=64 if rate else CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(body: bytes, scheduled: float) -> None:
            nonlocal errors, ok
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    if resp.status == 200:
                        ok += 1
                        latencies.append(time.perf_counter() - scheduled)
                    else:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1

        start = time.perf_counter()
        end = start + duration_s
        if rate is None:
            async def worker() -> None:
                while time.perf_counter() < end:
                    body = stream.next_body()
                    await send(body, time.perf_counter())

            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        else:
            tasks = []
            n = 0
            while (scheduled := start + n / rate) < end:
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(send(stream.next_body(), scheduled)))
                n += 1
            await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 \
            if latencies else float("nan")

    return {"batches": ok, "errors": errors, "elapsed_s": elapsed,
            "pings_per_s": ok * BATCH / elapsed, "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


# --------------------------------------------------------------------------- server side


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _admin(database_url: str, sql: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _start_server(port: int, database_url: str | None, profile: Path | None,
                  log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GEOPUSH_RATE_SDK_PER_S": "1000000",
           "GEOPUSH_RATE_SDK_BURST": "1000000", "GEOPUSH_LOG_LEVEL": "WARNING"}
    args = ["serve", "--port", str(port), "--admin-key", ADMIN_KEY]
    if database_url:
        args += ["--database-url", database_url]
    if profile is not None:
        cmd = [sys.executable, "-c", _PROFILED, str(profile), *args]
    else:
        cmd = [sys.executable, "-m", "server.cli", *args]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


async def _prepare(port: int, proc: subprocess.Popen[bytes], log: Path) -> str:
    base = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{log.read_text()}")
            try:
                async with session.get(f"{base}/readyz") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        feature, _, _ = _forum()
        async with session.put(f"{base}/v1/venues/forum", json=feature, headers=admin) as r:
            assert r.status == 201, await r.text()
        async with session.post(f"{base}/v1/campaigns", headers=admin, json={
                "id": "hello", "name": "Hello", "status": "active",
                "trigger": {"event": "dwell", "dwell_s": 300}, "venues": {"ids": ["forum"]},
                "variants": [{"id": "a", "title": "Hi", "body": "Welcome"}]}) as r:
            assert r.status == 201, await r.text()
        async with session.post(f"{base}/v1/keys", headers=admin, json={"role": "sdk"}) as r:
            assert r.status == 201, await r.text()
            return str((await r.json())["key"])


def _run_load(port: int, key: str, duration_s: float, rate: float | None,
              shape: str) -> dict[str, Any]:
    """The load generator in its own process (so it does not share our GIL)."""
    cmd = [sys.executable, "-m", "tests.bench.bench_service", "--load", str(port), key,
           str(duration_s), "" if rate is None else str(rate), "--shape", shape]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=duration_s + 120)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _measure(store: str, database_url: str | None, duration_s: float,
             profile_dir: Path | None, shape: str) -> dict[str, Any]:
    port = _free_port()
    log = ROOT / "out" / f"bench_service_{store}.log"
    log.parent.mkdir(exist_ok=True)
    profile = None if profile_dir is None else profile_dir / f"{store}.prof"
    proc = _start_server(port, database_url, profile, log)
    try:
        key = asyncio.run(_prepare(port, proc, log))
        saturated = _run_load(port, key, duration_s, None, shape)
        half = saturated["batches"] / saturated["elapsed_s"] / 2
        paced = _run_load(port, key, duration_s, half, shape)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM if profile is not None else signal.SIGKILL)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return {"saturation": saturated, "half_rate": paced, "half_rate_batches_per_s": half}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_service", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 s per phase instead of 30 s")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL",
                                                                 DEFAULT_PG))
    parser.add_argument("--profile", type=Path, metavar="DIR")
    parser.add_argument("--shape", choices=("users", "device"), default="users",
                        help="users: 100 distinct users a batch (default); device: one "
                             "user's 100 buffered fixes a batch")
    parser.add_argument("--load", nargs=4, metavar=("PORT", "KEY", "SECONDS", "RATE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load:
        port, key, seconds, rate = args.load
        result = asyncio.run(_load(int(port), key, float(seconds),
                                   float(rate) if rate else None, args.shape))
        print(json.dumps(result))
        return 0

    duration = 5.0 if args.quick else 30.0
    shape = ("100 distinct users a batch" if args.shape == "users"
             else "one user's 100 fixes a batch")
    print(f"HTTP service: POST /v1/pings, {BATCH} pings a batch ({shape}), {USERS} users "
          f"({WALKERS:.0%} walking into Forum, the rest far from venues), loopback, "
          f"{duration:g} s a phase; server and load generator share this machine's "
          f"{os.cpu_count()} cores")
    results: dict[str, Any] = {}
    stores: list[tuple[str, str | None]] = [("embedded", None)]
    if not args.no_postgres:
        stores.append(("postgres", args.database_url))
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    for store, url in stores:
        db_url = url
        name = ""
        if url is not None:
            name = f"geopush_bench_{uuid.uuid4().hex[:8]}"
            asyncio.run(_admin(url, f'CREATE DATABASE "{name}"'))
            db_url = f"{url.rpartition('/')[0]}/{name}"
        try:
            results[store] = _measure(store, db_url, duration, args.profile, args.shape)
        finally:
            if url is not None:
                asyncio.run(_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(f"{'store':<10} {'pings/s (saturated)':>20} {'target':>9} {'':>4}  "
          f"{'p50 ms':>7} {'p99 ms':>7} {'at batches/s':>12}  {'errors':>6}")
    for store, r in results.items():
        sat, half = r["saturation"], r["half_rate"]
        rate_ok = sat["pings_per_s"] >= TARGETS[store]
        p99_ok = half["p99_ms"] <= P99_TARGET_MS
        print(f"{store:<10} {sat['pings_per_s']:>20,.0f} {TARGETS[store]:>9,.0f} "
              f"{'PASS' if rate_ok else 'FAIL':>4}  {half['p50_ms']:>7.1f} "
              f"{half['p99_ms']:>7.1f} {r['half_rate_batches_per_s']:>12.1f}  "
              f"{sat['errors'] + half['errors']:>6}  p99 {'PASS' if p99_ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
