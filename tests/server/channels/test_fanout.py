"""Live in-app frames across nodes: two apps (two ``create_app``, each its own aiohttp
test server and store pool) on one PostgreSQL schema, as two ``geopush serve`` behind a
load balancer; real WebSockets with real stream tokens. Node A runs the outbox
dispatcher; node B only holds sockets.

Exactly-once checks rely on PostgreSQL delivering notifications to a listener in commit
order: a duplicate of an earlier message would reach a socket before the next message
published after it."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from server.api.context import FANOUT, HUB
from server.auth import Role
from server.channels.base import Delivered
from server.channels.inapp import (
    CLOSE_TOKEN_REVOKED,
    InboxChannel,
    LocalFanout,
    StreamHub,
    issue_stream_token,
    stream_frame,
)
from server.channels.pg_fanout import (
    FRAME,
    NOTIFY_MAX_BYTES,
    REFERENCE,
    REVOKE,
    PostgresFanout,
    decode_notice,
    encode_notice,
    encode_revocation,
    stream_channel,
)
from server.channels.pg_presence import StreamPresence
from server.outbox.channels import OutboxInbox
from server.store import PostgresStore, Store
from server.store.migrate import quote_ident
from tests.server.api.conftest import (  # noqa: F401 - fixtures
    Api,
    FakeClock,
    blockbuster,
    campaign_body,
    make_settings,
    ping,
    serving,
    venue_feature,
)
from tests.server.channels.builders import Clock, message
from tests.server.channels.test_fcm import Google, account_info, google
from tests.server.conftest import TENANT, drop_schema, execute
from tests.server.store.builders import delivery
from tests.server.waiting import eventually

on_session_loop = pytest.mark.asyncio(loop_scope="session")
"""The store fixtures' loop (a pool is only ever used on the loop that made it)."""


@pytest.fixture(autouse=True)
def no_blocking_in_channels() -> Iterator[None]:
    """Replaces the channel tests' guard: the whole-loop ``blockbuster`` (imported above)
    watches these tests, with its allowance for asyncpg reading ``~/.pgpass`` at connect
    time — which the fan-out's listener does from ``server.channels``."""
    yield


# --------------------------------------------------------------------------- builders


@dataclass
class Node:
    """One running app."""

    api: Api

    @property
    def app(self) -> web.Application:
        app: web.Application | None = self.api.client.app
        assert app is not None
        return app

    @property
    def fanout(self) -> PostgresFanout:
        fanout = self.app[FANOUT]
        assert isinstance(fanout, PostgresFanout)
        return fanout

    def inbox_channel(self) -> InboxChannel:
        """The inbox channel as this node's outbox builds it (its clock pinned where the
        builders' messages are fresh)."""
        return InboxChannel(self.app[HUB], OutboxInbox(), fanout=self.app[FANOUT],
                            clock=Clock())

    @asynccontextmanager
    async def stream(self, user_id: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        """The user's app, connected to this node with its own stream token."""
        secret = await self.api.store.stream_secret(TENANT)
        token = issue_stream_token(secret, TENANT, user_id, self.api.clock.now + 600)
        async with self.api.client.ws_connect(f"/v1/stream?token={token}") as ws:
            await eventually(lambda: self.app[HUB].is_online(TENANT, user_id))
            yield ws

    async def fanout_count(self, event: str) -> float:
        """``geopush_stream_fanout_total{event=...}`` as this node's ``/metrics`` says."""
        resp = await self.api.client.get("/metrics")
        text = await resp.text()
        found = re.search(rf'^geopush_stream_fanout_total\{{event="{event}"\}} (\S+)$', text,
                          re.MULTILINE)
        return float(found.group(1)) if found else 0.0


async def next_message(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    frame = await ws.receive_json(timeout=5)
    assert frame["type"] == "message", frame
    found: dict[str, Any] = frame["message"]
    return found


async def nothing_more(*sockets: aiohttp.ClientWebSocketResponse) -> None:
    for ws in sockets:
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.3)


@asynccontextmanager
async def running(store: Store, now: FakeClock, **settings: Any) -> AsyncIterator[Node]:
    async with serving(store, now, **settings) as api:
        yield Node(api)


@pytest.fixture
def now() -> FakeClock:
    """Both nodes' wall clock (noon UTC on a Monday: no quiet hours)."""
    return FakeClock()


@pytest.fixture
async def nodes(pg_store: PostgresStore, second_store: PostgresStore,
                now: FakeClock) -> AsyncIterator[tuple[Node, Node]]:
    """Node A with a dispatcher polling every 50 ms, node B with none."""
    async with running(pg_store, now, outbox_workers=1, outbox_interval_s=0.05) as a, \
            running(second_store, now) as b:
        yield a, b


async def walk_in_on(node: Node, user_id: str, *, body: str = "Hi there") -> str:
    """A campaign pushing on the inbox only, and ``user_id`` walking into its venue
    through ``node``; the id of the delivery made."""
    api = node.api
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    await api.call("PUT", "/v1/campaigns/hello", expect=201, json_body=campaign_body(
        status="active", channels=["inbox"],
        variants=[{"id": "a", "title": "Welcome", "body": body}]))
    now = api.clock.now
    _, created = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={
        "pings": [ping(user_id, ts=now - 20), ping(user_id, ts=now - 10)]})
    assert len(created["deliveries"]) == 1, created
    [delivery] = created["deliveries"]
    delivery_id: str = delivery["id"]
    return delivery_id


