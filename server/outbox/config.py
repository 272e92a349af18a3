"""A tenant's channel settings: what ``PUT /v1/channels`` takes and the store keeps.

One JSON document per tenant, every channel optional (the in-app inbox needs nothing)::

    {"webhook": {"url": "https://hooks.example.com/geopush", "secret": "whsec_..."},
     "mqtt":    {"host": "broker.example.com", "port": 8883, "tls": true,
                 "topic_template": "geopush/{tenant_id}/users/{user_id}"},
     "fcm":     {"service_account": {<the Google service-account key file>}},
     "apns":    {"team_id": "...", "key_id": "...", "private_key": "-----BEGIN ...",
                 "topic": "com.example.app", "base_url": "https://api.push.apple.com"},
     "email":   {"host": "smtp.example.com", "port": 587, "sender": "Offers <o@ex.com>",
                 "username": "...", "password": "..."},
     "sms":     {"account_sid": "AC...", "auth_token": "...", "from_number": "+1..."}}

Per-user addresses (push tokens, email, phone, an MQTT topic of their own) live in the
profile's ``contacts``; a channel is *configured* when its section is present. Secrets
are stored as given (the database is the trust boundary) and never read back: ``GET
/v1/channels`` answers with them masked.

What a tenant may write is held to a few rules, each a 422 naming the field:

- no control character (CR, LF, NUL, ... C0, DEL, C1) in any text but the PEM fields
  (``apns.private_key``, ``apns.ca_pem``, the service account's ``private_key``), so no
  URL, host, sender or id can smuggle a header line into a request (``control_character``);
- ``mqtt.topic_template`` stays in the tenant's MQTT namespace and uses only named
  placeholders (:mod:`server.channels.mqtt_topics`; ``invalid_topic_template``);
- hosts and URLs are held to the egress policy by ``PUT /v1/channels`` (:mod:`server.egress`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from server.channels.apns import PRODUCTION_URL
from server.channels.base import INBOX
from server.channels.fcm import DEFAULT_BASE_URL as FCM_BASE_URL
from server.channels.mqtt_topics import DEFAULT_TOPIC_TEMPLATE, TopicError, TopicTemplate
from server.channels.sms import DEFAULT_BASE_URL as SMS_BASE_URL

MASK = "********"
_SECRET_FIELDS = frozenset({"secret", "previous_secret", "password", "private_key",
                            "auth_token", "service_account"})


_MULTILINE_FIELDS = frozenset({"private_key", "ca_pem"})
"""PEM text: lines are its format (and it goes into no header)."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _no_control_characters(value: Any, where: str) -> None:
    """Raise a ``control_character`` error for text holding one (recursing into the
    service account's JSON, whose ``private_key`` is PEM)."""
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise PydanticCustomError(
                "control_character",
                "{where} holds a control character (CR, LF, NUL, ...); none is allowed",
                {"where": where})
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in _MULTILINE_FIELDS:
                _no_control_characters(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            _no_control_characters(item, where)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _one_line(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name not in _MULTILINE_FIELDS:
            _no_control_characters(value, str(info.field_name))
        return value


def _http_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return value


class WebhookSettings(_Section):
    url: str = Field(max_length=2048, description="where signed POSTs go")
    secret: str = Field(min_length=16, max_length=256,
                        description="HMAC-SHA256 key the receiver verifies with")
    previous_secret: str | None = Field(
        default=None, min_length=16, max_length=256,
        description="while rotating: the old secret; every request is signed with both "
                    "until this is removed (once the receiver uses the new one)")

    _url = field_validator("url")(_http_url)


class MqttSettings(_Section):
    host: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    port: int = Field(default=1883, ge=1, le=65535)
    topic_template: str = Field(
        default=DEFAULT_TOPIC_TEMPLATE, max_length=1024,
        description="starts with geopush/{tenant_id}/ (the tenant's namespace); "
                    "placeholders: {tenant_id}, {user_id}, {campaign_id}, {variant_id}, "
                    "{venue_id}, {event}, each value percent-encoded into its level")
    username: str | None = Field(default=None, max_length=256)
    password: str | None = Field(default=None, max_length=256)
    tls: bool = False

    @field_validator("topic_template")
    @classmethod
    def _in_namespace(cls, value: str) -> str:
        try:
            TopicTemplate.parse(value)
        except TopicError as exc:
            raise PydanticCustomError("invalid_topic_template", "{reason}",
                                      {"reason": str(exc)}) from exc
        return value


class FcmSettings(_Section):
    service_account: dict[str, Any] = Field(description="the service-account key file")
    base_url: str = Field(default=FCM_BASE_URL, max_length=2048)
    token_uri: str | None = Field(default=None, max_length=2048)

    _base = field_validator("base_url")(_http_url)


class ApnsSettings(_Section):
    team_id: str = Field(min_length=1, max_length=32)
    key_id: str = Field(min_length=1, max_length=32)
    private_key: str = Field(min_length=1, max_length=8192, description=".p8 PEM text")
    topic: str = Field(min_length=1, max_length=255, description="the app's bundle id")
    base_url: str = Field(default=PRODUCTION_URL, max_length=2048)
    ca_pem: str | None = Field(default=None, max_length=65536,
                               description="trust this CA instead of the system store "
                                           "(a private gateway)")

    _base = field_validator("base_url")(_http_url)


class EmailSettings(_Section):
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=587, ge=1, le=65535)
    sender: str = Field(min_length=3, max_length=320)
    username: str | None = Field(default=None, max_length=256)
    password: str | None = Field(default=None, max_length=256)
    start_tls: bool | None = None
    use_tls: bool = False


class SmsSettings(_Section):
    account_sid: str = Field(min_length=1, max_length=64)
    auth_token: str = Field(min_length=1, max_length=256)
    from_number: str | None = Field(default=None, max_length=32)
    messaging_service_sid: str | None = Field(default=None, max_length=64)
    default_region: str | None = Field(default=None, min_length=2, max_length=2)
    base_url: str = Field(default=SMS_BASE_URL, max_length=2048)

    _base = field_validator("base_url")(_http_url)


class ChannelSettings(_Section):
    """A tenant's channels; a missing section means the channel is not set up."""

    webhook: WebhookSettings | None = None
    mqtt: MqttSettings | None = None
    fcm: FcmSettings | None = None
    apns: ApnsSettings | None = None
    email: EmailSettings | None = None
    sms: SmsSettings | None = None

    def configured(self) -> frozenset[str]:
        """The channels this tenant can send on (the inbox always)."""
        names = {INBOX}
        for name in ("webhook", "mqtt", "fcm", "apns", "email", "sms"):
            if getattr(self, name) is not None:
                names.add(name)
        return frozenset(names)

    def destinations(self) -> list[tuple[str, str, int]]:
        """Every host the channels would connect to, as (field, host, port), for the
        egress check (:mod:`server.egress`); a field's first part is the channel that
        connects (``webhook.url``: ``webhook``). URLs without a host are left to their
        own validation."""
        found: list[tuple[str, str, int]] = []
        urls = [("webhook.url", self.webhook.url if self.webhook else None),
                ("fcm.base_url", self.fcm.base_url if self.fcm else None),
                ("fcm.token_uri", self.fcm.token_uri if self.fcm else None),
                ("apns.base_url", self.apns.base_url if self.apns else None),
                ("sms.base_url", self.sms.base_url if self.sms else None)]
        for field_name, url in urls:
            if url is None:
                continue
            parts = urlsplit(url)
            try:
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                continue
            if parts.hostname:
                found.append((field_name, parts.hostname, port))
        if self.mqtt is not None:
            found.append(("mqtt.host", self.mqtt.host, self.mqtt.port))
        if self.email is not None:
            found.append(("email.host", self.email.host, self.email.port))
        return found

    def masked(self) -> dict[str, Any]:
        """The settings as JSON with every secret replaced by :data:`MASK`."""
        out: dict[str, Any] = self.model_dump(mode="json", exclude_none=True)
        for section in out.values():
            for key in list(section):
                if key in _SECRET_FIELDS and section[key] is not None:
                    section[key] = MASK
        return out
