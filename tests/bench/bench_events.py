"""Behaviour events benchmark: ``POST /v1/events`` over loopback against ``geopush serve``.

The server runs as its own process (embedded store, then PostgreSQL in a fresh
database); the load generator is another process on asyncio transports (the lean
client of :mod:`tests.bench.bench_service`), 16 requests in flight, every batch 100
new events (a unique ``event_id`` each) of 100 distinct users from a pool of 10,000:
views, adds to cart and purchases of items in 12 categories, dated within the last hour.
Every event is stored and folded into its user's features (no duplicates: the answer's
``stored`` is counted, and must equal what was sent).

Baseline, measured in the same run against the same server: the same requests with an
empty ``events`` array (HTTP, authentication, rate limit, JSON, the answer), so the
printed ratio says what 100 events cost on top of the floor of a request. The server
process's CPU time per request is printed too (from ``/proc``): on a machine shared
with other work it moves far less than the rates do, and its difference between the
two phases is what 100 events cost the server. On PostgreSQL, the CPU of the
database's backends (found by process title, when PostgreSQL runs on this machine) is
printed the same way.

Targets (issue 16): >= 50k events/s embedded, >= 20k events/s PostgreSQL.
Usage: ``python -m tests.bench.bench_events [--quick] [--no-postgres] [--profile]``
(``--profile``: the server runs under cProfile, its 25 costliest functions are printed;
the rates are then not comparable); the exit status is 0 when the measurement ran
(PASS/FAIL against the targets is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
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
import orjson

from tests.bench._common import ROOT
from tests.bench.bench_service import (
    ADMIN_KEY,
    DEFAULT_PG,
    _admin,
    _HttpConnection,
    _start_server,
)
from tests.server.serve import free_port, wait_up

BATCH = 100
CONCURRENCY = 16
USERS = 10_000
TARGETS = {"embedded": 50_000.0, "postgres": 20_000.0}
_CATEGORIES = ("sports", "baby", "food_delivery", "books", "garden", "beauty", "toys",
               "electronics", "fashion", "diapers", "maternity", "travel")
_KINDS = ("view",) * 6 + ("add_to_cart",) * 2 + ("purchase",)


class EventStream:
    """Batches of new events: batch ``seq`` holds users ``seq*100 .. +99`` (mod the pool),
    event ids ``<run>-<seq>-<j>``, times within the hour before the run."""

    def __init__(self, run: str, empty: bool) -> None:
        self.run, self.empty, self.seq = run, empty, 0
        self.t0 = time.time() - 3600
        self.rng = random.Random(7)

    def next_body(self) -> bytes:
        if self.empty:
            return b'{"events":[]}'
        seq, rng = self.seq, self.rng
        self.seq += 1
        events = []
        for j in range(BATCH):
            item = rng.randrange(500)
            events.append({
                "event_id": f"{self.run}-{seq}-{j}", "user_id": f"u{(seq * BATCH + j) % USERS}",
                "ts": self.t0 + (seq % 3000) + j * 0.01, "kind": rng.choice(_KINDS),
                "item": {"id": f"sku-{item}", "name": f"Item {item}",
                         "category": _CATEGORIES[item % len(_CATEGORIES)], "price": 9.5}})
        return orjson.dumps({"events": events})


async def _load(port: int, key: str, duration_s: float, empty: bool) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    head = (f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: ").encode()
    stream = EventStream(uuid.uuid4().hex[:8], empty)
    connections = []
    for _ in range(CONCURRENCY):
        _, conn = await loop.create_connection(_HttpConnection, "127.0.0.1", port)
        connections.append(conn)
    tally = {"batches": 0, "errors": 0, "stored": 0, "rejected": 0}
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    end = start + duration_s

    async def worker(conn: _HttpConnection) -> None:
        while time.perf_counter() < end:
            body = stream.next_body()
            status, answer = await conn.request(
                head + str(len(body)).encode() + b"\r\n\r\n" + body)
            if status != 200:
                tally["errors"] += 1
                continue
            doc = orjson.loads(answer)
            tally["batches"] += 1
            tally["stored"] += doc["stored"]
            tally["rejected"] += len(doc["rejected"])

    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    for conn in connections:
        if conn.transport is not None:
            conn.transport.close()
    cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {**tally, "elapsed_s": elapsed, "batches_per_s": tally["batches"] / elapsed,
            "events_per_s": tally["stored"] / elapsed, "load_cpu_pct": 100 * cpu_s / elapsed}


def _server_cpu_s(pid: int) -> float | None:
    """The process's user + system CPU seconds so far (Linux ``/proc``), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _database_cpu_s(database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving ``database`` (found by
    its process title on this machine; empty when PostgreSQL runs elsewhere)."""
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            cpu = _server_cpu_s(int(entry.name))
            if cpu is not None:
                found[int(entry.name)] = cpu
    return found


def _run_load(port: int, key: str, duration_s: float, *, empty: bool,
              server_pid: int, database: str | None = None) -> dict[str, Any]:
    cpu0 = _server_cpu_s(server_pid)
    db0 = _database_cpu_s(database) if database else {}
    cmd = [sys.executable, "-m", "tests.bench.bench_events", "--load", str(port), key,
           str(duration_s), "empty" if empty else "events"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False,
                         timeout=duration_s + 120)
    if out.returncode != 0:
        raise RuntimeError(f"the load generator failed ({out.returncode}):\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    cpu1 = _server_cpu_s(server_pid)
    requests = result["batches"] + result["errors"]
    result["server_cpu_ms"] = (None if cpu0 is None or cpu1 is None or not requests
                               else 1000 * (cpu1 - cpu0) / requests)
    db1 = _database_cpu_s(database) if database else {}
    # A backend that began during the phase counts from zero (one that ended is lost).
    result["database_cpu_ms"] = (None if not db1 or not requests else 1000 * sum(
        cpu - db0.get(pid, 0.0) for pid, cpu in db1.items()) / requests)
    return result


async def _sdk_key(port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session, session.post(
            f"{base}/v1/keys", headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            json={"role": "sdk"}) as r:
        assert r.status == 201, await r.text()
        return str((await r.json())["key"])


def _measure(store: str, database_url: str | None, duration_s: float,
             profile: bool, database: str | None = None) -> dict[str, Any]:
    port = free_port()
    log = ROOT / "out" / f"bench_events_{store}.log"
    log.parent.mkdir(exist_ok=True)
    stats = ROOT / "out" / f"bench_events_{store}.prof"
    proc = _start_server(port, database_url, stats if profile else None, log)
    try:
        asyncio.run(wait_up(f"http://127.0.0.1:{port}", proc, path="/readyz", log=log))
        key = asyncio.run(_sdk_key(port))
        baseline = _run_load(port, key, duration_s, empty=True, server_pid=proc.pid,
                             database=database)
        events = _run_load(port, key, duration_s, empty=False, server_pid=proc.pid,
                           database=database)
    finally:
        _stop(proc, profile)
    if profile:
        pstats.Stats(str(stats)).sort_stats("tottime").print_stats(25)
    sent = events["batches"] * BATCH
    print(f"  {store}: empty batches {baseline['batches_per_s']:,.0f}/s (load generator "
          f"{baseline['load_cpu_pct']:.0f} % of a core); 100-event batches "
          f"{events['batches_per_s']:,.0f}/s, {events['stored']:,} of {sent:,} events "
          f"stored, {events['rejected']} rejected, {events['errors']} errors (load "
          f"generator {events['load_cpu_pct']:.0f} %); server CPU per request: "
          f"{_ms(baseline['server_cpu_ms'])} empty, {_ms(events['server_cpu_ms'])} with "
          f"100 events" + _database_line(baseline, events), flush=True)
    return {"baseline": baseline, "events": events}


def _database_line(baseline: dict[str, Any], events: dict[str, Any]) -> str:
    if events.get("database_cpu_ms") is None:
        return ""
    return (f"; PostgreSQL backends' CPU per request: {_ms(baseline['database_cpu_ms'])} "
            f"empty, {_ms(events['database_cpu_ms'])} with 100 events")


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f} ms"


def _stop(proc: subprocess.Popen[bytes], profiled: bool) -> None:
    """Kill the server; a profiled one is asked to stop (it writes its profile)."""
    if proc.poll() is not None:
        return
    if profiled:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
            return
        except subprocess.TimeoutExpired:
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_events", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 s per phase instead of 20 s")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="run the server under cProfile and print where it spends")
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL",
                                                                 DEFAULT_PG))
    parser.add_argument("--load", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load:
        port, key, seconds, mode = args.load
        print(json.dumps(asyncio.run(_load(int(port), key, float(seconds), mode == "empty"))))
        return 0
    duration = 5.0 if args.quick else 20.0
    print(f"Behaviour events: POST /v1/events, {BATCH} new events a batch of {BATCH} "
          f"distinct users ({USERS:,} in the pool), {CONCURRENCY} requests in flight, "
          f"loopback, {duration:g} s a phase; server and load generator share this "
          f"machine's {os.cpu_count()} cores")
    stores: list[tuple[str, str | None]] = [("embedded", None)]
    if not args.no_postgres:
        stores.append(("postgres", args.database_url))
    results: dict[str, Any] = {}
    for store, url in stores:
        db_url, name = url, ""
        if url is not None:
            name = f"geopush_bench_{uuid.uuid4().hex[:8]}"
            asyncio.run(_admin(url, f'CREATE DATABASE "{name}"'))
            db_url = f"{url.rpartition('/')[0]}/{name}"
        try:
            results[store] = _measure(store, db_url, duration, args.profile, name or None)
        finally:
            if url is not None:
                asyncio.run(_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(f"{'store':<10} {'events/s':>10} {'target':>8} {'':>4}  {'batches/s':>9}  "
          f"{'empty batches/s':>15}  {'ratio':>5}  {'server ms/100 events':>20}  "
          f"{'PostgreSQL ms/100 events':>24}")
    for store, r in results.items():
        ev, base = r["events"], r["baseline"]
        ok = ev["events_per_s"] >= TARGETS[store]
        print(f"{store:<10} {ev['events_per_s']:>10,.0f} {TARGETS[store]:>8,.0f} "
              f"{'PASS' if ok else 'FAIL':>4}  {ev['batches_per_s']:>9,.0f}  "
              f"{base['batches_per_s']:>15,.0f}  "
              f"{ev['batches_per_s'] / base['batches_per_s']:>5.2f}  "
              f"{_extra_ms(ev, base, 'server_cpu_ms'):>20}  "
              f"{_extra_ms(ev, base, 'database_cpu_ms'):>24}")
    print("ratio: 100-event batches/s over empty batches/s (the floor of a request); "
          "server ms/100 events: the server's CPU per 100-event request less its CPU per "
          "empty one; PostgreSQL ms/100 events: the same for the database's backends "
          "(WAL writer and checkpointer not counted)")
    return 0


def _extra_ms(events: dict[str, Any], baseline: dict[str, Any], key: str) -> str:
    if events.get(key) is None or baseline.get(key) is None:
        return "-"
    return f"{events[key] - baseline[key]:.2f}"


if __name__ == "__main__":
    raise SystemExit(main())
