"""Ids that contain ``/`` in the path: every OpenStreetMap venue id (``osm:way/289767497``),
an OwnTracks user (``owntracks/anna/phone``), a campaign a team names ``forum/welcome``.

Sent percent-encoded (``osm%3Away%2F289767497``) such an id is one path segment on every
route that takes an id, on both stores; sent with a bare ``/`` the router cannot know
where the id ends, and the 404 says how to encode it, with the path that works.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from server.app import OPERATIONS
from server.auth import Role
from server.store import Store
from tests.server.api.conftest import Api, FakeClock, serving
from tests.server.api.test_service import assert_error
from tests.server.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

VENUE_FILES = Path(__file__).resolve().parents[3] / "fixtures/venues"
_FEATURES = {f["id"]: f for name in ("helsinki_venues.geojson", "beijing_venues.geojson")
             for f in json.loads((VENUE_FILES / name).read_text())["features"]}
FORUM = "osm:way/289767497"
"""The Forum mall on Mannerheimintie (a way)."""
HM_IN_FORUM = "osm:node/6139262611"
"""H&M, a store inside Forum (a node; its parent_id is Forum's way)."""
CITYCENTER = "osm:relation/9630"
"""Kauppakeskus Citycenter (a relation: a multipolygon)."""
BAISHIQIAO_SOUTH = "bjsubway:5448589968+5430545454"
"""Baishiqiao South, Beijing: a station of two OSM nodes, joined by a '+'."""
FORUM_CENTRE = (60.16924, 24.93822)
"""Inside Forum, clear of the stores drawn inside it."""
USER = "owntracks/anna/phone"
CAMPAIGN = "forum/welcome"


def enc(ident: str) -> str:
    return quote(ident, safe="")


def _import_body(*ids: str) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [_FEATURES[i] for i in ids]}


async def _import(api: Api, *ids: str) -> None:
    _, report = await api.call("POST", "/v1/venues/import", json_body=_import_body(*ids),
                               expect=200)
    assert sorted(report["venues"]) == sorted(ids), report


@pytest.mark.parametrize("venue_id", [FORUM, HM_IN_FORUM, CITYCENTER, BAISHIQIAO_SOUTH])
async def test_venue_routes_take_a_percent_encoded_osm_id(api: Api, venue_id: str) -> None:
    await _import(api, FORUM, HM_IN_FORUM, CITYCENTER, BAISHIQIAO_SOUTH)
    path = f"/v1/venues/{enc(venue_id)}"
    _, venue = await api.call("GET", path, role=Role.MANAGER, expect=200)
    assert venue["id"] == venue_id and venue["properties"]["id"] == venue_id
    _, hours = await api.call("GET", f"{path}/hours?from=2026-03-02&days=1",
                              role=Role.MANAGER, expect=200)
    assert hours["venue_id"] == venue_id
    assert hours["timezone"] == _FEATURES[venue_id]["properties"]["timezone"]
    _, replaced = await api.call("PUT", path, role=Role.MANAGER, json_body=_FEATURES[venue_id],
                                 expect=200)
    assert replaced["id"] == venue_id
    _, gone = await api.call("DELETE", f"{path}?cascade=true", role=Role.MANAGER, expect=200)
    assert gone["id"] == venue_id
    _, answer = await api.call("GET", path, role=Role.MANAGER, expect=404)
    assert_error(answer, "not_found", "id")
    assert venue_id in answer["error"]["message"]


async def test_an_osm_id_is_one_venue_from_import_to_listing(api: Api) -> None:
    await _import(api, FORUM, HM_IN_FORUM)
    _, page = await api.call("GET", "/v1/venues?kind=store", role=Role.MANAGER, expect=200)
    assert [f["id"] for f in page["features"]] == [HM_IN_FORUM]
    assert page["features"][0]["properties"]["parent_id"] == FORUM
    _, forum = await api.call("GET", f"/v1/venues/{enc(FORUM)}", role=Role.MANAGER,
                              expect=200)
    assert forum["properties"]["name"] == "Forum"


