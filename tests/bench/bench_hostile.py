"""A hostile tenant beside a well-behaved one: the well-behaved tenant's ping-batch
latency with and without the attacker, in one run of one server.

The server runs as its own process, on the embedded store and then on PostgreSQL (a
database of its own, dropped after), with two tenants (``victim`` and ``attacker``,
admin keys made at start-up), tuned as ``geopush serve`` tunes it, venue worker
processes and venue-write budgets at their defaults.
The victim has bench_service's set-up (Forum and a DWELL campaign) and posts batches of
100 pings at a fixed rate from bench_service's load generator (open loop, latency from
the scheduled send time), twice for the same duration: first alone, then while the
attacker, with its limits at their defaults, keeps at it:

- its largest allowed venue in place (a 19,999-vertex outline, ~800 KB), PUT again every
  second under a new name without waiting for the previous PUT's answer, so its
  tenant's index is rebuilt as often as the server lets it (its venue writes run one at
  a time, two more may wait, and its vertex budget runs out after ~20 s: 429s);
- a campaign whose body is the attacker's loop (``range(1000)`` inside ``range(1000)``)
  for users whose id starts with ``x`` — no sample user's, so it passes the creation
  check — with 20 of its users walking into that venue in every batch, 5 batches a
  second: each rebuilt campaign index renders it until the first render spends its
  budget, later ones fail at once;
- every two seconds: the issue's 600,000-vertex polygon (refused: 413 or 422), a
  campaign with ``{{ 9**64**64**64**64 }}`` (refused: 422) and a 10 MB campaign (413).

Printed, per store: the victim's p50 / p99 alone and under attack, the ratio of the
p99s (target: at most 2), the attacker's answers by status, and the CPU time of the
server process and of its venue worker processes.

Usage: ``python -m tests.bench.bench_hostile [--quick] [--rate BATCHES_PER_S]
[--store embedded|postgres|both] [--database-url URL] [--calm]``; ``--calm`` keeps
the attacker idle in the second phase, which measures how far two calm phases differ on
this machine (the noise floor of the ratio).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from tests.bench.bench_service import DEFAULT_PG, ROOT, _forum, set_up_forum
from tests.server.serve import free_port

VICTIM_KEY = "bench-hostile-victim-admin-0123456789"
ATTACKER_KEY = "bench-hostile-attacker-admin-0123456789"
P99_RATIO_TARGET = 2.0

_SERVER = """
import sys
from aiohttp import web
from server.app import create_app
from server.auth import Role, hash_key, new_key_id
from server.cli.serve import _freeze_startup_objects
from server.settings import load_settings
from server.api.context import STORE

port, url = int(sys.argv[1]), sys.argv[2] or None
keys = dict(arg.split("=", 1) for arg in sys.argv[3:])

async def tenants(app):
    store = app[STORE]
    for tenant, key in keys.items():
        await store.ensure_tenant(tenant)
        await store.create_key(tenant, key_id=new_key_id(), key_hash=hash_key(key),
                               role=Role.ADMIN, name="bench")

settings = load_settings(port=port, rate_sdk_per_s=1e6, rate_sdk_burst=1_000_000,
                         rate_admin_per_s=1e6, rate_admin_burst=1_000_000,
                         log_level="WARNING", database_url=url)
