"""Partitions, leases, checkpoints and handover, on a real single-node JetStream (the
three-node cases are in test_kills.py) and the test PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.cli.__main__ import main
from server.cluster import checkpoints
from server.cluster.gateway import StreamIngest
from server.cluster.leases import LeaseTable
from server.cluster.local import LocalNats
from server.cluster.partitions import (
    PingGroup,
    decode,
    partition_of,
    plan_runs,
    split,
    subject,
    tenant_token,
)
from server.cluster.status import cluster_status, render
from server.cluster.stream import Cluster, StreamSettings, open_cluster
from server.cluster.worker import PartitionRunner, Worker, WorkerParts, WorkerSettings
from server.metrics import Metrics, PartitionMetrics
from server.store import PostgresStore
from server.tenant_core import TenantCores
from tests.server.conftest import TENANT
from triggers.pings import PingBatch
from triggers.presence_state import new_state, snapshot

HELSINKI = (60.1699, 24.9384)


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNats]:
    with LocalNats.start(1, root=tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture
async def cluster(nats: LocalNats) -> AsyncIterator[Cluster]:
    nc_cluster = await open_cluster(nats.urls, StreamSettings(partitions=8))
    js = nc_cluster.js
    for info in await js.streams_info():
        assert info.config.name is not None
        await js.delete_stream(info.config.name)
    await nc_cluster.close()
    opened = await open_cluster(nats.urls, StreamSettings(partitions=8))
    yield opened
    await opened.close()


# --------------------------------------------------------------------------- partitions


def test_a_users_partition_is_the_same_in_every_process_and_release() -> None:
    # Fixed values: BLAKE2b of "acme\x1fjane", never Python's salted hash().
    assert partition_of("acme", "jane", 64) == partition_of("acme", "jane", 64)
    assert [partition_of("acme", u, 64) for u in ("jane", "aino", "mikko")] == \
        [_blake("acme", u) % 64 for u in ("jane", "aino", "mikko")]
    counts = np.bincount([partition_of("acme", f"user{i}", 64) for i in range(6400)],
                         minlength=64)
    assert counts.min() > 60 and counts.max() < 140  # ~100 each: spread evenly


def _blake(tenant: str, user: str) -> int:
    import hashlib  # noqa: PLC0415

    return int.from_bytes(hashlib.blake2b(f"{tenant}\x1f{user}".encode(),
                                          digest_size=8).digest(), "big")


def test_tenants_with_dots_or_wildcards_get_a_token_no_other_tenant_has() -> None:
    assert subject("acme", 3) == "pings.acme.3"
    assert tenant_token("a.b") == "=612e62"
    assert tenant_token("=612e62") != "=612e62"
    assert "*" not in tenant_token("*") and ">" not in tenant_token(">")


def test_a_batch_splits_by_partition_and_each_group_reads_back_the_same() -> None:
    users = [f"user{i}" for i in range(40)]
    pings = PingBatch.from_columns(
        users, [1_796_600_000.0 + i for i in range(40)], [HELSINKI[0]] * 40,
        [HELSINKI[1]] * 40, accuracy_m=[10.0 if i % 2 else math.nan for i in range(40)],
        mock=[i == 7 for i in range(40)])
    groups = split("acme", pings, 8, now=1_796_600_050.0)
    assert sum(len(g.pings) for g in groups) == 40
    for group in groups:
        assert {partition_of("acme", str(u), 8) for u in group.pings.user_id} == \
            {group.partition}
        back = decode(group.encode())
        assert back.now == 1_796_600_050.0 and back.tenant_id == "acme"
        assert back.pings.user_id.tolist() == group.pings.user_id.tolist()
        np.testing.assert_array_equal(back.pings.accuracy_m, group.pings.accuracy_m)
        np.testing.assert_array_equal(back.pings.mock, group.pings.mock)
        assert back.message_id() == group.message_id()


def _group(tenant: str, *users: str) -> PingGroup:
    n = len(users)
    return PingGroup(tenant, 0, 1.0, PingBatch.from_columns(
        list(users), [1.0] * n, [HELSINKI[0]] * n, [HELSINKI[1]] * n))


def test_runs_keep_each_users_messages_in_stream_order() -> None:
    a1, b1, a2, c1, b2 = (_group("acme", "a"), _group("acme", "b"), _group("acme", "a"),
                          _group("globex", "c"), _group("acme", "b", "d"))
    names = {id(a1): "a1", id(b1): "b1", id(a2): "a2", id(c1): "c1", id(b2): "b2"}
    runs = [[names[id(g)] for g in run] for run in plan_runs([a1, b1, a2, c1, b2])]
    # a2 waits for a1's run; c1 is another tenant's; b2 shares b with b1.
    assert runs == [["a1", "b1"], ["a2", "b2"], ["c1"]]
    big = _group("acme", "x", "y")
    assert [len(run) for run in plan_runs([big, big, big], max_pings=1)] == [1, 1, 1]


def test_a_checkpoint_gives_back_its_state_and_sequence() -> None:
    state = new_state()
    found = checkpoints.decode(checkpoints.encode(
        checkpoints.Checkpoint(5, 1234, {"acme": state}, 1.5, "w1")))
    assert (found.partition, found.seq, found.owner) == (5, 1234, "w1")
    assert snapshot(found.tenants["acme"]) == snapshot(state)


# --------------------------------------------------------------------------- leases


class Clocks:
    def __init__(self) -> None:
        self.wall = time.time()
        self.mono = 0.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def _table(cluster: Cluster, worker: str, clocks: Clocks) -> LeaseTable:
    return LeaseTable(cluster.leases, worker, timeout_s=10.0, clock=lambda: clocks.wall,
                      monotonic=lambda: clocks.mono)


@pytest.mark.asyncio(loop_scope="session")
async def test_a_partition_has_one_owner_until_its_lease_expires(cluster: Cluster) -> None:
    clocks = Clocks()
    alpha, beta = _table(cluster, "alpha", clocks), _table(cluster, "beta", clocks)
    assert await alpha.acquire(3)
    assert not await beta.acquire(3)
    assert await alpha.renew(3, position=17)
    clocks.advance(7.9)
    assert alpha.valid(3)
    clocks.advance(0.2)  # past timeout x (1 - margin): alpha stops on its own first
    assert not alpha.valid(3)
    assert not await beta.acquire(3)  # ... while the lease has not expired yet
    clocks.advance(2.0)
    assert await beta.acquire(3)
    assert not await alpha.renew(3)  # written since: lost, and forgotten
    assert 3 not in alpha.held
    assert beta.held[3].lease.position == 17  # progress carried over


@pytest.mark.asyncio(loop_scope="session")
async def test_a_released_partition_is_free_at_once(cluster: Cluster) -> None:
    clocks = Clocks()
    alpha, beta = _table(cluster, "alpha", clocks), _table(cluster, "beta", clocks)
    assert await alpha.acquire(1)
    await alpha.release(1, position=5)
    assert await beta.acquire(1)


# --------------------------------------------------------------------------- handover


def _worker(cluster: Cluster, store: PostgresStore, worker_id: str) -> Worker:
    metrics = Metrics()
    parts = WorkerParts(cluster, store,
                        TenantCores(rebuild_wait_s=0, render_limits=None,
                                    render_clock=time.monotonic),
                        WorkerSettings(lease_s=30, checkpoint_interval_s=3600,
                                       timer_interval_s=0),
                        metrics, PartitionMetrics(metrics.registry))
    return Worker(parts, worker_id)


async def _publish(cluster: Cluster, start: int, n: int) -> None:
    users = [f"user{i}" for i in range(n)]
    pings = PingBatch.from_columns(users, [time.time() - 60 + start] * n, [HELSINKI[0]] * n,
                                   [HELSINKI[1]] * n, accuracy_m=[10.0] * n)
    await StreamIngest(cluster).ingest(TENANT, pings, now=time.time())


async def _settled(worker: Worker, last: dict[int, int]) -> None:
    deadline = time.monotonic() + 10
    while any(worker.runners[p].position < seq for p, seq in last.items()
              if p in worker.runners):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


async def _restored(worker: Worker) -> None:
    deadline = time.monotonic() + 10
    while not all(runner.restored for runner in worker.runners.values()):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


async def _last_seqs(cluster: Cluster) -> dict[int, int]:
    from nats.js.errors import NotFoundError  # noqa: PLC0415

    out: dict[int, int] = {}
    for p in range(cluster.partitions):
        with contextlib.suppress(NotFoundError):
            found = await cluster.js.get_last_msg("GEOPUSH_PINGS", subject(TENANT, p))
            assert found.seq is not None
            out[p] = found.seq
    return out


@pytest.mark.needs_postgres
@pytest.mark.asyncio(loop_scope="session")
async def test_a_joining_worker_takes_half_after_a_handover_at_the_sequence_reached(
    cluster: Cluster, pg_store: PostgresStore,
) -> None:
    await pg_store.ensure_tenant(TENANT)
    alpha, beta = _worker(cluster, pg_store, "alpha"), _worker(cluster, pg_store, "beta")
    try:
        await alpha.round()
        assert sorted(alpha.runners) == list(range(8))
        await _publish(cluster, 0, 80)
        await _settled(alpha, await _last_seqs(cluster))
        reached = alpha.positions()
        await beta.leases.heartbeat()
        await alpha.round()  # two live workers: alpha is over its share of 4
        assert len(alpha.runners) == 4
        await beta.round()
        assert len(beta.runners) == 4 and not set(beta.runners) & set(alpha.runners)
        await _restored(beta)
        for partition, runner in beta.runners.items():
            assert runner.position == reached[partition]  # restored, nothing replayed
        await _publish(cluster, 1, 80)
        last = await _last_seqs(cluster)
        await _settled(alpha, last)
        await _settled(beta, last)
        [[stored]] = await pg_store._pool.fetch("SELECT count(*) FROM pings")
        assert stored == 160
        status = await cluster_status(cluster)
        assert {p.owner for p in status.partitions} == {"alpha", "beta"}
        assert "8/8 partitions owned" in render(status).splitlines()[0]
    finally:
        await alpha.stop()
        await beta.stop()


@pytest.mark.needs_postgres
@pytest.mark.asyncio(loop_scope="session")
async def test_timers_never_fire_ahead_of_pings_the_partition_has_not_processed(
    cluster: Cluster, pg_store: PostgresStore,
) -> None:
    await pg_store.ensure_tenant(TENANT)
    partition = partition_of(TENANT, "user0", cluster.partitions)
    runner = PartitionRunner(_worker(cluster, pg_store, "alpha").parts, partition, "alpha",
                             valid=lambda: True)
    runner.start()
    try:
        await _until(lambda: runner.restored)
        async with runner.lock:  # the partition cannot apply what it reads meanwhile
            published = time.time()
            await _publish(cluster, 2, 1)  # user0, in this partition
            at = await runner.caught_up_at()
            assert at is None or at < published
        last = (await _last_seqs(cluster))[partition]
        await _until(lambda: runner.position >= last)
        at = await runner.caught_up_at()
        assert at is not None and at >= published
    finally:
        await runner.stop(checkpoint=False)


async def _until(check: Any) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


@pytest.mark.asyncio(loop_scope="session")
async def test_cluster_status_prints_every_partition_and_its_owner(
    cluster: Cluster, nats: LocalNats, capsys: pytest.CaptureFixture[str],
) -> None:
    clocks = Clocks()
    assert await _table(cluster, "alpha", clocks).acquire(2)
    status = await asyncio.to_thread(main, ["cluster", "status", "--nats-url", nats.urls[0],
                                            "--json"])
    assert status == 0
    import json  # noqa: PLC0415

    body: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert len(body["partitions"]) == 8
    assert body["partitions"][2]["owner"] == "alpha"
    assert body["partitions"][3]["owner"] is None


def test_cluster_status_without_nats_is_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    assert main(["cluster", "status", "--nats-url", "nats://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("geopush: error: cannot connect to NATS") and err.count("\n") == 1


@pytest.mark.parametrize(("argv", "says"), [
    (["serve", "--role", "gateway", "--database-url", "postgresql://h/db"],
     "--role gateway needs --nats-url"),
    (["serve", "--role", "gateway", "--nats-url", "nats://127.0.0.1:9"],
     "--role gateway needs --database-url"),
    (["serve", "--nats-url", "nats://127.0.0.1:9"], "only a gateway (--role gateway)"),
    (["serve", "--role", "gateway", "--nats-url", "nats://127.0.0.1:9", "--database-url",
      "postgresql://h/db", "--partitions", "0"], "--partitions: 0 is not within"),
    (["worker", "--nats-url", "nats://127.0.0.1:9"], "--database-url (or DATABASE_URL)"),
    (["worker", "--nats-url", "nats://127.0.0.1:9", "--database-url", "postgresql://h/db",
      "--id", "no spaces"], "--id: 1 to 64 letters"),
])
def test_partitioned_mode_flags_that_cannot_work_are_one_error_line(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("GEOPUSH_DATABASE_URL", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("geopush: error: ") and says in err and err.count("\n") == 1