async def test_user_and_campaign_ids_with_slashes_from_ping_to_stats(
    store: Store, clock: FakeClock
) -> None:
    """An OwnTracks-style user walks into Forum; the campaign ``forum/welcome`` sends;
    every user, campaign and delivery route answers for the encoded ids."""
    async with serving(store, clock, outbox_workers=1) as api:
        await _import(api, FORUM)
        user, campaign = f"/v1/users/{enc(USER)}", f"/v1/campaigns/{enc(CAMPAIGN)}"
        _, profile = await api.call("PUT", user, json_body={"tags": ["shopper"]}, expect=201)
        assert profile["user_id"] == USER
        _, patched = await api.call("PATCH", user, json_body={"attributes": {"locale": "fi"}},
                                    expect=200)
        assert patched["user_id"] == USER
        _, created = await api.call("POST", "/v1/campaigns", expect=201, json_body={
            "id": CAMPAIGN, "name": "Welcome to Forum", "trigger": {"event": "enter"},
            "venues": {"ids": [FORUM]},
            "variants": [{"id": "a", "title": "Welcome to Forum", "body": "Coffee on us"}]})
        assert created["id"] == CAMPAIGN and created["status"] == "draft"
        _, put = await api.call("PUT", campaign, json_body={**created, "priority": 2},
                                expect=200)
        assert put["priority"] == 2
        await api.call("POST", f"{campaign}/pause", expect=200)
        _, active = await api.call("POST", f"{campaign}/activate", expect=200)
        assert active["status"] == "active"
        _, got = await api.call("GET", campaign, role=Role.MANAGER, expect=200)
        assert got["id"] == CAMPAIGN

        lat, lng = FORUM_CENTRE
        _, answer = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={
            "pings": [{"user_id": USER, "ts": clock.now, "lat": lat, "lng": lng,
                       "accuracy_m": 10}]})
        [delivery] = answer["deliveries"]
        assert delivery["venue_id"] == FORUM and delivery["campaign_id"] == CAMPAIGN

        async def inbox() -> list[dict[str, Any]]:
            _, body = await api.call("GET", f"{user}/inbox", role=Role.MANAGER, expect=200)
            messages: list[dict[str, Any]] = body["messages"]
            return messages

        await eventually(inbox)
        [message] = await inbox()
        assert message["delivery_id"] == delivery["id"] and message["venue_id"] == FORUM
        _, token = await api.call("POST", f"{user}/stream-token", expect=201)
        assert token["user_id"] == USER
        resp = await api.client.get(f"{user}/inbox", params={"token": token["token"]})
        assert resp.status == 200 and (await resp.json())["user_id"] == USER
        _, decisions = await api.call("GET", f"{user}/decisions", role=Role.MANAGER,
                                      expect=200)
        assert decisions["user_id"] == USER
        assert decisions["decisions"][0]["chosen"]["campaign_id"] == CAMPAIGN

        deliveries = f"/v1/deliveries/{enc(delivery['id'])}"
        await api.call("GET", deliveries, role=Role.MANAGER, expect=200)
        await api.call("POST", f"{deliveries}/feedback", role=Role.SDK,
                       json_body={"kind": "clicked"}, expect=200)
        _, conversion = await api.call("POST", f"{campaign}/conversions",
                                       json_body={"user_id": USER}, expect=201)
        assert conversion["campaign_id"] == CAMPAIGN
        _, stats = await api.call("GET", f"{campaign}/stats", role=Role.MANAGER, expect=200)
        assert stats["campaign_id"] == CAMPAIGN and stats["feedback"] == {"clicked": 1}

        _, erased = await api.call("DELETE", user, expect=200)
        assert erased["id"] == USER and erased["erased"]
        _, deleted = await api.call("DELETE", campaign, expect=200)
        assert deleted["id"] == CAMPAIGN


_ID_OPERATIONS = [op for op in OPERATIONS if "{" in op.path]


@pytest.mark.parametrize("op", _ID_OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
async def test_every_route_that_takes_an_id_routes_an_encoded_slash(
    memory_api: Api, op: Any
) -> None:
    """Whatever the handler then answers (the record is missing, the body is empty), the
    router matched the operation: no router 404, no 405."""
    path = op.path.replace("{id}", enc(FORUM))
    resp = await memory_api.client.request(op.method, path, headers=memory_api.auth(),
                                           json={})
    body = await resp.json()
    assert resp.status != 405, body
    if resp.status == 404:
        assert "no route matches" not in body["error"]["message"], body
        assert "no such resource" not in body["error"]["message"], body


@pytest.mark.parametrize(("method", "path", "field", "works"), [
    ("GET", f"/v1/venues/{FORUM}", "id", f"/v1/venues/{enc(FORUM)}"),
    ("GET", f"/v1/venues/{FORUM}/hours", "id", f"/v1/venues/{enc(FORUM)}/hours"),
    ("DELETE", f"/v1/venues/{HM_IN_FORUM}", "id", f"/v1/venues/{enc(HM_IN_FORUM)}"),
    ("GET", f"/v1/users/{USER}/inbox", "id", f"/v1/users/{enc(USER)}/inbox"),
    ("POST", f"/v1/campaigns/{CAMPAIGN}/activate", "id",
     f"/v1/campaigns/{enc(CAMPAIGN)}/activate"),
])
async def test_an_unencoded_slash_is_a_404_that_says_how_to_encode(
    api: Api, method: str, path: str, field: str, works: str
) -> None:
    resp = await api.client.request(method, path, headers=api.auth())
    assert resp.status == 404
    answer = await resp.json()
    assert_error(answer, "not_found", field)
    message = answer["error"]["message"]
    assert "percent-encoded" in message and "%2F" in message
    assert message.endswith(f"{method} {works}"), message


async def test_the_path_the_404_suggests_is_the_venue(api: Api) -> None:
    await _import(api, FORUM)
    _, answer = await api.call("GET", f"/v1/venues/{FORUM}", role=Role.MANAGER, expect=404)
    suggested = answer["error"]["message"].rsplit(" ", 1)[-1]
    _, venue = await api.call("GET", suggested, role=Role.MANAGER, expect=200)
    assert venue["id"] == FORUM


async def test_a_path_no_id_explains_stays_a_plain_404(api: Api) -> None:
    resp = await api.client.get("/v1/venues-of-the-world/osm:way/289767497",
                                headers=api.auth())
    answer = await resp.json()
    assert resp.status == 404 and answer["error"]["message"] == "no such resource"