# --------------------------------------------------------------------------- across nodes


@pytest.mark.needs_postgres
@on_session_loop
async def test_push_dispatched_on_node_a_reaches_the_users_stream_on_node_b_once(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    async with b.stream("u1") as ws:
        delivery_id = await walk_in_on(a, "u1")
        got = await next_message(ws)
        await nothing_more(ws)

    assert got["delivery_id"] == delivery_id
    assert (got["title"], got["body"], got["user_id"]) == ("Welcome", "Hi there", "u1")
    assert await a.fanout_count("published") == 1
    assert await b.fanout_count("delivered") == 1


@pytest.mark.needs_postgres
@on_session_loop
async def test_each_node_hands_a_message_to_its_own_streams_exactly_once(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    sent = []
    async with a.stream("u1") as phone, b.stream("u1") as tablet:
        for key, node in (("k1", a), ("k2", b), ("k3", a)):
            sent.append(await node.inbox_channel().send(message(key=key)))
            seen = [await next_message(phone), await next_message(tablet)]
            assert [m["idempotency_key"] for m in seen] == [key, key]
        await nothing_more(phone, tablet)

    # Each publisher's own socket got it at once; the other socket through the notice.
    assert sent == [Delivered("live:1")] * 3
    assert (await a.fanout_count("delivered"), await b.fanout_count("delivered")) == (1, 2)


@pytest.mark.needs_postgres
@on_session_loop
async def test_a_user_online_nowhere_costs_no_frame(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    async with b.stream("u1") as ws:
        away = await a.inbox_channel().send(message(key="for-nobody", user_id="u-away"))
        await a.inbox_channel().send(message(key="for-u1"))
        got = await next_message(ws)
        await nothing_more(ws)

    assert away == Delivered("stored")
    assert got["idempotency_key"] == "for-u1"
    assert await b.fanout_count("received") == 2
    assert await b.fanout_count("offline") == 1
    assert await b.fanout_count("delivered") == 1


@pytest.mark.needs_postgres
@on_session_loop
async def test_a_message_too_large_for_a_notification_is_read_back_whole_on_node_b(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    body = "满100减20，今天在二楼。" * 280  # 3,920 characters, 8,960 bytes in UTF-8
    async with b.stream("u1") as ws:
        delivery_id = await walk_in_on(a, "u1", body=body)
        got = await next_message(ws)
        await nothing_more(ws)

    assert got["delivery_id"] == delivery_id and got["body"] == body
    assert got["data"]["campaign_id"] == "hello"
    assert await a.fanout_count("published_reference") == 1
    assert await b.fanout_count("delivered") == 1


@pytest.mark.needs_postgres
@on_session_loop
async def test_listener_reconnects_after_its_connection_is_terminated(
    nodes: tuple[Node, Node], database_url: str,
) -> None:
    a, b = nodes
    old_pid = b.fanout.listener_pid
    assert old_pid is not None
    killer = await asyncpg.connect(database_url)
    try:
        assert await killer.fetchval("SELECT pg_terminate_backend($1)", old_pid)
    finally:
        await killer.close()
    await eventually(lambda: b.fanout.listener_pid not in (None, old_pid))
    _, ready = await b.api.call("GET", "/readyz", expect=200)
    assert ready["checks"]["stream_fanout"] == f"listening on {b.fanout.channel}"

    async with b.stream("u1") as ws:
        await a.inbox_channel().send(message(key="after-restart"))
        got = await next_message(ws)
    assert got["idempotency_key"] == "after-restart"
    assert await b.fanout_count("listener_lost") == 1
    # Still serving requests all along.
    await b.api.call("GET", "/v1/users/u1/inbox", role=Role.MANAGER, expect=200)


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, str]:
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE, msg
    return int(msg.data), str(msg.extra)


REVOKED = (CLOSE_TOKEN_REVOKED, "token_revoked")


@pytest.mark.needs_postgres
@on_session_loop
async def test_erasing_a_user_on_node_a_closes_their_socket_on_node_b(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    async with b.stream("u1") as erased, b.stream("u2") as bystander:
        await a.api.call("DELETE", "/v1/users/u1", expect=200)
        assert await closed_with(erased) == REVOKED
        await a.inbox_channel().send(message(key="for-u2", user_id="u2"))
        got = await next_message(bystander)

    assert got["idempotency_key"] == "for-u2"
    assert await a.fanout_count("published_revoke") == 1
    assert await b.fanout_count("revoked") == 1


@pytest.mark.needs_postgres
@on_session_loop
async def test_a_tenants_revocation_on_node_a_closes_its_sockets_on_both_nodes(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    secret = await b.api.store.stream_secret(TENANT)
    old = issue_stream_token(secret, TENANT, "u1", b.api.clock.now + 600)
    async with b.stream("u1") as on_b, b.stream("u2") as also_on_b, a.stream("u3") as on_a:
        await a.api.call("POST", "/v1/stream/revoke", expect=200)
        closed = [await closed_with(ws) for ws in (on_b, also_on_b, on_a)]

    assert closed == [REVOKED] * 3
    resp = await b.api.client.get("/v1/stream", params={"token": old})
    assert resp.status == 401
    assert (await resp.json())["error"]["message"] == "stream token revoked"


@pytest.mark.needs_postgres
@on_session_loop
async def test_fan_out_can_be_turned_off(pg_store: PostgresStore, now: FakeClock) -> None:
    async with running(pg_store, now, stream_fanout=False) as node:
        assert isinstance(node.app[FANOUT], LocalFanout)


@on_session_loop
async def test_embedded_store_streams_to_its_own_process_only(
    memory_store: Store, now: FakeClock,
) -> None:
    async with running(memory_store, now) as node, node.stream("u1") as ws:
        assert isinstance(node.app[FANOUT], LocalFanout)
        _, ready = await node.api.call("GET", "/readyz", expect=200)
        assert ready["checks"]["stream_fanout"] == "local: this process's streams"
        result = await node.inbox_channel().send(message(key="k-local"))
        got = await next_message(ws)
        await nothing_more(ws)
    assert result == Delivered("live:1")
    assert got == message(key="k-local").payload()


# --------------------------------------------------------------------------- who is online
#
# The dispatcher's channel choice counts the user's streams on every node: the user has
# an FCM token, campaign ``c1`` lists ``inbox`` and ``fcm``, and the FCM stand-in records
# what it is sent — so an open app anywhere means the inbox, and no push.


PUSH_TOKEN = "fcm-token"



@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    """The FCM service account's key (as ``test_fcm``'s; a fixture per module)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def fcm(rsa_key: rsa.RSAPrivateKey, now: FakeClock) -> AsyncIterator[Google]:
    """The FCM stand-in; it records every push in ``sends``."""
    async with google(rsa_key, now) as g:
        yield g


async def push_or_inbox(node: Node, fcm: Google, rsa_key: rsa.RSAPrivateKey,
                        *users: str) -> None:
    """The tenant's FCM set up, ``users`` with an FCM token each, and campaign ``c1``
    (the one the store builders' deliveries belong to) on the inbox or FCM."""
    api = node.api
    await api.call("PUT", "/v1/channels", expect=200, json_body={
        "fcm": {"service_account": account_info(rsa_key, fcm.token_uri),
                "base_url": fcm.base_url}})
    for user in users:
        await api.call("PUT", f"/v1/users/{user}", expect=201, json_body={"contacts": {
            "devices": [{"platform": "fcm", "token": f"{PUSH_TOKEN}-{user}"}]}})
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    await api.call("PUT", "/v1/campaigns/c1", expect=201, json_body=campaign_body(
        "c1", status="active", channels=["inbox", "fcm"]))


async def dispatched(node: Node, user_id: str, key: str) -> tuple[str, str]:
    """A delivery to ``user_id`` put in the outbox, once ``node``'s dispatcher has sent
    it: ``(delivery_id, channel)``."""
    store = node.api.store
    row = delivery(user_id, key, at=node.api.clock.now)
    async with store.batch(TENANT, [user_id]) as tx:
        [created] = await tx.insert_deliveries([row])
    found: dict[str, Any] = {}

    async def sent() -> bool:
        _, body = await node.api.call("GET", f"/v1/deliveries/{created.delivery_id}",
                                      expect=200)
        found.update(body)
        return bool(body["status"] == "sent")

    await eventually(sent)
    return created.delivery_id, str(found["channel"])


async def seen_online(node: Node, user_id: str) -> bool:
    """Whether ``node``'s dispatcher would count ``user_id`` as online now."""
    return user_id in await node.fanout.online(TENANT, [user_id])


async def _offline(node: Node, user_id: str) -> bool:
    return not await seen_online(node, user_id)


@pytest.mark.needs_postgres
@on_session_loop
async def test_app_open_on_node_b_gets_the_inbox_not_a_push_from_node_a(
    nodes: tuple[Node, Node], fcm: Google, rsa_key: rsa.RSAPrivateKey,
) -> None:
    a, b = nodes
    await push_or_inbox(a, fcm, rsa_key, "u1")
    async with b.stream("u1") as ws:
        await eventually(lambda: seen_online(a, "u1"))
        assert not a.app[HUB].is_online(TENANT, "u1")  # only B has the socket
        delivery_id, channel = await dispatched(a, "u1", "k1")
        got = await next_message(ws)

    assert channel == "inbox"
    assert got["delivery_id"] == delivery_id
    assert fcm.sends == []


@pytest.mark.needs_postgres
@on_session_loop
async def test_once_the_app_on_node_b_closes_the_next_delivery_is_a_push(
    nodes: tuple[Node, Node], fcm: Google, rsa_key: rsa.RSAPrivateKey,
) -> None:
    a, b = nodes
    await push_or_inbox(a, fcm, rsa_key, "u1")
    async with b.stream("u1"):
        await eventually(lambda: seen_online(a, "u1"))
        assert (await dispatched(a, "u1", "k1"))[1] == "inbox"
    await eventually(lambda: _offline(a, "u1"))  # B wrote the closing down

    _, channel = await dispatched(a, "u1", "k2")

    assert channel == "fcm"
    assert [s["message"]["token"] for s in fcm.sends] == [f"{PUSH_TOKEN}-u1"]


@pytest.mark.needs_postgres
@on_session_loop
async def test_a_node_whose_rows_expired_no_longer_counts(
    nodes: tuple[Node, Node], fcm: Google, rsa_key: rsa.RSAPrivateKey,
    database_url: str, pg_schema: str,
) -> None:
    a, b = nodes
    await push_or_inbox(a, fcm, rsa_key, "u1")
    async with b.stream("u1"):
        await eventually(lambda: seen_online(a, "u1"))
        # Node B stops heartbeating (it died): its rows outlive their TTL.
        await execute(database_url, pg_schema,
                      "UPDATE stream_presence SET expires_at = now() - interval '1 second'"
                      " WHERE node_id = $1", b.fanout.node_id)
        assert not await seen_online(a, "u1")
        _, channel = await dispatched(a, "u1", "k1")

    assert channel == "fcm"
    assert len(fcm.sends) == 1


@pytest.mark.needs_postgres
@on_session_loop
async def test_each_node_keeps_rows_of_its_own_users_and_removes_them_at_shutdown(
    pg_store: PostgresStore, second_store: PostgresStore, now: FakeClock,
    database_url: str, pg_schema: str,
) -> None:
    def rows_of(node_id: str) -> Any:
        return execute(database_url, pg_schema, "SELECT array_agg(user_id ORDER BY user_id)"
                       " FROM stream_presence WHERE node_id = $1", node_id)

    async with running(pg_store, now) as a:
        async with running(second_store, now) as b:
            b_node = b.fanout.node_id
            async with a.stream("u1"), b.stream("u1"), b.stream("u2"):
                await eventually(lambda: seen_online(a, "u2"))
                await eventually(lambda: seen_online(b, "u1"))
                assert await rows_of(a.fanout.node_id) == ["u1"]
                assert await rows_of(b_node) == ["u1", "u2"]
        assert await rows_of(b_node) is None  # B shut down cleanly
        await eventually(lambda: _offline(a, "u1"))
        assert await a.fanout.online(TENANT, ["u1", "u2"]) == set()


@pytest.mark.needs_postgres
@on_session_loop
async def test_long_expired_rows_of_dead_nodes_are_pruned_and_live_ones_kept(
    pg_store: PostgresStore,
) -> None:
    await pg_store.write_stream_presence("dead", [(TENANT, "u1")], (), ttl_s=0.001)
    await pg_store.write_stream_presence("live", [(TENANT, "u2")], (), ttl_s=60)
    await eventually(lambda: _not_online(pg_store, "u1"))

    assert await pg_store.prune_stream_presence(expired_for_s=0) == 1
    assert await pg_store.stream_presence(TENANT, ["u1", "u2"]) == {"u2"}
    assert await pg_store.refresh_stream_presence("live", ttl_s=60) == 1


async def _not_online(store: PostgresStore, user_id: str) -> bool:
    return user_id not in await store.stream_presence(TENANT, [user_id])


@pytest.fixture
async def store_without_presence(database_url: str) -> AsyncIterator[PostgresStore]:
    """A throwaway schema whose ``stream_presence`` table is gone: every presence read
    and write fails there."""
    schema = f"geopush_nopresence_{uuid.uuid4().hex[:10]}"
    store = await PostgresStore.open(database_url, schema=schema, min_size=1, max_size=4)
    try:
        await execute(database_url, schema,
                      f"DROP TABLE {quote_ident(schema)}.stream_presence")
        yield store
    finally:
        await store.close()
        await drop_schema(database_url, schema)


@pytest.mark.needs_postgres
@on_session_loop
async def test_presence_failing_falls_back_to_this_nodes_streams_and_still_delivers(
    store_without_presence: PostgresStore, now: FakeClock, fcm: Google,
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    async with running(store_without_presence, now, outbox_workers=1,
                       outbox_interval_s=0.05) as a:
        await push_or_inbox(a, fcm, rsa_key, "u1", "u2")
        async with a.stream("u1") as ws:  # the stream works although its row cannot be written
            _, here = await dispatched(a, "u1", "k1")
            got = await next_message(ws)
            _, away = await dispatched(a, "u2", "k2")
        assert await a.fanout_count("presence_write_failed") >= 1
        assert await a.fanout_count("presence_failed") >= 1

    assert (here, away) == ("inbox", "fcm")
    assert got["user_id"] == "u1"


async def test_a_failing_watcher_never_breaks_a_stream() -> None:
    hub = StreamHub()
    seen: list[tuple[str, str, bool]] = []

    def broken(_tenant: str, _user: str, _online: bool) -> None:
        raise RuntimeError("boom")

    hub.watch(broken)
    stop = hub.watch(lambda t, u, online: seen.append((t, u, online)))
    with hub.subscribe(TENANT, "u1"), hub.subscribe(TENANT, "u1"):
        assert hub.publish(TENANT, "u1", {"type": "message"}) == 2
    stop()
    with hub.subscribe(TENANT, "u2"):
        pass

    # The first stream opening and the last closing, nothing in between; none after stop.
    assert seen == [(TENANT, "u1", True), (TENANT, "u1", False)]


@pytest.mark.needs_postgres
@on_session_loop
async def test_heartbeat_renews_rows_and_rewrites_those_lost_meanwhile(
    pg_store: PostgresStore, database_url: str, pg_schema: str,
) -> None:
    hub = StreamHub()
    presence = StreamPresence(hub, pg_store, node_id="n1", refresh_s=0.2, flush_s=0.01)
    expiry = "SELECT min(expires_at) FROM stream_presence WHERE node_id = 'n1'"
    presence.start()
    try:
        with hub.subscribe(TENANT, "u1"):
            await eventually(lambda: presence.online(TENANT, ["u1"]))
            first = await execute(database_url, pg_schema, expiry)
            await eventually(lambda: _later(database_url, pg_schema, expiry, first))
            # Another node pruned it (or the user was erased) while the socket stays open.
            await execute(database_url, pg_schema, "DELETE FROM stream_presence")
            await eventually(lambda: presence.online(TENANT, ["u1"]))
    finally:
        await presence.aclose()
    assert await execute(database_url, pg_schema, expiry) is None


async def _later(database_url: str, schema: str, sql: str, than: Any) -> bool:
    return bool(await execute(database_url, schema, sql) > than)


class _Unreachable:
    """A presence store whose database is down."""

    async def fail(self, *_args: object, **_kwargs: object) -> Any:
        raise OSError("connection refused")

    write_stream_presence = sync_stream_presence = refresh_stream_presence = fail
    prune_stream_presence = clear_stream_presence = stream_presence = fail


async def test_presence_writes_that_fail_are_retried_without_touching_the_streams() -> None:
    hub = StreamHub()
    events: list[str] = []
    presence = StreamPresence(hub, _Unreachable(), node_id="n1", flush_s=0.01,
                              retry_min_s=0.01, observer=events.append)
    presence.start()
    try:
        with hub.subscribe(TENANT, "u1"):
            await eventually(lambda: events.count("presence_write_failed") >= 2)
        with pytest.raises(OSError):
            await presence.online(TENANT, ["u1"])
    finally:
        await presence.aclose()  # the final delete fails too, and is only logged


@on_session_loop
async def test_embedded_store_chooses_the_inbox_while_the_app_is_open_in_its_process(
    memory_store: Store, now: FakeClock, fcm: Google, rsa_key: rsa.RSAPrivateKey,
) -> None:
    async with running(memory_store, now, outbox_workers=1, outbox_interval_s=0.05) as node:
        assert isinstance(node.app[FANOUT], LocalFanout)
        await push_or_inbox(node, fcm, rsa_key, "u1", "u2")
        async with node.stream("u1"):
            assert await node.app[FANOUT].online(TENANT, ["u1", "u2"]) == {"u1"}
            _, here = await dispatched(node, "u1", "k1")
            _, away = await dispatched(node, "u2", "k2")

    assert (here, away) == ("inbox", "fcm")


# --------------------------------------------------------------------------- the notice


@pytest.mark.parametrize(("schema", "channel"), [
    ("public", "geopush_stream"),
    ("geopush_test_42_ab12cd34", "geopush_stream.geopush_test_42_ab12cd34"),
])
def test_each_schema_has_its_own_channel(schema: str, channel: str) -> None:
    assert stream_channel(schema) == channel


def test_a_long_schema_name_still_makes_a_channel_postgres_accepts() -> None:
    names = {stream_channel(c * 63) for c in "st"}
    assert len(names) == 2
    assert all(n.startswith("geopush_stream.") and len(n.encode()) <= 63 for n in names)


@pytest.mark.parametrize(("user_id", "header_user"), [(None, ""), ("u1", "u1")])
def test_a_revocation_travels_as_a_notice_of_its_own_kind(
    user_id: str | None, header_user: str
) -> None:
    notice = decode_notice(encode_revocation("node-a", "acme", user_id, 3))
    assert (notice.origin, notice.tenant_id, notice.user_id, notice.kind) == (
        "node-a", "acme", header_user, REVOKE)
    assert notice.epoch() == 3


def test_a_frame_that_fits_travels_in_the_notice() -> None:
    frame = stream_frame(message(title="Päivää 你好"))
    encoded = encode_notice("node-a", "acme", "u1", frame)
    assert encoded is not None
    kind, payload = encoded
    notice = decode_notice(payload)
    assert kind == FRAME and "你好" in payload  # UTF-8, not \u escapes: half the bytes
    assert (notice.origin, notice.tenant_id, notice.user_id) == ("node-a", "acme", "u1")
    assert notice.frame() == frame


def test_a_frame_too_large_travels_as_its_delivery_id() -> None:
    frame = stream_frame(message(key="big", body="x" * NOTIFY_MAX_BYTES))
    encoded = encode_notice("node-a", "acme", "u1", frame)
    assert encoded is not None
    kind, payload = encoded
    assert kind == REFERENCE and len(payload.encode()) < NOTIFY_MAX_BYTES
    assert decode_notice(payload).delivery_id() == "dlv-big"
    assert encode_notice("node-a", "acme", "u1", {"type": "ping", "pad": "x" * 9000}) is None


def test_a_frame_postgres_cannot_encode_travels_as_its_delivery_id() -> None:
    frame = stream_frame(message(key="odd", body="\ud800"))
    encoded = encode_notice("node-a", "acme", "u1", frame)
    assert encoded is not None and encoded[0] == REFERENCE


@pytest.mark.parametrize("payload", [
    "", "hello", '["v1","n","acme","u1","f"]', '["v2","n","acme","u1","f"]\n{}',
    '["v1","n","acme","u1","z"]\n{}', '{"v":1}\n{}', '["v1","n","acme",7,"f"]\n{}',
])
def test_anything_but_a_notice_is_refused(payload: str) -> None:
    with pytest.raises(ValueError):
        decode_notice(payload)


async def test_a_listener_that_is_down_is_reported_not_fatal() -> None:
    async def unreachable() -> asyncpg.Connection:
        raise OSError("connection refused")

    async def no_notify(_channel: str, _payload: str) -> None:
        return None

    async def no_frames(_tenant: str, _user: str, _delivery_id: str) -> None:
        return None

    fanout = PostgresFanout(StreamHub(), connect=unreachable, notify=no_notify,
                            channel="geopush_stream", resolve=no_frames)
    assert fanout.state().startswith("reconnecting")
