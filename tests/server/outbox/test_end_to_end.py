"""A ping batch through ``POST /v1/pings`` ends as a push at real peers on 127.0.0.1:
the in-app WebSocket stream, Mosquitto, a signed-webhook receiver, stand-ins for FCM and
APNs (the channel tests' own), aiosmtpd and a Twilio-shaped SMS gateway. The app runs
its own dispatcher task, as in production."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import trustme
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypercorn.asyncio import serve
from hypercorn.config import Config

from server.auth import Role
from server.store import DeliveryStatus, Store
from tests.server.api.conftest import (
    Api,
    FakeClock,
    campaign_body,
    make_settings,
    ping,
    start_api,
    venue_feature,
)
from tests.server.channels.builders import free_port
from tests.server.channels.test_apns import BUNDLE, KEY_ID, TEAM, Apple, p8
from tests.server.channels.test_email import smtp_server
from tests.server.channels.test_fcm import account_info, fcm_error, google
from tests.server.channels.test_sms import FROM, SID, TOKEN, twilio
from tests.server.outbox.conftest import WEBHOOK_SECRET, webhook_receiver
from tests.server.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

ALL = ["fcm", "apns", "webhook", "mqtt", "email", "sms", "inbox"]
APNS_DEVICE = "b2" * 32
DEAD_APNS_DEVICE = "0" * 64  # the Apple stand-in answers 410 Unregistered for it


@pytest.fixture
async def live(store: Store, clock: FakeClock) -> AsyncIterator[Api]:
    """The app with one dispatcher polling every 50 ms."""
    client, api = await start_api(store, clock, make_settings(
        outbox_workers=1, outbox_interval_s=0.05, retry_jitter_seed=1))
    try:
        yield api
    finally:
        await client.close()


async def _venue_and_campaign(api: Api, channels: list[str]) -> None:
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    await api.call("PUT", "/v1/campaigns/hello", expect=201, json_body=campaign_body(
        status="active", channels=channels))


async def _walk_in(api: Api, *users: str) -> list[dict[str, Any]]:
    now = api.clock.now
    _, body = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={
        "pings": [p for u in users for p in (ping(u, ts=now - 20), ping(u, ts=now - 10))]})
    deliveries: list[dict[str, Any]] = body["deliveries"]
    assert len(deliveries) == len(users)
    return deliveries


# --------------------------------------------------------------------------- in-app


async def test_push_arrives_on_the_websocket_stream_and_in_the_inbox_once(live: Api) -> None:
    await _venue_and_campaign(live, ["inbox"])
    _, minted = await live.call("POST", "/v1/users/u1/stream-token", role=Role.MANAGER,
                                expect=201)
    client: TestClient[Any, Any] = live.client
    async with client.ws_connect(f"/v1/stream?token={minted['token']}") as ws:
        await eventually(lambda: live.client.app is not None)
        [created] = await _walk_in(live, "u1")
        frame = await asyncio.wait_for(ws.receive_json(), 10)
    assert frame["type"] == "message"
    assert frame["message"]["delivery_id"] == created["id"]
    assert frame["message"]["title"] == "Welcome" and frame["message"]["user_id"] == "u1"
    await eventually(lambda: _status(live, created["id"], "sent"))
    # The inbox lists it once, for the app (its token) and for a manager.
    resp = await client.get(f"/v1/users/u1/inbox?token={minted['token']}")
    inbox = await resp.json()
    assert resp.status == 200
    assert [m["delivery_id"] for m in inbox["messages"]] == [created["id"]]
    _, by_key = await live.call("GET", "/v1/users/u1/inbox", role=Role.MANAGER, expect=200)
    assert by_key == inbox


async def test_inbox_needs_a_manager_key_or_the_users_own_token(live: Api) -> None:
    await live.call("GET", "/v1/users/u1/inbox", role=Role.SDK, expect=403)
    resp = await live.client.get("/v1/users/u1/inbox")
    assert resp.status == 401
    _, minted = await live.call("POST", "/v1/users/u2/stream-token", expect=201)
    resp = await live.client.get(f"/v1/users/u1/inbox?token={minted['token']}")
    assert resp.status == 403
    forged = minted["token"][:-4] + ("AAAA" if not minted["token"].endswith("AAAA") else "BBBB")
    resp = await live.client.get(f"/v1/stream?token={forged}")
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "invalid_token"
    resp = await live.client.get(f"/v1/stream?token={minted['token']}")
    assert resp.status == 400  # a plain GET is not a WebSocket upgrade


async def _status(api: Api, delivery_id: str, status: str) -> bool:
    _, body = await api.call("GET", f"/v1/deliveries/{delivery_id}", expect=200)
    return bool(body["status"] == status)


async def test_feedback_is_idempotent_and_feeds_the_stats(live: Api) -> None:
    await _venue_and_campaign(live, ["inbox"])
    [created] = await _walk_in(live, "u1")
    await eventually(lambda: _status(live, created["id"], "sent"))
    path = f"/v1/deliveries/{created['id']}/feedback"
    _, first = await live.call("POST", path, role=Role.SDK, json_body={"kind": "clicked"},
                               expect=200)
    _, again = await live.call("POST", path, role=Role.SDK, json_body={"kind": "clicked"},
                               expect=200)
    assert (first["recorded"], again["recorded"]) == (True, False)
    assert again["feedback"] == ["clicked"]
    await live.call("POST", path, json_body={"kind": "ignored"}, expect=422)
    await live.call("POST", "/v1/deliveries/nope/feedback", json_body={"kind": "opened"},
                    expect=404)
    await live.call("POST", "/v1/campaigns/hello/conversions", json_body={"user_id": "u1"},
                    expect=201)
    await live.call("POST", "/v1/campaigns/hello/conversions", json_body={"user_id": "u1"},
                    expect=200)
    _, stats = await live.call("GET", "/v1/campaigns/hello/stats", role=Role.MANAGER,
                               expect=200)
    assert stats["by_variant"] == [{"variant_id": "a", "deliveries": 1,
                                    "feedback": {"clicked": 1}}]
    assert stats["sends"] == 1 and stats["by_status"]["sent"] == 1
    assert stats["ctr"]["successes"] == 1 and stats["ctr"]["trials"] == 1
    assert stats["ctr"]["low"] == pytest.approx(0.2065, abs=1e-4)
    assert stats["decisions"] == {"sent": {"sent": 1}}
    [variant] = stats["variants"]
    assert variant["conversion"]["successes"] == 1
    assert stats["control"] == {"users": 0, "conversion": {
        "successes": 0, "trials": 0, "rate": None, "low": None, "high": None}}
    assert stats["lift"]["lift"] is None and stats["lift"]["p_value"] is None
    assert "intention-to-treat" in stats["definitions"]


# --------------------------------------------------------------------------- every channel


@dataclass
class ApnsServer:
    app: Apple
    base_url: str
    ca_pem: str


@pytest.fixture(scope="module")
def apns_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, str]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    folder = tmp_path_factory.mktemp("apns-tls")
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    yield certfile, keyfile, ca.cert_pem.bytes().decode()


async def _apns_server(ec_key: ec.EllipticCurvePrivateKey, clock: FakeClock,
                       tls: tuple[Path, Path, str], stop: asyncio.Event
                       ) -> tuple[ApnsServer, asyncio.Task[None]]:
    app = Apple(public_key=ec_key.public_key(), clock=clock)
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.certfile, config.keyfile = str(tls[0]), str(tls[1])
    config.graceful_timeout = 1.0
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    await eventually(lambda: _listening(port), timeout_s=5)
    return ApnsServer(app, f"https://127.0.0.1:{port}", tls[2]), task


async def test_ping_batch_reaches_every_channel_peer(  # noqa: PLR0917 - peers as fixtures
    memory_store: Store, clock: FakeClock, mqtt_broker: tuple[str, int],
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey,
    apns_tls: tuple[Path, Path, str],
) -> None:
    host, port = mqtt_broker
    stop = asyncio.Event()
    client, api = await start_api(memory_store, clock, make_settings(
        outbox_workers=2, outbox_interval_s=0.05))
    apns, apns_task = await _apns_server(ec_key, clock, apns_tls, stop)
    try:
        async with webhook_receiver(clock) as rx, google(rsa_key, clock) as g, \
                twilio() as tw, smtp_server() as mailbox, \
                aiomqtt.Client(host, port) as sub:
            await api.call("PUT", "/v1/channels", expect=200, json_body={
                "webhook": {"url": rx.url, "secret": WEBHOOK_SECRET},
                "mqtt": {"host": host, "port": port},
                "fcm": {"service_account": account_info(rsa_key, g.token_uri),
                        "base_url": g.base_url},
                "apns": {"team_id": TEAM, "key_id": KEY_ID, "private_key": p8(ec_key),
                         "topic": BUNDLE, "base_url": apns.base_url, "ca_pem": apns.ca_pem},
                "email": {"host": "127.0.0.1", "port": mailbox.port, "start_tls": False,
                          "sender": "Offers <offers@joycity.example>"},
                "sms": {"account_sid": SID, "auth_token": TOKEN, "from_number": FROM,
                        "base_url": tw.url}})
            _, shown = await api.call("GET", "/v1/channels", expect=200)
            assert shown["channels"]["webhook"]["secret"] == "********"
            assert shown["configured"] == sorted(ALL)
            contacts: dict[str, dict[str, Any]] = {
                "u_fcm": {"devices": [{"platform": "fcm", "token": "fcm-1"}]},
                "u_apns": {"devices": [{"platform": "apns", "token": APNS_DEVICE},
                                       {"platform": "apns", "token": DEAD_APNS_DEVICE}]},
                "u_webhook": {}, "u_mqtt": {}, "u_email": {"email": "ann@example.com"},
                "u_sms": {"phone": "+8613812345678"}}
            for user, contact in contacts.items():
                await api.call("PUT", f"/v1/users/{user}", expect=201, json_body={
                    "channels": [user.removeprefix("u_")], "contacts": contact})
            await sub.subscribe("geopush/acme/users/u_mqtt", qos=1)
            await _venue_and_campaign(api, ALL)
            created = await _walk_in(api, *contacts)
            assert {d["user_id"]: d["channel"] for d in created} == {
                u: u.removeprefix("u_") for u in contacts}

            mqtt_message = await asyncio.wait_for(anext(aiter(sub.messages)), 10)
            payload = json.loads(bytes(mqtt_message.payload))
            assert payload["user_id"] == "u_mqtt" and payload["title"] == "Welcome"
            for d in created:
                await eventually(functools.partial(_status, api, d["id"], "sent"))
            assert [m["user_id"] for m in rx.accepted] == ["u_webhook"]
            assert rx.bad_signatures == 0
            assert [s["message"]["token"] for s in g.sends] == ["fcm-1"]
            sent_to = sorted(r["path"].rsplit("/", 1)[1] for r in apns.app.requests)
            assert sent_to == sorted([APNS_DEVICE, DEAD_APNS_DEVICE])
            assert [env.rcpt_tos for env, _ in mailbox.messages] == [["ann@example.com"]]
            assert [r["To"] for r in tw.requests] == ["+8613812345678"]
            # The APNs device Apple called unregistered is gone; the live one stays.
            stored = await memory_store.get_profile("acme", "u_apns")
            assert stored is not None
            assert stored.contacts.tokens("apns") == (APNS_DEVICE,)
    finally:
        await client.close()
        stop.set()
        await asyncio.wait_for(apns_task, 10)


async def test_unregistered_fcm_token_is_removed_and_the_delivery_dead_lettered(
    store: Store, clock: FakeClock, rsa_key: rsa.RSAPrivateKey
) -> None:
    client, api = await start_api(store, clock, make_settings(
        outbox_workers=1, outbox_interval_s=0.05))
    try:
        async with google(rsa_key, clock) as g:
            g.answers.append(fcm_error(404, "NOT_FOUND", "UNREGISTERED",
                                       "Requested entity was not found."))
            await api.call("PUT", "/v1/channels", expect=200, json_body={
                "fcm": {"service_account": account_info(rsa_key, g.token_uri),
                        "base_url": g.base_url}})
            await api.call("PUT", "/v1/users/u1", expect=201, json_body={"contacts": {
                "devices": [{"platform": "fcm", "token": "uninstalled"}]}})
            await _venue_and_campaign(api, ["fcm"])
            [created] = await _walk_in(api, "u1")
            await eventually(lambda: _status(api, created["id"], "dead"))
            _, row = await api.call("GET", f"/v1/deliveries/{created['id']}", expect=200)
            assert row["last_error"].startswith("token_invalid: fcm 404 UNREGISTERED")
            stored = await store.get_profile("acme", "u1")
            assert stored is not None and stored.contacts.devices == ()
            assert await store.count_deliveries("acme", DeliveryStatus.DEAD) == 1
            metrics = await (await api.client.get("/metrics")).text()
            assert 'geopush_outbox_tokens_removed_total{channel="fcm"} 1.0' in metrics
            assert 'geopush_outbox_dead_lettered_total{cause="token_invalid",channel="fcm"}' \
                in metrics
    finally:
        await client.close()


async def test_bad_channel_settings_are_refused_naming_the_problem(live: Api) -> None:
    _, body = await live.call("PUT", "/v1/channels", expect=422, json_body={
        "webhook": {"url": "ftp://x", "secret": "0123456789abcdef"}})
    assert body["error"]["field"].startswith("webhook")
    _, body = await live.call("PUT", "/v1/channels", expect=422, json_body={
        "fcm": {"service_account": {"project_id": "p"}}})
    assert "client_email" in body["error"]["message"]
    await live.call("PUT", "/v1/channels", role=Role.MANAGER, expect=403, json_body={})


async def test_rotating_the_webhook_secret_keeps_the_old_receiver_verifying(live: Api) -> None:
    async with webhook_receiver(live.clock) as rx:  # still verifying with the old secret
        await live.call("PUT", "/v1/channels", expect=200, json_body={"webhook": {
            "url": rx.url, "secret": "whsec_the-new-one-0123456789",
            "previous_secret": WEBHOOK_SECRET}})
        _, shown = await live.call("GET", "/v1/channels", expect=200)
        assert shown["channels"]["webhook"]["secret"] == "********"
        assert shown["channels"]["webhook"]["previous_secret"] == "********"
        await _venue_and_campaign(live, ["webhook"])
        [created] = await _walk_in(live, "u1")
        await eventually(lambda: _status(live, created["id"], "sent"))
    assert [m["delivery_id"] for m in rx.accepted] == [created["id"]]
    assert rx.bad_signatures == 0


async def _listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True
