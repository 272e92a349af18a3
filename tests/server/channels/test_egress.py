"""Where tenant-set destinations may point: public addresses, and what the operator allows.

Real sockets: a local aiohttp receiver stands in for an internal service a tenant's
webhook must not reach (127.0.0.1 is exactly such a place)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.channels.base import Delivered, Failed, Recipient, WebhookTarget
from server.channels.email import EmailChannel
from server.channels.mqtt import MqttChannel
from server.channels.sms import SmsChannel
from server.channels.webhook import WebhookChannel
from server.egress import DestinationRefused, EgressPolicy, guarded_client
from server.settings import Settings, SettingsError, load_settings
from server.store import MemoryStore, Store
from tests.server.api.conftest import serving
from tests.server.channels.builders import Clock, message
from tests.server.channels.test_email import smtp_server
from tests.server.channels.test_sms import FROM, SID, TOKEN, twilio

on_session_loop = pytest.mark.asyncio(loop_scope="session")
"""The store fixtures' loop."""

SECRET = "whsec_0123456789abcdef"


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.0.0.5", "172.16.3.4", "192.168.1.10", "169.254.169.254",
    "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fc00::1", "fe80::1", "::ffff:127.0.0.1",
])
def test_non_public_addresses_are_refused_by_default(address: str) -> None:
    reason = EgressPolicy().refusal("hooks.example", 443, ipaddress.ip_address(address),
                                    channel="webhook")
    assert reason is not None and str(ipaddress.ip_address(address)) in reason


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2001:4860:4860::8888"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert EgressPolicy().refusal("hooks.example", 443, ipaddress.ip_address(address),
                                  channel="webhook") is None


@pytest.mark.parametrize(("allowed", "channel", "host", "port", "address", "ok"), [
    ("mqtt:127.0.0.1:1883", "mqtt", "127.0.0.1", 1883, "127.0.0.1", True),  # the default
    ("mqtt:127.0.0.1:1883", "webhook", "127.0.0.1", 1883, "127.0.0.1", False),  # MQTT only
    ("mqtt:127.0.0.1:1883", "mqtt", "127.0.0.1", 6379, "127.0.0.1", False),  # not the Redis
    ("webhook:10.0.0.5", "webhook", "10.0.0.5", 8080, "10.0.0.5", True),
    ("webhook:10.0.0.5", "sms", "10.0.0.5", 8080, "10.0.0.5", False),
    ("email:10.1.0.0/16", "email", "smtp.internal", 25, "10.1.2.3", True),
    ("email:10.1.0.0/16", "email", "smtp.internal", 25, "10.2.0.1", False),
    ("*:10.1.0.0/16", "fcm", "fcm.internal", 443, "10.1.2.3", True),
    ("webhook:[::1]:8080", "webhook", "::1", 8080, "::1", True),
    ("webhook:::1", "webhook", "::1", 9, "::1", True),
    ("WEBHOOK:hooks.internal", "webhook", "hooks.internal", 443, "10.9.9.9", True),
    # The form without a channel means every channel, as it did before channels.
    ("127.0.0.1:1883", "webhook", "127.0.0.1", 1883, "127.0.0.1", True),
    ("10.1.0.0/16", "webhook", "hooks.internal", 443, "10.1.2.3", True),
    ("10.1.0.0/16", "webhook", "hooks.internal", 443, "10.2.0.1", False),
    ("hooks.internal", "apns", "hooks.internal", 8443, "10.9.9.9", True),  # a host, any port
    ("hooks.internal:443", "apns", "hooks.internal", 8443, "10.9.9.9", False),
    ("[::1]:8080", "sms", "::1", 8080, "::1", True),
    ("::1", "mqtt", "::1", 9, "::1", True),
    ("mqtt:1883", "webhook", "mqtt", 1883, "10.0.0.7", True),  # a host called mqtt, port 1883
    ("mqtt:mqtt:1883", "webhook", "mqtt", 1883, "10.0.0.7", False),
    ("mqtt:mqtt:1883", "mqtt", "mqtt", 1883, "10.0.0.7", True),
])
def test_the_operators_list_allows_exactly_what_it_names_to_the_channel_it_names(
    allowed: str, channel: str, *, host: str, port: int, address: str, ok: bool
) -> None:
    policy = EgressPolicy.parse(False, allowed.split(","))
    refusal = policy.refusal(host, port, ipaddress.ip_address(address), channel=channel)
    assert (refusal is None) is ok


def test_a_refusal_says_which_entry_would_allow_it() -> None:
    reason = EgressPolicy().refusal("127.0.0.1", 1883, ipaddress.ip_address("127.0.0.1"),
                                    channel="webhook")
    assert reason is not None
    assert "GEOPUSH_OUTBOUND_ALLOWED=webhook:127.0.0.1:1883" in reason


