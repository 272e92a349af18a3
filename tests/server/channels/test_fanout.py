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
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from server.api.context import FANOUT, HUB
from server.auth import Role
from server.channels.base import Delivered
from server.channels.inapp import (
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
    PostgresFanout,
    decode_notice,
    encode_notice,
    stream_channel,
)
from server.outbox.channels import OutboxInbox
from server.store import PostgresStore, Store
from tests.server.api.conftest import (  # noqa: F401 - fixtures
    Api,
    FakeClock,
    blockbuster,
    campaign_body,
    make_settings,
    ping,
    start_api,
    venue_feature,
)
from tests.server.channels.builders import Clock, message
from tests.server.conftest import TENANT
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
    client, api = await start_api(store, now, make_settings(**settings))
    try:
        yield Node(api)
    finally:
        await client.close()


@pytest.fixture
def now() -> FakeClock:
    """Both nodes' wall clock (noon UTC on a Monday: no quiet hours)."""
    return FakeClock()


@pytest.fixture
async def second_store(database_url: str, pg_schema: str,
                       pg_store: PostgresStore) -> AsyncIterator[PostgresStore]:
    """Node B's own pool on node A's schema (``pg_store`` truncated it first)."""
    store = await PostgresStore.open(database_url, schema=pg_schema, min_size=1, max_size=4,
                                     apply_migrations=False)
    yield store
    await store.close()


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
