"""Fixtures of the HTTP API tests: an app on each store, a fake clock, keys per tenant
and role, and blockbuster watching the event loop.

Tests run the real app through aiohttp's ``TestServer`` / ``TestClient`` (no
pytest-aiohttp), in the session event loop the store fixtures use.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from blockbuster import BlockBuster, blockbuster_ctx

from server.app import create_app
from server.auth import Role, generate_key, hash_key, new_key_id
from server.settings import Settings
from server.store import Store
from server.store.roles import TenantStore
from tests.server.conftest import OTHER_TENANT, TENANT

NOON_UTC = 1_772_452_800.0
"""2026-03-02T12:00:00Z, a Monday: outside the default quiet hours (22:00-08:00)."""

HELSINKI = (60.1699, 24.9384)
"""Senate Square: the centre of the test venue (a 100 m circle)."""


class FakeClock:
    """Wall time the tests move by hand."""

    def __init__(self, start: float = NOON_UTC) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Api:
    """A running app with keys: ``keys[(tenant, role)]``."""

    client: TestClient[Any, Any]
    clock: FakeClock
    store: Store
    keys: dict[tuple[str, Role], str] = field(default_factory=dict)

    def auth(self, role: Role = Role.ADMIN, tenant: str = TENANT) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[(tenant, role)]}"}

    async def call(
        self, method: str, path: str, *, role: Role = Role.ADMIN, tenant: str = TENANT,
        json_body: Any = None, expect: int | None = None, **kwargs: Any,
    ) -> tuple[ClientResponse, Any]:
        headers = {**self.auth(role, tenant), **kwargs.pop("headers", {})}
        resp = await self.client.request(method, path, json=json_body, headers=headers,
                                         **kwargs)
        body = await resp.json(content_type=None) if (await resp.read()) else None
        if expect is not None:
            assert resp.status == expect, (resp.status, body)
        return resp, body


async def add_key(store: TenantStore, tenant: str, role: Role) -> str:
    key = generate_key()
    await store.ensure_tenant(tenant)
    await store.create_key(tenant, key_id=new_key_id(), key_hash=hash_key(key), role=role,
                           name=f"test {role.value}")
    return key


def make_settings(**overrides: Any) -> Settings:
    # No dispatcher unless a test asks for one: most tests look at the outbox as the
    # ingest left it (pending); the delivery tests start dispatchers themselves.
    # The channel stand-ins (webhook receivers, brokers, provider fakes) listen on
    # 127.0.0.1: the operator's list allows it, as it would an internal receiver.
    # Venue work in threads: starting worker processes costs each app seconds; the
    # process path has its own tests (test_venue_workers.py), with the same answers.
    base: dict[str, Any] = {"timer_interval_s": 3600.0, "max_body_bytes": 1 << 20,
                            "outbox_workers": 0, "outbound_allowed": "127.0.0.1,localhost",
                            "venue_workers": 0}
    return Settings(**{**base, **overrides})


async def start_api(
    store: Store, clock: FakeClock, settings: Settings | None = None
) -> tuple[TestClient[Any, Any], Api]:
    app = create_app(settings or make_settings(), store=store, clock=clock)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    api = Api(client, clock, store)
    for tenant in (TENANT, OTHER_TENANT):
        for role in Role:
            api.keys[(tenant, role)] = await add_key(store, tenant, role)
    return client, api


@asynccontextmanager
async def serving(store: Store, clock: FakeClock | None = None,
                  **settings: Any) -> AsyncIterator[Api]:
    """The app on ``store`` with ``make_settings(**settings)`` and ``clock`` (its own by
    default), for a test that needs settings of its own (or two apps: two nodes on one
    database, sharing a clock)."""
    client, api = await start_api(store, clock or FakeClock(), make_settings(**settings))
    try:
        yield api
    finally:
        await client.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def api(store: Store, clock: FakeClock) -> AsyncIterator[Api]:
    """The app on each store (memory; PostgreSQL marked needs_postgres), with an admin,
    manager and sdk key for the tenants ``acme`` and ``globex``."""
    client, app_api = await start_api(store, clock)
    try:
        yield app_api
    finally:
        await client.close()


@pytest.fixture
async def memory_api(memory_store: Store, clock: FakeClock) -> AsyncIterator[Api]:
    """The app on the embedded store only (for format-parsing tests that say nothing
    about storage)."""
    client, app_api = await start_api(memory_store, clock)
    try:
        yield app_api
    finally:
        await client.close()


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    """Fail any test whose event loop makes a blocking call (aiohttp's own guard).

    Scoped exception: asyncpg reads ``~/.pgpass`` and the SSL settings synchronously
    while parsing a DSN at connect time (a one-off per pool connection, in a third-party
    library), which blockbuster would otherwise report from every PostgreSQL fixture.
    ``server.store.migrate.shipped_migrations`` reads the SQL files in the loop at
    start-up (reported to the store's owner: read them at import or in a thread).
    ``zoneinfo`` reads a zone's file once, on its first use, then serves it from its
    cache: the core's decision step (pure, sync) triggers that.
    """
    with blockbuster_ctx() as bb:
        for func in bb.functions.values():
            func.can_block_in("asyncpg/connect_utils.py",
                              {"_parse_connect_dsn_and_args", "_read_password_file"})
            func.can_block_in("server/store/migrate.py", {"shipped_migrations"})
            func.can_block_in("zoneinfo/_tzpath.py", {"find_tzfile"})
            func.can_block_in("zoneinfo/_common.py", {"load_tzdata", "load_data"})
        yield bb


def gzipped(obj: Any) -> bytes:
    return gzip.compress(json.dumps(obj).encode())


def venue_feature(venue_id: str = "senate", *, lat: float = HELSINKI[0],
                  lng: float = HELSINKI[1], radius_m: float = 100.0, kind: str = "mall",
                  tags: list[str] | None = None, **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "id": venue_id,
            "geometry": {"type": "Point", "coordinates": [lng, lat]},
            "properties": {"name": venue_id.title(), "kind": kind, "radius_m": radius_m,
                           "tags": tags or [], **props}}


def campaign_body(campaign_id: str = "hello", **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": campaign_id, "name": "Hello", "trigger": {"event": "enter"},
        "venues": {"ids": ["senate"]},
        "variants": [{"id": "a", "title": "Welcome", "body": "Hi there"}],
    }
    return {**body, **over}


def ping(user: str = "u1", ts: float | str = NOON_UTC, lat: float = HELSINKI[0],
         lng: float = HELSINKI[1], **extra: Any) -> dict[str, Any]:
    return {"user_id": user, "ts": ts, "lat": lat, "lng": lng, "accuracy_m": 10.0, **extra}
