"""Real client wire formats give the same events as the native API.

A generated walk into Forum (a Helsinki mall, real OSM geometry) is sent, one fix per
request as the apps do, in the shapes each client really posts:

- OwnTracks (Android / iOS, HTTP mode): one ``_type: location`` JSON object per POST,
  ``tst`` integer epoch seconds, ``acc`` integer metres, ``vel`` integer km/h, ``cog``
  integer degrees, ``tid``, user and device in ``X-Limit-U`` / ``X-Limit-D``;
- Traccar Client / OsmAnd (query string): ``GET ?id=&lat=&lon=&timestamp=&speed=
  &bearing=&altitude=&accuracy=``, speed in knots;
- Traccar Client 9+ JSON: ``{"device_id", "location": {"timestamp": ISO, "coords":
  {latitude, longitude, accuracy, speed (m/s), heading, altitude}, "is_moving", ...}}``;

and, on a fresh embedded store each, the same fixes converted by hand to native
``POST /v1/pings``. The stored events (kind, venue, at, confidence, dwell_s, visit id,
reason) and deliveries must be identical, and the walk must actually produce ENTER,
DWELL and EXIT (so the comparison is not between empty lists).
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from geo.distance import frame_scales
from geo.latlng import LatLng
from server.auth import Role
from server.ingest.osmand import MPS_PER_KNOT
from server.store import MemoryStore
from tests.server.api.conftest import NOON_UTC, Api, FakeClock, start_api
from tests.server.conftest import TENANT
from triggers.trajectory import Go, PingColumns, TrajectorySpec, Wait, generate

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[3]
VENUES = ROOT / "fixtures" / "venues" / "helsinki_venues.geojson"
FORUM_OSM_ID = "osm:way/289767497"
USER = "jane"
DEVICE = "phone"
KMH_PER_MPS = 3.6


_FEATURES = json.loads(VENUES.read_text())["features"]  # read at import: not in the loop


def _forum_feature() -> dict[str, Any]:
    features = _FEATURES
    [feature] = [f for f in features if f["properties"]["id"] == FORUM_OSM_ID]
    return {**feature, "id": "forum", "properties": {**feature["properties"], "id": "forum"}}


def _centroid(feature: dict[str, Any]) -> LatLng:
    ring = feature["geometry"]["coordinates"][0][:-1]
    return LatLng(sum(p[1] for p in ring) / len(ring), sum(p[0] for p in ring) / len(ring))


def _offset(origin: LatLng, north_m: float, east_m: float) -> LatLng:
    kx, ky = frame_scales(origin.lat)  # metres per degree of longitude, of latitude
    return LatLng(origin.lat + north_m / float(ky), origin.lng + east_m / float(kx))


def _walk(forum: LatLng) -> list[dict[str, Any]]:
    """Approach from 250 m south, stay 12 min inside, leave 250 m east: the fixes as a
    phone reports them (integer seconds, integer metres, integer km/h and degrees)."""
    start = _offset(forum, -250, 0)
    t0 = NOON_UTC - 3 * 3600
    spec = TrajectorySpec(USER, start, (Go(forum), Wait(720), Go(_offset(forum, 0, 250))),
                          start_ts=t0, interval_s=10.0, noise_m=4.0, accuracy_m=(5.0, 25.0))
    cols: PingColumns = generate(spec, seed=7)
    fixes = []
    for i in range(len(cols)):
        speed = float(cols.speed_mps[i])
        heading = float(cols.heading_deg[i])
        fixes.append({
            "tst": round(float(cols.ts[i])), "lat": round(float(cols.lat[i]), 7),
            "lon": round(float(cols.lng[i]), 7),
            "acc": round(float(cols.accuracy_m[i])),
            "kmh": 0 if math.isnan(speed) else round(speed * KMH_PER_MPS),
            "cog": 0 if math.isnan(heading) else round(heading) % 360,
            "alt": 18,
        })
    return fixes


# --------------------------------------------------------------------------- senders

Sender = Callable[[Api, dict[str, Any]], Awaitable[None]]


async def _check(api: Api, method: str, path: str, **kwargs: Any) -> Any:
    resp = await api.client.request(method, path, **kwargs)
    body = await resp.json(content_type=None)
    assert resp.status == 200, (resp.status, body)
    return body


async def send_native_owntracks_units(api: Api, fix: dict[str, Any]) -> None:
    await _native(api, fix, speed_mps=fix["kmh"] / KMH_PER_MPS)


async def send_native_knots(api: Api, fix: dict[str, Any]) -> None:
    await _native(api, fix, speed_mps=_knots(fix) * MPS_PER_KNOT)


async def send_native_mps(api: Api, fix: dict[str, Any]) -> None:
    await _native(api, fix, speed_mps=fix["kmh"] / KMH_PER_MPS)


async def _native(api: Api, fix: dict[str, Any], *, speed_mps: float) -> None:
    body = await _check(api, "POST", "/v1/pings", headers=api.auth(Role.SDK), json={
        "pings": [{"user_id": USER, "device_id": DEVICE,
                   "ts": fix["tst"], "lat": fix["lat"], "lng": fix["lon"],
                   "accuracy_m": fix["acc"], "speed_mps": speed_mps,
                   "heading_deg": fix["cog"], "altitude_m": fix["alt"]}]})
    assert body["accepted"] == 1 and body["rejected"] == []


async def send_owntracks(api: Api, fix: dict[str, Any]) -> None:
    # What the OwnTracks Android app posts in HTTP mode (a `location` message), with
    # its Username / Device ID settings in X-Limit-U / X-Limit-D.
    message = {"_type": "location", "tid": "ja", "lat": fix["lat"], "lon": fix["lon"],
               "tst": fix["tst"], "acc": fix["acc"], "vel": fix["kmh"], "cog": fix["cog"],
               "alt": fix["alt"], "batt": 77, "bs": 1, "conn": "m", "m": 1, "t": "p",
               "vac": 3, "BSSID": "", "SSID": "", "inregions": [],
               "created_at": fix["tst"] + 1}
    body = await _check(api, "POST", "/v1/owntracks", json=message, headers={
        **api.auth(Role.SDK), "X-Limit-U": USER, "X-Limit-D": DEVICE})
    assert body == []


def _knots(fix: dict[str, Any]) -> float:
    # Traccar Client reports speed in knots with one decimal.
    return round(float(fix["kmh"]) / KMH_PER_MPS / MPS_PER_KNOT, 1)


async def send_osmand_query(api: Api, fix: dict[str, Any]) -> None:
    # Traccar Client's OsmAnd request: every field in the query string, key too.
    key = api.keys[(TENANT, Role.SDK)]
    query = (f"id={USER}&timestamp={fix['tst']}&lat={fix['lat']}&lon={fix['lon']}"
             f"&speed={_knots(fix)}&bearing={float(fix['cog'])}&altitude={float(fix['alt'])}"
             f"&accuracy={float(fix['acc'])}&batt=77.0&key={key}")
    body = await _check(api, "GET", f"/v1/osmand?{query}")
    assert body == {"accepted": 1, "rejected": []}


async def send_traccar_json(api: Api, fix: dict[str, Any]) -> None:
    stamp = datetime.fromtimestamp(fix["tst"], UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    record = {"device_id": USER, "location": {
        "timestamp": stamp, "is_moving": True, "odometer": 0, "event": "motionchange",
        "coords": {"latitude": fix["lat"], "longitude": fix["lon"], "accuracy": fix["acc"],
                   "speed": fix["kmh"] / KMH_PER_MPS, "heading": fix["cog"],
                   "altitude": fix["alt"]},
        "activity": {"type": "walking"}, "battery": {"level": 0.77, "is_charging": False},
        "extras": {}}}
    body = await _check(api, "POST", "/v1/osmand", json=record, headers=api.auth(Role.SDK))
    assert body == {"accepted": 1, "rejected": []}


# --------------------------------------------------------------------------- runs


async def _replay(send: Sender, fixes: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The walk sent fix by fix (each a second after it was taken) to a fresh app on a
    fresh embedded store; then what the store holds for the user."""
    store = MemoryStore()
    clock = FakeClock(fixes[0]["tst"] - 60)
    client, api = await start_api(store, clock)
    try:
        await api.call("PUT", "/v1/venues/forum", json_body=_forum_feature(), expect=201)
        await api.call("POST", "/v1/campaigns", expect=201, json_body={
            "id": "forum-hello", "name": "Forum", "status": "active",
            "trigger": {"event": "dwell", "dwell_s": 300}, "venues": {"ids": ["forum"]},
            "variants": [{"id": "a", "title": "At Forum", "body": "Welcome"}]})
        for fix in fixes:
            clock.now = fix["tst"] + 1.0
            await send(api, fix)
        events = await store.list_events(TENANT, USER, limit=1000)
        deliveries = await store.list_deliveries(TENANT, user_id=USER)
        return {
            "events": [(r.event_key, r.event.to_dict()) for r in events],
            "deliveries": [(d.idempotency_key, d.campaign_id, d.venue_id, d.visit_id, d.event,
                            d.created_at) for d in deliveries],
        }
    finally:
        await client.close()
        await store.close()


@pytest.mark.parametrize(("client_send", "native_send"), [
    pytest.param(send_owntracks, send_native_owntracks_units, id="owntracks"),
    pytest.param(send_osmand_query, send_native_knots, id="osmand-query"),
    pytest.param(send_traccar_json, send_native_mps, id="traccar-json"),
])
async def test_client_format_gives_the_same_events_as_native_pings(
    client_send: Sender, native_send: Sender,
) -> None:
    fixes = _walk(_centroid(_forum_feature()))
    assert len(fixes) > 100
    via_client = await _replay(client_send, fixes)
    native = await _replay(native_send, fixes)

    kinds = [e["kind"] for _, e in native["events"]]
    assert kinds == ["enter", "dwell", "exit"], native["events"]
    assert {e["venue_id"] for _, e in native["events"]} == {"forum"}
    [(_, campaign, venue, *_rest)] = native["deliveries"]
    assert (campaign, venue) == ("forum-hello", "forum")

    assert via_client == native