app = create_app(settings, announce=sys.stderr)
app.on_startup.append(tenants)
app.on_startup.append(_freeze_startup_objects)  # as geopush serve does
web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)
"""


def _outline(vertices: int, lat: float, lng: float, radius_m: float = 150.0,
             digits: int = 7) -> dict[str, Any]:
    m_lng = 111_320.0 * math.cos(math.radians(lat))
    ring = [[round(lng + radius_m * math.cos(2 * math.pi * i / vertices) / m_lng, digits),
             round(lat + radius_m * math.sin(2 * math.pi * i / vertices) / 111_320.0, digits)]
            for i in range(vertices)]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


class Attacker:
    """The attacker's requests, on its own connection pool; answers tallied by kind."""

    def __init__(self, base: str, lat: float, lng: float) -> None:
        self.base = base
        self.lat, self.lng = lat, lng
        self.headers = {"Authorization": f"Bearer {ATTACKER_KEY}"}
        self.answers: collections.Counter[str] = collections.Counter()
        self.ping_latencies: list[float] = []
        """Of its own ping batches, while its index is rebuilt every second."""
        self.venue_body = json.dumps({
            "type": "Feature", "properties": {"name": "@NAME@", "kind": "mall"},
            "geometry": _outline(19_998, lat, lng)}).encode()
        self.huge = json.dumps({"type": "Feature", "properties": {"name": "huge"},
                                "geometry": _outline(600_000, lat, lng, digits=6)}).encode()
        self.big_campaign = json.dumps({
            "id": "big", "trigger": {"event": "enter"},
            "name": "x" * 10_000_000,
            "variants": [{"id": "a", "title": "t", "body": "b"}]}).encode()
        self.put_latencies: list[float] = []
        """Of its accepted venue PUTs (validation, store, its index rebuilt)."""
        self.seq = 0
        self.t0 = time.time() - 600

    async def setup(self, session: aiohttp.ClientSession) -> None:
        await self._put_venue(session, "trap")
        trap = ("{% if user.user_id.startswith('x') %}{% for a in range(1000) %}"
                "{% for b in range(1000) %}{% endfor %}{% endfor %}{% endif %}Hi")
        async with session.post(f"{self.base}/v1/campaigns", headers=self.headers, json={
                "id": "trap", "status": "active", "trigger": {"event": "enter"},
                "venues": {"ids": ["trap"]},
                "variants": [{"id": "a", "title": "t", "body": trap}]}) as r:
            assert r.status == 201, await r.text()

    async def _put_venue(self, session: aiohttp.ClientSession, name: str) -> None:
        # Encoded once, the name put in by bytes: the attacker's client must not take
        # CPU from the victim's load generator on a small machine.
        body = self.venue_body.replace(b"@NAME@", name.encode())
        started = time.perf_counter()
        async with session.put(f"{self.base}/v1/venues/trap", data=body,
                               headers={**self.headers,
                                        "Content-Type": "application/json"}) as r:
            answer = await r.read()
            code = json.loads(answer)["error"]["code"] if r.status >= 400 else ""
            self.answers[f"PUT 20k-vertex venue: {r.status} {code}".rstrip()] += 1
        if r.status < 300:
            self.put_latencies.append(time.perf_counter() - started)

    async def _pings(self, session: aiohttp.ClientSession) -> None:
        self.seq += 1
        ts = self.t0 + self.seq
        pings = [{"user_id": f"x{self.seq}-{i}", "ts": ts, "lat": self.lat, "lng": self.lng,
                  "accuracy_m": 10.0} for i in range(20)]
        started = time.perf_counter()
        async with session.post(f"{self.base}/v1/pings", headers=self.headers,
                                json={"pings": pings}) as r:
            self.answers[f"POST pings into the trap: {r.status}"] += 1
            await r.read()
        self.ping_latencies.append(time.perf_counter() - started)

    async def _refused(self, session: aiohttp.ClientSession) -> None:
        json_headers = {**self.headers, "Content-Type": "application/json"}
        async with session.put(f"{self.base}/v1/venues/huge", headers=json_headers,
                               data=self.huge) as r:
            self.answers[f"PUT 600k-vertex venue: {r.status}"] += 1
            await r.read()
        async with session.post(f"{self.base}/v1/campaigns", headers=self.headers, json={
                "id": "pow", "trigger": {"event": "enter"},
                "variants": [{"id": "a", "title": "t",
                              "body": "{{ 9**64**64**64**64 }}"}]}) as r:
            self.answers[f"POST campaign 9**64**64**64**64: {r.status}"] += 1
            await r.read()
        async with session.post(f"{self.base}/v1/campaigns", headers=json_headers,
                                data=self.big_campaign) as r:
            self.answers[f"POST 10 MB campaign: {r.status}"] += 1
            await r.read()

    async def run(self, session: aiohttp.ClientSession, until: float) -> None:
        """Three loops at once: a venue PUT started every second (not waiting for the
        last one's answer), ping batches every 0.2 s, the refused requests every 2 s."""
        puts: set[asyncio.Task[None]] = set()

        async def venues() -> None:
            tick = 0
            while time.perf_counter() < until:
                task = asyncio.ensure_future(self._put_venue(session, f"trap {tick}"))
                puts.add(task)
                task.add_done_callback(puts.discard)
                tick += 1
                await asyncio.sleep(1.0)

        await asyncio.gather(venues(), _every(0.2, until, lambda: self._pings(session)),
                             _every(2.0, until, lambda: self._refused(session)))
        await asyncio.gather(*puts)


async def _every(period_s: float, until: float,
                 step: Callable[[], Awaitable[None]]) -> None:
    while time.perf_counter() < until:
        started = time.perf_counter()
        await step()
        await asyncio.sleep(max(0.0, period_s - (time.perf_counter() - started)))


async def _prepare_victim(base: str) -> str:
    async with aiohttp.ClientSession() as session:
        return await set_up_forum(session, base, {"Authorization": f"Bearer {VICTIM_KEY}"})


