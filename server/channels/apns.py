"""Apple Push Notification service, token-based (``.p8`` key) over HTTP/2.

``POST {base_url}/3/device/{device_token}`` on one long-lived HTTP/2 connection (APNs
wants connections kept open and requests multiplexed, not a connection per push), with

- ``authorization: bearer <JWT>``: ES256, header ``kid`` = key id, claims ``iss`` = team
  id and ``iat``; reused for 50 minutes (Apple refuses tokens older than an hour and
  throttles providers that mint them more often than every 20 minutes);
- ``apns-topic`` (the app's bundle id), ``apns-push-type: alert``, ``apns-priority``;
- ``apns-expiration``: the offer's expiry (epoch seconds) — APNs stores and retries a
  push for an offline device until then, and drops it afterwards;
- ``apns-id``: a UUID derived from the delivery id (the same on every retry, so Apple's
  error reports and our logs name one delivery); ``apns-collapse-id`` from the
  idempotency key, so a retried push that arrives twice replaces the first.

Body: ``{"aps": {"alert": {"title", "body"}, "sound": "default", "thread-id":
campaign}, <campaign data as strings>, "delivery_id", "idempotency_key"}``, plus the
rich content (``mutable-content`` and the image, ``category`` and the buttons, the deep
link: see :meth:`ApnsChannel.request_body`).

Answers map to results:

====================================================  ==================================
200                                                    ``Delivered`` (``apns-unique-id``)
410 ``Unregistered`` / ``ExpiredToken``; 400           ``TokenInvalid``
``BadDeviceToken`` / ``DeviceTokenNotForTopic``
403 ``ExpiredProviderToken``                           new JWT, one more try
403 otherwise (bad key, wrong team, topic disallowed)  ``Failed``, not permanent (config)
429 ``TooManyRequests``, 500, 503, timeouts            ``Retry`` (Retry-After if given)
413 and other 4xx                                      ``Failed``, permanent
====================================================  ==================================
"""

from __future__ import annotations

import json
import ssl
import string
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from server.channels._http import json_object, parse_retry_after, transport_result
from server.channels._ids import collapse_id, stable_uuid
from server.channels.base import (
    APNS,
    BaseChannel,
    ChannelConfigError,
    Delivered,
    Failed,
    OutboundMessage,
    Retry,
    SendObserver,
    SendResult,
    TokenInvalid,
)
from server.egress import EgressPolicy, guarded_client

PRODUCTION_URL = "https://api.push.apple.com"
SANDBOX_URL = "https://api.sandbox.push.apple.com"
PROVIDER_TOKEN_LIFETIME_S = 50 * 60
"""Reuse a provider JWT this long: under Apple's one-hour limit with room for clock skew,
over its 20-minute minimum between new tokens."""
MAX_PAYLOAD_BYTES = 4096
"""Apple's limit for a regular (non-VoIP) notification payload."""

_DEAD_TOKEN_REASONS = frozenset(
    {"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered", "ExpiredToken"}
)
_HEX = frozenset(string.hexdigits)


