"""The port itself: names, message shapes, results, the recording channel, metrics."""

from __future__ import annotations

import email.utils
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from server import channels
from server.channels._http import parse_retry_after
from server.channels._ids import collapse_id, stable_uuid
from server.channels.apns import ApnsChannel
from server.channels.base import (
    CHANNEL_NAMES,
    BaseChannel,
    Channel,
    Delivered,
    Failed,
    OutboundMessage,
    Recipient,
    RecordingChannel,
    Retry,
    SendCounters,
    SendResult,
    TokenInvalid,
    WebhookTarget,
)
from server.channels.email import EmailChannel
from server.channels.fcm import FcmChannel, ServiceAccount
from server.channels.inapp import InboxChannel, MemoryInbox, StreamHub
from server.channels.mqtt import MqttChannel
from server.channels.sms import SmsChannel
from server.channels.webhook import WebhookChannel
from tests.server.channels.builders import (
    APP_LINK,
    DIAPERS_IMAGE,
    NOW,
    SHOP_LINK,
    Clock,
    message,
    rich_offer,
)
from triggers.decisions.models import CHANNELS


def test_channel_names_are_the_decision_layers() -> None:
    assert CHANNEL_NAMES == CHANNELS


async def test_every_adapter_is_a_channel_named_as_the_decision_layer_names_it() -> None:
    adapters = _every_adapter()
    try:
        assert sorted(a.name for a in adapters) == sorted(CHANNEL_NAMES)
        assert all(isinstance(a, Channel) for a in adapters)
    finally:
        for adapter in adapters:
            await adapter.aclose()


def test_public_names_are_exported() -> None:
    for name in channels.__all__:
        assert hasattr(channels, name), name


def test_payload_is_the_one_json_shape_clients_handle() -> None:
    msg = message(extra={"coupon": "BABY20"})
    assert msg.payload() == {
        "delivery_id": "dlv-evt-42:diapers",
        "idempotency_key": "evt-42:diapers",
        "tenant_id": "acme",
        "user_id": "u1",
        "title": "Baby week at Joy City",
        "body": "20% off diapers on level 3 until 21:00",
        "data": {"campaign_id": "diapers", "variant_id": "a", "venue_id": "joy-city",
                 "event": "dwell", "expires_at": NOW + 3600, "extra": {"coupon": "BABY20"}},
    }
    assert "extra" not in message().payload()["data"]


def test_data_as_strings_never_lets_extra_override_the_ids() -> None:
    data = message(extra={"campaign_id": "spoofed", "deep_link": "app://offer/1"},
                   expires_at=NOW + 0.5).data
    assert data.as_strings() == {
        "campaign_id": "diapers", "variant_id": "a", "venue_id": "joy-city", "event": "dwell",
        "expires_at": repr(NOW + 0.5), "deep_link": "app://offer/1",
    }


@pytest.mark.parametrize(
    ("recipient", "reachable"),
    [
        (Recipient(), {"inbox", "mqtt"}),
        (Recipient(fcm_token="f", apns_token="a", phone="+1", email="e@x.io",
                   webhook=WebhookTarget("https://x", "s")), set(CHANNEL_NAMES)),
        (Recipient(fcm_token="", email=""), {"inbox", "mqtt"}),
    ],
)
def test_recipient_has_an_address_per_channel(recipient: Recipient, reachable: set[str]) -> None:
    assert {c for c in CHANNEL_NAMES if recipient.has_address(c)} == reachable
    assert not recipient.has_address("pigeon")


async def test_recording_channel_records_and_answers_from_its_script() -> None:
    ch = RecordingChannel("webhook", results=[Retry("503", after_s=2.0)])
    ch.script(TokenInvalid("gone"))
    first, second, third = [await ch.send(message(key=k)) for k in "abc"]
    assert isinstance(ch, Channel)
    assert (first, second) == (Retry("503", after_s=2.0), TokenInvalid("gone"))
    assert third == Delivered("recorded-3")
    assert [m.idempotency_key for m in ch.sent] == ["a", "b", "c"]
    await ch.aclose()
    assert ch.closed


