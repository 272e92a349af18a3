"""Non-finite numbers in request bodies: ``1e400`` is valid JSON that overflows a 64-bit
float to infinity. Every endpoint answers 422 ``non_finite_number`` naming the field
(PostgreSQL answered 503, and the embedded store kept it and later wrote
``"expires_at": Infinity``, which no JSON parser reads); nothing is stored; in a ping
batch only that ping is rejected. Both stores."""

from __future__ import annotations

import json
import math
from typing import Any

import aiohttp
import pytest

from server.auth import Role
from tests.server.api.conftest import NOON_UTC, Api, campaign_body, ping, venue_feature
from tests.server.api.test_service import assert_error
from tests.server.conftest import TENANT

pytestmark = pytest.mark.asyncio(loop_scope="session")
INF = math.inf


def overflowing(body: Any) -> bytes:
    """``body`` as JSON with every infinity written as ``1e400`` / ``-1e400``: valid
    JSON (RFC 8259 sets no range) that every 64-bit float reader overflows."""
    return json.dumps(body).replace("Infinity", "1e400").encode()


def strict_json(text: str) -> Any:
    """A parser that, like a browser's, refuses ``NaN`` and ``Infinity``."""
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in a response: not JSON")
    return json.loads(text, parse_constant=refuse)


async def send(api: Api, method: str, path: str, raw: bytes,
               role: Role = Role.ADMIN) -> tuple[int, Any]:
    resp = await api.client.request(method, path, data=raw, headers={
        **api.auth(role), "Content-Type": "application/json"})
    return resp.status, strict_json(await resp.text())


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("POST", "/v1/campaigns",
     campaign_body(variants=[{"id": "a", "title": "t", "body": "b", "weight": INF}]),
     "variants[0].weight"),
    ("POST", "/v1/campaigns", campaign_body(offer_ttl_s=INF), "offer_ttl_s"),
    ("POST", "/v1/campaigns", campaign_body(schedule={"start": -INF}), "schedule.start"),
    ("POST", "/v1/campaigns", campaign_body(offer={"discount": INF}), "offer.discount"),
    ("PUT", "/v1/campaigns/hello", campaign_body(caps={"cooldown_s": INF}), "caps.cooldown_s"),
    ("PUT", "/v1/policy", {"policy": {"min_gap_s": INF}}, "policy.min_gap_s"),
    ("PUT", "/v1/policy", {"presence": {"silence_timeout_s": INF}},
     "presence.silence_timeout_s"),
    ("PUT", "/v1/venues/senate",
     venue_feature(metadata={"lines": ["M1", "M2", INF]}), "properties.metadata.lines[2]"),
    ("PUT", "/v1/venues/senate", venue_feature(radius_m=INF), "properties.radius_m"),
    ("PUT", "/v1/users/u1", {"attributes": {"height_cm": INF}}, "attributes.height_cm"),
    ("PATCH", "/v1/users/u1", {"attributes": {"age": -INF}}, "attributes.age"),
], ids=lambda v: v if isinstance(v, str) else "")
async def test_a_number_that_overflows_is_a_422_naming_the_field(
    api: Api, method: str, path: str, body: Any, field: str,
) -> None:
    if method == "PATCH":
        await api.call("PUT", "/v1/users/u1", json_body={"tags": ["x"]}, expect=201)
    status, answer = await send(api, method, path, overflowing(body))
    assert status == 422, answer
    assert_error(answer, "non_finite_number", field)
    assert await api.store.get_campaign(TENANT, "hello") is None
    assert await api.store.get_venue(TENANT, "senate") is None
    assert (await api.store.get_policy(TENANT)).policy.min_gap_s == 1800.0
    profile = await api.store.get_profile(TENANT, "u1")
    assert profile is None or profile.attributes.age is None


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("POST", "/v1/campaigns", campaign_body(offer_ttl_s="inf"), "offer_ttl_s"),
    ("POST", "/v1/campaigns", campaign_body(schedule={"end": "Infinity"}), "schedule.end"),
    ("PUT", "/v1/policy", {"presence": {"silence_timeout_s": "NaN"}},
     "presence.silence_timeout_s"),
], ids=lambda v: v if isinstance(v, str) else "")
async def test_infinity_spelt_as_text_is_refused_too(
    api: Api, method: str, path: str, body: Any, field: str,
) -> None:
    """pydantic reads ``"inf"`` and ``"NaN"`` as floats where a number is expected."""
    _, answer = await api.call(method, path, json_body=body, expect=422)
    assert_error(answer, "validation_error", field)
    assert answer["error"]["details"][0]["code"] == "non_finite_number"


async def test_an_overflowing_number_rejects_that_ping_only(api: Api) -> None:
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    pings = [ping("u1", ts=NOON_UTC - 5), ping("u2", ts=NOON_UTC - 5, lat=INF),
             ping("u3", ts=-INF)]
    status, answer = await send(api, "POST", "/v1/pings", overflowing({"pings": pings}),
                                role=Role.SDK)
    assert status == 200, answer
    assert answer["accepted"] == 1
    assert [(r["index"], r["code"], r["field"]) for r in answer["rejected"]] == [
        (1, "non_finite_number", "pings[1].lat"), (2, "non_finite_number", "pings[2].ts")]
    assert [e["user_id"] for e in answer["events"]] == ["u1"]


async def test_a_venue_file_with_a_non_finite_metadata_value_is_rejected_by_feature(
    api: Api,
) -> None:
    """Multipart files are read by the venue reader: ``NaN`` is kept as a marker and
    the venue that holds it rejected, naming the field; the other venue imports."""
    collection = {"type": "FeatureCollection", "features": [
        venue_feature("kamppi", metadata={"lines": ["M1"]}),
        venue_feature("senate", metadata={"exits": {"a": float("nan")}})]}
    form = aiohttp.FormData()
    form.add_field("file", json.dumps(collection).encode(), filename="v.geojson")
    resp = await api.client.post("/v1/venues/import", data=form, headers=api.auth())
    report = strict_json(await resp.text())
    assert resp.status == 200, report
    assert report["venues"] == ["kamppi"]
    assert [(p["feature_id"], p["field"], p["code"]) for p in report["problems"]
            if p["severity"] == "error"] == [
        ("senate", "properties.metadata.exits.a", "non_finite_number")]
    assert await api.store.get_venue(TENANT, "senate") is None
    assert await api.store.get_venue(TENANT, "kamppi") is not None


async def test_the_import_of_a_json_body_names_the_feature_that_overflows(api: Api) -> None:
    collection = {"type": "FeatureCollection", "features": [
        venue_feature("kamppi"), venue_feature("senate", dwell_s=INF)]}
    status, answer = await send(api, "POST", "/v1/venues/import?dry_run=true",
                                overflowing(collection))
    assert status == 422
    assert_error(answer, "non_finite_number", "features[1].properties.dwell_s")
