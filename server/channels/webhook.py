"""Signed webhooks: the message's JSON POSTed to the tenant's URL.

Every request carries

- ``X-Geopush-Timestamp``: epoch seconds when this attempt was signed (each retry is
  signed afresh, so a retry an hour later still passes the receiver's replay window);
- ``X-Geopush-Signature``: ``v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>``
  (comma-separated when several are sent: during a secret rotation, one with the new
  secret and one with ``previous_secret`` — accept any);
- ``X-Geopush-Idempotency-Key``: the same on every retry of one delivery; a receiver
  that has seen it already answers 2xx and does nothing;
- ``X-Geopush-Delivery-Id``.

A receiver verifies with these lines (no geopush import needed)::

    import hashlib, hmac, time

    def verify(secret: str, headers, body: bytes, tolerance_s: int = 300) -> bool:
        ts = headers["X-Geopush-Timestamp"]
        if not ts.isdigit() or abs(time.time() - int(ts)) > tolerance_s:
            return False  # too old or from the future: a replay, refuse it
        signed = ts.encode() + b"." + body  # the raw bytes, before any JSON parsing
        mac = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        sigs = [s.strip()[3:] for s in headers["X-Geopush-Signature"].split(",")]
        return any(hmac.compare_digest(mac, s) for s in sigs)

With an :class:`~server.egress.EgressPolicy` (the service always gives its own), the
channel connects only to addresses the policy allows, checked on the address it connects
to; a refused one is a permanent ``Failed("webhook destination refused: ...")``.

Answers map to results: 2xx → ``Delivered``; 429/503 (with ``Retry-After`` in seconds
or as an HTTP date) and every other 5xx, 408, timeouts and connection errors →
``Retry``; any other 4xx, and 3xx (redirects are not followed) → permanent ``Failed``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable

import httpx

from server.channels._http import status_result, transport_result
from server.channels.base import (
    WEBHOOK,
    BaseChannel,
    Delivered,
    Failed,
    OutboundMessage,
    SendObserver,
    SendResult,
)
from server.egress import EgressPolicy, guarded_client

SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_S = 300
"""Five minutes: wide enough for clock skew between us and the receiver, narrow enough
that a captured request cannot be replayed later."""


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Geopush-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def verify_signature(
    secret: str,
    timestamp: int | str,
    body: bytes,
    signature: str,
    *,
    now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """Whether ``signature`` (a header value, possibly several comma-separated
    ``v1=...``) signs ``body`` at ``timestamp`` with ``secret``, and ``timestamp`` lies
    within ``tolerance_s`` of ``now`` (epoch seconds) either way. Constant-time compare.
    """
    text = str(timestamp).strip()
    if not text.isdigit() or abs(now - int(text)) > tolerance_s:
        return False
    expected = sign(secret, text, body).partition("=")[2]
    found = False
    for part in signature.split(","):
        scheme, _, value = part.strip().partition("=")
        # No early exit: every candidate is compared, so timing says nothing about which.
        if scheme == SIGNATURE_VERSION and hmac.compare_digest(value, expected):
            found = True
    return found


class WebhookChannel(BaseChannel):
    """POSTs signed JSON to ``message.recipient.webhook``.

    ``client`` may be shared with other channels (then the caller closes it); otherwise
    the channel makes one and closes it in :meth:`aclose`.
    """

    name = WEBHOOK

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
        user_agent: str = "geopush-webhook/1",
        egress: EgressPolicy | None = None,
        observer: SendObserver | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(observer=observer, clock=clock)
        self._owns_client = client is None
        if client is None:
            client = (httpx.AsyncClient(follow_redirects=False) if egress is None
                      else guarded_client(egress, channel=WEBHOOK,
                                                 follow_redirects=False))
        self._client = client
        self._timeout = httpx.Timeout(timeout_s)
        self._user_agent = user_agent

    async def _send(self, message: OutboundMessage) -> SendResult:
        target = message.recipient.webhook
        if target is None:
            return Failed("recipient has no webhook URL", permanent=True)
        if not target.url.startswith(("https://", "http://")):
            return Failed(f"webhook URL is not http(s): {target.url!r}", permanent=True)
        body = json.dumps(message.payload(), ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self._user_agent,
            "X-Geopush-Timestamp": timestamp,
            "X-Geopush-Signature": ",".join(
                sign(secret, timestamp, body)
                for secret in (target.secret, target.previous_secret) if secret),
            "X-Geopush-Idempotency-Key": message.idempotency_key,
            "X-Geopush-Delivery-Id": message.delivery_id,
        }
        try:
            response = await self._client.post(
                target.url, content=body, headers=headers, timeout=self._timeout
            )
        except httpx.InvalidURL as exc:
            return Failed(f"webhook URL is invalid: {exc}", permanent=True)
        except httpx.UnsupportedProtocol as exc:
            return Failed(f"webhook URL is invalid: {exc}", permanent=True)
        except httpx.TransportError as exc:
            return transport_result(exc, "webhook")
        if response.is_success:
            return Delivered(response.headers.get("x-request-id"))
        return status_result(response, self._clock(), "webhook")

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
