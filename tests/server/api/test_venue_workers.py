"""Venue writes through the venue worker processes, and the per-tenant venue-write
budget, on both stores: a PUT is validated in a worker process, stored, and its
tenant's index (built in a worker process) swapped in; a tenant past its budget gets a
429 with Retry-After, and other tenants do not. (The pool, the jobs and the budget on
their own: tests/server/test_venue_builds.py.)"""

from __future__ import annotations

import math
from typing import Any

import pytest

from server.api.context import CORES
from server.auth import Role
from server.store import Store
from tests.server.api.conftest import NOON_UTC, serving
from tests.server.conftest import OTHER_TENANT, TENANT

pytestmark = pytest.mark.asyncio(loop_scope="session")

SENATE_SQUARE = [[24.9510, 60.1690], [24.9530, 60.1690], [24.9530, 60.1697],
                 [24.9510, 60.1697], [24.9510, 60.1690]]
"""Helsinki's Senate Square, lon/lat: 5 positions."""
INSIDE = (60.16935, 24.9520)
"""Its middle, in front of the cathedral steps."""


def square(venue_id: str = "senate-square", name: str = "Senate Square") -> dict[str, Any]:
    return {"type": "Feature", "id": venue_id,
            "geometry": {"type": "Polygon", "coordinates": [SENATE_SQUARE]},
            "properties": {"name": name, "kind": "other"}}


def kauppatori(vertices: int) -> dict[str, Any]:
    """The Market Square as a round outline of ``vertices`` positions (~80 m across)."""
    lat, lng, r = 60.1675, 24.9530, 40.0
    ring = [[lng + r * math.cos(2 * math.pi * i / vertices) / (111_320 * math.cos(
        math.radians(lat))), lat + r * math.sin(2 * math.pi * i / vertices) / 111_320]
            for i in range(vertices)]
    return {"type": "Feature", "id": "kauppatori",
            "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
            "properties": {"name": "Kauppatori", "kind": "other"}}


async def test_a_venue_put_is_validated_in_a_worker_and_its_index_swapped_in(
        store: Store) -> None:
    async with serving(store, venue_workers=1) as api:
        _, body = await api.call("PUT", "/v1/venues/senate-square",
                                 json_body=square(), expect=201)
        assert body["geometry"]["coordinates"] == [SENATE_SQUARE]
        core = api.client.app[CORES].cached(TENANT)
        assert core is not None and core.index.fence_ids == ("senate-square",)
        assert core.vertices == 5
        _, pings = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200,
                                  json_body={"pings": [{
                                      "user_id": "u1", "ts": NOON_UTC, "lat": INSIDE[0],
                                      "lng": INSIDE[1], "accuracy_m": 10.0}]})
        assert [(e["kind"], e["venue_id"]) for e in pings["events"]] == [
            ("enter", "senate-square")]
        _, stored = await api.call("GET", "/v1/venues/senate-square", expect=200)
        assert stored["properties"]["name"] == "Senate Square"
        # A store inside the stored square: the job asks for its parent, runs again.
        kiosk = {"type": "Feature", "geometry": {"type": "Point",
                                                 "coordinates": [INSIDE[1], INSIDE[0]]},
                 "properties": {"name": "Kiosk", "kind": "store", "radius_m": 10.0,
                                "parent_id": "senate-square"}}
        _, body = await api.call("PUT", "/v1/venues/kiosk", json_body=kiosk, expect=201)
        assert body["properties"]["parent_id"] == "senate-square"


async def test_a_bad_venue_is_refused_with_the_usual_422(store: Store) -> None:
    async with serving(store) as api:
        _, body = await api.call("PUT", "/v1/venues/senate-square",
                                 json_body=square("elsewhere"), expect=422)
        assert body["error"]["code"] == "conflicting_id"
        assert body["error"]["field"] == "id"
        _, body = await api.call("PUT", "/v1/venues/senate-square",
                                 data=b'{"type": "Feature", "geometry": 1e400}',
                                 headers={"Content-Type": "application/json"}, expect=422)
        assert body["error"]["code"] == "non_finite_number"


async def test_a_tenant_past_its_vertex_budget_gets_429_with_retry_after(
        store: Store) -> None:
    # 1 vertex a second, 500 at most: the 400-position outline is let in (the bucket
    # is full) and charged 401 positions + 401 indexed vertices, 302 in debt.
    async with serving(store, venue_write_vertices_per_s=1.0,
                       venue_write_burst_vertices=500.0) as api:
        await api.call("PUT", "/v1/venues/kauppatori", json_body=kauppatori(400),
                       expect=201)
        resp, body = await api.call("PUT", "/v1/venues/senate-square",
                                    json_body=square(), expect=429)
        assert body["error"]["code"] == "venue_budget_exceeded"
        assert "GEOPUSH_VENUE_WRITE_VERTICES_PER_S" in body["error"]["message"]
        assert 290 <= int(resp.headers["Retry-After"]) <= 303
        await api.call("DELETE", "/v1/venues/kauppatori", expect=429)
        # Reading is not limited, the venue is there, and other tenants write on.
        await api.call("GET", "/v1/venues/kauppatori", expect=200)
        await api.call("PUT", "/v1/venues/senate-square", json_body=square(),
                       tenant=OTHER_TENANT, expect=201)


async def test_an_import_is_validated_in_a_worker_and_charged_to_the_budget(
        store: Store) -> None:
    path = "/v1/venues/import"
    async with serving(store, venue_workers=1, venue_write_vertices_per_s=1.0,
                       venue_write_burst_vertices=500.0) as api:
        collection = {"type": "FeatureCollection",
                      "features": [square(), kauppatori(400)]}
        _, report = await api.call("POST", path, json_body=collection, expect=200)
        assert report["imported"] == 2 and report["venues"] == ["senate-square",
                                                               "kauppatori"]
        core = api.client.app[CORES].cached(TENANT)
        assert core is not None and core.vertices == 5 + 401
        _, body = await api.call("POST", path, json_body=collection, expect=429)
        assert body["error"]["code"] == "venue_budget_exceeded"