def test_allowing_private_destinations_allows_them_all() -> None:
    policy = EgressPolicy.parse(True, [])
    assert policy.refusal("db", 5432, ipaddress.ip_address("127.0.0.1"), channel="webhook") is None


@pytest.mark.parametrize("value", ["10.0.0.0/33", "broker:mqtt", "not/a/block", "*:", "*",
                                   "*:1883", "inbox:10.0.0.5", "webhook:", "mqtt:10.0.0.0/33",
                                   "sms:broker:port"])
def test_a_bad_list_entry_is_a_settings_error_naming_the_key_and_entry(value: str) -> None:
    with pytest.raises(SettingsError, match=r"outbound.allowed.*" + re.escape(repr(value))):
        load_settings(outbound_allowed=value)


def test_the_default_list_serves_the_shared_broker_to_mqtt_only() -> None:
    policy = load_settings().egress()
    broker = ipaddress.ip_address("127.0.0.1")
    assert policy.refusal("127.0.0.1", 1883, broker, channel="mqtt") is None
    for channel in ("webhook", "fcm", "apns", "email", "sms"):
        assert policy.refusal("127.0.0.1", 1883, broker, channel=channel) is not None


@asynccontextmanager
async def receiver() -> AsyncIterator[tuple[str, list[Any]]]:
    """An internal service on 127.0.0.1 that records what reaches it."""
    seen: list[Any] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}/hook", seen
    finally:
        await server.close()


async def test_the_guarded_client_refuses_to_connect_to_a_private_address() -> None:
    async with receiver() as (url, seen):
        client = guarded_client(EgressPolicy(), channel="webhook")
        try:
            with pytest.raises(httpx.ConnectError) as refused:
                await client.post(url, content=b"{}")
            # "localhost" is resolved and checked too, not only address literals.
            with pytest.raises(httpx.ConnectError):
                await client.post(url.replace("127.0.0.1", "localhost"), content=b"{}")
        finally:
            await client.aclose()
    assert isinstance(refused.value.__cause__, DestinationRefused)
    assert "127.0.0.1, which is not a public address" in str(refused.value)
    assert seen == []


async def test_the_guarded_client_connects_where_the_operator_allows() -> None:
    async with receiver() as (url, seen):
        client = guarded_client(EgressPolicy.parse(False, ["127.0.0.1"]), channel="webhook")
        try:
            response = await client.post(url, content=b"{}")
        finally:
            await client.aclose()
    assert response.status_code == 200 and seen == [b"{}"]


async def test_a_webhook_to_an_internal_address_fails_for_good_and_sends_nothing() -> None:
    async with receiver() as (url, seen):
        channel = WebhookChannel(egress=EgressPolicy(), clock=Clock())
        try:
            result = await channel.send(message(
                recipient=Recipient(webhook=WebhookTarget(url, SECRET))))
        finally:
            await channel.aclose()
    assert isinstance(result, Failed) and result.permanent
    assert result.reason.startswith("webhook destination refused: 127.0.0.1:")
    assert seen == []


async def test_a_webhook_to_an_allowed_address_is_delivered() -> None:
    async with receiver() as (url, seen):
        channel = WebhookChannel(egress=EgressPolicy.parse(False, ["127.0.0.1"]), clock=Clock())
        try:
            result = await channel.send(message(
                recipient=Recipient(webhook=WebhookTarget(url, SECRET))))
        finally:
            await channel.aclose()
    assert isinstance(result, Delivered) and len(seen) == 1


# Every channel whose destination a tenant sets is held to the policy when it connects.
NOWHERE_PRIVATE = EgressPolicy(allowed=())
"""Public addresses only, not even the default's shared broker."""


async def test_an_sms_provider_at_an_internal_address_is_refused_for_good() -> None:
    async with twilio() as tw:
        channel = SmsChannel(account_sid=SID, auth_token=TOKEN, from_number=FROM,
                             base_url=tw.url, egress=NOWHERE_PRIVATE, clock=Clock())
        try:
            result = await channel.send(message(recipient=Recipient(phone="+8613812345678")))
        finally:
            await channel.aclose()
    assert isinstance(result, Failed) and result.permanent
    assert result.reason.startswith("twilio destination refused: 127.0.0.1:")
    assert tw.requests == []


