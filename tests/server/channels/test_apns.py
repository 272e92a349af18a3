"""APNs against a local HTTP/2 server: hypercorn serving a small ASGI stand-in for Apple
over TLS (a trustme CA the channel is told to trust). The stand-in checks the ES256
provider token with the test key's public half, the protocol headers, and answers as
Apple does."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypercorn.asyncio import serve
from hypercorn.config import Config

from server.channels.apns import ApnsChannel
from server.channels.base import (
    ChannelConfigError,
    Delivered,
    Failed,
    Recipient,
    Retry,
    TokenInvalid,
)
from tests.server.channels.builders import (
    APP_LINK,
    DIAPERS_IMAGE,
    SHOP_LINK,
    Clock,
    HandClock,
    LocalTls,
    free_port,
    message,
    rich_offer,
)
from tests.server.waiting import eventually
from triggers.decisions.rich import Button

TEAM = "TEAM123456"
KEY_ID = "KEY7890ABC"
BUNDLE = "com.example.mall"
DEVICE = "a1" * 32

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Apple:
    """What the stand-in saw and what it is told to answer."""

    public_key: ec.EllipticCurvePublicKey
    clock: HandClock
    answers: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    refused_jwts: set[str] = field(default_factory=set)
    requests: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.requests.append({"http_version": scope["http_version"], "method": scope["method"],
                              "path": scope["path"], "headers": headers,
                              "body": json.loads(body)})
        status, reason, extra = self._answer(headers, scope["path"])
        out = [(b"apns-id", headers.get("apns-id", "").encode()),
               (b"apns-unique-id", str(uuid.uuid4()).encode())]
        out += [(k.encode(), v.encode()) for k, v in extra.items()]
        payload = json.dumps({"reason": reason}).encode() if reason else b""
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": payload})

    def _answer(self, headers: dict[str, str], path: str) -> tuple[int, str, dict[str, str]]:
        token = headers.get("authorization", "").removeprefix("bearer ")
        try:
            claims = jwt.decode(token, self.public_key, algorithms=["ES256"],
                                options={"require": ["iat", "iss"], "verify_iat": False})
        except jwt.InvalidTokenError:
            return 403, "InvalidProviderToken", {}
        if jwt.get_unverified_header(token).get("kid") != KEY_ID or claims["iss"] != TEAM:
            return 403, "InvalidProviderToken", {}
        if token in self.refused_jwts or self.clock.now - claims["iat"] > 3600:
            return 403, "ExpiredProviderToken", {}
        if headers.get("apns-topic") != BUNDLE:
            return 400, "BadTopic", {}
        if path.endswith("/" + "0" * 64):
            return 410, "Unregistered", {}
        if self.answers:
            return self.answers.pop(0)
        return 200, "", {}


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def p8(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@dataclass
class Rig:
    app: Apple
    channel: ApnsChannel
    clock: Clock
    base_url: str

    def __iter__(self) -> Iterator[Any]:
        return iter((self.app, self.channel, self.clock))


@asynccontextmanager
async def apple(
    ec_key: ec.EllipticCurvePrivateKey, local_tls: LocalTls
) -> AsyncIterator[Rig]:
    clock = Clock(float(int(time.time())))
    app = Apple(public_key=ec_key.public_key(), clock=clock)
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.certfile, config.keyfile = str(local_tls.certfile), str(local_tls.keyfile)
    config.graceful_timeout = 1.0
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    await eventually(lambda: _listening(port), timeout_s=5)
    base_url = f"https://127.0.0.1:{port}"
    channel = ApnsChannel(team_id=TEAM, key_id=KEY_ID, private_key=p8(ec_key), topic=BUNDLE,
                          base_url=base_url, ssl_context=local_tls.client, clock=clock)
    try:
        yield Rig(app, channel, clock, base_url)
    finally:
        await channel.aclose()
        stop.set()
        await asyncio.wait_for(server, 10)


def to_device(clock: Clock, token: str = DEVICE, **kwargs: Any) -> Any:
    return message(recipient=Recipient(apns_token=token), expires_at=clock.now + 1800, **kwargs)


async def test_device_gets_the_alert_over_http2_with_a_valid_provider_token(
    ec_key: ec.EllipticCurvePrivateKey, local_tls: LocalTls
) -> None:
    async with apple(ec_key, local_tls) as (app, ch, clock):
        result = await ch.send(to_device(clock, extra={"coupon": "BABY20"}))

    assert isinstance(result, Delivered)
    assert result.provider_id is not None
    [req] = app.requests
    assert req["http_version"] == "2"
    assert (req["method"], req["path"]) == ("POST", f"/3/device/{DEVICE}")
    headers = req["headers"]
    assert headers["apns-topic"] == BUNDLE
    assert headers["apns-push-type"] == "alert"
    assert headers["apns-priority"] == "10"
    assert headers["apns-expiration"] == str(int(clock.now + 1800))
    assert str(uuid.UUID(headers["apns-id"])) == headers["apns-id"]
    assert headers["apns-collapse-id"] == "evt-42:diapers"
    token = headers["authorization"].removeprefix("bearer ")
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": KEY_ID, "typ": "JWT"}
    assert req["body"] == {
        "aps": {"alert": {"title": "Baby week at Joy City",
                          "body": "20% off diapers on level 3 until 21:00"},
                "sound": "default", "thread-id": "diapers"},
        "campaign_id": "diapers", "variant_id": "a", "venue_id": "joy-city", "event": "dwell",
        "expires_at": str(int(clock.now + 1800)), "coupon": "BABY20",
        "delivery_id": "dlv-evt-42:diapers", "idempotency_key": "evt-42:diapers",
    }


async def test_retry_of_a_delivery_carries_the_same_apns_id(
    ec_key: ec.EllipticCurvePrivateKey, local_tls: LocalTls
) -> None:
    async with apple(ec_key, local_tls) as (app, ch, clock):
        app.answers.append((503, "ServiceUnavailable", {}))
        first = await ch.send(to_device(clock))
        second = await ch.send(to_device(clock))
        other = await ch.send(to_device(clock, key="evt-43:diapers"))
    assert isinstance(first, Retry)
    assert isinstance(second, Delivered)
    assert isinstance(other, Delivered)
    ids = [r["headers"]["apns-id"] for r in app.requests]
    assert ids[0] == ids[1] != ids[2]


@pytest.mark.parametrize(
    ("answer", "device"),
    [
        (None, "0" * 64),  # the stand-in answers 410 Unregistered for this device
        ((400, "BadDeviceToken", {}), DEVICE),
        ((400, "DeviceTokenNotForTopic", {}), DEVICE),
        ((410, "ExpiredToken", {}), DEVICE),
    ],
    ids=["unregistered", "bad-device-token", "not-for-topic", "expired-token"],
)
async def test_dead_device_token_is_reported_invalid(
    ec_key: ec.EllipticCurvePrivateKey, local_tls: LocalTls,
    answer: tuple[int, str, dict[str, str]] | None, device: str,
) -> None:
    async with apple(ec_key, local_tls) as (app, ch, clock):
        if answer:
            app.answers.append(answer)
        result = await ch.send(to_device(clock, token=device))
    assert isinstance(result, TokenInvalid)


@pytest.mark.parametrize(
    ("answer", "after_s"),
    [
        ((429, "TooManyRequests", {}), None),
        ((429, "TooManyRequests", {"retry-after": "12"}), 12.0),
        ((500, "InternalServerError", {}), None),
        ((503, "ServiceUnavailable", {"retry-after": "60"}), 60.0),
    ],
)
async def test_throttling_and_server_errors_are_retried(
    ec_key: ec.EllipticCurvePrivateKey, local_tls: LocalTls,
    answer: tuple[int, str, dict[str, str]], after_s: float | None,
) -> None:
    async with apple(ec_key, local_tls) as (app, ch, clock):
        app.answers.append(answer)
        result = await ch.send(to_device(clock))
    assert result == Retry(f"apns {answer[0]} {answer[1]}", after_s=after_s)


async def test_provider_token_is_reused_for_fifty_minutes(
    ec_key: ec.EllipticCurvePrivateKey, local_tls: LocalTls
) -> None:
    async with apple(ec_key, local_tls) as (app, ch, clock):
        for _ in range(3):
            assert isinstance(await ch.send(to_device(clock)), Delivered)
        clock.now += 50 * 60 - 1
        assert isinstance(await ch.send(to_device(clock)), Delivered)
        clock.now += 1
        assert isinstance(await ch.send(to_device(clock)), Delivered)
    tokens = [r["headers"]["authorization"] for r in app.requests]
    assert len(set(tokens[:4])) == 1
    assert tokens[4] != tokens[3]
    assert ch.provider_tokens == 2


async def test_expired_provider_token_is_replaced_once(
    ec_key: ec.EllipticCurvePrivateKey, local_tls: LocalTls
) -> None:
    async with apple(ec_key, local_tls) as (app, ch, clock):
        app.refused_jwts.add(ch.provider_token())
        result = await ch.send(to_device(clock))
    assert isinstance(result, Delivered)
    assert len(app.requests) == 2
    assert ch.provider_tokens == 2


async def test_provider_key_apple_does_not_know_fails_as_config_error(
    ec_key: ec.EllipticCurvePrivateKey, local_tls: LocalTls
) -> None:
    async with apple(ec_key, local_tls) as rig:
        other = ApnsChannel(team_id=TEAM, key_id=KEY_ID,
                            private_key=p8(ec.generate_private_key(ec.SECP256R1())),
                            topic=BUNDLE, base_url=rig.base_url, ssl_context=local_tls.client,
                            clock=rig.clock)
        result = await other.send(to_device(rig.clock))
        await other.aclose()
    assert result == Failed("apns 403 InvalidProviderToken", permanent=False)


async def test_non_hex_token_is_invalid_without_a_request(
    ec_key: ec.EllipticCurvePrivateKey, local_tls: LocalTls
) -> None:
    async with apple(ec_key, local_tls) as (app, ch, clock):
        result = await ch.send(to_device(clock, token="../../3/device/" + DEVICE))
    assert isinstance(result, TokenInvalid)
    assert app.requests == []


async def test_oversized_payload_fails_permanently_without_a_request(
    ec_key: ec.EllipticCurvePrivateKey, local_tls: LocalTls
) -> None:
    async with apple(ec_key, local_tls) as (app, ch, clock):
        result = await ch.send(to_device(clock, body="x" * 5000))
    assert isinstance(result, Failed)
    assert result.permanent
    assert app.requests == []


async def test_unreachable_apns_is_retried(local_tls: LocalTls,
                                           ec_key: ec.EllipticCurvePrivateKey) -> None:
    clock = Clock(float(int(time.time())))
    ch = ApnsChannel(team_id=TEAM, key_id=KEY_ID, private_key=p8(ec_key), topic=BUNDLE,
                     base_url=f"https://127.0.0.1:{free_port()}", ssl_context=local_tls.client,
                     clock=clock)
    result = await ch.send(to_device(clock))
    await ch.aclose()
    assert isinstance(result, Retry)


@pytest.mark.parametrize(
    ("change", "match"),
    [({"team_id": ""}, "team_id"), ({"topic": ""}, "topic"), ({"priority": 7}, "priority"),
     ({"private_key": "not a key"}, "private_key")],
)
def test_unusable_configuration_is_refused_at_construction(
    ec_key: ec.EllipticCurvePrivateKey, change: dict[str, Any], match: str
) -> None:
    kwargs: dict[str, Any] = {"team_id": TEAM, "key_id": KEY_ID, "private_key": p8(ec_key),
                              "topic": BUNDLE, **change}
    with pytest.raises(ChannelConfigError, match=match):
        ApnsChannel(**kwargs)


async def _listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def test_rich_alert_is_mutable_with_the_attachment_url_and_a_button_category(
    ec_key: ec.EllipticCurvePrivateKey, local_tls: LocalTls
) -> None:
    rich = rich_offer()
    async with apple(ec_key, local_tls) as (app, ch, clock):
        result = await ch.send(to_device(clock, rich=rich))

    assert isinstance(result, Delivered)
    body = app.requests[0]["body"]
    assert body["aps"]["mutable-content"] == 1
    assert body["aps"]["category"] == rich.category_id()
    assert body["image_url"] == DIAPERS_IMAGE
    assert body["image_alt"] == "A pack of diapers with a 20% off sticker"
    assert body["deep_link"] == APP_LINK
    assert body["buttons"] == [
        {"id": "shop", "title": "Shop now", "deep_link": SHOP_LINK},
        {"id": "later", "title": "Remind me later", "deep_link": "joycity://remind/diapers"}]


def test_button_category_is_stable_per_button_set_and_changes_with_a_title() -> None:
    first, again = rich_offer(), rich_offer(image_url=None, deep_link=None)
    category = first.category_id()
    assert category is not None and category.startswith("geopush.")
    assert again.category_id() == category
    renamed = rich_offer(buttons=(Button(id="shop", title="Buy now", deep_link=SHOP_LINK),))
    assert renamed.category_id() != first.category_id()
    assert rich_offer(buttons=()).category_id() is None
