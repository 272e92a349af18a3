"""Stream tokens that end (issue 14), through the HTTP API on both stores: a socket
closes at its token's expiry (4001) and gets nothing after it; erasing a user and a
tenant's revocation close the sockets of the tokens minted before (4002) and refuse
those tokens from then on; tokens minted afterwards work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from server.api.context import FANOUT, HUB
from server.auth import Role
from server.channels.inapp import (
    CLOSE_TOKEN_EXPIRED,
    CLOSE_TOKEN_REVOKED,
    TokenEpochs,
    issue_stream_token,
    stream_frame,
)
from tests.server.api.conftest import Api
from tests.server.channels.builders import message
from tests.server.conftest import OTHER_TENANT, TENANT
from tests.server.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

REVOKED = (CLOSE_TOKEN_REVOKED, "token_revoked")


async def mint(api: Api, user_id: str, *, tenant: str = TENANT) -> str:
    """The token the tenant's backend gets for its user (a manager key)."""
    _, body = await api.call("POST", f"/v1/users/{user_id}/stream-token", role=Role.MANAGER,
                             tenant=tenant, expect=201, json_body={})
    token: str = body["token"]
    return token


@asynccontextmanager
async def stream(api: Api, token: str, user_id: str, *, tenant: str = TENANT
                 ) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """The user's app with the socket open (and registered by the server)."""
    app = api.client.app
    assert app is not None
    async with api.client.ws_connect(f"/v1/stream?token={token}") as ws:
        await eventually(lambda: app[HUB].is_online(tenant, user_id))
        yield ws


async def push(api: Api, user_id: str, key: str, *, tenant: str = TENANT) -> None:
    """A message for the user's open streams, as the inbox channel publishes it."""
    app = api.client.app
    assert app is not None
    await app[FANOUT].publish(tenant, user_id, stream_frame(
        message(key=key, user_id=user_id, tenant_id=tenant)))


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, str]:
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE, msg
    return int(msg.data), str(msg.extra)


async def next_key(ws: aiohttp.ClientWebSocketResponse) -> str:
    frame: dict[str, Any] = await ws.receive_json(timeout=5)
    key: str = frame["message"]["idempotency_key"]
    return key


async def refusal(api: Api, token: str) -> dict[str, Any]:
    """What the stream answers a token before any upgrade (401 expected)."""
    resp = await api.client.get("/v1/stream", params={"token": token})
    assert resp.status == 401, resp.status
    body: dict[str, Any] = (await resp.json())["error"]
    return body


async def test_a_stream_closes_with_4001_at_its_tokens_expiry(api: Api) -> None:
    secret = await api.store.stream_secret(TENANT)
    token = issue_stream_token(secret, TENANT, "u1", api.clock.now + 1)
    async with stream(api, token, "u1") as ws:
        assert await closed_with(ws) == (CLOSE_TOKEN_EXPIRED, "token_expired")
    api.clock.advance(1)
    assert (await refusal(api, token))["message"] == "stream token expired"


async def test_no_message_reaches_a_stream_once_its_token_has_expired(api: Api) -> None:
    token = await mint(api, "u1")  # the default lifetime, an hour
    async with stream(api, token, "u1") as ws:
        await push(api, "u1", "before")
        assert await next_key(ws) == "before"
        api.clock.advance(3600 + 3.8)  # the wall clock passes the expiry before the timer
        await push(api, "u1", "after")
        assert await closed_with(ws) == (CLOSE_TOKEN_EXPIRED, "token_expired")


async def test_erasing_a_user_closes_their_streams_and_refuses_their_old_token(
    api: Api,
) -> None:
    erased, other = await mint(api, "u1"), await mint(api, "u2")
    async with stream(api, erased, "u1") as ws, stream(api, other, "u2") as bystander:
        await api.call("DELETE", "/v1/users/u1", expect=200)
        assert await closed_with(ws) == REVOKED
        await push(api, "u2", "still-here")
        assert await next_key(bystander) == "still-here"

    assert await refusal(api, erased) == {"code": "invalid_token", "field": "token",
                                          "message": "stream token revoked"}
    resp = await api.client.get("/v1/users/u1/inbox", params={"token": erased})
    assert resp.status == 401
    async with stream(api, await mint(api, "u1"), "u1") as fresh:  # a new account, same id
        await push(api, "u1", "welcome-back")
        assert await next_key(fresh) == "welcome-back"


async def test_a_tenant_revokes_all_its_stream_tokens_at_once(api: Api) -> None:
    u1, u2 = await mint(api, "u1"), await mint(api, "u2")
    elsewhere = await mint(api, "u1", tenant=OTHER_TENANT)
    async with stream(api, u1, "u1") as a, stream(api, u2, "u2") as b, \
            stream(api, elsewhere, "u1", tenant=OTHER_TENANT) as other_tenant:
        _, body = await api.call("POST", "/v1/stream/revoke", expect=200)
        assert [await closed_with(a), await closed_with(b)] == [REVOKED, REVOKED]
        await push(api, "u1", "globex-only", tenant=OTHER_TENANT)
        assert await next_key(other_tenant) == "globex-only"

    assert body == {"tenant_id": TENANT, "user_id": None, "epoch": 1}
    for old in (u1, u2):
        assert (await refusal(api, old))["message"] == "stream token revoked"
    async with stream(api, await mint(api, "u1"), "u1") as fresh:
        await push(api, "u1", "new-token")
        assert await next_key(fresh) == "new-token"


async def test_a_tenant_revokes_one_users_stream_tokens(api: Api) -> None:
    u1, u2 = await mint(api, "u1"), await mint(api, "u2")
    async with stream(api, u1, "u1") as a, stream(api, u2, "u2") as b:
        _, body = await api.call("POST", "/v1/stream/revoke", expect=200,
                                 json_body={"user_id": "u1"})
        assert await closed_with(a) == REVOKED
        await push(api, "u2", "u2-stays")
        assert await next_key(b) == "u2-stays"
    assert body == {"tenant_id": TENANT, "user_id": "u1", "epoch": 1}
    assert await api.store.stream_token_epochs(TENANT, "u1") == (0, 1)


async def test_a_token_minted_after_a_revocation_carries_the_new_epochs(api: Api) -> None:
    await api.call("POST", "/v1/stream/revoke", expect=200)
    await api.call("DELETE", "/v1/users/u1", expect=200)
    token = await mint(api, "u1")
    secret = await api.store.stream_secret(TENANT)
    stale = issue_stream_token(secret, TENANT, "u1", api.clock.now + 600, TokenEpochs(1, 0))
    async with stream(api, token, "u1"):
        pass
    assert (await refusal(api, stale))["message"] == "stream token revoked"


@pytest.mark.parametrize("role", [Role.MANAGER, Role.SDK])
async def test_only_an_admin_revokes_stream_tokens(api: Api, role: Role) -> None:
    await api.call("POST", "/v1/stream/revoke", role=role, expect=403)
    assert await api.store.stream_token_epochs(TENANT, "u1") == (0, 0)


async def test_a_revocation_names_a_bad_user_id(api: Api) -> None:
    _, body = await api.call("POST", "/v1/stream/revoke", expect=422,
                             json_body={"user_id": "a\nb"})
    assert body["error"]["field"] == "user_id"
