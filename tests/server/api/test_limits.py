"""What one tenant may send: body sizes per route, vertices per venue, venues per
tenant and text sizes, on both stores. Each refusal is a 4xx naming the limit (and the
field), and nothing is written."""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import pytest
import shapely
from shapely.geometry import shape

from server.auth import Role
from server.store import Store
from tests.server.api.conftest import Api, campaign_body, ping, serving, venue_feature
from tests.server.api.test_service import assert_error
from tests.venues.test_limits import dense_outline

pytestmark = pytest.mark.asyncio(loop_scope="session")


def plaza(venue_id: str = "plaza", vertices: int = 22_000, **props: object) -> dict[str, Any]:
    """A round plaza outlined with more vertices than the limit (20,000), in under the
    test settings' 1 MiB body limit."""
    return {"type": "Feature", "id": venue_id, "geometry": dense_outline(vertices),
            "properties": {"name": "Senaatintori", "kind": "other", **props}}


# --------------------------------------------------------------------------- bodies


async def test_each_route_has_its_own_body_limit(store: Store) -> None:
    async with serving(store, max_body_bytes=64 * 1024, max_pings_body_bytes=16 * 1024,
                       max_json_body_bytes=4 * 1024) as api:
        pings = {"pings": [ping(f"u{i}", ts=api.clock.now - 10) for i in range(200)]}
        assert len(json.dumps(pings)) > 16 * 1024
        _, answer = await api.call("POST", "/v1/pings", role=Role.SDK, json_body=pings,
                                   expect=413)
        assert_error(answer, "payload_too_large")
        assert "16,384 bytes" in answer["error"]["message"]
        # The same 18 KB is fine where venues go, and too much where campaigns go.
        await api.call("PUT", "/v1/venues/plaza", json_body=plaza(vertices=400), expect=201)
        big = campaign_body(name="x" * 5_000)
        _, answer = await api.call("POST", "/v1/campaigns", json_body=big, expect=413)
        assert "4,096 bytes" in answer["error"]["message"]
        await api.call("GET", "/v1/campaigns/hello", expect=404)


async def test_a_ten_megabyte_campaign_is_refused_before_it_is_read(api: Api) -> None:
    body = json.dumps(campaign_body(name="x" * 10_000_000)).encode()
    _, answer = await api.call("POST", "/v1/campaigns", data=io.BytesIO(body), expect=413,
                               headers={"Content-Type": "application/json",
                                        "Content-Length": str(len(body))})
    assert_error(answer, "payload_too_large")


async def test_a_gzip_bomb_stops_at_the_limit_of_its_decoded_size(api: Api) -> None:
    bomb = gzip.compress(b'{"pings": [' + b" " * 20_000_000 + b"]}")
    assert len(bomb) < 100_000
    _, answer = await api.call("POST", "/v1/pings", role=Role.SDK, data=bomb, expect=413,
                               headers={"Content-Encoding": "gzip",
                                        "Content-Type": "application/json"})
    assert_error(answer, "payload_too_large")


# --------------------------------------------------------------------------- venues


async def test_a_venue_over_the_vertex_limit_is_a_422_naming_its_geometry(api: Api) -> None:
    _, answer = await api.call("PUT", "/v1/venues/plaza", json_body=plaza(), expect=422)
    assert_error(answer, "too_many_vertices", "geometry")
    assert "simplify=true" in answer["error"]["message"]
    await api.call("GET", "/v1/venues/plaza", expect=404)


async def test_simplify_true_stores_the_outline_within_a_metre(api: Api) -> None:
    _, created = await api.call("PUT", "/v1/venues/plaza?simplify=true", json_body=plaza(),
                                expect=201)
    assert [w["code"] for w in created["warnings"]] == ["simplified"]
    _, stored = await api.call("GET", "/v1/venues/plaza", expect=200)
    outline = shape(stored["geometry"])
    assert shapely.get_num_coordinates(outline) < 100
    moved_deg = shapely.hausdorff_distance(outline, shape(dense_outline(22_000)))
    assert moved_deg * 111_320 <= 1.0


async def test_an_import_reports_the_oversized_feature_and_keeps_the_others(
    api: Api,
) -> None:
    features = [venue_feature(f"v{i}") for i in range(3)] + [plaza("huge")]
    _, report = await api.call("POST", "/v1/venues/import", expect=200,
                               json_body={"type": "FeatureCollection", "features": features})
    assert [(p["feature_index"], p["field"], p["code"]) for p in report["problems"]] == [
        (3, "geometry", "too_many_vertices")]
    assert report["venues"] == ["v0", "v1", "v2"] and report["imported"] == 3


async def test_venues_per_tenant_are_limited_and_replacing_one_does_not_count(
    store: Store,
) -> None:
    async with serving(store, max_venues_per_tenant=3) as api:
        body = {"type": "FeatureCollection",
                "features": [venue_feature("a"), venue_feature("b")]}
        await api.call("POST", "/v1/venues/import", json_body=body, expect=200)
        await api.call("PUT", "/v1/venues/c", json_body=venue_feature("c"), expect=201)
        await api.call("PUT", "/v1/venues/a", json_body=venue_feature("a"), expect=200)
        _, answer = await api.call("PUT", "/v1/venues/d", json_body=venue_feature("d"),
                                   expect=422)
        assert_error(answer, "too_many_venues", "id")
        body = {"type": "FeatureCollection",
                "features": [venue_feature("b"), venue_feature("e")]}
        _, answer = await api.call("POST", "/v1/venues/import", json_body=body, expect=422)
        assert_error(answer, "too_many_venues", "features")
        _, listed = await api.call("GET", "/v1/venues", expect=200)
        assert [f["id"] for f in listed["features"]] == ["a", "b", "c"]
        # Another tenant has a limit of its own.
        await api.call("PUT", "/v1/venues/d", json_body=venue_feature("d"), expect=201,
                       tenant="globex")


async def test_a_five_megabyte_venue_name_is_refused(store: Store) -> None:
    body = json.dumps(venue_feature(name="x" * 5_000_000)).encode()
    headers = {"Content-Type": "application/json"}
    async with serving(store, max_body_bytes=8 * 1024 * 1024) as api:
        # A venue's body is at most 2 MiB: refused unread.
        _, answer = await api.call("PUT", "/v1/venues/senate", data=io.BytesIO(body),
                                   headers=headers, expect=413)
        assert_error(answer, "payload_too_large")
    async with serving(store, max_body_bytes=8 * 1024 * 1024,
                       max_venue_body_bytes=8 * 1024 * 1024) as api:
        # With room for it, the name itself is too long.
        _, answer = await api.call("PUT", "/v1/venues/senate", data=io.BytesIO(body),
                                   headers=headers, expect=422)
        assert_error(answer, "text_too_long", "properties.name")
        await api.call("GET", "/v1/venues/senate", expect=404)


async def test_an_offer_kept_longer_than_a_month_is_refused(api: Api) -> None:
    _, answer = await api.call("POST", "/v1/campaigns", expect=422,
                               json_body=campaign_body(offer_ttl_s=2.3e307))
    assert_error(answer, "validation_error", "offer_ttl_s")
