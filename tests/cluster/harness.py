"""The partitioned mode as real processes for tests and benchmarks: a three-node NATS
JetStream cluster on free ports (:class:`server.cluster.local.LocalNats`), a fresh
PostgreSQL database, ``geopush serve --role gateway`` and ``geopush worker`` processes,
and reads of the lease bucket and of the database."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from server.cluster.leases import Lease, read_all
from server.cluster.stream import open_cluster
from tests.server.serve import ROOT, free_port, serve_command, wait_up

ADMIN_KEY = "cluster-test-admin-key-0123456789"
QUIET_ENV = {"GEOPUSH_RATE_SDK_PER_S": "1000000", "GEOPUSH_RATE_SDK_BURST": "1000000",
             "GEOPUSH_RATE_ADMIN_PER_S": "1000", "GEOPUSH_LOG_LEVEL": "WARNING"}


@asynccontextmanager
async def fresh_database(admin_url: str, prefix: str = "geopush_cluster") -> AsyncIterator[str]:
    """A new, empty database on the test server (dropped at the end)."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
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


async def fetch(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


@dataclass
class Proc:
    """One ``geopush`` process writing to its own log."""

    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, env={**os.environ, **QUIET_ENV},
                                         stdout=out, stderr=subprocess.STDOUT)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Deployment:
    """A gateway and workers on one NATS cluster and one database."""

    nats_urls: list[str]
    database_url: str
    tmp: Path
    partitions: int = 8
    replicas: int = 3
    lease_s: float = 3.0
    gateway: Proc | None = None
    port: int = 0
    workers: dict[str, Proc] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def nats(self) -> str:
        return ",".join(self.nats_urls)

    async def start_gateway(self) -> None:
        self.port = free_port()
        self.gateway = Proc(serve_command(
            "--role", "gateway", "--nats-url", self.nats, "--database-url", self.database_url,
            "--port", str(self.port), "--admin-key", ADMIN_KEY,
            "--partitions", str(self.partitions), "--replicas", str(self.replicas)),
            self.tmp / "gateway.log")
        self.gateway.start()
        assert self.gateway.proc is not None
        await wait_up(self.base, self.gateway.proc, path="/readyz", timeout_s=40,
                      log=self.gateway.log)

    def start_worker(self, worker_id: str, *extra: str) -> Proc:
        proc = Proc([sys.executable, "-m", "server.cli", "worker", "--nats-url", self.nats,
                     "--database-url", self.database_url, "--id", worker_id,
                     "--lease-s", str(self.lease_s), "--checkpoint-interval-s", "1",
                     "--timer-interval-s", "0.5", *extra], self.tmp / f"{worker_id}.log")
        proc.start()
        self.workers[worker_id] = proc
        return proc

    async def leases(self) -> tuple[dict[int, Lease], list[str]]:
        cluster = await open_cluster(self.nats_urls, create=False, name="geopush-test")
        try:
            return await read_all(cluster.leases, cluster.partitions)
        finally:
            await cluster.close()

    async def owners(self) -> dict[int, str | None]:
        import time  # noqa: PLC0415

        leases, _ = await self.leases()
        now = time.time()
        return {p: (None if lease.free(now) else lease.owner) for p, lease in leases.items()}

    def stop(self) -> None:
        for proc in self.workers.values():
            proc.kill(signal.SIGTERM)
        if self.gateway is not None:
            self.gateway.kill(signal.SIGTERM)

    def logs(self) -> str:
        parts = []
        for proc in [self.gateway, *self.workers.values()]:
            if proc is not None and proc.log.exists():
                parts.append(f"--- {proc.log.name}\n{proc.log.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


async def wait_for(check: Any, timeout_s: float, what: str, *, every_s: float = 0.2) -> float:
    """Poll the async ``check()`` until true; returns the seconds it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        if await check():
            return loop.time() - started
        if loop.time() - started > timeout_s:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        await asyncio.sleep(every_s)
