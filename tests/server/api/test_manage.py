"""Venues, users, campaigns and the policy: the happy paths, and a bad input per
endpoint answering 4xx JSON that names the field."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from server.auth import Role
from tests.server.api.conftest import (
    HELSINKI,
    NOON_UTC,
    Api,
    campaign_body,
    ping,
    venue_feature,
)
from tests.server.api.test_service import assert_error
from tests.server.conftest import OTHER_TENANT, TENANT

pytestmark = pytest.mark.asyncio(loop_scope="session")
LAT, LNG = HELSINKI


def _square(venue_id: str, lng: float, lat: float, half: float,
            **props: object) -> dict[str, Any]:
    ring = [[lng - half, lat - half], [lng + half, lat - half], [lng + half, lat + half],
            [lng - half, lat + half], [lng - half, lat - half]]
    return {"type": "Feature", "id": venue_id, "geometry": {"type": "Polygon",
            "coordinates": [ring]}, "properties": {"name": venue_id, "kind": "mall", **props}}


# --------------------------------------------------------------------------- venues


async def test_venue_put_get_list_delete(api: Api) -> None:
    _, created = await api.call("PUT", "/v1/venues/senate", expect=201,
                                json_body=venue_feature(tags=["square"]))
    assert created["id"] == "senate" and created["properties"]["radius_m"] == 100
    await api.call("PUT", "/v1/venues/senate", expect=200, json_body=venue_feature())
    await api.call("PUT", "/v1/venues/far", expect=201,
                   json_body=venue_feature("far", lat=10.0, lng=10.0, kind="store",
                                             tags=["x"]))
    _, got = await api.call("GET", "/v1/venues/senate", expect=200)
    assert got["geometry"]["type"] == "Point"
    _, near = await api.call("GET", f"/v1/venues?bbox={LNG - 0.1},{LAT - 0.1},{LNG + 0.1},"
                                    f"{LAT + 0.1}", expect=200)
    assert [f["id"] for f in near["features"]] == ["senate"]
    _, stores = await api.call("GET", "/v1/venues?kind=store", expect=200)
    assert [f["id"] for f in stores["features"]] == ["far"]
    _, tagged = await api.call("GET", "/v1/venues?tag=x", expect=200)
    assert [f["id"] for f in tagged["features"]] == ["far"]
    _, page = await api.call("GET", "/v1/venues?limit=1", expect=200)
    assert [f["id"] for f in page["features"]] == ["far"] and page["next_after"] == "far"
    _, page2 = await api.call("GET", "/v1/venues?limit=1&after=far", expect=200)
    assert [f["id"] for f in page2["features"]] == ["senate"] and page2["next_after"] is None
    await api.call("DELETE", "/v1/venues/senate", expect=200)
    await api.call("GET", "/v1/venues/senate", expect=404)
    await api.call("DELETE", "/v1/venues/senate", expect=404)


async def test_deleting_a_parent_venue_needs_cascade(api: Api) -> None:
    await api.call("PUT", "/v1/venues/senate", expect=201, json_body=venue_feature())
    await api.call("PUT", "/v1/venues/shop", expect=201, json_body=venue_feature(
        "shop", radius_m=10.0, kind="store", parent_id="senate"))
    _, refused = await api.call("DELETE", "/v1/venues/senate", expect=409)
    assert_error(refused, "venue_has_children", "id")
    assert "shop" in refused["error"]["message"]
    await api.call("GET", "/v1/venues/shop", expect=200)
    _, deleted = await api.call("DELETE", "/v1/venues/senate?cascade=true", expect=200)
    assert deleted == {"deleted": True, "id": "senate", "also": ["shop"]}
    await api.call("GET", "/v1/venues/shop", expect=404)


@pytest.mark.parametrize(("body", "code", "field"), [
    ({**venue_feature(), "geometry": None}, "missing_geometry", "geometry"),
    (venue_feature(radius_m=-5), "radius_out_of_range", "properties.radius_m"),
    (venue_feature(kind="castle"), "unknown_kind", "properties.kind"),
    ({**venue_feature(), "id": "other"}, "conflicting_id", "id"),
    ({"type": "Point", "coordinates": [0, 0]}, "validation_error", "type"),
    (venue_feature(parent_id="nowhere"), "unknown_parent", "properties.parent_id"),
])
async def test_venue_put_rejects_bad_features_naming_the_field(
        api: Api, body: dict[str, Any], code: str, field: str) -> None:
    _, answer = await api.call("PUT", "/v1/venues/senate", json_body=body, expect=422)
    assert_error(answer, code, field)


async def test_a_store_is_checked_against_its_stored_mall(api: Api) -> None:
    await api.call("PUT", "/v1/venues/mall", expect=201, json_body=_square("mall", LNG, LAT,
                                                                           0.002))
    inside = _square("shop", LNG, LAT, 0.0002, kind="store", parent_id="mall")
    await api.call("PUT", "/v1/venues/shop", json_body=inside, expect=201)
    outside = _square("shop2", LNG + 0.01, LAT, 0.0002, kind="store", parent_id="mall")
    _, answer = await api.call("PUT", "/v1/venues/shop2", json_body=outside, expect=422)
    assert_error(answer, "not_inside_parent", "properties.parent_id")


@pytest.mark.parametrize(("query", "field"), [
    ("bbox=1,2,3", "bbox"), ("bbox=10,0,5,1", "bbox"), ("kind=castle", "kind"),
    ("limit=0", "limit"), ("limit=x", "limit"),
])
async def test_venue_list_bad_query_names_the_parameter(api: Api, query: str,
                                                        field: str) -> None:
    _, answer = await api.call("GET", f"/v1/venues?{query}", expect=422)
    assert_error(answer, "validation_error", field)


async def test_import_dry_run_reports_problems_and_writes_nothing(api: Api) -> None:
    collection = {"type": "FeatureCollection", "features": [
        venue_feature("a"), venue_feature("b", radius_m=-1), {"type": "Feature"},
        _square("shop", LNG, LAT, 0.0001, kind="store", parent_id="mall")]}
    await api.call("PUT", "/v1/venues/mall", expect=201,
                   json_body=_square("mall", LNG, LAT, 0.002))
    _, report = await api.call("POST", "/v1/venues/import?dry_run=true", expect=200,
                               json_body=collection)
    assert report["dry_run"] is True and report["imported"] == 0
    assert report["venues"] == ["a", "shop"]  # shop's parent is the stored mall
    problems = {(p["feature_index"], p["feature_id"], p["field"], p["code"])
                for p in report["problems"]}
    assert (1, "b", "properties.radius_m", "radius_out_of_range") in problems
    assert any(p[0] == 2 and p[3] == "missing_id" for p in problems)
    assert report["summary"]["features"] == 4 and report["summary"]["rejected"] == 2
    await api.call("GET", "/v1/venues/a", expect=404)
    _, real = await api.call("POST", "/v1/venues/import", expect=200, json_body=collection)
    assert real["imported"] == 2
    await api.call("GET", "/v1/venues/a", expect=200)


async def test_import_multipart_kml_and_geojson_files(api: Api) -> None:
    kml = f"""<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark><name>Plaza</name>
