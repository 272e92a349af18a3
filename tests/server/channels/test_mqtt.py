"""MQTT against the real Mosquitto broker: a subscriber receives what the channel publishes."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt
import pytest

from server.channels.base import (
    ChannelConfigError,
    Delivered,
    Failed,
    Recipient,
    Retry,
)
from server.channels.mqtt import MqttChannel
from tests.server.channels.builders import (
    APP_LINK,
    SHOP_LINK,
    Clock,
    free_port,
    message,
    rich_offer,
)

pytestmark = pytest.mark.needs_mqtt


@pytest.fixture
def tenant() -> str:
    """A tenant id of its own per test: the broker is shared, topics must not collide."""
    return f"t-{uuid.uuid4().hex[:10]}"


@asynccontextmanager
async def subscriber(broker: tuple[str, int], topic: str) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(*broker, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(topic, qos=1)
        yield client


async def received(client: aiomqtt.Client, count: int = 1) -> list[aiomqtt.Message]:
    out: list[aiomqtt.Message] = []
    async with asyncio.timeout(5):
        async for msg in client.messages:
            out.append(msg)
            if len(out) == count:
                break
    return out


@asynccontextmanager
async def channel(broker: tuple[str, int], **kwargs: Any) -> AsyncIterator[MqttChannel]:
    ch = MqttChannel(hostname=broker[0], port=broker[1], **{"clock": Clock(), **kwargs})
    try:
        yield ch
    finally:
        await ch.aclose()


async def test_subscriber_receives_the_offer_with_qos1(
    mqtt_broker: tuple[str, int], tenant: str
) -> None:
    msg = message(tenant_id=tenant)
    async with subscriber(mqtt_broker, f"geopush/{tenant}/users/+") as sub, \
            channel(mqtt_broker) as ch:
        result = await ch.send(msg)
        [got] = await received(sub)

    assert isinstance(result, Delivered)
    assert str(got.topic) == f"geopush/{tenant}/users/u1"
    assert got.qos == 1
    assert isinstance(got.payload, bytes)
    assert json.loads(got.payload) == msg.payload()
    assert json.loads(got.payload)["idempotency_key"] == "evt-42:diapers"
    assert got.properties is not None
    props = got.properties.json()  # type: ignore[no-untyped-call]
    assert props["ContentType"] == "application/json"
    assert 3590 <= props["MessageExpiryInterval"] <= 3600  # the offer's remaining hour
    assert ["idempotency-key", "evt-42:diapers"] in [list(p) for p in props["UserProperty"]]


async def test_one_connection_is_reused_across_sends(
    mqtt_broker: tuple[str, int], tenant: str
) -> None:
    async with subscriber(mqtt_broker, f"geopush/{tenant}/users/#") as sub, \
            channel(mqtt_broker) as ch:
        results = await asyncio.gather(
            *(ch.send(message(tenant_id=tenant, user_id=f"u{i}", key=f"k{i}")) for i in range(5))
        )
        got = await received(sub, 5)

    assert all(isinstance(r, Delivered) for r in results)
    assert sorted(str(m.topic) for m in got) == [f"geopush/{tenant}/users/u{i}" for i in range(5)]
    assert ch.connects == 1


async def test_reconnects_after_the_broker_drops_the_connection(
    mqtt_broker: tuple[str, int], tenant: str
) -> None:
    identifier = f"geopush-test-{tenant}"
    async with subscriber(mqtt_broker, f"geopush/{tenant}/users/u1") as sub, \
            channel(mqtt_broker, identifier=identifier, timeout_s=2.0) as ch:
        assert isinstance(await ch.send(message(tenant_id=tenant, key="before")), Delivered)
        # A second client with our client id makes the broker close our session
        # (MQTT session takeover): the next send finds a dead connection.
        async with aiomqtt.Client(*mqtt_broker, identifier=identifier):
            pass
        after = await ch.send(message(tenant_id=tenant, key="after"))
        got = await received(sub, 2)

    assert isinstance(after, Delivered)
    assert [json.loads(bytes(m.payload))["idempotency_key"] for m in got] == ["before", "after"]
    assert ch.connects == 2


async def test_unreachable_broker_is_retried(tenant: str) -> None:
    async with channel(("127.0.0.1", free_port()), timeout_s=1.0) as ch:
        result = await ch.send(message(tenant_id=tenant))
    assert isinstance(result, Retry)
    assert ch.connects == 0


async def test_user_id_cannot_escape_its_topic(
    mqtt_broker: tuple[str, int], tenant: str
) -> None:
    async with subscriber(mqtt_broker, f"geopush/{tenant}/users/+") as sub, \
            channel(mqtt_broker) as ch:
        result = await ch.send(message(tenant_id=tenant, user_id="eve/../#+"))
        [got] = await received(sub)
    assert isinstance(result, Delivered)
    assert str(got.topic) == f"geopush/{tenant}/users/eve%2F..%2F%23%2B"


async def test_recipient_topic_overrides_the_template(
    mqtt_broker: tuple[str, int], tenant: str
) -> None:
    topic = f"geopush/{tenant}/devices/d-7"
    async with subscriber(mqtt_broker, topic) as sub, \
            channel(mqtt_broker, topic_template="geopush/{tenant_id}/x/{user_id}") as ch:
        result = await ch.send(message(tenant_id=tenant, recipient=Recipient(mqtt_topic=topic)))
        [got] = await received(sub)
    assert isinstance(result, Delivered)
    assert str(got.topic) == topic


@pytest.mark.parametrize("topic", ["", "geopush/acme/", "geopush/acme/+/b", "geopush/acme/#",
                                   "geopush/acme/a\0b", "geopush/acme/a\r\nb",
                                   "geopush/globex/users/u1", "apps/acme/devices/d-7",
                                   "geopush/acme"])
async def test_recipient_topic_outside_the_namespace_or_with_a_wildcard_fails_permanently(
    mqtt_broker: tuple[str, int], topic: str
) -> None:
    async with channel(mqtt_broker) as ch:
        result = await ch.send(message(tenant_id="acme", recipient=Recipient(mqtt_topic=topic)))
    assert isinstance(result, Failed)
    assert result.permanent
    assert ch.connects == 0


@pytest.mark.parametrize("template", [
    "geopush/globex/users/{user_id}",  # another tenant's namespace, written out
    "geopush/{user_id}/x",  # a user id in the tenant's level: "globex" would be one
    "other/{tenant_id}/{user_id}", "{tenant_id}/users/{user_id}", "geopush/{tenant_id}",
    "geopush/{tenant_id}/", "geopush/{tenant_id}/{user_id.__class__.__mro__}",
    "geopush/{tenant_id}/{user_id!r}", "geopush/{tenant_id}/{user_id:>99}",
    "geopush/{tenant_id}/{user_id[0]}", "geopush/{tenant_id}/{0}", "geopush/{tenant_id}/{}",
    "geopush/{tenant_id}/{{user_id}}", "geopush/{tenant_id}/{user_id", "a/{0}",
    "geopush/{tenant_id}/+/{user_id}", "geopush/{tenant_id}/#", "geopush/{tenant_id}/a\0b", "",
])
def test_unusable_topic_template_is_refused_at_construction(template: str) -> None:
    with pytest.raises(ChannelConfigError, match="topic_template"):
        MqttChannel(topic_template=template)


async def test_placeholders_fill_in_names_and_only_names(
    mqtt_broker: tuple[str, int], tenant: str
) -> None:
    template = "geopush/{tenant}/c/{campaign_id}/{variant_id}/{venue_id}/{event}/{user_id}"
    async with subscriber(mqtt_broker, f"geopush/{tenant}/c/#") as sub, \
            channel(mqtt_broker, topic_template=template) as ch:
        result = await ch.send(message(tenant_id=tenant, user_id="u 1", venue_id="joy/city"))
        [got] = await received(sub)
    assert isinstance(result, Delivered)
    assert str(got.topic) == f"geopush/{tenant}/c/diapers/a/joy%2Fcity/dwell/u%201"


async def test_tenant_a_cannot_publish_where_tenant_b_subscribes(
    mqtt_broker: tuple[str, int],
) -> None:
    """The attack of issue 14: tenant A aims its messages at tenant B's topics, by its
    template, by a user id and by a user's own topic; B's subscriber gets none of them."""
    a, b = f"ta-{uuid.uuid4().hex[:8]}", f"tb-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ChannelConfigError, match="namespace"):
        MqttChannel(topic_template=f"geopush/{b}/users/{{user_id}}")
    attempts = [message(tenant_id=a, user_id=f"../../{b}/users/u1", key="a1"),
                message(tenant_id=a, user_id="#", key="a2"),
                message(tenant_id=a, user_id="+", key="a3"),
                message(tenant_id=a, key="a4",
                        recipient=Recipient(mqtt_topic=f"geopush/{b}/users/u1"))]
    async with subscriber(mqtt_broker, f"geopush/{b}/#") as b_sub, \
            subscriber(mqtt_broker, f"geopush/{a}/#") as a_sub, \
            channel(mqtt_broker) as a_channel, channel(mqtt_broker) as b_channel:
        results = [await a_channel.send(m) for m in attempts]
        a_got = await received(a_sub, 3)
        # B's own message, published after A's were acknowledged: the broker routed A's
        # first, so had any of them matched B's subscription it would arrive before this.
        assert isinstance(await b_channel.send(message(tenant_id=b, key="b1")), Delivered)
        [b_got] = await received(b_sub)

    assert [r.kind for r in results] == ["delivered"] * 3 + ["failed"]
    assert all(str(m.topic).startswith(f"geopush/{a}/users/") for m in a_got)
    assert json.loads(bytes(b_got.payload))["idempotency_key"] == "b1"
    assert str(b_got.topic) == f"geopush/{b}/users/u1"


async def test_mqtt311_publishes_without_v5_properties(
    mqtt_broker: tuple[str, int], tenant: str
) -> None:
    async with subscriber(mqtt_broker, f"geopush/{tenant}/users/u1") as sub, \
            channel(mqtt_broker, mqtt5=False) as ch:
        result = await ch.send(message(tenant_id=tenant))
        [got] = await received(sub)
    assert isinstance(result, Delivered)
    assert got.qos == 1


async def test_subscriber_receives_the_rich_content_as_json(
    mqtt_broker: tuple[str, int], tenant: str
) -> None:
    msg = message(tenant_id=tenant, rich=rich_offer())
    async with subscriber(mqtt_broker, f"geopush/{tenant}/users/+") as sub, \
            channel(mqtt_broker) as ch:
        await ch.send(msg)
        [got] = await received(sub)

    assert isinstance(got.payload, bytes)
    body = json.loads(got.payload)
    assert body["rich"]["deep_link"] == APP_LINK
    assert body["rich"]["buttons"][0] == {"id": "shop", "title": "Shop now",
                                          "deep_link": SHOP_LINK}
