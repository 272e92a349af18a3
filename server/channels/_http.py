"""Helpers shared by the HTTP channels (webhook, FCM, APNs, SMS)."""

from __future__ import annotations

import email.utils
import math
from typing import Any

import httpx

from server.channels.base import Failed, Retry, SendResult
from server.egress import DestinationRefused

RETRYABLE_4XX = frozenset({408, 425, 429})
"""Client-error statuses that still mean "later": request timeout, too early, rate limit."""


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP-date,
    RFC 9110 §10.2.3), never negative; ``None`` when absent or unreadable.

    ``now`` is epoch seconds, for the date form.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        # inf/nan are not delay-seconds; a server sending them gets its hint ignored.
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT by definition
        return None
    return max(0.0, when.timestamp() - now)


def status_result(response: httpx.Response, now: float, what: str) -> SendResult:
    """The generic mapping of a non-2xx answer: 429/503 and other 5xx → ``Retry`` (with
    the peer's Retry-After), 408/425 → ``Retry``, any other 4xx or 3xx → permanent
    ``Failed`` (we do not follow redirects: a moved endpoint is a config change).

    ``what`` names the peer in the reason (``webhook``, ``twilio``).
    """
    status = response.status_code
    reason = f"{what} answered {status}"
    if status >= 500 or status in RETRYABLE_4XX:
        return Retry(reason, after_s=parse_retry_after(response.headers.get("retry-after"), now))
    return Failed(reason, permanent=True)


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The response body as a JSON object, or ``{}`` when it is not one (a proxy's HTML
    error page must not turn a mapped failure into an exception)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def transport_result(exc: httpx.TransportError, what: str) -> Retry | Failed:
    """A timeout, refused connection or broken stream: the request may not have arrived,
    so it is retried (the idempotency key makes a duplicate harmless). A destination the
    egress policy refused (:mod:`server.egress`) fails for good: retrying cannot help."""
    if isinstance(exc.__cause__, DestinationRefused):
        return Failed(f"{what} destination refused: {exc}", permanent=True)
    kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "network error"
    return Retry(f"{what} {kind}: {type(exc).__name__}: {exc}".rstrip(": "))