class _Echo(BaseChannel):
    name = "inbox"

    def __init__(self, result: SendResult, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result = result
        self.calls = 0

    async def _send(self, message: OutboundMessage) -> SendResult:
        self.calls += 1
        return self.result


async def test_expired_offer_fails_permanently_without_reaching_the_adapter() -> None:
    clock = Clock()
    ch = _Echo(Delivered(), clock=clock)
    assert await ch.send(message(expires_at=NOW + 1)) == Delivered()
    clock.now = NOW + 1  # the expiry second itself is already too late
    assert await ch.send(message(expires_at=NOW + 1)) == Failed("expired", permanent=True)
    assert ch.calls == 1


async def test_observer_sees_every_result_with_its_duration() -> None:
    seen: list[tuple[str, str, float]] = []
    ch = _Echo(Retry("busy"), clock=Clock(),
               observer=lambda name, result, elapsed: seen.append((name, result.kind, elapsed)))
    await ch.send(message())
    await ch.send(message(expires_at=0))
    assert [(n, k) for n, k, _ in seen] == [("inbox", "retry"), ("inbox", "failed")]
    assert all(elapsed >= 0 for _, _, elapsed in seen)


def test_counters_sum_sends_failures_and_time_per_channel() -> None:
    counters = SendCounters()
    counters("fcm", Delivered(), 0.25)
    counters("fcm", TokenInvalid("x"), 0.5)
    counters("sms", Failed("x", permanent=True), 1.0)
    assert (counters.sends("fcm"), counters.failures("fcm")) == (2, 1)
    assert (counters.sends("sms"), counters.failures("sms")) == (1, 1)
    assert counters.sends("apns") == 0
    assert counters.elapsed_s["fcm"] == 0.75


def test_result_kinds_are_stable_strings() -> None:
    assert [r.kind for r in (Delivered(), Retry("r"), Failed("f", permanent=False),
                             TokenInvalid("t"))] == ["delivered", "retry", "failed",
                                                      "token_invalid"]


@pytest.mark.parametrize(
    ("header", "after_s"),
    [
        (None, None), ("", None), ("  ", None), ("30", 30.0), (" 2 ", 2.0), ("1.5", 1.5),
        ("-5", 0.0), ("inf", None), ("nan", None), ("tomorrow", None),
        (email.utils.formatdate(NOW + 45, usegmt=True), 45.0),
        (email.utils.formatdate(NOW - 45, usegmt=True), 0.0),
        ("Wed, 18 Nov 2026 11:07:25", None),  # no zone: not an HTTP-date
    ],
)
def test_retry_after_reads_seconds_and_http_dates(header: str | None,
                                                  after_s: float | None) -> None:
    assert parse_retry_after(header, NOW) == after_s


def test_ids_derived_from_the_key_are_stable_and_bounded() -> None:
    assert collapse_id("evt-42:diapers") == "evt-42:diapers"
    long_key = "evt:" + "x" * 200
    assert collapse_id(long_key) == collapse_id(long_key)
    assert len(collapse_id(long_key).encode()) == 64
    assert collapse_id("é" * 40) != "é" * 40  # 80 bytes in UTF-8
    assert stable_uuid("dlv-1") == stable_uuid("dlv-1") != stable_uuid("dlv-2")
    assert uuid.UUID(stable_uuid("dlv-1")).version == 5


def _every_adapter() -> list[Channel]:
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    account = ServiceAccount.from_info({"project_id": "p", "client_email": "a@p.iam",
                                        "private_key": rsa_pem})
    return [
        InboxChannel(StreamHub(), MemoryInbox()),
        WebhookChannel(),
        MqttChannel(),
        FcmChannel(account),
        ApnsChannel(team_id="T", key_id="K", private_key=ec_pem, topic="com.example"),
        EmailChannel(hostname="127.0.0.1", sender="offers@example.com"),
        SmsChannel(account_sid="AC1", auth_token="t", from_number="+14155552671"),
    ]


def test_rich_payload_carries_image_link_and_buttons_as_json() -> None:
    payload = message(rich=rich_offer()).payload()
    assert payload["rich"] == {
        "image_url": DIAPERS_IMAGE,
        "image_alt": "A pack of diapers with a 20% off sticker",
        "image_tag": "mother_baby",
        "deep_link": APP_LINK,
        "buttons": [
            {"id": "shop", "title": "Shop now", "deep_link": SHOP_LINK},
            {"id": "later", "title": "Remind me later",
             "deep_link": "joycity://remind/diapers"},
        ],
    }
    assert "rich" not in message().payload()  # a plain push keeps its shape