class ApnsChannel(BaseChannel):
    """Sends alerts to ``message.recipient.apns_token`` (see module doc).

    ``private_key`` is the ``.p8`` file's PEM text (read it at start-up). ``ssl_context``
    replaces the system trust store (tests trust a local CA with it).
    """

    name = APNS

    def __init__(
        self,
        *,
        team_id: str,
        key_id: str,
        private_key: str,
        topic: str,
        base_url: str = PRODUCTION_URL,
        priority: int = 10,
        ssl_context: ssl.SSLContext | None = None,
        egress: EgressPolicy | None = None,
        timeout_s: float = 10.0,
        observer: SendObserver | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(observer=observer, clock=clock)
        for setting, value in (("team_id", team_id), ("key_id", key_id), ("topic", topic)):
            if not value:
                raise ChannelConfigError(f"apns {setting} is missing")
        if priority not in {5, 10}:
            raise ChannelConfigError("apns priority must be 10 (immediate) or 5 (power-saving)")
        try:
            key = load_pem_private_key(private_key.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ChannelConfigError("apns private_key is not a PEM private key") from exc
        if not isinstance(key, EllipticCurvePrivateKey):
            raise ChannelConfigError("apns private_key is not an EC (P-256) key")
        self._team_id = team_id
        self._key_id = key_id
        self._key = key
        self._topic = topic
        self._priority = str(priority)
        self._base_url = base_url.rstrip("/")
        # http1=False: APNs speaks only HTTP/2; failing to negotiate it must be an error,
        # not a silent fallback to a protocol Apple answers with GOAWAY.
        verify = ssl_context or True
        timeout = httpx.Timeout(timeout_s)
        if egress is None:
            self._client = httpx.AsyncClient(http2=True, http1=False, verify=verify,
                                             timeout=timeout)
        else:
            self._client = guarded_client(
                egress, channel=APNS, transport={"http2": True, "http1": False, "verify": verify},
                timeout=timeout)
        self._jwt: str | None = None
        self._jwt_issued_at = 0.0
        self.provider_tokens = 0
        """Provider JWTs minted so far (for metrics and tests)."""

    def provider_token(self) -> str:
        """The current provider JWT, minted afresh when older than 50 minutes."""
        now = self._clock()
        if self._jwt is None or now - self._jwt_issued_at >= PROVIDER_TOKEN_LIFETIME_S:
            self._jwt = jwt.encode(
                {"iss": self._team_id, "iat": int(now)}, self._key, algorithm="ES256",
                headers={"kid": self._key_id},
            )
            self._jwt_issued_at = now
            self.provider_tokens += 1
        return self._jwt

    def request_body(self, message: OutboundMessage) -> dict[str, Any]:
        """The notification JSON for ``message``.

        Rich content: an image sets ``mutable-content: 1`` (iOS then hands the push to
        the app's notification service extension, which downloads ``image_url`` and
        attaches it); buttons set ``category`` to a stable id of the button set (the
        extension registers it with the buttons' titles from ``buttons``); the link and
        buttons travel as custom keys (``deep_link``, ``buttons`` ``[{id, title,
        deep_link}]``, ``image_url``, ``image_alt``)."""
        body: dict[str, Any] = {
            **message.data.as_strings(),
            "delivery_id": message.delivery_id,
            "idempotency_key": message.idempotency_key,
            "aps": {
                "alert": {"title": message.title, "body": message.body},
                "sound": "default",
                # Groups one campaign's notifications together in Notification Center.
                "thread-id": message.data.campaign_id,
            },
        }
        rich = message.rich
        if rich is not None:
            if rich.image_url is not None:
                body["aps"]["mutable-content"] = 1
                body["image_url"] = rich.image_url
                body["image_alt"] = rich.image_alt or ""
            category = rich.category_id()
            if category is not None:
                body["aps"]["category"] = category
                body["buttons"] = [b.model_dump() for b in rich.buttons]
            if rich.deep_link is not None:
                body["deep_link"] = rich.deep_link
        return body

    async def _send(self, message: OutboundMessage) -> SendResult:
        device = message.recipient.apns_token
        if not device:
            return Failed("recipient has no APNs token", permanent=True)
        if not set(device) <= _HEX:
            # Device tokens are hex; anything else cannot be one (and must not reach a URL).
            return TokenInvalid("APNs device token is not hexadecimal")
        body = json.dumps(self.request_body(message), ensure_ascii=False,
                          separators=(",", ":")).encode()
        if len(body) > MAX_PAYLOAD_BYTES:
            return Failed(f"APNs payload is {len(body)} bytes, over {MAX_PAYLOAD_BYTES}",
                          permanent=True)
        headers = {
            "apns-topic": self._topic,
            "apns-push-type": "alert",
            "apns-expiration": str(int(message.data.expires_at)),
            "apns-priority": self._priority,
            "apns-id": stable_uuid(message.delivery_id),
            "apns-collapse-id": collapse_id(message.idempotency_key),
            "content-type": "application/json",
        }
        url = f"{self._base_url}/3/device/{device}"
        # Two tries: the second only after 403 ExpiredProviderToken, with a new JWT.
        for attempt in range(2):
            headers["authorization"] = f"bearer {self.provider_token()}"
            try:
                response = await self._client.post(url, content=body, headers=headers)
            except httpx.TransportError as exc:
                return transport_result(exc, "apns")
            if _reason(response) != "ExpiredProviderToken" or attempt == 1:
                break
            self._jwt = None
        return self._result(response)

    def _result(self, response: httpx.Response) -> SendResult:
        status = response.status_code
        if status == 200:
            return Delivered(response.headers.get("apns-unique-id")
                             or response.headers.get("apns-id"))
        reason = _reason(response)
        detail = f"apns {status} {reason}".rstrip()
        if reason in _DEAD_TOKEN_REASONS or status == 410:
            return TokenInvalid(detail)
        if status == 403:
            return Failed(detail, permanent=False)
        if status >= 500 or status == 429:
            return Retry(detail, after_s=parse_retry_after(response.headers.get("retry-after"),
                                                           self._clock()))
        return Failed(detail, permanent=True)

    async def aclose(self) -> None:
        await self._client.aclose()


def _reason(response: httpx.Response) -> str:
    reason = json_object(response).get("reason")
    return reason if isinstance(reason, str) else ""
