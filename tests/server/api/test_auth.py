"""Keys, roles, tenant isolation and rate limits.

Roles (documented in ``server/auth.py``): admin does everything of its tenant; manager
manages venues, campaigns, profiles and reads decisions and the policy, but cannot post
pings, erase users, change the policy or create keys; sdk posts locations only.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.api.context import STORE
from server.app import create_app
from server.auth import DEFAULT_TENANT, Role, hash_key
from server.store import MemoryStore
from tests.server.api.conftest import (
    Api,
    FakeClock,
    add_key,
    campaign_body,
    make_settings,
    ping,
    venue_feature,
)
from tests.server.api.test_service import assert_error
from tests.server.conftest import OTHER_TENANT, TENANT

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_no_key_is_401_naming_the_header(api: Api) -> None:
    resp = await api.client.get("/v1/venues")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert_error(await resp.json(), "unauthorized", "Authorization")


async def test_unknown_key_is_401(api: Api) -> None:
    resp = await api.client.get("/v1/venues", headers={"Authorization": "Bearer gpk_nope"})
    assert resp.status == 401
    assert_error(await resp.json(), "unauthorized")


async def test_revoked_key_is_401(api: Api) -> None:
    records = await api.store.list_keys(TENANT)
    sdk = next(r for r in records if r.role is Role.SDK)
    await api.store.revoke_key(TENANT, sdk.key_id)
    resp = await api.client.post("/v1/pings", json={"pings": []}, headers=api.auth(Role.SDK))
    assert resp.status == 401


ROLE_TABLE: list[tuple[str, str, object, Role, bool]] = [
    # (method, path, body, role, allowed)
    ("POST", "/v1/pings", {"pings": []}, Role.SDK, True),
    ("POST", "/v1/pings", {"pings": []}, Role.MANAGER, False),
    ("POST", "/v1/pings", {"pings": []}, Role.ADMIN, True),
    ("GET", "/v1/venues", None, Role.SDK, False),
    ("GET", "/v1/venues", None, Role.MANAGER, True),
    ("PUT", "/v1/venues/senate", venue_feature(), Role.SDK, False),
    ("PUT", "/v1/venues/senate", venue_feature(), Role.MANAGER, True),
    ("GET", "/v1/campaigns", None, Role.SDK, False),
    ("POST", "/v1/campaigns", campaign_body(), Role.MANAGER, True),
    ("PUT", "/v1/users/u1", {"tags": ["x"]}, Role.SDK, False),
    ("PUT", "/v1/users/u1", {"tags": ["x"]}, Role.MANAGER, True),
    ("DELETE", "/v1/users/u1", None, Role.MANAGER, False),
    ("DELETE", "/v1/users/u1", None, Role.ADMIN, True),
    ("GET", "/v1/users/u1/decisions", None, Role.SDK, False),
    ("GET", "/v1/users/u1/decisions", None, Role.MANAGER, True),
    ("GET", "/v1/policy", None, Role.MANAGER, True),
    ("PUT", "/v1/policy", {}, Role.MANAGER, False),
    ("PUT", "/v1/policy", {}, Role.ADMIN, True),
    ("POST", "/v1/keys", {"role": "sdk"}, Role.MANAGER, False),
    ("POST", "/v1/keys", {"role": "sdk"}, Role.SDK, False),
    ("POST", "/v1/owntracks", {"_type": "lwt"}, Role.MANAGER, False),
    ("GET", "/v1/osmand?id=d1&lat=60.1&lon=24.9", None, Role.MANAGER, False),
]


@pytest.mark.parametrize(("method", "path", "body", "role", "allowed"), ROLE_TABLE)
async def test_roles(  # noqa: PLR0917 - one parametrize row
    api: Api, method: str, path: str, body: object, role: Role, allowed: bool
) -> None:
    resp, answer = await api.call(method, path, role=role, json_body=body)
    if allowed:
        assert resp.status < 300, (resp.status, answer)
    else:
        assert resp.status == 403, (resp.status, answer)
        assert_error(answer, "forbidden")


async def test_a_tenant_cannot_read_or_change_anything_of_another(api: Api) -> None:
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    await api.call("POST", "/v1/campaigns", json_body=campaign_body(), expect=201)
    await api.call("PUT", "/v1/users/u1", json_body={"tags": ["vip"]}, expect=201)
    other: dict[str, Any] = {"tenant": OTHER_TENANT}
    # Reads: ids guessed across tenants are simply not there.
    for path in ("/v1/venues/senate", "/v1/campaigns/hello", "/v1/campaigns/hello/stats"):
        resp, body = await api.call("GET", path, **other)
        assert resp.status == 404, path
        assert_error(body, "not_found")
    _, listing = await api.call("GET", "/v1/venues", expect=200, **other)
    assert listing["features"] == []
    _, campaigns = await api.call("GET", "/v1/campaigns", expect=200, **other)
    assert campaigns["campaigns"] == []
    # Changes: nothing of acme's moves.
    await api.call("DELETE", "/v1/venues/senate", expect=404, **other)
    await api.call("DELETE", "/v1/campaigns/hello", expect=404, **other)
    await api.call("POST", "/v1/campaigns/hello/activate", expect=404, **other)
    await api.call("PATCH", "/v1/users/u1", json_body={"tags": ["x"]}, expect=404, **other)
    await api.call("DELETE", "/v1/users/u1", expect=200, **other)  # erases globex's u1: none
    # A PUT with the same id creates globex's own record, leaving acme's alone.
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(radius_m=50),
                   expect=201, **other)
    _, mine = await api.call("GET", "/v1/venues/senate", expect=200)
    assert mine["properties"]["radius_m"] == 100
    assert (await api.store.get_profile(TENANT, "u1")) is not None
    # Pings of globex never reach acme's venues.
    _, result = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={
        "pings": [ping(ts=api.clock.now - 20), ping(ts=api.clock.now - 10)]}, **other)
    assert all(e["venue_id"] == "senate" for e in result["events"])
    _, decisions = await api.call("GET", "/v1/users/u1/decisions", expect=200)
    assert decisions["decisions"] == []


async def test_admin_creates_a_key_that_works_once_shown(api: Api) -> None:
    _, created = await api.call("POST", "/v1/keys", json_body={"role": "sdk", "name": "app"},
                                expect=201)
    assert created["key"].startswith("gpk_") and created["tenant_id"] == TENANT
    resp = await api.client.post("/v1/pings", json={"pings": []},
                                 headers={"Authorization": f"Bearer {created['key']}"})
    assert resp.status == 200
    stored = await api.store.list_keys(TENANT)
    assert created["key"] not in repr(stored)


async def test_key_create_rejects_an_unknown_role_naming_the_field(api: Api) -> None:
    _, body = await api.call("POST", "/v1/keys", json_body={"role": "root"}, expect=422)
    assert_error(body, "validation_error", "role")


async def test_rate_limit_answers_429_with_retry_after(memory_store: MemoryStore,
                                                       clock: FakeClock) -> None:
    settings = make_settings(rate_sdk_per_s=0.5, rate_sdk_burst=2)
    app = create_app(settings, store=memory_store, clock=clock)
    async with TestClient(TestServer(app)) as client:
        key = await add_key(memory_store, TENANT, Role.SDK)
        headers = {"Authorization": f"Bearer {key}"}
        statuses = [(await client.post("/v1/pings", json={"pings": []}, headers=headers))
                    for _ in range(3)]
        assert [r.status for r in statuses] == [200, 200, 429]
        assert statuses[2].headers["Retry-After"] == "2"
        assert_error(await statuses[2].json(), "rate_limited")


async def test_the_store_the_app_opens_dates_its_rows_by_the_apps_clock(
    clock: FakeClock,
) -> None:
    admin_key = "gp_admin_" + "k" * 32
    app = create_app(make_settings(admin_key=admin_key, database_url=None), clock=clock)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/v1/policy", headers={"Authorization": f"Bearer {admin_key}"})
        assert resp.status == 200
        tenant = await app[STORE].get_tenant(DEFAULT_TENANT)
        key = await app[STORE].find_key(hash_key(admin_key))
    assert tenant is not None and tenant.created_at == clock.now
    assert key is not None and key.created_at == clock.now


async def test_owntracks_accepts_basic_auth_with_the_key_as_password(api: Api) -> None:
    token = base64.b64encode(f"jane:{api.keys[(TENANT, Role.SDK)]}".encode()).decode()
    resp = await api.client.post("/v1/owntracks", json={"_type": "lwt"},
                                 headers={"Authorization": f"Basic {token}"})
    assert resp.status == 200 and await resp.json() == []


async def test_osmand_accepts_the_key_in_the_query(api: Api) -> None:
    key = api.keys[(TENANT, Role.SDK)]
    resp = await api.client.get(f"/v1/osmand?id=d1&lat=60.1&lon=24.9&key={key}")
    assert resp.status == 200, await resp.text()
