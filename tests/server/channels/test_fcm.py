"""FCM HTTP v1 against a local aiohttp stand-in for Google: an OAuth token endpoint that
verifies the RS256 assertion with the test key's public half, and ``messages:send``."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from server.channels.base import (
    ChannelConfigError,
    Delivered,
    Failed,
    Recipient,
    Retry,
    TokenInvalid,
)
from server.channels.fcm import FCM_SCOPE, JWT_BEARER, FcmChannel, ServiceAccount
from tests.server.channels.builders import (
    APP_LINK,
    DIAPERS_IMAGE,
    SHOP_LINK,
    Clock,
    HandClock,
    free_port,
    message,
    rich_offer,
)

PROJECT = "geopush-test"
EMAIL = "push@geopush-test.iam.gserviceaccount.com"
KEY_ID = "k-2026"
DEVICE = "fcm-token-of-u1"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def account_info(key: rsa.RSAPrivateKey, token_uri: str) -> dict[str, str]:
    return {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": KEY_ID,
        "private_key": pem(key),
        "client_email": EMAIL,
        "token_uri": token_uri,
    }


Answer = tuple[int, dict[str, Any], dict[str, str]]


@dataclass
class Google:
    """What the stand-in saw, and the answers it is told to give."""

    public_key: rsa.RSAPublicKey
    clock: HandClock
    token_uri: str = ""
    base_url: str = ""
    expires_in: int = 3600
    answers: list[Answer] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    assertions: list[dict[str, Any]] = field(default_factory=list)
    sends: list[dict[str, Any]] = field(default_factory=list)
    refuse_all_tokens: bool = False
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


def fcm_error(status: int, rpc: str, fcm_code: str | None, text: str,
              violations: list[dict[str, str]] | None = None) -> Answer:
    details: list[dict[str, Any]] = []
    if fcm_code:
        details.append({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                        "errorCode": fcm_code})
    if violations:
        details.append({"@type": "type.googleapis.com/google.rpc.BadRequest",
                        "fieldViolations": violations})
    return status, {"error": {"code": status, "message": text, "status": rpc,
                              "details": details}}, {}


@asynccontextmanager
async def google(key: rsa.RSAPrivateKey, clock: HandClock) -> AsyncIterator[Google]:
    g = Google(public_key=key.public_key(), clock=clock)

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != JWT_BEARER:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        assertion = str(form.get("assertion"))
        try:
            claims = jwt.decode(
                assertion, g.public_key, algorithms=["RS256"], audience=g.token_uri,
                issuer=EMAIL, options={"require": ["iat", "exp"], "verify_iat": False,
                                       "verify_exp": False},
            )
        except jwt.InvalidTokenError as exc:
            return web.json_response({"error": "invalid_grant",
                                      "error_description": str(exc)}, status=400)
        # Time is the channel's (test) clock, checked exactly rather than with a leeway.
        assert claims["iat"] == int(g.clock.now)
        assert claims["exp"] == claims["iat"] + 3600
        assert claims["scope"] == FCM_SCOPE
        assert jwt.get_unverified_header(assertion)["kid"] == KEY_ID
        g.assertions.append(claims)
        access = f"ya29.test-{next(g._serial)}"
        g.valid_tokens.add(access)
        return web.json_response({"access_token": access, "expires_in": g.expires_in,
                                  "token_type": "Bearer"})

    async def send(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if g.refuse_all_tokens or auth.removeprefix("Bearer ") not in g.valid_tokens:
            return web.json_response(
                {"error": {"code": 401, "message": "Request had invalid authentication "
                           "credentials.", "status": "UNAUTHENTICATED"}}, status=401)
        body = await request.json()
        g.sends.append(body)
        if g.answers:
            status, payload, headers = g.answers.pop(0)
            return web.json_response(payload, status=status, headers=headers)
        return web.json_response(
            {"name": f"projects/{PROJECT}/messages/{len(g.sends)}"})

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_post(f"/v1/projects/{PROJECT}/messages:send", send)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    g.token_uri = str(server.make_url("/token"))
    g.base_url = str(server.make_url(""))
    try:
        yield g
    finally:
        await server.close()


@asynccontextmanager
async def setup(key: rsa.RSAPrivateKey) -> AsyncIterator[tuple[Google, FcmChannel, Clock]]:
    clock = Clock(float(int(time.time())))
    async with google(key, clock) as g:
        ch = FcmChannel(ServiceAccount.from_info(account_info(key, g.token_uri)),
                        base_url=g.base_url, clock=clock)
        try:
            yield g, ch, clock
        finally:
            await ch.aclose()


def to_device(clock: Clock, token: str = DEVICE, **kwargs: Any) -> Any:
    return message(recipient=Recipient(fcm_token=token), expires_at=clock.now + 1800, **kwargs)


async def test_device_gets_notification_data_and_ttl(rsa_key: rsa.RSAPrivateKey) -> None:
    async with setup(rsa_key) as (g, ch, clock):
        result = await ch.send(to_device(clock, extra={"coupon": "BABY20"}))

    assert result == Delivered(f"projects/{PROJECT}/messages/1")
    [sent] = g.sends
    msg = sent["message"]
    assert msg["token"] == DEVICE
    assert msg["notification"] == {"title": "Baby week at Joy City",
                                   "body": "20% off diapers on level 3 until 21:00"}
    assert msg["data"] == {
        "campaign_id": "diapers", "variant_id": "a", "venue_id": "joy-city", "event": "dwell",
        "expires_at": str(int(clock.now + 1800)), "coupon": "BABY20",
        "delivery_id": "dlv-evt-42:diapers", "idempotency_key": "evt-42:diapers",
    }
    assert all(isinstance(v, str) for v in msg["data"].values())
    assert msg["android"] == {"ttl": "1800s", "collapse_key": "evt-42:diapers"}
    assert msg["apns"]["headers"]["apns-expiration"] == str(int(clock.now + 1800))
    assert len(g.assertions) == 1


async def test_access_token_is_cached_until_shortly_before_it_expires(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    async with setup(rsa_key) as (g, ch, clock):
        for _ in range(3):
            assert isinstance(await ch.send(to_device(clock)), Delivered)
        assert len(g.assertions) == 1
        clock.now += 3600 - 300 - 1  # still more than the refresh margin left
        assert isinstance(await ch.send(to_device(clock)), Delivered)
        assert len(g.assertions) == 1
        clock.now += 2  # inside the margin: fetch a fresh one before it can die in flight
        assert isinstance(await ch.send(to_device(clock)), Delivered)
        assert len(g.assertions) == 2


async def test_concurrent_sends_share_one_token_fetch(rsa_key: rsa.RSAPrivateKey) -> None:
    async with setup(rsa_key) as (g, ch, clock):
        results = await asyncio.gather(*(ch.send(to_device(clock, key=f"k{i}")) for i in range(8)))
    assert all(isinstance(r, Delivered) for r in results)
    assert len(g.assertions) == 1
    assert len(g.sends) == 8


async def test_rejected_access_token_is_refreshed_once_then_sent(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    async with setup(rsa_key) as (g, ch, clock):
        assert isinstance(await ch.send(to_device(clock)), Delivered)
        g.valid_tokens.clear()  # Google revoked it early
        result = await ch.send(to_device(clock))
    assert isinstance(result, Delivered)
    assert len(g.assertions) == 2


async def test_persistent_401_fails_without_looping(rsa_key: rsa.RSAPrivateKey) -> None:
    async with setup(rsa_key) as (g, ch, clock):
        g.refuse_all_tokens = True
        result = await ch.send(to_device(clock))
    assert isinstance(result, Failed)
    assert not result.permanent  # our credentials, not the message: alert and retry later
    assert len(g.assertions) == 2


@pytest.mark.parametrize(
    "answer",
    [
        fcm_error(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
        fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                  "The registration token is not a valid FCM registration token"),
        fcm_error(400, "INVALID_ARGUMENT", None, "Invalid value",
                  [{"field": "message.token", "description": "Invalid registration token"}]),
        fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch"),
    ],
    ids=["unregistered", "invalid-token", "token-field-violation", "sender-id-mismatch"],
)
async def test_dead_token_is_reported_invalid(
    rsa_key: rsa.RSAPrivateKey, answer: Answer
) -> None:
    async with setup(rsa_key) as (g, ch, clock):
        g.answers.append(answer)
        result = await ch.send(to_device(clock))
    assert isinstance(result, TokenInvalid)
    assert str(answer[0]) in result.reason


@pytest.mark.parametrize(
    ("answer", "after_s"),
    [
        ((429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                          "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1."
                                       "FcmError", "errorCode": "QUOTA_EXCEEDED"}]}},
          {"Retry-After": "30"}), 30.0),
        ((503, {"error": {"code": 503, "status": "UNAVAILABLE"}}, {"Retry-After": "5"}), 5.0),
        ((503, {"error": {"code": 503, "status": "UNAVAILABLE"}}, {}), None),
        ((500, {"error": {"code": 500, "status": "INTERNAL"}}, {}), None),
    ],
    ids=["quota", "unavailable-after", "unavailable", "internal"],
)
async def test_overload_is_retried_with_retry_after(
    rsa_key: rsa.RSAPrivateKey, answer: Answer, after_s: float | None
) -> None:
    async with setup(rsa_key) as (g, ch, clock):
        g.answers.append(answer)
        result = await ch.send(to_device(clock))
    assert isinstance(result, Retry)
    assert result.after_s == after_s


async def test_payload_error_fails_permanently_and_keeps_the_token(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    async with setup(rsa_key) as (g, ch, clock):
        g.answers.append(fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                                   "Invalid value at 'message.android.ttl'",
                                   [{"field": "message.android.ttl", "description": "bad"}]))
        result = await ch.send(to_device(clock))
    assert isinstance(result, Failed)
    assert result.permanent


async def test_assertion_signed_with_another_key_fails_without_sending(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    clock = Clock(float(int(time.time())))
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with google(rsa_key, clock) as g:
        ch = FcmChannel(ServiceAccount.from_info(account_info(impostor, g.token_uri)),
                        base_url=g.base_url, clock=clock)
        result = await ch.send(to_device(clock))
        await ch.aclose()
    assert isinstance(result, Failed)
    assert not result.permanent
    assert "invalid_grant" in result.reason
    assert g.sends == []


async def test_token_endpoint_down_is_retried(rsa_key: rsa.RSAPrivateKey) -> None:
    clock = Clock(float(int(time.time())))
    dead = f"http://127.0.0.1:{free_port()}/token"
    ch = FcmChannel(ServiceAccount.from_info(account_info(rsa_key, dead)),
                    base_url=f"http://127.0.0.1:{free_port()}", clock=clock)
    result = await ch.send(to_device(clock))
    await ch.aclose()
    assert isinstance(result, Retry)


async def test_token_uri_can_be_overridden(rsa_key: rsa.RSAPrivateKey) -> None:
    clock = Clock(float(int(time.time())))
    async with google(rsa_key, clock) as g:
        info = account_info(rsa_key, "https://oauth2.googleapis.com/token")
        # The assertion's audience must then be the overriding URI, which the stand-in checks.
        ch = FcmChannel(ServiceAccount.from_info(info), base_url=g.base_url,
                        token_uri=g.token_uri, clock=clock)
        result = await ch.send(to_device(clock))
        await ch.aclose()
    assert isinstance(result, Delivered)


async def test_recipient_without_token_fails_without_any_request(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    async with setup(rsa_key) as (g, ch, clock):
        result = await ch.send(message(expires_at=clock.now + 60))
    assert result == Failed("recipient has no FCM token", permanent=True)
    assert g.assertions == []


@pytest.mark.parametrize(
    ("change", "key"),
    [({"client_email": ""}, "client_email"), ({"project_id": None}, "project_id"),
     ({"private_key": "-----BEGIN PRIVATE KEY-----\nnope\n"}, "private_key")],
)
def test_unusable_service_account_is_refused_naming_the_key(
    rsa_key: rsa.RSAPrivateKey, change: dict[str, Any], key: str
) -> None:
    info = {**account_info(rsa_key, "https://oauth2.googleapis.com/token"), **change}
    with pytest.raises(ChannelConfigError, match=key):
        ServiceAccount.from_info(info)


def test_service_account_json_without_token_uri_uses_googles(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    info = account_info(rsa_key, "")
    del info["token_uri"]
    account = ServiceAccount.from_json(json.dumps(info))
    assert account.token_uri == "https://oauth2.googleapis.com/token"
    with pytest.raises(ChannelConfigError, match="not JSON"):
        ServiceAccount.from_json("{")


async def test_rich_push_shows_the_image_and_carries_link_and_buttons_as_data(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    rich = rich_offer()
    async with setup(rsa_key) as (g, ch, clock):
        result = await ch.send(to_device(clock, rich=rich))

    assert isinstance(result, Delivered)
    msg = g.sends[0]["message"]
    assert msg["notification"]["image"] == DIAPERS_IMAGE
    data = msg["data"]
    assert all(isinstance(v, str) for v in data.values())
    assert data["deep_link"] == APP_LINK
    assert data["image_url"] == DIAPERS_IMAGE
    assert data["image_alt"] == "A pack of diapers with a 20% off sticker"
    assert json.loads(data["buttons"]) == [
        {"id": "shop", "title": "Shop now", "deep_link": SHOP_LINK},
        {"id": "later", "title": "Remind me later", "deep_link": "joycity://remind/diapers"}]
    # iOS through FCM: the service extension is woken for the picture and the buttons'
    # category is named.
    assert msg["apns"]["payload"] == {"aps": {"mutable-content": 1,
                                              "category": rich.category_id()}}
    assert msg["apns"]["fcm_options"] == {"image": DIAPERS_IMAGE}


async def test_link_only_push_has_no_image_and_no_mutable_content(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    async with setup(rsa_key) as (g, ch, clock):
        await ch.send(to_device(clock, rich=rich_offer(image_url=None, image_alt=None,
                                                       image_tag=None, buttons=())))

    msg = g.sends[0]["message"]
    assert "image" not in msg["notification"]
    assert msg["data"]["deep_link"] == APP_LINK
    assert "buttons" not in msg["data"] and "image_url" not in msg["data"]
    assert "payload" not in msg["apns"] and "fcm_options" not in msg["apns"]
