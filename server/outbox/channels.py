"""The channels of each tenant, built from its settings and cached until they change.

The in-app inbox channel and the webhook channel serve every tenant (the webhook's
URL and secret travel on the message's recipient); MQTT, FCM, APNs, email and SMS are
built per tenant from :class:`~server.outbox.config.ChannelSettings`, because each
tenant has its own broker, push credentials and mail relay.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from server.channels.apns import ApnsChannel
from server.channels.base import (
    INBOX,
    WEBHOOK,
    Channel,
    ChannelConfigError,
    OutboundMessage,
    SendObserver,
)
from server.channels.email import EmailChannel
from server.channels.fcm import FcmChannel, ServiceAccount
from server.channels.inapp import InboxChannel, LocalFanout, StreamFanout, StreamHub
from server.channels.mqtt import MqttChannel
from server.channels.sms import SmsChannel
from server.channels.webhook import WebhookChannel
from server.egress import EgressPolicy
from server.outbox.config import ChannelSettings

log = logging.getLogger("geopush.outbox")


class OutboxInbox:
    """The :class:`~server.channels.inapp.InboxStore` of the service: the outbox row
    *is* the inbox entry (``GET /v1/users/{id}/inbox`` lists the user's sent ``inbox``
    deliveries), so there is nothing to keep besides it. One row per idempotency key
    makes "listed once even if sent twice" hold by construction."""

    async def put(self, message: OutboundMessage) -> None:
        """Nothing to do: the dispatcher marks the row sent right after."""


@dataclass(slots=True)
class TenantChannels:
    """What one tenant can send on, built from its settings."""

    settings: ChannelSettings
    channels: dict[str, Channel] = field(default_factory=dict)

    @property
    def configured(self) -> frozenset[str]:
        return frozenset(self.channels)


def build_tenant_channels(
    settings: ChannelSettings,
    *,
    shared: Mapping[str, Channel],
    observer: SendObserver,
    clock: Callable[[], float],
    egress: EgressPolicy | None = None,
) -> TenantChannels:
    """The tenant's channels; raises :class:`ChannelConfigError` naming the bad setting.
    ``egress``: where they may connect (see :mod:`server.egress`).

    Runs in the event loop: nothing here reads files (the APNs CA comes as PEM text).
    """
    built: dict[str, Channel] = {INBOX: shared[INBOX]}
    if settings.webhook is not None:
        built[WEBHOOK] = shared[WEBHOOK]
    try:
        if (m := settings.mqtt) is not None:
            built["mqtt"] = MqttChannel(
                hostname=m.host, port=m.port, topic_template=m.topic_template,
                username=m.username, password=m.password,
                tls_context=ssl.create_default_context() if m.tls else None,
                egress=egress, observer=observer, clock=clock)
        if (f := settings.fcm) is not None:
            built["fcm"] = FcmChannel(ServiceAccount.from_info(f.service_account),
                                      base_url=f.base_url, token_uri=f.token_uri,
                                      egress=egress, observer=observer, clock=clock)
        if (a := settings.apns) is not None:
            context = ssl.create_default_context(cadata=a.ca_pem) if a.ca_pem else None
            built["apns"] = ApnsChannel(team_id=a.team_id, key_id=a.key_id,
                                        private_key=a.private_key, topic=a.topic,
                                        base_url=a.base_url, ssl_context=context,
                                        egress=egress, observer=observer, clock=clock)
        if (e := settings.email) is not None:
            built["email"] = EmailChannel(hostname=e.host, port=e.port, sender=e.sender,
                                          username=e.username, password=e.password,
                                          start_tls=e.start_tls, use_tls=e.use_tls,
                                          egress=egress, observer=observer, clock=clock)
        if (s := settings.sms) is not None:
            built["sms"] = SmsChannel(account_sid=s.account_sid, auth_token=s.auth_token,
                                      from_number=s.from_number,
                                      messaging_service_sid=s.messaging_service_sid,
                                      default_region=s.default_region, base_url=s.base_url,
                                      egress=egress, observer=observer, clock=clock)
    except ssl.SSLError as exc:
        raise ChannelConfigError(f"apns ca_pem is not a usable certificate: {exc}") from exc
    return TenantChannels(settings, built)


class ChannelRegistry:
    """Channels per tenant, rebuilt when the stored settings change. Runs in the event
    loop; shared by every dispatcher of the process. ``fanout``: where the inbox channel
    publishes live frames and who counts as online (default: ``hub`` only); ``egress``:
    where every channel may connect (default: anywhere; the service passes its policy)."""

    def __init__(
        self,
        hub: StreamHub,
        *,
        observer: SendObserver,
        clock: Callable[[], float],
        webhook: Channel | None = None,
        fanout: StreamFanout | None = None,
        egress: EgressPolicy | None = None,
    ) -> None:
        self.hub = hub
        self.fanout: StreamFanout = fanout or LocalFanout(hub)
        self._observer = observer
        self._clock = clock
        self._egress = egress
        self._shared: dict[str, Channel] = {
            INBOX: InboxChannel(hub, OutboxInbox(), fanout=self.fanout, observer=observer,
                                clock=clock),
            WEBHOOK: webhook or WebhookChannel(egress=egress, observer=observer, clock=clock),
        }
        self._tenants: dict[str, tuple[Any, TenantChannels]] = {}
        self._retired: list[Channel] = []

    def for_settings(self, tenant_id: str, raw: Mapping[str, Any] | None) -> TenantChannels:
        """The tenant's channels for its stored settings ``raw`` (cached while equal).

        Settings that no longer validate (written by an older version) leave the tenant
        with the inbox only, and are logged: a background loop never dies of them."""
        cached = self._tenants.get(tenant_id)
        if cached is not None and cached[0] == raw:
            return cached[1]
        try:
            settings = ChannelSettings.model_validate(raw or {})
            built = build_tenant_channels(settings, shared=self._shared,
                                          observer=self._observer, clock=self._clock,
                                          egress=self._egress)
        except (ValidationError, ChannelConfigError) as exc:
            log.error("tenant %s: channel settings unusable, in-app inbox only: %s",
                      tenant_id, exc)
            built = TenantChannels(ChannelSettings(), {INBOX: self._shared[INBOX]})
        if cached is not None:
            self._retire(cached[1])
        self._tenants[tenant_id] = (raw, built)
        return built

    def _retire(self, old: TenantChannels) -> None:
        # Closed by aclose() at shutdown; until then an in-flight send may still use them.
        self._retired.extend(ch for name, ch in old.channels.items()
                             if ch is not self._shared.get(name))

    async def aclose(self) -> None:
        """Close every channel this registry made."""
        seen: set[int] = set()
        everything = [*self._shared.values(), *self._retired,
                      *(ch for _, built in self._tenants.values()
                        for ch in built.channels.values())]
        for channel in everything:
            if id(channel) in seen:
                continue
            seen.add(id(channel))
            try:
                await channel.aclose()
            except Exception:  # closing is best effort; one failure must not stop the rest
                log.exception("closing channel %s failed", channel.name)
        self._tenants.clear()
        self._retired = []
