"""Location in: our JSON batches, OwnTracks HTTP mode and OsmAnd / Traccar Client.

Payloads are the examples of the projects' own docs (owntracks.org/booklet/tech/http,
traccar.org/osmand) with coordinates moved to the test venue.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.api.context import LEARNER
from server.auth import Role
from tests.server.api.conftest import HELSINKI, Api, campaign_body, ping, venue_feature
from tests.server.api.test_service import assert_error
from tests.server.conftest import TENANT

pytestmark = pytest.mark.asyncio(loop_scope="session")
LAT, LNG = HELSINKI


async def _venue_and_campaign(api: Api) -> None:
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    await api.call("POST", "/v1/campaigns", expect=201,
                   json_body=campaign_body(status="active"))


# --------------------------------------------------------------------------- /v1/pings


async def test_walk_in_fires_enter_and_creates_a_delivery(api: Api) -> None:
    await _venue_and_campaign(api)
    now = api.clock.now
    _, body = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={
        "pings": [ping(ts=now - 20), ping(ts=now - 10)]})
    assert body["accepted"] == 2 and body["rejected"] == []
    assert [(e["kind"], e["venue_id"]) for e in body["events"]] == [("enter", "senate")]
    [delivery] = body["deliveries"]
    assert delivery["campaign_id"] == "hello" and delivery["title"] == "Welcome"
    _, log = await api.call("GET", "/v1/users/u1/decisions", expect=200)
    [decision] = log["decisions"]
    assert decision["chosen"]["campaign_id"] == "hello"
    assert decision["considered"][0]["reason"] == "sent"


async def test_one_bad_ping_does_not_sink_the_batch(api: Api) -> None:
    now = api.clock.now
    _, body = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={
        "pings": [ping(ts=now - 30), ping(lat=91.0), ping(ts=now - 10),
                  {"user_id": "u2", "ts": now, "lng": 1.0}, ping(ts=now + 3600),
                  ping(ts="2026-03-02T11:59:55+00:00", user="u3"), ping(accuracy=5)]})
    assert body["accepted"] == 3
    rejected = {r["index"]: r for r in body["rejected"]}
    assert set(rejected) == {1, 3, 4, 6}
    assert rejected[1]["field"] == "pings[1].lat"
    assert rejected[1]["code"] == "less_than_equal"
    assert rejected[3]["field"] == "pings[3].lat" and rejected[3]["code"] == "missing"
    assert rejected[4]["field"] == "pings[4].ts" and rejected[4]["code"] == "future_ts"
    assert rejected[6]["field"] == "pings[6].accuracy"
    assert rejected[6]["code"] == "extra_forbidden"


async def test_duplicates_are_counted_as_ignored(api: Api) -> None:
    now = api.clock.now
    _, body = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={
        "pings": [ping(ts=now - 10), ping(ts=now - 10)]})
    assert body["accepted"] == 2 and body["ignored"] == {"duplicate": 1}


@pytest.mark.parametrize(("body", "status", "code", "field"), [
    ([], 422, "validation_error", None),
    ({"pings": {}}, 422, "validation_error", "pings"),
    ({"pings": [], "extra": 1}, 422, "validation_error", "extra"),
    ({}, 422, "validation_error", "pings"),
])
async def test_bad_envelopes_name_the_field(api: Api, body: object, status: int, code: str,
                                            field: str | None) -> None:
    _, answer = await api.call("POST", "/v1/pings", role=Role.SDK, json_body=body,
                               expect=status)
    assert_error(answer, code, field)


async def test_more_than_1000_pings_is_refused(api: Api) -> None:
    _, answer = await api.call("POST", "/v1/pings", role=Role.SDK, expect=422,
                               json_body={"pings": [ping()] * 1001})
    assert_error(answer, "batch_too_large", "pings")


# --------------------------------------------------------------------------- OwnTracks

OWNTRACKS_LOCATION = {  # the booklet's HTTP example, plus fields the apps send
    "_type": "location", "tid": "JJ", "lat": LAT, "lon": LNG, "tst": 1772452790,
    "acc": 12, "alt": 30, "vel": 18, "cog": 270, "batt": 80, "conn": "w", "m": 1,
    "topic": "owntracks/jane/phone", "t": "u", "created_at": 1772452791,
}


async def test_owntracks_post_with_x_limit_u_enters_the_venue(api: Api) -> None:
    await _venue_and_campaign(api)
    msg = {k: v for k, v in OWNTRACKS_LOCATION.items() if k != "topic"}
    headers = {"X-Limit-U": "jane", "X-Limit-D": "phone"}
    for tst in (api.clock.now - 20, api.clock.now - 10):
        _, body = await api.call("POST", "/v1/owntracks", role=Role.SDK, expect=200,
                                    json_body={**msg, "tst": tst}, headers=headers)
        assert body == []
    _, log = await api.call("GET", "/v1/users/jane/decisions", expect=200)
    assert [d["event"] for d in log["decisions"]] == ["enter"]


async def test_owntracks_transition_is_a_ping_and_waypoints_are_ignored(api: Api) -> None:
    transition = {"_type": "transition", "wtst": 1772400000, "lat": LAT, "lon": LNG,
                  "tst": api.clock.now - 5, "acc": 20, "tid": "JJ", "event": "enter",
                  "desc": "Senate", "t": "c", "topic": "owntracks/jane/phone/event"}
    for message in (transition, {"_type": "waypoints", "waypoints": []},
                    {"_type": "lwt", "tst": 1}):
        _, body = await api.call("POST", "/v1/owntracks", role=Role.SDK, expect=200,
                                 json_body=message)
        assert body == []
    resp = await api.client.post("/v1/owntracks", data=b"", headers=api.auth(Role.SDK))
    assert resp.status == 200 and await resp.json() == []


@pytest.mark.parametrize(("message", "code", "field"), [
    ({**OWNTRACKS_LOCATION, "lat": 123}, "validation_error", "lat"),
    ({**OWNTRACKS_LOCATION, "tst": "yesterday"}, "validation_error", "tst"),
    ({k: v for k, v in OWNTRACKS_LOCATION.items() if k != "topic"}, "missing_user", "topic"),
    ({"_type": "encrypted", "data": "..."}, "encrypted_not_supported", "_type"),
    ({"lat": 1}, "validation_error", "_type"),
    ([OWNTRACKS_LOCATION, "x"], "validation_error", "[1]"),
])
async def test_owntracks_bad_messages_name_the_field(api: Api, message: object, code: str,
                                                     field: str) -> None:
    _, body = await api.call("POST", "/v1/owntracks", role=Role.SDK, json_body=message,
                             expect=422)
    assert_error(body, code, field)


# --------------------------------------------------------------------------- OsmAnd


async def test_osmand_get_post_form_and_json_all_land(api: Api) -> None:
    await _venue_and_campaign(api)
    t = int(api.clock.now)
    key = api.keys[(TENANT, Role.SDK)]
    resp = await api.client.get(f"/v1/osmand?id=dev1&lat={LAT}&lon={LNG}&timestamp={t - 30}"
                                f"&speed=0&key={key}")
    assert resp.status == 200 and (await resp.json())["accepted"] == 1
    resp = await api.client.post("/v1/osmand", data={
        "id": "dev1", "lat": str(LAT), "lon": str(LNG), "timestamp": str(t - 20)},
        headers=api.auth(Role.SDK))
    assert resp.status == 200 and (await resp.json())["accepted"] == 1
    stamp = datetime.fromtimestamp(t - 10, UTC).isoformat().replace("+00:00", "Z")
    _, body = await api.call("POST", "/v1/osmand", role=Role.SDK, expect=200, json_body={
        "device_id": "dev1", "location": {"timestamp": stamp, "coords": {
            "latitude": LAT, "longitude": LNG, "accuracy": 5, "speed": 0, "heading": 0,
            "altitude": 0}, "is_moving": False}})
    assert body == {"accepted": 1, "rejected": []}
    _, log = await api.call("GET", "/v1/users/dev1/decisions", expect=200)
    assert [d["event"] for d in log["decisions"]] == ["enter"]


async def test_osmand_invalid_fix_is_rejected_not_processed(api: Api) -> None:
    _, body = await api.call("GET", f"/v1/osmand?id=d&lat={LAT}&lon={LNG}&valid=false",
                             role=Role.SDK, expect=200)
    assert body["accepted"] == 0 and body["rejected"][0]["code"] == "invalid_fix"


@pytest.mark.parametrize(("query", "field"), [
    ("lat=60&lon=24", "id"),
    ("id=d&lon=24", "lat"),
    ("id=d&lat=abc&lon=24", "lat"),
    ("id=d&lat=60&lon=200", "lon"),
    ("id=d&lat=60&lon=24&timestamp=soon", "timestamp"),
    ("id=d&lat=60&lon=24&speed=fast", "speed"),
    ("id=d&location=1;2", "location"),
])
async def test_osmand_bad_parameters_name_the_parameter(api: Api, query: str,
                                                        field: str) -> None:
    _, body = await api.call("GET", f"/v1/osmand?{query}", role=Role.SDK, expect=422)
    assert_error(body, "validation_error", field)


async def test_osmand_bad_json_names_the_path(api: Api) -> None:
    _, body = await api.call("POST", "/v1/osmand", role=Role.SDK, expect=422, json_body={
        "device_id": "d", "location": {"coords": {"latitude": 99, "longitude": 0}}})
    assert_error(body, "validation_error", "location.coords.latitude")


async def test_a_finished_visit_teaches_the_profile_its_behaviour_stats(api: Api) -> None:
    """The EXIT's batch commits, then the learner updates the profile in the background:
    first_seen / last_active from the visit; other profile fields are kept."""
    await _venue_and_campaign(api)
    await api.call("PUT", "/v1/users/u1", expect=201, json_body={"tags": ["foodie"]})
    now = api.clock.now
    far = (LAT + 0.01, LNG)  # ~1.1 km north: well outside the 100 m venue
    await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={"pings": [
        ping(ts=now - 300), ping(ts=now - 290),
        ping(ts=now - 100, lat=far[0], lng=far[1]), ping(ts=now - 90, lat=far[0], lng=far[1])]})
    app = api.client.app
    assert app is not None
    learner = app[LEARNER]
    await learner.drain()
    learned = await api.store.get_profile(TENANT, "u1")
    assert learned is not None and learned.tags == ("foodie",)
    [enter, exit_] = [e.event for e in await api.store.list_events(TENANT, "u1")]
    assert (enter.kind.value, exit_.kind.value) == ("enter", "exit")
    assert learned.first_seen == pytest.approx(enter.at)
    assert learned.last_active == pytest.approx(exit_.at)
    # A user with no profile gets one from their visits.
    await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={"pings": [
        ping(user="u9", ts=now - 300), ping(user="u9", ts=now - 290),
        ping(user="u9", ts=now - 100, lat=far[0], lng=far[1]),
        ping(user="u9", ts=now - 90, lat=far[0], lng=far[1])]})
    await learner.drain()
    created = await api.store.get_profile(TENANT, "u9")
    assert created is not None and created.last_active is not None
