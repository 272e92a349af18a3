"""MQTT: the message's JSON published with QoS 1 to a per-user topic.

The topic comes from a template (default ``geopush/{tenant_id}/users/{user_id}``) unless
the recipient has its own ``mqtt_topic``; either way it lies in the tenant's namespace,
``geopush/<tenant>/`` (:mod:`server.channels.mqtt_topics`): a template that leaves it is
refused when the channel is built, a recipient topic outside it fails the send for good.
Ids are percent-encoded into the template, so a user id holding ``/``, ``+`` or ``#``
cannot reach another user's topic or a wildcard.

One connection is kept open and shared by concurrent sends (opening an MQTT session per
message costs a TCP + CONNECT round trip and broker churn). When a publish fails — the
broker restarted, another client took our session over — the channel reconnects once
and publishes again; if that fails too the result is ``Retry``. ``Delivered`` means the
broker acknowledged the PUBLISH (PUBACK): QoS 1 is at-least-once, so subscribers drop
duplicates by the payload's ``idempotency_key``.

With MQTT 5 (the default) the message also carries a Message Expiry Interval equal to
the offer's remaining lifetime, so a broker does not hand a stale offer to a device that
reconnects later, and the idempotency key as a user property.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import uuid
from collections.abc import Callable

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from server.channels.base import (
    MQTT,
    BaseChannel,
    ChannelConfigError,
    Delivered,
    Failed,
    OutboundMessage,
    Retry,
    SendObserver,
    SendResult,
)
from server.channels.mqtt_topics import (
    DEFAULT_TOPIC_TEMPLATE,
    MAX_TOPIC_BYTES,
    TopicError,
    TopicTemplate,
    check_topic,
)
from server.egress import EgressPolicy

__all__ = ["DEFAULT_TOPIC_TEMPLATE", "MqttChannel"]


class MqttChannel(BaseChannel):
    """Publishes to an MQTT broker over one long-lived connection (see module doc).

    ``identifier`` is the MQTT client id; give each service node its own (the default is
    random) — two connections with one id knock each other off the broker.
    """

    name = MQTT

    def __init__(
        self,
        *,
        hostname: str = "127.0.0.1",
        port: int = 1883,
        topic_template: str = DEFAULT_TOPIC_TEMPLATE,
        username: str | None = None,
        password: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        identifier: str | None = None,
        mqtt5: bool = True,
        timeout_s: float = 10.0,
        keepalive_s: int = 60,
        egress: EgressPolicy | None = None,
        observer: SendObserver | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(observer=observer, clock=clock)
        try:
            self._template = TopicTemplate.parse(topic_template)
        except TopicError as exc:
            raise ChannelConfigError(f"mqtt topic_template {exc}") from exc
        self._egress = egress
        self._hostname = hostname
        self._port = port
        self._username = username
        self._password = password
        self._tls_context = tls_context
        self._identifier = identifier or f"geopush-{uuid.uuid4().hex[:12]}"
        self._mqtt5 = mqtt5
        self._timeout_s = timeout_s
        self._keepalive_s = keepalive_s
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()
        self.connects = 0
        """Connections opened so far (1 in a healthy run; more means reconnects)."""

    def topic_for(self, message: OutboundMessage) -> str:
        """The topic ``message`` goes to. Raises :class:`ValueError` for a recipient
        topic outside the tenant's namespace, empty, too long or holding a wildcard or a
        control character."""
        topic = message.recipient.mqtt_topic
        if topic is None:
            data = message.data
            topic = self._template.render({
                "tenant_id": message.tenant_id, "user_id": message.user_id,
                "campaign_id": data.campaign_id, "variant_id": data.variant_id,
                "venue_id": data.venue_id, "event": data.event})
            if len(topic.encode()) > MAX_TOPIC_BYTES:
                raise ValueError(f"MQTT topic longer than {MAX_TOPIC_BYTES} bytes")
            return topic
        check_topic(topic, message.tenant_id)
        return topic

    async def _send(self, message: OutboundMessage) -> SendResult:
        try:
            topic = self.topic_for(message)
        except ValueError as exc:
            return Failed(str(exc), permanent=True)
        if self._client is None and self._egress is not None:
            # Checked before each new connection (the client library resolves the name
            # itself, so the check is on the name's addresses just before it connects).
            refused = await self._egress.check(self._hostname, self._port, channel=MQTT)
            if refused is not None:
                return Failed(f"mqtt destination refused: {refused}", permanent=True)
        payload = json.dumps(message.payload(), ensure_ascii=False, separators=(",", ":"))
        properties = self._properties(message) if self._mqtt5 else None
        error: aiomqtt.MqttError | None = None
        # Two tries: the first may find a connection the broker has dropped since the
        # last send; the second runs on a fresh one. More is the dispatcher's job.
        for _ in range(2):
            client = None
            try:
                client = await self._connected()
                await client.publish(
                    topic, payload.encode(), qos=1, properties=properties,
                    timeout=self._timeout_s,
                )
            except aiomqtt.MqttError as exc:
                error = exc
                if client is not None:
                    await self._drop(client)
            else:
                return Delivered()
        return Retry(f"mqtt {self._hostname}:{self._port}: {error}")

    def _properties(self, message: OutboundMessage) -> Properties:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        # Whole seconds, at least one: zero would mean "never expires".
        props.MessageExpiryInterval = max(1, int(self.ttl_s(message)))
        props.ContentType = "application/json"
        props.UserProperty = [("idempotency-key", message.idempotency_key)]
        return props

    async def _connected(self) -> aiomqtt.Client:
        async with self._lock:
            if self._client is None:
                client = aiomqtt.Client(
                    self._hostname,
                    self._port,
                    username=self._username,
                    password=self._password,
                    identifier=self._identifier,
                    protocol=(aiomqtt.ProtocolVersion.V5 if self._mqtt5
                              else aiomqtt.ProtocolVersion.V311),
                    tls_context=self._tls_context,
                    timeout=self._timeout_s,
                    keepalive=self._keepalive_s,
                )
                await client.__aenter__()
                self._client = client
                self.connects += 1
            return self._client

    async def _drop(self, client: aiomqtt.Client) -> None:
        """Forget ``client`` (once, however many sends saw it fail) and close it."""
        async with self._lock:
            if self._client is not client:
                return
            self._client = None
        # Closing a connection the broker already dropped can fail in its own ways;
        # the connection is gone either way.
        with contextlib.suppress(aiomqtt.MqttError, OSError):
            await client.__aexit__(None, None, None)

    async def aclose(self) -> None:
        client = self._client
        if client is not None:
            await self._drop(client)