async def _victim_load(port: int, key: str, seconds: float, rate: float,
                       after: dict[str, Any] | None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "tests.bench.bench_service", "--load", str(port), key,
           str(seconds), str(rate)]
    if after is not None:
        cmd += ["--continue", repr(after["ts_origin"]), str(after["next_batch"])]
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{err.decode()}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{log.read_text()}")
            try:
                async with session.get(f"{base}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


def _cpu_s(pid: int) -> tuple[float, float]:
    """CPU seconds so far of the server process and of its child processes (the venue
    workers and multiprocessing's resource tracker), from /proc."""
    own, children = 0.0, 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that just ended
        used = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        if stat.parent.name == str(pid):
            own += used
        elif fields[1] == str(pid):
            children += used
    return own, children


async def _measure(seconds: float, rate: float, database_url: str | None,
                   calm: bool) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = ROOT / "out" / "bench_hostile_server.log"
    log.parent.mkdir(exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(port), database_url or "",
             f"victim={VICTIM_KEY}", f"attacker={ATTACKER_KEY}"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        await _wait_ready(base, proc, log)
        key = await _prepare_victim(base)
        _, lat, lng = _forum()
        attacker = Attacker(base, lat + 0.02, lng + 0.02)  # ~2 km from Forum
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await attacker.setup(session)  # its first venue write starts the workers
            warm = await _victim_load(port, key, 3.0, rate, None)
            cpu0 = _cpu_s(proc.pid)
            alone = await _victim_load(port, key, seconds, rate, warm)
            cpu1 = _cpu_s(proc.pid)
            until = time.perf_counter() + seconds + 1.0
            attack = asyncio.ensure_future(
                asyncio.sleep(seconds) if calm else attacker.run(session, until))
            await asyncio.sleep(1.0)  # the attack is under way before the clock starts
            hostile = await _victim_load(port, key, seconds, rate, alone)
            cpu2 = _cpu_s(proc.pid)
            await attack
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    own, puts = sorted(attacker.ping_latencies), sorted(attacker.put_latencies)
    return {"alone": alone, "attacked": hostile, "answers": dict(attacker.answers),
            "attacker_ping_p50_ms": 1000 * own[len(own) // 2] if own else math.nan,
            "attacker_ping_max_ms": 1000 * own[-1] if own else math.nan,
            "attacker_put_p50_ms": 1000 * puts[len(puts) // 2] if puts else math.nan,
            "attacker_put_max_ms": 1000 * puts[-1] if puts else math.nan,
            "cpu_alone_s": [b - a for a, b in zip(cpu0, cpu1, strict=True)],
            "cpu_attacked_s": [b - a for a, b in zip(cpu1, cpu2, strict=True)]}


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _run_store(store: str, seconds: float, rate: float, url: str,
               calm: bool) -> dict[str, Any]:
    """One store's measurement; PostgreSQL in a database of its own, dropped after."""
    if store == "embedded":
        return asyncio.run(_measure(seconds, rate, None, calm))
    name = f"geopush_bench_hostile_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(url, f'CREATE DATABASE "{name}"'))
    try:
        return asyncio.run(_measure(seconds, rate, f"{url.rpartition('/')[0]}/{name}",
                                    calm))
    finally:
        asyncio.run(_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _report(store: str, r: dict[str, Any]) -> None:
    alone, attacked = r["alone"], r["attacked"]
    ratio = attacked["p99_ms"] / alone["p99_ms"]
    print(f"{store}:")
    print(f"  {'phase':<14} {'batches':>8} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'CPU s: server':>14} {'workers':>8}")
    for name, phase, cpu in (("victim alone", alone, r["cpu_alone_s"]),
                             ("under attack", attacked, r["cpu_attacked_s"])):
        print(f"  {name:<14} {phase['batches']:>8,} {phase['errors']:>6} "
              f"{phase['p50_ms']:>8.1f} {phase['p99_ms']:>8.1f} {cpu[0]:>14.1f} "
              f"{cpu[1]:>8.1f}")
    print(f"  p99 under attack / alone: {ratio:.2f} (target <= {P99_RATIO_TARGET:g}: "
          f"{'PASS' if ratio <= P99_RATIO_TARGET else 'FAIL'})")
    print("  attacker's answers: " + "; ".join(f"{k} x{v}" for k, v in
                                               sorted(r["answers"].items())))
    print(f"  its accepted venue PUTs: p50 {r['attacker_put_p50_ms']:.0f} ms, max "
          f"{r['attacker_put_max_ms']:.0f} ms; its own ping batches while its index is "
          f"rebuilt (they go on with the previous index): p50 "
          f"{r['attacker_ping_p50_ms']:.1f} ms, max {r['attacker_ping_max_ms']:.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_hostile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 s per phase instead of 30 s")
    parser.add_argument("--rate", type=float, default=20.0,
                        help="the victim's batches of 100 pings per second (default 20)")
    parser.add_argument("--store", choices=("embedded", "postgres", "both"),
                        default="both")
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL",
                                                                 DEFAULT_PG),
                        help="a PostgreSQL server (a database is created there and dropped)")
    parser.add_argument("--calm", action="store_true",
                        help="the attacker sets up but stays idle in the second phase: "
                             "the ratio of two calm phases, this machine's noise floor")
    args = parser.parse_args(argv)
    seconds = 10.0 if args.quick else 30.0
    stores = ["embedded", "postgres"] if args.store == "both" else [args.store]
    print(f"Hostile tenant: the victim posts {args.rate:g} batches of 100 pings a second "
          f"for {seconds:g} s alone, then {seconds:g} s beside the attacker; "
          f"{os.cpu_count()} cores shared with the load generators", flush=True)
    for store in stores:
        _report(store, _run_store(store, seconds, args.rate, args.database_url, args.calm))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
