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
from tests.server.channels.builders import Clock, free_port, message

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
    topic = f"apps/{tenant}/devices/d-7"
    async with subscriber(mqtt_broker, topic) as sub, \
            channel(mqtt_broker, topic_template="x/{tenant_id}/{user_id}") as ch:
        result = await ch.send(message(tenant_id=tenant, recipient=Recipient(mqtt_topic=topic)))
        [got] = await received(sub)
    assert isinstance(result, Delivered)
    assert str(got.topic) == topic


@pytest.mark.parametrize("topic", ["", "a/+/b", "a/#", "a\0b"])
async def test_wildcard_recipient_topic_fails_permanently(
    mqtt_broker: tuple[str, int], topic: str
) -> None:
    async with channel(mqtt_broker) as ch:
        result = await ch.send(message(recipient=Recipient(mqtt_topic=topic)))
    assert isinstance(result, Failed)
    assert result.permanent
    assert ch.connects == 0


@pytest.mark.parametrize("template", ["geopush/{tenant}/{user_id}", "a/{0}", "a/+/{user_id}", ""])
def test_unusable_topic_template_is_refused_at_construction(template: str) -> None:
    with pytest.raises(ChannelConfigError, match="topic_template"):
        MqttChannel(topic_template=template)


async def test_mqtt311_publishes_without_v5_properties(
    mqtt_broker: tuple[str, int], tenant: str
) -> None:
    async with subscriber(mqtt_broker, f"geopush/{tenant}/users/u1") as sub, \
            channel(mqtt_broker, mqtt5=False) as ch:
        result = await ch.send(message(tenant_id=tenant))
        [got] = await received(sub)
    assert isinstance(result, Delivered)
    assert got.qos == 1
