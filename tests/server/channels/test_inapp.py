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
    CLOSE_TOKEN_EXPIRED,
    CLOSE_TOKEN_REVOKED,
    InboxChannel,
    MemoryInbox,
    Recheck,
    StreamHub,
    StreamTokenError,
    TokenEpochs,
    issue_stream_token,
    peek_stream_token_tenant,
    stream_to_websocket,
    verify_stream_token,
)
from tests.server.channels.builders import DIAPERS_IMAGE, Clock, message, rich_offer
from tests.server.waiting import eventually

SECRETS = {"acme": "acme-stream-secret", "globex": "globex-stream-secret"}


class WallClock:
    """Wall time, moved forward by hand when a test says so."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset_s


@dataclass
class Service:
    hub: StreamHub
    inbox: MemoryInbox
    channel: InboxChannel
    session: aiohttp.ClientSession
    url: str
    clock: WallClock

    def token(self, user_id: str, *, tenant_id: str = "acme", ttl_s: float = 600,
              epochs: TokenEpochs | None = None) -> str:
        return issue_stream_token(SECRETS[tenant_id], tenant_id, user_id,
                                  self.clock() + ttl_s, epochs or TokenEpochs())

    def connect(self, token: str) -> AbstractAsyncContextManager[aiohttp.ClientWebSocketResponse]:
        return self.session.ws_connect(f"{self.url}?token={token}")

    async def until_online(self, user_id: str, online: bool = True) -> None:
        await eventually(lambda: self.hub.is_online("acme", user_id) == online, timeout_s=2)


@asynccontextmanager
async def service(revoked: Recheck | None = None) -> AsyncIterator[Service]:
    """``GET /v1/stream?token=`` as the HTTP layer wires it: peek the tenant, verify
    with its secret, refuse before the upgrade, then stream. ``revoked``: the recheck
    once the stream is registered (the HTTP layer asks the store)."""
    hub, inbox, clock = StreamHub(), MemoryInbox(), WallClock()

    async def stream(request: web.Request) -> web.StreamResponse:
        token = request.query.get("token", "")
        try:
            secret = SECRETS.get(peek_stream_token_tenant(token), "")
            claims = verify_stream_token(secret, token, now=clock())
        except StreamTokenError as exc:
            return web.json_response({"error": {"code": exc.reason, "message": str(exc),
                                                "field": "token"}}, status=401)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await stream_to_websocket(hub, ws, claims, clock=clock, revoked=revoked)
        return ws

    app = web.Application()
    app.router.add_get("/v1/stream", stream)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Service(hub, inbox, InboxChannel(hub, inbox, clock=Clock()), session,
                          str(server.make_url("/v1/stream")), clock)
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
        await _both_registered(svc, "u1")
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


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, str]:
    """The close code and reason the server ends ``ws`` with (no frame before it)."""
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE, msg
    return int(msg.data), str(msg.extra)


async def test_the_socket_closes_with_4001_when_its_token_expires() -> None:
    # A token's expiry is whole epoch seconds (truncated): 3 s leaves it at least 2 s,
    # time enough to connect on a loaded machine before it ends.
    async with service() as svc, svc.connect(svc.token("u1", ttl_s=3)) as ws:
        await svc.until_online("u1")
        assert await closed_with(ws) == (CLOSE_TOKEN_EXPIRED, "token_expired")
    await svc.until_online("u1", online=False)


async def test_no_message_reaches_a_socket_once_its_token_has_expired() -> None:
    """Issue 14: a socket opened before its token expired still got a message 3.8 s
    after. The wall clock jumps past the expiry before the timer fires: the message is
    not sent, the socket is closed instead (the message stays in the inbox)."""
    async with service() as svc, svc.connect(svc.token("u1", ttl_s=600)) as ws:
        await svc.until_online("u1")
        svc.clock.offset_s = 603.8
        result = await svc.channel.send(message())
        assert await closed_with(ws) == (CLOSE_TOKEN_EXPIRED, "token_expired")
    assert result == Delivered("live:1")  # handed to the stream, which refused it
    assert len(svc.inbox.messages("acme", "u1")) == 1


async def test_revoking_a_users_tokens_closes_streams_minted_before_only() -> None:
    async with service() as svc, \
            svc.connect(svc.token("u1")) as old, \
            svc.connect(svc.token("u1", epochs=TokenEpochs(user=1))) as new, \
            svc.connect(svc.token("u2")) as other:
        await _both_registered(svc, "u1")
        assert svc.hub.revoke("acme", "u1", 1) == 1
        assert await closed_with(old) == (CLOSE_TOKEN_REVOKED, "token_revoked")
        await svc.channel.send(message(key="after", user_id="u1"))
        await svc.channel.send(message(key="after", user_id="u2"))
        got = [await _skip_pings(new), await _skip_pings(other)]
    assert [f["message"]["idempotency_key"] for f in got] == ["after", "after"]


async def test_revoking_a_tenants_tokens_closes_its_streams_and_no_one_elses() -> None:
    async with service() as svc, \
            svc.connect(svc.token("u1")) as u1, svc.connect(svc.token("u2")) as u2, \
            svc.connect(svc.token("u1", tenant_id="globex")) as other_tenant:
        await svc.until_online("u1")
        await svc.until_online("u2")
        await eventually(lambda: svc.hub.is_online("globex", "u1"), timeout_s=2)
        assert svc.hub.revoke("acme", None, 1) == 2
        closed = [await closed_with(u1), await closed_with(u2)]
        svc.hub.publish("globex", "u1", {"type": "message", "message": {"n": 1}})
        got = await next_frame(other_tenant)
    assert closed == [(CLOSE_TOKEN_REVOKED, "token_revoked")] * 2
    assert got["message"] == {"n": 1}


async def test_a_revocation_landing_while_the_stream_registers_still_closes_it() -> None:
    async def revoked() -> bool:
        return True

    async with service(revoked) as svc, svc.connect(svc.token("u1")) as ws:
        assert await closed_with(ws) == (CLOSE_TOKEN_REVOKED, "token_revoked")


async def _both_registered(svc: Service, user_id: str) -> None:
    await eventually(lambda: svc.hub.publish("acme", user_id, {"type": "ping"}) == 2,
                     timeout_s=2)


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


def test_token_carries_the_epochs_it_was_minted_at() -> None:
    token = issue_stream_token("s3cret", "acme", "u1", NOW + 600, TokenEpochs(3, 7))
    claims = verify_stream_token("s3cret", token, now=NOW)
    assert (claims.tenant_epoch, claims.user_epoch) == (3, 7)
    assert not TokenEpochs(3, 7).revokes(claims)
    assert TokenEpochs(4, 7).revokes(claims) and TokenEpochs(3, 8).revokes(claims)


def test_a_token_minted_before_epochs_existed_is_at_epoch_zero() -> None:
    payload = base64.urlsafe_b64encode(b'{"t":"acme","u":"u1","e":1795000600}').rstrip(b"=")
    mac = hmac.new(b"s3cret", b"v1." + payload, hashlib.sha256).digest()
    token = f"v1.{payload.decode()}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    claims = verify_stream_token("s3cret", token, now=NOW)
    assert (claims.tenant_epoch, claims.user_epoch) == (0, 0)
    assert not TokenEpochs().revokes(claims)
    assert TokenEpochs(user=1).revokes(claims)


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


@pytest.mark.parametrize("claims", [b'{"t":"acme","u":"u1","e":true}',
                                    b'{"t":"acme","u":"u1","e":1795000600,"ug":"1"}',
                                    b'{"t":"acme","u":"u1","e":1795000600,"tg":1.5}'])
def test_well_signed_token_with_wrong_claim_types_is_malformed(claims: bytes) -> None:
    payload = base64.urlsafe_b64encode(claims).rstrip(b"=").decode()
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


async def test_online_user_receives_the_rich_content_in_the_frame() -> None:
    msg = message(rich=rich_offer())
    async with service() as svc, svc.connect(svc.token("u1")) as ws:
        await svc.until_online("u1")
        await svc.channel.send(msg)
        frame = await next_frame(ws)

    rich = frame["message"]["rich"]
    assert rich["image_url"] == DIAPERS_IMAGE and rich["image_tag"] == "mother_baby"
    assert [b["id"] for b in rich["buttons"]] == ["shop", "later"]
