"""The venue worker pool, the venue jobs and the per-tenant venue-write budget on their
own: a job answers the same in a worker process as in a thread; a worker process builds
the same index as this process; a dead worker fails its job and the next job gets a new
pool, and the workers end with a server killed by SIGKILL; successive catalogue changes
during a rebuild are compiled together, and a venue change keeps the campaign index
(what its content engine learnt); a tenant's writes run one at a time behind a bounded
queue, and a tenant in debt waits."""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from geo.fence import Fence
from geo.index import GeofenceIndex
from server.errors import ApiError
from server.store import MemoryStore
from server.tenant_core import TenantCores
from server.venue_budget import VenueWriteBudget
from server.venue_builds import VenueWorkers, VenueWorkersError
from server.venue_jobs import PutJob, PutValidated, Rejected, validate_put
from tests.server.waiting import eventually
from triggers.decisions import Campaign
from venues import VenueLimits, parse_feature_collection

pytestmark = pytest.mark.asyncio(loop_scope="session")

SENATE_SQUARE = [[24.9510, 60.1690], [24.9530, 60.1690], [24.9530, 60.1697],
                 [24.9510, 60.1697], [24.9510, 60.1690]]
"""Helsinki's Senate Square, lon/lat."""


def square(venue_id: str = "senate-square") -> dict[str, Any]:
    return {"type": "Feature", "id": venue_id,
            "geometry": {"type": "Polygon", "coordinates": [SENATE_SQUARE]},
            "properties": {"name": "Senate Square", "kind": "other"}}


def kauppatori(vertices: int, venue_id: str = "kauppatori") -> dict[str, Any]:
    """The Market Square as a round outline of ``vertices`` positions (~80 m across)."""
    lat, lng, r = 60.1675, 24.9530, 40.0
    ring = [[lng + r * math.cos(2 * math.pi * i / vertices) / (111_320 * math.cos(
        math.radians(lat))), lat + r * math.sin(2 * math.pi * i / vertices) / 111_320]
            for i in range(vertices)]
    return {"type": "Feature", "id": venue_id,
            "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
            "properties": {"name": "Kauppatori", "kind": "other"}}


def _die() -> None:
    os._exit(3)  # a worker killed in the middle of a job


# --------------------------------------------------------------------------- the pool


async def test_the_worker_process_answers_a_put_as_a_thread_does() -> None:
    ok = PutJob(json.dumps(kauppatori(400)).encode(), "kauppatori", VenueLimits(), False)
    conflicting = PutJob(json.dumps(square()).encode(), "other", VenueLimits(), False)
    too_big = PutJob(json.dumps(kauppatori(400)).encode(), "kauppatori",
                     VenueLimits(max_vertices=100), False)
    jobs = (ok, conflicting, too_big)
    workers = VenueWorkers(1)
    try:
        there = [await workers.run(validate_put, job) for job in jobs]
    finally:
        await workers.aclose()
    here = [await VenueWorkers(0).run(validate_put, job) for job in jobs]
    assert isinstance(there[0], PutValidated) and isinstance(here[0], PutValidated)
    assert there[0].body == here[0].body
    assert there[0].venue.feature_json == here[0].venue.feature_json
    assert there[0].venue.shape is not None and here[0].venue.shape is not None
    assert there[0].venue.shape.equals_exact(here[0].venue.shape, 0.0)
    assert there[0].positions == 401
    assert there[1:] == here[1:]
    assert isinstance(there[1], Rejected) and there[1].code == "conflicting_id"
    assert isinstance(there[2], Rejected) and there[2].code == "too_many_vertices"