async def test_an_mqtt_broker_at_an_internal_address_is_refused_unless_listed(
    mqtt_broker: tuple[str, int],
) -> None:
    host, port = mqtt_broker
    for policy, refused in ((NOWHERE_PRIVATE, True),
                            (EgressPolicy.parse(False, [f"{host}:{port}"]), False)):
        channel = MqttChannel(hostname=host, port=port, egress=policy, clock=Clock())
        try:
            result = await channel.send(message())
        finally:
            await channel.aclose()
        if refused:
            assert isinstance(result, Failed) and result.permanent
            assert result.reason.startswith("mqtt destination refused:")
            assert channel.connects == 0
        else:
            assert isinstance(result, Delivered) and channel.connects == 1


async def test_by_default_a_webhook_cannot_post_to_the_shared_mqtt_broker() -> None:
    """Issue 14: the default list's broker entry let any tenant's webhook POST to it."""
    channel = WebhookChannel(egress=EgressPolicy(), clock=Clock())
    try:
        result = await channel.send(message(recipient=Recipient(
            webhook=WebhookTarget("http://127.0.0.1:1883/", SECRET))))
    finally:
        await channel.aclose()
    assert isinstance(result, Failed) and result.permanent
    assert result.reason.startswith("webhook destination refused: 127.0.0.1:1883")


async def test_by_default_mqtt_reaches_the_shared_broker(mqtt_broker: tuple[str, int]) -> None:
    """The default list's entry, for the broker the ``mqtt`` channel defaults to
    (``TEST_MQTT_URL`` must be that one: 127.0.0.1:1883)."""
    channel = MqttChannel(hostname=mqtt_broker[0], port=mqtt_broker[1], egress=EgressPolicy(),
                          clock=Clock())
    try:
        result = await channel.send(message())
    finally:
        await channel.aclose()
    assert isinstance(result, Delivered) and channel.connects == 1


async def test_an_smtp_relay_at_an_internal_address_is_refused_for_good() -> None:
    async with smtp_server() as box:
        channel = EmailChannel(hostname="127.0.0.1", port=box.port, sender="o@example.com",
                               start_tls=False, egress=NOWHERE_PRIVATE, clock=Clock())
        result = await channel.send(message(recipient=Recipient(email="ann@example.com")))
    assert isinstance(result, Failed) and result.permanent
    assert result.reason.startswith("smtp destination refused:")
    assert box.messages == []


# --------------------------------------------------------------------------- PUT /v1/channels


@pytest.mark.parametrize(("channels", "field"), [
    ({"webhook": {"url": "http://169.254.169.254/latest/meta-data", "secret": SECRET}},
     "webhook.url"),
    ({"webhook": {"url": "http://localhost:6379/", "secret": SECRET}}, "webhook.url"),
    ({"mqtt": {"host": "10.0.0.5", "port": 1883}}, "mqtt.host"),
    ({"mqtt": {"host": "127.0.0.1", "port": 5432}}, "mqtt.host"),
    ({"email": {"host": "127.0.0.1", "port": 25, "sender": "o@example.com"}}, "email.host"),
    ({"sms": {"account_sid": "AC1", "auth_token": "t", "from_number": "+14155552671",
              "base_url": "http://[::1]:8080"}}, "sms.base_url"),
])
@on_session_loop
async def test_channel_settings_naming_an_internal_destination_are_refused(
    memory_store: MemoryStore, channels: dict[str, Any], field: str
) -> None:
    async with serving(memory_store, outbound_allowed="mqtt:127.0.0.1:1883") as api:
        _, body = await api.call("PUT", "/v1/channels", json_body=channels, expect=422)
    assert body["error"]["code"] == "destination_not_allowed"
    assert body["error"]["field"] == field
    assert "not a public address" in body["error"]["message"]


@on_session_loop
async def test_public_and_listed_destinations_are_accepted(memory_store: MemoryStore) -> None:
    channels = {"webhook": {"url": "https://93.184.216.34/geopush", "secret": SECRET},
                "mqtt": {"host": "127.0.0.1", "port": 1883}}  # the default list's broker
    async with serving(memory_store, outbound_allowed="mqtt:127.0.0.1:1883") as api:
        await api.call("PUT", "/v1/channels", json_body=channels, expect=200)


@on_session_loop
async def test_by_default_channel_settings_give_the_shared_broker_to_mqtt_only(
    store: Store,
) -> None:
    default = Settings.model_fields["outbound_allowed"].default
    async with serving(store, outbound_allowed=default) as api:
        _, refused = await api.call("PUT", "/v1/channels", expect=422, json_body={
            "webhook": {"url": "http://127.0.0.1:1883/", "secret": SECRET}})
        await api.call("PUT", "/v1/channels", expect=200, json_body={
            "mqtt": {"host": "127.0.0.1", "port": 1883}})
    assert refused["error"]["code"] == "destination_not_allowed"
    assert refused["error"]["field"] == "webhook.url"
