"""HTTP service benchmark: ``POST /v1/pings`` over loopback against ``geopush serve``.

The server runs as its own process (embedded store, then PostgreSQL in a fresh
database); the load generator is another process: a lean HTTP/1.1 keep-alive client on
asyncio's transports, sending bodies made from templates built before the clock
(:class:`Stream`), ~35 µs of its CPU a batch where aiohttp's client and ``json.dumps``
took ~400 µs. Every batch holds 100 pings; users come from a pool of 10,000: 90 % stand
still 2-12 km from Forum (no venue near), 10 % are walkers: each starts 60-140 m south
of Forum's centre (outside it) and walks north at 1.4 m/s of ts time into the mall and
stays there (``Stream._north_m``), so visits open throughout the run (ENTER, decided
against an active DWELL campaign). Two batch shapes (``--shape``):
``users`` (default), 100 distinct users a batch (a gateway relaying many devices: 100
presence records loaded and saved per batch; a user's fixes are 0.2 s apart in ts);
``device``, one user's 100 buffered fixes 1 s apart (an SDK uploading its buffer). Two
phases per store:

1. saturation: 16 requests in flight for the whole duration (closed loop) -> pings/s;
2. latency: open loop at half that rate (batches sent on schedule whatever the answers
   do, over up to 64 connections, queued when all are busy), latency measured from the
   scheduled send time -> p50 / p99 per batch. The stream goes on where phase 1
   stopped, so every user's ts keeps increasing (a replayed ts would be skipped as
   late, and cost the server nothing).

Per phase the bench prints what the server did with the pings (accepted, rejected,
ignored by rule: a workload the engine skips shows there) and the load generator's
CPU time (``getrusage``) as a share of one core.

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
import collections
import json
import math
import os
import random
import resource
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from tests.server.serve import free_port, serve_command, wait_up

ROOT = Path(__file__).resolve().parents[2]
VENUES = ROOT / "fixtures" / "venues" / "helsinki_venues.geojson"
FORUM_OSM_ID = "osm:way/289767497"
ADMIN_KEY = "bench-service-admin-key-0123456789"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
USERS = 10_000
WALKERS = 0.10
BATCH = 100
CONCURRENCY = 16
OPEN_LOOP_POOL = 64  # connections the open loop may have busy at once
NOISE_DRAWS = 4  # position noise draws per block of 100 users (shape users)
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
    user's 100 buffered fixes, 1 s apart (an SDK uploading its buffer).

    Bodies come from templates built by :meth:`prepare` before the clock starts: a
    template is a body with named ``%`` slots for the ts and for the walkers' latitude,
    so a batch costs one bytes ``%`` and a repr per walker (~5 µs) instead of 200
    ``random.gauss`` and a ``json.dumps`` (~300 µs). A template fixes the 3 m position
    noise it was drawn with: a ``users`` block of 100 users has :data:`NOISE_DRAWS`
    draws, used in turn round after round; a ``device`` user has one. ``t0`` and
    ``first`` continue an earlier stream (the latency phase goes on where the saturation
    phase stopped, so that no user's ts goes back and the server does the same work in
    both)."""

    def __init__(self, shape: str = "users", seed: int = 1, t0: float | None = None,
                 first: int = 0) -> None:
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
        self.start_m = [rng.uniform(60.0, 140.0) for _ in range(USERS)]
        self.rng = rng
        self.seq = first
        self.t0 = time.time() - (60.0 if shape == "users" else 250.0) if t0 is None else t0
        # template key -> (body with slots, (slot, latitude noise) of each walker's ping)
        self._templates: dict[tuple[int, int], tuple[bytes, tuple[tuple[int, float], ...]]] = {}
        self._device_ts: dict[int, dict[bytes, bytes]] = {}

    def _north_m(self, u: int, ts: float) -> float:
        """Where walker ``u`` is at ``ts``, metres north of Forum's centre: from its start
        south of the mall, 1.4 m/s north since ``t0``, then standing at the centre. A
        function of ts, so the walk is plausible (no teleport) at any batch rate."""
        return min(-self.start_m[u] + 1.4 * (ts - self.t0), 0.0)

    def _ping(self, u: int, slot: int, walkers: list[tuple[int, float]]) -> bytes:
        """User ``u``'s fix with its ts in slot ``t`` (users) or ``t<slot>`` (device);
        a walker's latitude goes in slot ``w<slot>`` (it moves), the others stand at
        home."""
        # 1 m of noise where a user's fixes are 0.2 s apart (the users shape, and the
        # walkers' steps): 3 m of independent noise per fix would look like 40 m/s hops.
        sigma = 1.0 if self.walker[u] or self.shape == "users" else 3.0
        lat_noise = self.rng.gauss(0, sigma) / self.m_lat
        lng_noise = self.rng.gauss(0, sigma) / self.m_lng
        ts = "%(t)s" if self.shape == "users" else f"%(t{slot})s"
        if self.walker[u]:
            walkers.append((slot, lat_noise))
            lat, lng = f"%(w{slot})s", repr(self.lng0 + lng_noise)
        else:
            lat, lng = repr(self.home[u][0] + lat_noise), repr(self.home[u][1] + lng_noise)
        return (f'{{"user_id": "u{u}", "ts": {ts}, "lat": {lat}, "lng": {lng}, '
                f'"accuracy_m": 10.0}}').encode()

    def _key(self, i: int) -> tuple[int, int]:
        """Batch ``i``'s template: (block of users, noise draw) or (user, 0)."""
        if self.shape == "users":
            return i % (USERS // BATCH), (i // (USERS // BATCH)) % NOISE_DRAWS
        return i % USERS, 0

    def _template(self, key: tuple[int, int]) -> tuple[bytes, tuple[tuple[int, float], ...]]:
        walkers: list[tuple[int, float]] = []
        if self.shape == "users":
            pings = [self._ping(u, k, walkers)
                     for k, u in enumerate(range(key[0] * BATCH, (key[0] + 1) * BATCH))]
        else:
            pings = [self._ping(key[0], k, walkers) for k in range(BATCH)]
        return b'{"pings": [' + b", ".join(pings) + b"]}", tuple(walkers)

    def prepare(self) -> int:
        """Build every template (before the clock); the number built."""
        keys = {self._key(i) for i in range(self.seq, self.seq + USERS * NOISE_DRAWS)}
        for key in keys - self._templates.keys():
            self._templates[key] = self._template(key)
        return len(self._templates)

    def next_body(self) -> bytes:
        i = self.seq
        self.seq += 1
        key = self._key(i)
        if (template := self._templates.get(key)) is None:  # not prepared: on the clock
            template = self._templates[key] = self._template(key)
        body, walkers = template
        if self.shape == "users":
            ts = round(self.t0 + i * 0.002, 3)
            slots = {b"t": repr(ts).encode()}
            first = self._key(i)[0] * BATCH
            for slot, noise in walkers:
                north = self._north_m(first + slot, ts)
                slots[b"w%d" % slot] = repr(self.lat0 + north / self.m_lat + noise).encode()
            return body % slots
        rounds = i // USERS
        if (stamps := self._device_ts.get(rounds)) is None:
            start = self.t0 + rounds * BATCH
            stamps = {b"t%d" % k: repr(round(start + k, 3)).encode() for k in range(BATCH)}
            self._device_ts[rounds] = stamps
        if not walkers:
            return body % stamps
        slots = dict(stamps)
        user, start = self._key(i)[0], self.t0 + rounds * BATCH
        for slot, noise in walkers:
            north = self._north_m(user, start + slot)
            slots[b"w%d" % slot] = repr(self.lat0 + north / self.m_lat + noise).encode()
        return body % slots


class _HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time: the few lines of
    parsing a ``Content-Length`` answer need (aiohttp's client costs ~200 µs a request,
    which on a small machine is taken from the server under test)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._status = 0
        self._length = -1  # body bytes still awaited; -1 while reading the head
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        """Send ``data`` (a whole request); the future gets (status, body)."""
        assert self._waiter is None and self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        if self.closed:
            self._waiter.set_exception(ConnectionError("connection closed"))
        else:
            self.transport.write(data)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._length < 0:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self._buffer[:end]).split(b"\r\n")
            del self._buffer[:end + 4]
            self._status = int(lines[0].split(None, 2)[1])
            self._length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    self._length = int(value)
                elif name == b"transfer-encoding":
                    self._fail(RuntimeError(f"the bench client reads Content-Length "
                                            f"answers only, got {line.decode()!r}"))
                    return
        if len(self._buffer) < self._length:
            return
        body = bytes(self._buffer[:self._length])
        del self._buffer[:self._length]
        self._length = -1
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self._status, body))

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError(f"connection lost: {exc}"))


