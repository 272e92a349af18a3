"""In-app delivery: a real aiohttp WebSocket endpoint built from the hub and the stream
tokens, and real aiohttp WebSocket clients."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.channels.base import Delivered
from server.channels.inapp import (
    InboxChannel,
    MemoryInbox,
    StreamHub,
    StreamTokenError,
    issue_stream_token,
    peek_stream_token_tenant,
    stream_to_websocket,
    verify_stream_token,
)
from tests.server.channels.builders import Clock, message

SECRETS = {"acme": "acme-stream-secret", "globex": "globex-stream-secret"}


@dataclass
class Service:
    hub: StreamHub
    inbox: MemoryInbox
    channel: InboxChannel
    session: aiohttp.ClientSession
    url: str

    def token(self, user_id: str, *, tenant_id: str = "acme", ttl_s: float = 600) -> str:
        return issue_stream_token(SECRETS[tenant_id], tenant_id, user_id, time.time() + ttl_s)

    def connect(self, token: str) -> AbstractAsyncContextManager[aiohttp.ClientWebSocketResponse]:
        return self.session.ws_connect(f"{self.url}?token={token}")

    async def until_online(self, user_id: str, online: bool = True) -> None:
        for _ in range(200):  # bounded: 2 s for the server side to (un)register
            if self.hub.is_online("acme", user_id) == online:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{user_id} never became {'on' if online else 'off'}line")


@asynccontextmanager
async def service() -> AsyncIterator[Service]:
    """``GET /v1/stream?token=`` as the HTTP layer will wire it: peek the tenant, verify
    with its secret, refuse before the upgrade, then stream."""
    hub, inbox = StreamHub(), MemoryInbox()

    async def stream(request: web.Request) -> web.StreamResponse:
        token = request.query.get("token", "")
        try:
            secret = SECRETS.get(peek_stream_token_tenant(token), "")
            claims = verify_stream_token(secret, token, now=time.time())
        except StreamTokenError as exc:
            return web.json_response({"error": {"code": exc.reason, "message": str(exc),
                                                "field": "token"}}, status=401)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await stream_to_websocket(hub, ws, claims.tenant_id, claims.user_id)
        return ws

    app = web.Application()
    app.router.add_get("/v1/stream", stream)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Service(hub, inbox, InboxChannel(hub, inbox, clock=Clock()), session,
                          str(server.make_url("/v1/stream")))
    finally:
        hub.close_all()
        await server.close()


async def next_frame(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    frame = json.loads(msg.data)
    assert isinstance(frame, dict)
    return frame


async def test_online_user_receives_the_message_live() -> None:
    msg = message()
    async with service() as svc, svc.connect(svc.token("u1")) as ws:
        await svc.until_online("u1")
        result = await svc.channel.send(msg)
        frame = await next_frame(ws)

    assert result == Delivered("live:1")
    assert frame == {"type": "message", "message": msg.payload()}
    assert svc.inbox.messages("acme", "u1") == [msg]


async def test_every_device_of_the_user_receives_it_and_nobody_else() -> None:
    async with service() as svc, svc.connect(svc.token("u1")) as phone, \
            svc.connect(svc.token("u1")) as tablet, svc.connect(svc.token("u2")) as other:
        await svc.until_online("u1")
        await svc.until_online("u2")
        for _ in range(100):  # both u1 sockets registered, bounded
            if svc.hub.publish("acme", "u1", {"type": "ping"}) == 2:
                break
            await asyncio.sleep(0.01)
        result = await svc.channel.send(message(key="k-live"))
        got = [await _skip_pings(phone), await _skip_pings(tablet)]
        with pytest.raises(asyncio.TimeoutError):
            await other.receive(timeout=0.2)

    assert result == Delivered("live:2")
    assert [f["message"]["idempotency_key"] for f in got] == ["k-live", "k-live"]


async def _skip_pings(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    for _ in range(200):
        frame = await next_frame(ws)
        if frame["type"] == "message":
            return frame
    raise AssertionError("no message frame")


async def test_offline_user_finds_it_in_the_inbox() -> None:
    async with service() as svc:
        result = await svc.channel.send(message())
        assert not svc.hub.is_online("acme", "u1")
    assert result == Delivered("stored")
    assert len(svc.inbox.messages("acme", "u1")) == 1


async def test_closing_the_socket_takes_the_user_offline() -> None:
    async with service() as svc:
        async with svc.connect(svc.token("u1")):
            await svc.until_online("u1")
        await svc.until_online("u1", online=False)
        assert svc.hub.online_count() == 0


async def test_hub_shutdown_closes_open_streams() -> None:
    async with service() as svc, svc.connect(svc.token("u1")) as ws:
        await svc.until_online("u1")
        svc.hub.close_all()
        msg = await ws.receive(timeout=5)
        assert msg.type in {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED}


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda: issue_stream_token(SECRETS["acme"], "acme", "u1", time.time() - 1), "expired"),
        (lambda: issue_stream_token("guessed", "acme", "u1", time.time() + 60), "bad_signature"),
        # A globex token re-labelled as acme: verified with acme's secret, it fails.
        (lambda: _relabel(issue_stream_token(SECRETS["globex"], "globex", "u1",
                                             time.time() + 60), tenant="acme"),
         "bad_signature"),
        (lambda: "v1.not-a-token", "malformed"),
        (lambda: "", "malformed"),
    ],
    ids=["expired", "wrong-secret", "other-tenant", "malformed", "missing"],
)
async def test_bad_or_expired_token_is_refused_before_the_upgrade(
    make_token: Callable[[], str], reason: str
) -> None:
    token = make_token()
    async with service() as svc:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with svc.connect(token):
                pass
        async with svc.session.get(svc.url, params={"token": token}) as answer:
            body = await answer.json()
        assert refused.value.status == 401
        assert body["error"]["code"] == reason
        assert svc.hub.online_count() == 0


# ------------------------------------------------------------------ tokens


NOW = 1_795_000_000


def test_token_round_trips_its_claims() -> None:
    token = issue_stream_token("s3cret", "acme", "用户-1", NOW + 600)
    claims = verify_stream_token("s3cret", token, now=NOW)
    assert (claims.tenant_id, claims.user_id, claims.expires_at) == ("acme", "用户-1", NOW + 600)
    assert peek_stream_token_tenant(token) == "acme"
    assert token.startswith("v1.")
    assert len(token) < 160  # compact enough for a query string


def test_token_expires_at_its_expiry_second() -> None:
    token = issue_stream_token("s3cret", "acme", "u1", NOW + 600)
    verify_stream_token("s3cret", token, now=NOW + 599.9)
    with pytest.raises(StreamTokenError) as err:
        verify_stream_token("s3cret", token, now=NOW + 600)
    assert err.value.reason == "expired"


def test_token_for_one_user_cannot_be_edited_into_another() -> None:
    token = issue_stream_token("s3cret", "acme", "u1", NOW + 600)
    forged = _relabel(token, user="u2")
    with pytest.raises(StreamTokenError) as err:
        verify_stream_token("s3cret", forged, now=NOW)
    assert err.value.reason == "bad_signature"


def test_extending_the_expiry_breaks_the_signature() -> None:
    token = issue_stream_token("s3cret", "acme", "u1", NOW + 600)
    with pytest.raises(StreamTokenError, match="bad signature"):
        verify_stream_token("s3cret", _relabel(token, expires=NOW + 10**6), now=NOW)


@pytest.mark.parametrize(
    "token",
    ["", "v1", "v1..", "v2.e30.AAAA", "v1.e30", "v1.!!!.AAAA", "a.b.c.d",
     "v1.bm90IGpzb24.AAAA"],
)
def test_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(StreamTokenError):
        verify_stream_token("s3cret", token, now=NOW)


def test_well_signed_token_with_wrong_claim_types_is_malformed() -> None:
    payload = base64.urlsafe_b64encode(b'{"t":"acme","u":"u1","e":true}').rstrip(b"=").decode()
    mac = hmac.new(b"s3cret", f"v1.{payload}".encode(), hashlib.sha256).digest()
    token = f"v1.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(StreamTokenError) as err:
        verify_stream_token("s3cret", token, now=NOW)
    assert err.value.reason == "malformed"


# ------------------------------------------------------------------ hub and inbox


async def test_slow_stream_keeps_only_the_newest_frames() -> None:
    hub = StreamHub(queue_size=3)
    with hub.subscribe("acme", "u1") as sub:
        for i in range(5):
            assert hub.publish("acme", "u1", {"n": i}) == 1
        hub.close_all()
        frames = [frame["n"] async for frame in sub]
    assert frames == [2, 3, 4]
    assert sub.dropped == 2


async def test_inbox_keeps_one_copy_per_idempotency_key_and_the_newest_messages() -> None:
    inbox = MemoryInbox(per_user=2)
    for key in ["a", "a", "b", "c"]:
        await inbox.put(message(key=key))
    assert [m.idempotency_key for m in inbox.messages("acme", "u1")] == ["b", "c"]
    assert inbox.messages("acme", "nobody") == []


def _relabel(token: str, *, tenant: str | None = None, user: str | None = None,
             expires: int | None = None) -> str:
    """``token`` with its claims edited and its signature kept (a forgery attempt)."""
    version, payload, mac = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["t"] = tenant or claims["t"]
    claims["u"] = user or claims["u"]
    claims["e"] = expires or claims["e"]
    edited = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode())
    return f"{version}.{edited.rstrip(b'=').decode()}.{mac}"
