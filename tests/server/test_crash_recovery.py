"""kill -9 under load: nothing acknowledged is lost, nothing is stored twice.

A real ``geopush serve`` process on a fresh PostgreSQL database takes batches of pings
(a generated walk of 150 users: half walk into Forum and stay past the DWELL threshold,
half stroll far from it) from 8 concurrent client lanes. After a share of the batches
is acknowledged the server gets SIGKILL while requests are in flight; it is restarted
on the same database; every batch without a 2xx is retried, and a share of the
acknowledged ones is sent again (a client that lost the answer).

Then, in PostgreSQL: every acknowledged ping is stored, and exactly once per (tenant,
user, ts); events, decisions and deliveries are unique on their keys; each user's
events read ENTER DWELL EXIT (one visit, Forum); and the
events are exactly those of an uncrashed reference run of the same stream.

Each user's pings travel in one lane, in time order, so the stream's outcome does not
depend on scheduling (a per-user reordering would make pings late, by design).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from geo.distance import frame_scales
from geo.latlng import LatLng
from tests.server.serve import ROOT, free_port, serve_command, wait_up
from tests.server.waiting import eventually
from triggers.trajectory import Go, PingColumns, TrajectorySpec, Wait, generate_many

pytestmark = [pytest.mark.needs_postgres, pytest.mark.asyncio(loop_scope="session")]

VENUES = ROOT / "fixtures" / "venues" / "helsinki_venues.geojson"
FORUM_OSM_ID = "osm:way/289767497"
ADMIN_KEY = "crash-test-admin-key-0123456789"
USERS = 150
LANES = 8
BATCH = 100
KILL_AFTER = 0.4
"""SIGKILL once this share of the batches has been acknowledged."""
RETRIES_WHEN_UP = 3
"""Failed sends a batch may have while the server is up: the one in flight at the kill,
and slow answers on a loaded machine. While the server is down a lane waits for it."""
READY_WAIT_S = 60.0
"""How long a (re)started server may take to answer /readyz on a loaded machine; a
server that is up never makes a test wait this long."""


def _forum() -> tuple[dict[str, Any], LatLng]:
    features = json.loads(VENUES.read_text())["features"]
    [feature] = [f for f in features if f["properties"]["id"] == FORUM_OSM_ID]
    feature = {**feature, "id": "forum", "properties": {**feature["properties"], "id": "forum"}}
    ring = feature["geometry"]["coordinates"][0][:-1]
    centre = LatLng(sum(p[1] for p in ring) / len(ring), sum(p[0] for p in ring) / len(ring))
    return feature, centre


def _offset(origin: LatLng, north_m: float, east_m: float) -> LatLng:
    kx, ky = frame_scales(origin.lat)  # metres per degree of longitude, of latitude
    return LatLng(origin.lat + north_m / float(ky), origin.lng + east_m / float(kx))


def _lanes(end: float, centre: LatLng) -> list[list[list[dict[str, Any]]]]:
    """Per lane, its batches (each ≤ 100 distinct pings, its users' pings in ts order);
    the last ping is dated ``end``."""
    specs = []
    for i in range(USERS):
        if i % 2 == 0:  # into Forum, 330 s inside (DWELL at 300 s), out again
            start = _offset(centre, -150 - (i % 7) * 5, (i % 5) * 3)
            route: tuple[Go | Wait, ...] = (Go(centre), Wait(330),
                                            Go(_offset(centre, 0, 150)), Wait(120))
        else:  # 2-3 km away: no venue
            start = _offset(centre, 2000 + i * 7, -1500)
            route = (Go(_offset(start, 300, 0)),)
        specs.append(TrajectorySpec(f"user{i:03d}", start, route, start_ts=float(i % 10),
                                    interval_s=5.0, noise_m=3.0, accuracy_m=(5.0, 20.0)))
    cols: PingColumns = generate_many(specs, seed=11)
    shift = end - float(cols.ts.max())
    lanes: list[list[dict[str, Any]]] = [[] for _ in range(LANES)]
    for k in range(len(cols)):
        user = str(cols.user_id[k])
        lanes[int(user[4:]) % LANES].append({
            "user_id": user, "ts": round(float(cols.ts[k]) + shift, 3),
            "lat": float(cols.lat[k]), "lng": float(cols.lng[k]),
            "accuracy_m": float(cols.accuracy_m[k])})
    out = []
    for pings in lanes:
        pings.sort(key=lambda p: (p["ts"], p["user_id"]))
        out.append([pings[j:j + BATCH] for j in range(0, len(pings), BATCH)])
    return out


@dataclass
class Server:
    url: str
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        env = {**os.environ, "GEOPUSH_RATE_SDK_PER_S": "1000000",
               "GEOPUSH_RATE_SDK_BURST": "1000000", "GEOPUSH_RATE_ADMIN_PER_S": "1000",
               "GEOPUSH_LOG_LEVEL": "WARNING"}
        self.starts += 1
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                serve_command("--database-url", self.url, "--port", str(self.port),
                              "--admin-key", ADMIN_KEY),
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    async def wait_ready(self) -> None:
        assert self.proc is not None
        await wait_up(f"http://127.0.0.1:{self.port}", self.proc, path="/readyz",
                      timeout_s=READY_WAIT_S, log=self.log)


@contextmanager
def running(url: str, log: Path) -> Iterator[Server]:
    server = Server(url, free_port(), log)
    try:
        server.start()
        yield server
    finally:
        server.kill()


@asynccontextmanager
async def fresh_database(admin_url: str) -> AsyncIterator[str]:
    name = f"geopush_crash_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@dataclass
class Load:
    lanes: list[list[list[dict[str, Any]]]]
    acked: set[tuple[int, int]] = field(default_factory=set)
    failures: int = 0
    resent: int = 0


async def _setup(session: aiohttp.ClientSession, base: str, feature: dict[str, Any]) -> str:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with session.put(f"{base}/v1/venues/forum", json=feature, headers=admin) as resp:
        assert resp.status == 201, await resp.text()
    async with session.post(f"{base}/v1/campaigns", headers=admin, json={
            "id": "hello", "name": "Hello", "status": "active",
            "trigger": {"event": "dwell", "dwell_s": 300}, "venues": {"ids": ["forum"]},
            "variants": [{"id": "a", "title": "Hi", "body": "Welcome to Forum"}]}) as resp:
        assert resp.status == 201, await resp.text()
    async with session.post(f"{base}/v1/keys", headers=admin, json={"role": "sdk"}) as resp:
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["key"])


async def _post(session: aiohttp.ClientSession, base: str, key: str,
                batch: list[dict[str, Any]]) -> bool:
    try:
        async with session.post(f"{base}/v1/pings", json={"pings": batch},
                                headers={"Authorization": f"Bearer {key}"}) as resp:
            body = await resp.read()
            if 200 <= resp.status < 300:
                answer = json.loads(body)
                assert answer["accepted"] == len(batch) and answer["rejected"] == [], answer
                return True
            return False
    except (TimeoutError, aiohttp.ClientError):
        return False


async def _drive(server: Server, key: str, load: Load, *, kill: bool) -> None:
    """Send every lane's batches in order, each until it gets a 2xx; with ``kill``,
    SIGKILL the server once KILL_AFTER of the batches are acknowledged and restart it.

    A send that fails while the server is down waits until it answers /readyz again; a
    batch that fails more than RETRIES_WHEN_UP times while it is up fails the test."""
    base = f"http://127.0.0.1:{server.port}"
    total = sum(len(lane) for lane in load.lanes)
    killed = asyncio.Event()
    up = asyncio.Event()
    up.set()  # the caller waited for /readyz

    async def lane(n: int, session: aiohttp.ClientSession) -> None:
        for b, batch in enumerate(load.lanes[n]):
            failed_when_up = 0
            while True:
                sent_when_up = up.is_set()
                if await _post(session, base, key, batch):
                    break
                load.failures += 1
                if sent_when_up:
                    failed_when_up += 1
                assert failed_when_up <= RETRIES_WHEN_UP, (
                    f"lane {n}, batch {b}: {failed_when_up} sends failed with the server up")
                await up.wait()
                # A client's pause between retries (part of the load), not a wait for a state.
                await asyncio.sleep(0.05)
            load.acked.add((n, b))
            if kill and not killed.is_set() and len(load.acked) >= KILL_AFTER * total:
                killed.set()  # the other lanes have requests in flight right now
                up.clear()
                server.kill()

    async def restarter() -> None:
        await killed.wait()
        server.start()
        await server.wait_ready()
        up.set()

    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=LANES + 2)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        tasks = [asyncio.create_task(lane(n, session)) for n in range(LANES)]
        if kill:
            tasks.append(asyncio.create_task(restarter()))
        await asyncio.gather(*tasks)
        # A client that lost some answers sends those batches again: every 4th
        # acknowledged batch of each lane, in order, after the lane is done.
        for lane_batches in load.lanes:
            for b in range(0, len(lane_batches), 4):
                assert await _post(session, base, key, lane_batches[b])
                load.resent += 1


async def _run(url: str, log: Path, lanes: list[list[list[dict[str, Any]]]],
               feature: dict[str, Any], *, kill: bool) -> Load:
    load = Load(lanes)
    with running(url, log) as server:
        async with aiohttp.ClientSession() as session:
            await server.wait_ready()
            key = await _setup(session, f"http://127.0.0.1:{server.port}", feature)
        await _drive(server, key, load, kill=kill)
        if kill:
            assert server.starts == 2 and load.failures > 0
        # The timer loop (1 s) fires what became due with the last batches: wait until
        # every visit is closed and every event decided (a loaded machine may take long).
        await eventually(lambda: _settled(url), timeout_s=READY_WAIT_S)
    return load


async def _fetch(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


async def _settled(url: str) -> bool:
    """Every ENTER has its EXIT and every event its decision."""
    [[settled]] = await _fetch(url, """
        SELECT count(*) FILTER (WHERE kind = 'enter') > 0
           AND count(*) FILTER (WHERE kind = 'enter') = count(*) FILTER (WHERE kind = 'exit')
           AND count(*) = (SELECT count(*) FROM decisions)
          FROM events""")
    return bool(settled)


async def test_kill_9_under_load_loses_and_doubles_nothing(
    database_url: str, tmp_path: Path
) -> None:
    feature, centre = _forum()
    lanes = _lanes(time.time() - 5, centre)
    all_pings = {(p["user_id"], p["ts"]) for lane in lanes for b in lane for p in b}
    assert len(all_pings) == sum(len(b) for lane in lanes for b in lane) > 10_000

    async with fresh_database(database_url) as crash_url, \
            fresh_database(database_url) as ref_url:
        load = await _run(crash_url, tmp_path / "crash.log", lanes, feature, kill=True)
        await _run(ref_url, tmp_path / "ref.log", lanes, feature, kill=False)
        assert load.resent > 0 and len(load.acked) == sum(len(lane) for lane in lanes)

        # Every acknowledged ping is stored, exactly once per (tenant, user, ts).
        rows = await _fetch(crash_url, "SELECT tenant_id, user_id, ts, count(*) AS n"
                                       " FROM pings GROUP BY 1, 2, 3")
        stored = {(r["user_id"], r["ts"]) for r in rows}
        assert {r["tenant_id"] for r in rows} == {"default"}
        assert stored == all_pings
        doubled = [(r["user_id"], r["ts"], r["n"]) for r in rows if r["n"] > 1]
        assert doubled == [], f"{len(doubled)} pings stored more than once: {doubled[:5]}"

        # Keys are unique by construction (PRIMARY KEY / UNIQUE); check the natural keys
        # too: one ENTER and one EXIT per visit, one DWELL per visit and threshold, one
        # delivery per (visit, campaign).
        for query in (
            "SELECT count(*) = count(DISTINCT (tenant_id, visit_id, kind, dwell_s))"
            " FROM events WHERE kind = 'dwell'",
            "SELECT count(*) = count(DISTINCT (tenant_id, visit_id, kind))"
            " FROM events WHERE kind <> 'dwell'",
            "SELECT count(*) = count(DISTINCT (tenant_id, idempotency_key)) FROM deliveries",
            "SELECT count(*) = count(DISTINCT (tenant_id, visit_id, event, campaign_id))"
            " FROM deliveries",
            "SELECT count(*) = count(DISTINCT (tenant_id, decision_key)) FROM decisions",
        ):
            [[ok]] = await _fetch(crash_url, query)
            assert ok, query

        query = ("SELECT user_id, venue_id, kind, visit_id, at, dwell_s FROM events"
                 " ORDER BY user_id, at, kind")
        events = [tuple(r) for r in await _fetch(crash_url, query)]
        reference = [tuple(r) for r in await _fetch(ref_url, query)]
        walkers = {f"user{i:03d}" for i in range(0, USERS, 2)}
        # Every walker entered Forum, stayed past 300 s and left; nobody else did a thing.
        by_user: dict[str, list[str]] = {}
        for user, venue, kind, *_ in events:
            assert venue == "forum"
            by_user.setdefault(user, []).append(kind)
        assert set(by_user) == walkers
        assert all(kinds == ["enter", "dwell", "exit"] for kinds in by_user.values()), by_user
        assert events == reference

        # Decisions and deliveries: those of the reference run, none doubled (whether
        # the DWELL campaign sends depends on the local hour: quiet hours 22-08).
        for query in ("SELECT decision_key FROM decisions ORDER BY 1",
                      "SELECT user_id, visit_id, event, campaign_id FROM deliveries"
                      " ORDER BY 1, 2, 3"):
            crash_rows = [tuple(r) for r in await _fetch(crash_url, query)]
            assert crash_rows == [tuple(r) for r in await _fetch(ref_url, query)], query
        [[n_decisions]] = await _fetch(crash_url, "SELECT count(*) FROM decisions")
        assert n_decisions == len(events)