class _Tally:
    """What the server answered: latencies of the 200s, errors, and the pings it
    accepted, rejected or ignored (by reason), so a workload the server skips as late
    or duplicate shows up instead of passing for a fast server."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.accepted = 0
        self.rejected = 0
        self.ignored: collections.Counter[str] = collections.Counter()

    def record(self, status: int, body: bytes, latency_s: float) -> None:
        if status != 200:
            self.errors += 1
            return
        self.latencies.append(latency_s)
        doc = orjson.loads(body)
        self.accepted += doc["accepted"]
        self.rejected += len(doc["rejected"])
        self.ignored.update(doc.get("ignored") or {})


async def _load(  # noqa: PLR0915 - its closures share the connection and tallies
    port: int, key: str, duration_s: float, rate: float | None, *,
    shape: str, t0: float | None = None, first: int = 0,
) -> dict[str, Any]:
    """Send batches for ``duration_s``: closed loop with CONCURRENCY requests in flight
    (``rate`` None) or open loop at ``rate`` batches/s, latency from the scheduled
    send time (a batch waits in a queue when every connection is busy)."""
    loop = asyncio.get_running_loop()
    head = (f"POST /v1/pings HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: ").encode()

    def request(body: bytes) -> bytes:
        return head + str(len(body)).encode() + b"\r\n\r\n" + body

    async def connect() -> _HttpConnection:
        _, conn = await loop.create_connection(_HttpConnection, "127.0.0.1", port)
        return conn

    started = time.perf_counter()
    stream = Stream(shape, t0=t0, first=first)
    templates = stream.prepare()
    connections = [await connect() for _ in range(OPEN_LOOP_POOL if rate else CONCURRENCY)]
    prep_s = time.perf_counter() - started
    tally = _Tally()

    async def exchange(conn: _HttpConnection, body: bytes,
                       scheduled: float) -> _HttpConnection:
        """One request; a lost connection is an error and is replaced."""
        try:
            status, answer = await conn.request(request(body))
        except ConnectionError:
            tally.errors += 1
            return await connect()
        tally.record(status, answer, time.perf_counter() - scheduled)
        return conn if not conn.closed else await connect()

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    end = start + duration_s
    if rate is None:
        async def worker(conn: _HttpConnection) -> None:
            while time.perf_counter() < end:
                body = stream.next_body()
                conn = await exchange(conn, body, time.perf_counter())

        await asyncio.gather(*(worker(c) for c in connections))
    else:
        queue: asyncio.Queue[tuple[bytes, float] | None] = asyncio.Queue()

        async def sender(conn: _HttpConnection) -> None:
            while (item := await queue.get()) is not None:
                conn = await exchange(conn, *item)

        senders = [asyncio.create_task(sender(c)) for c in connections]
        n = 0
        while (scheduled := start + n / rate) < end:
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((stream.next_body(), scheduled))
            n += 1
        for _ in senders:
            queue.put_nowait(None)
        await asyncio.gather(*senders)
    elapsed = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    for conn in connections:
        if conn.transport is not None:
            conn.transport.close()
    latencies = sorted(tally.latencies)

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 \
            if latencies else float("nan")

    cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    ok = len(latencies)
    return {"batches": ok, "errors": tally.errors, "elapsed_s": elapsed,
            "pings_per_s": ok * BATCH / elapsed, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "accepted": tally.accepted, "rejected": tally.rejected,
            "ignored": dict(tally.ignored), "load_cpu_s": cpu_s,
            "load_cpu_pct": 100 * cpu_s / elapsed, "load_prep_s": prep_s,
            "templates": templates, "ts_origin": stream.t0, "next_batch": stream.seq}


# --------------------------------------------------------------------------- server side


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
    cmd = serve_command("--port", str(port), "--admin-key", ADMIN_KEY,
                        *(["--database-url", database_url] if database_url else []))
    if profile is not None:
        cmd = [sys.executable, "-c", _PROFILED, str(profile), *cmd[3:]]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


async def _prepare(port: int, proc: subprocess.Popen[bytes], log: Path) -> str:
    base = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    await wait_up(base, proc, path="/readyz", log=log)
    async with aiohttp.ClientSession() as session:
        return await set_up_forum(session, base, admin)


async def set_up_forum(session: aiohttp.ClientSession, base: str,
                       admin: dict[str, str]) -> str:
    """Forum and an active DWELL campaign on it, for the tenant of ``admin``; returns a
    new SDK key of that tenant (the load generator's)."""
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
              shape: str, *, after: dict[str, Any] | None = None) -> dict[str, Any]:
    """The load generator in its own process (so it does not share our GIL); ``after``
    (an earlier phase's result) makes the stream go on where that phase stopped."""
    cmd = [sys.executable, "-m", "tests.bench.bench_service", "--load", str(port), key,
           str(duration_s), "" if rate is None else str(rate), "--shape", shape]
    if after is not None:
        cmd += ["--continue", repr(after["ts_origin"]), str(after["next_batch"])]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False,
                         timeout=duration_s + 300)
    if out.returncode != 0:
        raise RuntimeError(f"the load generator failed ({out.returncode}):\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _print_phase(store: str, phase: str, r: dict[str, Any]) -> None:
    ignored = ", ".join(f"{k} {v:,}" for k, v in sorted(r["ignored"].items())) or "none"
    print(f"  {store} {phase}: {r['batches']:,} batches in {r['elapsed_s']:.1f} s; server "
          f"accepted {r['accepted']:,} pings, rejected {r['rejected']:,}, ignored: "
          f"{ignored}; load generator {r['load_cpu_s']:.1f} CPU s ({r['load_cpu_pct']:.0f} % "
          f"of a core), {r['templates']:,} body templates built in {r['load_prep_s']:.1f} s "
          f"before the clock", flush=True)


def _measure(store: str, database_url: str | None, duration_s: float,
             profile_dir: Path | None, shape: str) -> dict[str, Any]:
    port = free_port()
    log = ROOT / "out" / f"bench_service_{store}.log"
    log.parent.mkdir(exist_ok=True)
    profile = None if profile_dir is None else profile_dir / f"{store}.prof"
    proc = _start_server(port, database_url, profile, log)
    try:
        key = asyncio.run(_prepare(port, proc, log))
        saturated = _run_load(port, key, duration_s, None, shape)
        _print_phase(store, "saturation", saturated)
        half = saturated["batches"] / saturated["elapsed_s"] / 2
        paced = _run_load(port, key, duration_s, half, shape, after=saturated)
        _print_phase(store, "half rate", paced)
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
    parser.add_argument("--continue", nargs=2, dest="after", metavar=("TS_ORIGIN", "BATCH"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load:
        port, key, seconds, rate = args.load
        t0, first = (float(args.after[0]), int(args.after[1])) if args.after else (None, 0)
        result = asyncio.run(_load(int(port), key, float(seconds),
                                   float(rate) if rate else None, shape=args.shape,
                                   t0=t0, first=first))
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
          f"{'p50 ms':>7} {'p99 ms':>7} {'at batches/s':>12}  {'errors':>6}  "
          f"{'p99':>8}  {'load CPU % (sat/half)':>21}")
    for store, r in results.items():
        sat, half = r["saturation"], r["half_rate"]
        rate_ok = sat["pings_per_s"] >= TARGETS[store]
        p99_ok = half["p99_ms"] <= P99_TARGET_MS
        print(f"{store:<10} {sat['pings_per_s']:>20,.0f} {TARGETS[store]:>9,.0f} "
              f"{'PASS' if rate_ok else 'FAIL':>4}  {half['p50_ms']:>7.1f} "
              f"{half['p99_ms']:>7.1f} {r['half_rate_batches_per_s']:>12.1f}  "
              f"{sat['errors'] + half['errors']:>6}  p99 {'PASS' if p99_ok else 'FAIL'}  "
              f"{sat['load_cpu_pct']:>10.0f} / {half['load_cpu_pct']:<8.0f}")
    print("load CPU %: the load generator's own CPU time over the phase, in % of one "
          "core (taken from the cores the server runs on)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