<ExtendedData><Data name="id"><value>plaza</value></Data>
<Data name="kind"><value>mall</value></Data></ExtendedData>
<Polygon><outerBoundaryIs><LinearRing><coordinates>
{LNG},{LAT} {LNG + 0.001},{LAT} {LNG + 0.001},{LAT + 0.001} {LNG},{LAT + 0.001} {LNG},{LAT}
</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark></Document></kml>"""
    form = aiohttp.FormData()
    form.add_field("file", kml.encode(), filename="plaza.kml",
                   content_type="application/vnd.google-earth.kml+xml")
    resp = await api.client.post("/v1/venues/import", data=form, headers=api.auth())
    report = await resp.json()
    assert resp.status == 200, report
    assert report["venues"] == ["plaza"] and report["imported"] == 1
    form = aiohttp.FormData()
    form.add_field("file", json.dumps({"type": "FeatureCollection", "features": [
        venue_feature("g")]}).encode(), filename="v.geojson")
    resp = await api.client.post("/v1/venues/import?dry_run=1", data=form,
                                 headers=api.auth())
    assert resp.status == 200 and (await resp.json())["venues"] == ["g"]


@pytest.mark.parametrize(("filename", "data", "code"), [
    ("v.txt", b"hello", "unsupported_format"),
    ("v.gpkg", b"not a geopackage", "unreadable_file"),
    ("v.geojson", b"{", "truncated_json"),
])
async def test_import_unreadable_files_name_the_file_field(api: Api, filename: str,
                                                           data: bytes, code: str) -> None:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=filename)
    resp = await api.client.post("/v1/venues/import", data=form, headers=api.auth())
    assert resp.status == 422
    body = await resp.json()
    assert body["error"]["code"] == code and body["error"]["field"] is not None


async def test_import_json_that_is_not_a_collection(api: Api) -> None:
    _, answer = await api.call("POST", "/v1/venues/import", json_body={"type": "Nope"},
                               expect=422)
    assert_error(answer, "not_a_feature_collection", "type")


# --------------------------------------------------------------------------- users


async def test_user_put_patch_erase(api: Api) -> None:
    _, created = await api.call("PUT", "/v1/users/u1", expect=201, json_body={
        "attributes": {"age": 34, "locale": "fi-FI"}, "tags": ["coffee"]})
    assert created["user_id"] == "u1"
    _, patched = await api.call("PATCH", "/v1/users/u1", expect=200, json_body={
        "attributes": {"first_name": "Aino", "age": None}, "tags": ["tea"]})
    assert patched["attributes"]["first_name"] == "Aino" and patched["tags"] == ["tea"]
    assert patched["attributes"]["locale"] == "fi-FI" and patched["attributes"]["age"] is None
    await api.call("POST", "/v1/pings", role=Role.SDK, expect=200,
                   json_body={"pings": [ping(ts=api.clock.now - 5)]})
    _, erased = await api.call("DELETE", "/v1/users/u1", expect=200)
    assert sum(erased["erased"].values()) >= 2  # the profile and the ping at least
    await api.call("PATCH", "/v1/users/u1", json_body={"tags": []}, expect=404)


@pytest.mark.parametrize(("method", "body", "field"), [
    ("PUT", {"attributes": {"age": 400}}, "attributes.age"),
    ("PUT", {"user_id": "someone-else"}, "user_id"),
    ("PUT", {"tags": "coffee", "colour": 1}, "tags"),
    ("PUT", {"attributes": {"timezone": "Mars/Base"}}, "attributes.timezone"),
    ("PATCH", {"attributes": {"age": -1}}, "attributes.age"),
    ("PATCH", {"nope": 1}, "nope"),
])
async def test_user_bad_bodies_name_the_field(api: Api, method: str, body: dict[str, Any],
                                              field: str) -> None:
    await api.call("PUT", "/v1/users/u1", json_body={}, expect=201)
    _, answer = await api.call(method, "/v1/users/u1", json_body=body, expect=422)
    assert answer["error"]["field"] == field, answer


# --------------------------------------------------------------------------- campaigns


async def test_campaign_lifecycle_and_stats(api: Api) -> None:
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    _, created = await api.call("POST", "/v1/campaigns", json_body=campaign_body(),
                                expect=201)
    assert created["status"] == "draft"
    await api.call("POST", "/v1/campaigns", json_body=campaign_body(), expect=409)
    _, generated = await api.call("POST", "/v1/campaigns", expect=201,
                                  json_body={k: v for k, v in campaign_body().items()
                                             if k != "id"})
    assert generated["id"].startswith("c_")
    now = api.clock.now
    _, body = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={
        "pings": [ping(ts=now - 20), ping(ts=now - 10)]})
    assert body["deliveries"] == []  # drafts do not send
    _, active = await api.call("POST", "/v1/campaigns/hello/activate", expect=200)
    assert active["status"] == "active"
    _, body = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={
        "pings": [ping("u2", ts=now - 20), ping("u2", ts=now - 10)]})
    assert [d["campaign_id"] for d in body["deliveries"]] == ["hello"]
    _, stats = await api.call("GET", "/v1/campaigns/hello/stats", expect=200)
    assert stats["deliveries"] == 1 and stats["by_status"]["pending"] == 1
    assert stats["by_variant"] == [{"variant_id": "a", "deliveries": 1, "feedback": {}}]
    _, paused = await api.call("POST", "/v1/campaigns/hello/pause", expect=200)
    assert paused["status"] == "paused"
    _, listed = await api.call("GET", "/v1/campaigns?status=paused", expect=200)
    assert [c["id"] for c in listed["campaigns"]] == ["hello"]
    _, replaced = await api.call("PUT", "/v1/campaigns/hello", expect=200,
                                 json_body=campaign_body(priority=7, status="ended"))
    assert replaced["priority"] == 7
    await api.call("POST", "/v1/campaigns/hello/activate", expect=409)
    await api.call("DELETE", "/v1/campaigns/hello", expect=200)
    await api.call("GET", "/v1/campaigns/hello", expect=404)


@pytest.mark.parametrize(("body", "field"), [
    (campaign_body(trigger={"event": "linger"}), "trigger.event"),
    (campaign_body(variants=[]), "variants"),
    (campaign_body(variants=[{"id": "a", "title": "t", "body": "b", "weight": -1}]),
     "variants[0].weight"),
    (campaign_body(control_pct=101), "control_pct"),
    (campaign_body(channels=["pigeon"]), "channels"),
    (campaign_body(id="x\u0001"), "id"),
    (campaign_body(colour="red"), "colour"),
])
async def test_campaign_bad_bodies_name_the_field(api: Api, body: dict[str, Any],
                                                  field: str) -> None:
    _, answer = await api.call("POST", "/v1/campaigns", json_body=body, expect=422)
    assert answer["error"]["field"] == field, answer


async def test_campaign_put_with_another_id_is_refused(api: Api) -> None:
    _, answer = await api.call("PUT", "/v1/campaigns/hello", expect=422,
                               json_body=campaign_body("other"))
    assert_error(answer, "conflicting_id", "id")


# --------------------------------------------------------------------------- policy


async def test_policy_get_put(api: Api) -> None:
    _, default = await api.call("GET", "/v1/policy", expect=200)
    assert default["policy"]["quiet_hours"] == "22:00-08:00" and default["presence"] == {}
    _, put = await api.call("PUT", "/v1/policy", expect=200, json_body={
        "policy": {"max_per_day": 5, "quiet_hours": None},
        "presence": {"silence_timeout_s": 600, "exit_confirm_pings": 3}})
    assert put["policy"]["max_per_day"] == 5 and put["presence"]["exit_confirm_pings"] == 3
    _, again = await api.call("GET", "/v1/policy", role=Role.MANAGER, expect=200)
    assert again == put


_CUSTOM_POLICY = {
    "policy": {"quiet_hours": "23:00-07:30", "max_per_day": 5, "max_per_week": 12,
               "min_gap_s": 900, "fatigue_after_ignored": None,
               "default_timezone": "Europe/Helsinki", "country": "FI"},
    "presence": {"silence_timeout_s": 600, "exit_confirm_pings": 3, "dwell_s": 240.0,
                 "max_accuracy_m": 150.5},
}


@pytest.mark.parametrize("custom", [False, True], ids=["default", "customised"])
async def test_policy_put_accepts_exactly_what_get_answers(api: Api, custom: bool) -> None:
    if custom:
        await api.call("PUT", "/v1/policy", json_body=_CUSTOM_POLICY, expect=200)
    _, read = await api.call("GET", "/v1/policy", expect=200)
    _, put = await api.call("PUT", "/v1/policy", json_body=read, expect=200)
    _, again = await api.call("GET", "/v1/policy", expect=200)
    assert put == read and again == read
    if custom:
        assert read["policy"]["country"] == "FI" and read["presence"]["max_accuracy_m"] == 150.5
        # whole-number settings read back as integers, measures as numbers
        assert read["presence"]["exit_confirm_pings"] == 3
        assert isinstance(read["presence"]["exit_confirm_pings"], int)
        assert isinstance(read["presence"]["silence_timeout_s"], float)


async def test_policy_of_another_tenant_is_not_put(api: Api) -> None:
    _, theirs = await api.call("GET", "/v1/policy", tenant=OTHER_TENANT, expect=200)
    _, answer = await api.call("PUT", "/v1/policy", json_body=theirs, expect=422)
    assert_error(answer, "conflicting_id", "tenant_id")
    assert OTHER_TENANT in answer["error"]["message"]


@pytest.mark.parametrize(("body", "field"), [
    ({"policy": {"max_per_day": -1}}, "policy.max_per_day"),
    ({"policy": {"quiet_hours": "late"}}, "policy.quiet_hours"),
    ({"presence": {"silence_timout_s": 5}}, "presence.silence_timout_s"),
    ({"presence": {"silence_timeout_s": -5}}, "presence.silence_timeout_s"),
    ({"presence": {"exit_confirm_pings": 1.5}}, "presence.exit_confirm_pings"),
    ({"presence": {"venues": 1}}, "presence.venues"),
    ({"rules": {}}, "rules"),
])
async def test_policy_bad_bodies_name_the_field(api: Api, body: dict[str, Any],
                                                field: str) -> None:
    _, answer = await api.call("PUT", "/v1/policy", json_body=body, expect=422)
    assert answer["error"]["field"] == field, answer


async def test_decisions_bad_query(api: Api) -> None:
    _, answer = await api.call("GET", "/v1/users/u1/decisions?limit=9999", expect=422)
    assert_error(answer, "validation_error", "limit")
    _, answer = await api.call("GET", "/v1/users/u1/decisions?before=yesterday", expect=422)
    assert_error(answer, "validation_error", "before")


@pytest.mark.parametrize(("raw", "field"), [
    (b'{"attributes": {"gender": "f\\u0000"}}', "attributes.gender"),
    (b'{"tags": ["ok", "bad\\ud809"]}', "tags[1]"),
    (b'{"attributes": {"first_name": "Ann"}, "next_stops": {"x\\u0000": {}}}',
     "next_stops.x\x00"),
])
async def test_text_no_database_can_store_is_a_422_naming_the_field(
    api: Api, raw: bytes, field: str,
) -> None:
    """NUL and lone surrogates are valid JSON but no text column holds them: a 422 that
    names the field, on both stores (PostgreSQL answered 503 before)."""
    resp = await api.client.put("/v1/users/u1", data=raw, headers={
        **api.auth(), "Content-Type": "application/json"})
    body = await resp.json()
    assert resp.status == 422, body
    assert body["error"]["code"] == "invalid_text"
    assert body["error"]["field"] == field
    assert await api.store.get_profile(TENANT, "u1") is None


async def test_a_nul_in_one_ping_rejects_that_ping_only(api: Api) -> None:
    pings = [{"user_id": "u1", "ts": NOON_UTC - 5, "lat": 60.17, "lng": 24.94},
             {"user_id": "u\u0000", "ts": NOON_UTC - 5, "lat": 60.17, "lng": 24.94}]
    _, body = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200,
                             json_body={"pings": pings})
    assert body["accepted"] == 1
    assert [r["field"] for r in body["rejected"]] == ["pings[1].user_id"]