async def test_the_worker_process_builds_the_same_index_as_this_process() -> None:
    load = parse_feature_collection(
        {"type": "FeatureCollection", "features": [square(), kauppatori(2_000)]},
        source="test")
    fences = [v.fence() for v in load.venues]
    here = GeofenceIndex.build(fences, halo_m=50.0)
    workers = VenueWorkers(1)
    try:
        there = await asyncio.to_thread(workers.build_index, fences, 50.0)
    finally:
        await workers.aclose()
    assert there.fence_ids == here.fence_ids == ("senate-square", "kauppatori")
    assert there.n_entries == here.n_entries
    # A grid over both squares and their surroundings, about 5 m apart.
    lat, lng = np.meshgrid(np.arange(60.1665, 60.1702, 0.000045),
                           np.arange(24.9500, 24.9545, 0.00009))
    a = here.query(lat.ravel(), lng.ravel(), near_m=50.0)
    b = there.query(lat.ravel(), lng.ravel(), near_m=50.0)
    assert a.inside.any() and (~a.inside).any()
    for name in ("cell", "point", "fence", "inside"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.allclose(a.edge_m, b.edge_m, equal_nan=True)


async def test_a_dead_worker_fails_its_job_and_the_next_job_gets_a_new_pool() -> None:
    workers = VenueWorkers(1)
    try:
        with pytest.raises(VenueWorkersError):
            await workers.run(_die)
        answer = await workers.run(validate_put, PutJob(
            json.dumps(square()).encode(), "senate-square", VenueLimits(), False))
    finally:
        await workers.aclose()
    assert isinstance(answer, PutValidated) and answer.venue.id == "senate-square"


_SERVER_WITH_WORKERS = """
import asyncio, os, sys
from server.venue_builds import VenueWorkers

async def main():
    workers = VenueWorkers(1)
    print(await workers.run(os.getpid), flush=True)  # the worker's pid
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_the_workers_end_when_the_server_is_killed() -> None:
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _SERVER_WITH_WORKERS, stdout=asyncio.subprocess.PIPE)
    assert server.stdout is not None
    worker = int(await asyncio.wait_for(server.stdout.readline(), 60))
    assert Path(f"/proc/{worker}").exists()
    server.kill()  # SIGKILL: no shutdown of the pool
    await server.wait()
    await eventually(lambda: not Path(f"/proc/{worker}").exists(), timeout_s=30)


# --------------------------------------------------------------------------- rebuilds


class _GatedBuilder:
    """An index builder that waits for ``gate`` and counts what it built."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.built: list[tuple[str, ...]] = []

    def __call__(self, fences: Sequence[Fence], halo_m: float) -> GeofenceIndex:
        self.entered.set()
        self.gate.wait(timeout=30)
        self.built.append(tuple(f.fence_id for f in fences))
        return GeofenceIndex.build(fences, halo_m=halo_m)


async def test_changes_made_during_a_rebuild_are_compiled_together_by_the_next() -> None:
    store, builder = MemoryStore(), _GatedBuilder()
    cores = TenantCores(index_builder=builder)
    await store.ensure_tenant("acme")

    async def put(feature: dict[str, Any]) -> None:
        load = parse_feature_collection(feature, source="test")
        await store.put_venues("acme", load.venues)

    await put(square())
    await cores.get(store, "acme")
    builder.gate.clear()
    builder.entered.clear()
    await put(kauppatori(100, "kauppatori"))
    first = asyncio.ensure_future(cores.refresh(store, "acme"))
    await asyncio.to_thread(builder.entered.wait, 30)  # that rebuild is running
    later = []
    for name in ("vanha-kauppahalli", "esplanadi", "tuomiokirkko"):
        await put(kauppatori(100, name))
        later.append(asyncio.ensure_future(cores.refresh(store, "acme")))
    builder.gate.set()
    await asyncio.gather(first, *later)
    assert cores.builds == 3  # the first core, the running rebuild, one for the rest
    assert builder.built[-1] == ("esplanadi", "kauppatori", "senate-square",
                                 "tuomiokirkko", "vanha-kauppahalli")
    core = cores.cached("acme")
    assert core is not None and len(core.index) == 5
    await store.close()


# --------------------------------------------------------------------------- budget


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_tenant_in_debt_gets_429_until_its_bucket_refills() -> None:
    clock = _Clock()
    budget = VenueWriteBudget(vertices_per_s=100.0, burst_vertices=1_000.0, max_queued=2,
                              monotonic=clock)
    async with budget.write("acme"):
        budget.charge("acme", 20_000 + 20_000)  # a 20k-vertex PUT and its rebuild
    assert budget.balance("acme") == -39_000
    with pytest.raises(ApiError) as refused:
        async with budget.write("acme"):
            pass
    assert refused.value.status == 429 and refused.value.code == "venue_budget_exceeded"
    assert refused.value.headers == {"Retry-After": "390"}
    async with budget.write("globex"):  # another tenant has its own bucket
        pass
    clock.now += 390
    async with budget.write("acme"):
        pass
    clock.now += 3600
    assert budget.balance("acme") == 1_000  # never more than the burst


async def test_a_tenants_writes_run_one_at_a_time_behind_a_bounded_queue() -> None:
    budget = VenueWriteBudget(vertices_per_s=100.0, burst_vertices=1_000.0, max_queued=1,
                              monotonic=_Clock())
    order: list[str] = []
    release = asyncio.Event()

    async def write(name: str) -> None:
        async with budget.write("acme"):
            order.append(f"{name} starts")
            await release.wait()
            order.append(f"{name} ends")

    first = asyncio.ensure_future(write("first"))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(write("second"))  # waits behind the first
    await asyncio.sleep(0)
    with pytest.raises(ApiError) as busy:
        await write("third")
    assert busy.value.status == 429 and busy.value.code == "venue_writes_busy"
    assert busy.value.headers == {"Retry-After": "1"}
    other = asyncio.ensure_future(_one_write(budget, "globex"))
    await asyncio.wait_for(other, 5)  # not behind acme's writes
    release.set()
    await asyncio.gather(first, second)
    assert order == ["first starts", "first ends", "second starts", "second ends"]


async def _one_write(budget: VenueWriteBudget, tenant: str) -> None:
    async with budget.write(tenant):
        pass


async def test_a_venue_change_keeps_the_campaign_index_and_what_it_learnt() -> None:
    # The attacker's lever: every venue PUT rebuilt the campaign index, and a fresh
    # content engine rendered its hostile template again for its full budget.
    store, cores = MemoryStore(), TenantCores()
    await store.ensure_tenant("acme")
    await store.put_venues("acme", parse_feature_collection(square(), source="t").venues)
    trap = Campaign.model_validate({
        "id": "trap", "status": "active", "trigger": {"event": "enter"},
        "venues": {"ids": ["senate-square"]},
        "variants": [{"id": "a", "title": "t", "body": "Hi {{ user.user_id }}"}]})
    await store.put_campaign("acme", trap)
    before = await cores.get(store, "acme")
    await store.put_venues("acme", parse_feature_collection(
        kauppatori(100), source="t").venues)
    after = await cores.refresh(store, "acme")
    assert after.catalog_version > before.catalog_version
    assert after.index.fence_ids == ("kauppatori", "senate-square")
    assert after.campaigns is before.campaigns
    await store.put_campaign("acme", trap.model_copy(update={"name": "Trap"}))
    changed = await cores.refresh(store, "acme")
    assert changed.campaigns is not before.campaigns
    await store.close()
