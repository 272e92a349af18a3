"""The delivery port: one :class:`Channel` protocol, its message and its result vocabulary.

The outbox dispatcher hands a channel one :class:`OutboundMessage` at a time and acts on
the :class:`SendResult` it gets back; it never sees HTTP statuses, SMTP codes or broker
errors. The four outcomes are what the dispatcher can *do*:

==================  ===========================================================
``Delivered``        the peer accepted it: mark delivered (``provider_id`` is the
                     peer's id for it, for support and feedback matching)
``Retry``            transient: try again after ``after_s`` (the peer's Retry-After)
                     or, when ``None``, after the dispatcher's own backoff
``Failed``           ``permanent=True``: dead-letter now, another try cannot help
                     (bad payload, 4xx, expired offer); ``permanent=False``: not this
                     message's fault (our credentials or config) — retry with backoff
                     and alert, dead-letter when the attempts run out
``TokenInvalid``     the address is dead (uninstalled app, unknown number): remove
                     it from the user and dead-letter this delivery
==================  ===========================================================

A channel never raises for a peer's answer or a network failure: those are results.
It raises only :class:`ChannelError` subclasses at construction (bad configuration).

Tests of other layers use :class:`RecordingChannel` (same interface, no IO) instead of
patching anything, the way httpx's ``MockTransport`` stands in for the network.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from triggers.decisions.rich import RichContent

INBOX = "inbox"
WEBHOOK = "webhook"
MQTT = "mqtt"
FCM = "fcm"
APNS = "apns"
EMAIL = "email"
SMS = "sms"
CHANNEL_NAMES = (INBOX, WEBHOOK, MQTT, FCM, APNS, EMAIL, SMS)
"""The channel names the decision layer uses (``triggers.decisions.models.CHANNELS``)."""


class ChannelError(Exception):
    """Base of the channel layer's exceptions."""


class ChannelConfigError(ChannelError, ValueError):
    """A channel cannot be built from the configuration given; the message says which key."""


# --------------------------------------------------------------------------- message


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A tenant's (or user's) webhook endpoint and the secret its requests are signed with."""

    url: str
    secret: str
    previous_secret: str | None = None
    """During a secret rotation, the old one: requests carry a signature with each, so a
    receiver still on the old secret keeps verifying until it switches."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where one user can be reached, one address per channel (``None``: not on it).

    A user with several devices gets one :class:`OutboundMessage` per device token; a
    ``TokenInvalid`` result then names exactly the token to remove.
    """

    fcm_token: str | None = None
    apns_token: str | None = None
    phone: str | None = None
    """As the user gave it; the SMS channel normalises it to E.164 before sending."""
    email: str | None = None
    mqtt_topic: str | None = None
    """Overrides the MQTT channel's per-user topic template for this user."""
    webhook: WebhookTarget | None = None

    def has_address(self, channel: str) -> bool:
        """Whether this recipient has an address for ``channel``; ``inbox`` and ``mqtt``
        (the topic comes from a template) need none."""
        match channel:
            case "inbox" | "mqtt":
                return True
            case "fcm":
                return bool(self.fcm_token)
            case "apns":
                return bool(self.apns_token)
            case "sms":
                return bool(self.phone)
            case "email":
                return bool(self.email)
            case "webhook":
                return self.webhook is not None
        return False


@dataclass(frozen=True, slots=True)
class MessageData:
    """Why the message exists; carried to the device as data so taps can be attributed."""

    campaign_id: str
    variant_id: str
    venue_id: str
    event: str
    """``enter`` / ``dwell`` / ``exit``."""
    expires_at: float
    """Epoch seconds; after this the offer is pointless and is not sent (``Failed``,
    permanent, ``expired``). Push services get the remaining time as their TTL."""
    extra: Mapping[str, str] = field(default_factory=dict)
    """Free string data from the campaign (an offer code, a deep link)."""

    def as_strings(self) -> dict[str, str]:
        """Flat string map (FCM data and APNs custom keys take strings only)."""
        return {
            **self.extra,
            "campaign_id": self.campaign_id,
            "variant_id": self.variant_id,
            "venue_id": self.venue_id,
            "event": self.event,
            "expires_at": _num(self.expires_at),
        }


@dataclass(frozen=True, slots=True)
class QuietHours:
    """The tenant's quiet hours where the recipient is: a daily window (``"22:00-08:00"``)
    in an IANA zone (the user's, else the venue's, else the tenant's default, as the
    decision took it)."""

    window: str
    timezone: str


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One delivery attempt's content and destination; immutable, so a retry resends
    exactly the same thing (same idempotency key, same ids)."""

    delivery_id: str
    idempotency_key: str
    """Derived from (event, campaign) upstream; every channel passes it on so the
    receiving side can drop a duplicate of a retried send."""
    tenant_id: str
    user_id: str
    title: str
    body: str
    data: MessageData
    recipient: Recipient = Recipient()
    quiet_hours: QuietHours | None = None
    """For channels that must not disturb at night (SMS): the decision respected quiet
    hours, but a retry can fall due in them; ``None`` when the tenant has none."""
    rich: RichContent | None = None
    """The image, link and buttons chosen for the user; each channel renders what its
    medium shows."""

    def payload(self) -> dict[str, Any]:
        """The JSON document the webhook, MQTT and in-app channels send (one shape, so a
        client that handles one handles all). With rich content it has a ``rich`` object:
        ``image_url``, ``image_alt``, ``image_tag``, ``deep_link`` (those set) and
        ``buttons`` ``[{id, title, deep_link}]``."""
        out: dict[str, Any] = {
            "delivery_id": self.delivery_id,
            "idempotency_key": self.idempotency_key,
            "tenant_id": self.tenant_id,
            "user_id": self.user_id,
            "title": self.title,
            "body": self.body,
            "data": {
                "campaign_id": self.data.campaign_id,
                "variant_id": self.data.variant_id,
                "venue_id": self.data.venue_id,
                "event": self.data.event,
                "expires_at": self.data.expires_at,
                **({"extra": dict(self.data.extra)} if self.data.extra else {}),
            },
        }
        if self.rich is not None:
            out["rich"] = self.rich.as_json()
        return out


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Delivered:
    """The peer accepted the message."""

    provider_id: str | None = None
    kind: Literal["delivered"] = "delivered"


@dataclass(frozen=True, slots=True)
class Retry:
    """A transient failure; ``after_s`` is the peer's Retry-After (seconds from now) or
    ``None`` when it gave none."""

    reason: str
    after_s: float | None = None
    kind: Literal["retry"] = "retry"


@dataclass(frozen=True, slots=True)
class Failed:
    """The attempt failed; ``permanent`` says whether another attempt could succeed."""

    reason: str
    permanent: bool
    kind: Literal["failed"] = "failed"


@dataclass(frozen=True, slots=True)
class TokenInvalid:
    """The recipient's address for this channel is dead and should be removed."""

    reason: str
    kind: Literal["token_invalid"] = "token_invalid"


SendResult = Delivered | Retry | Failed | TokenInvalid
"""What one send came to; ``result.kind`` is a stable string for storage and metrics."""


# --------------------------------------------------------------------------- the port


@runtime_checkable
class Channel(Protocol):
    """A way to reach a user. Implementations run in the event loop and never block it."""

    @property
    def name(self) -> str:
        """One of :data:`CHANNEL_NAMES`."""
        ...

    async def send(self, message: OutboundMessage) -> SendResult:
        """Try once to deliver ``message``; never raises for the peer's answer or the
        network (those are results). Safe to call concurrently."""
        ...

    async def aclose(self) -> None:
        """Release connections; the channel is not used afterwards."""
        ...


class SendObserver(Protocol):
    """Told about every send, for metrics (wire it to Prometheus in the composition root)."""

    def __call__(self, channel: str, result: SendResult, elapsed_s: float) -> None: ...


class SendCounters:
    """A :class:`SendObserver` that counts results per (channel, kind) and sums time.

    Plain per-process numbers for ``/metrics`` and tests, owned by whoever made it — not
    a global registry, and not a source of truth (the outbox is).
    """

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.elapsed_s: defaultdict[str, float] = defaultdict(float)

    def __call__(self, channel: str, result: SendResult, elapsed_s: float) -> None:
        self.counts[channel, result.kind] += 1
        self.elapsed_s[channel] += elapsed_s

    def sends(self, channel: str) -> int:
        """Every attempt on ``channel``, whatever its result."""
        return sum(n for (ch, _), n in self.counts.items() if ch == channel)

    def failures(self, channel: str) -> int:
        """Attempts on ``channel`` that did not deliver."""
        return self.sends(channel) - self.counts[channel, "delivered"]


def _ignore(channel: str, result: SendResult, elapsed_s: float) -> None:
    """The default observer: metrics are optional."""


class BaseChannel(ABC):
    """What every real channel does around its protocol work: refuse expired offers
    without any IO, time the attempt and report it to the observer.

    Subclasses set :attr:`name` and implement :meth:`_send`. ``clock`` (epoch seconds,
    default wall time) decides expiry, TTLs and signature timestamps.
    """

    name: str

    def __init__(
        self,
        *,
        observer: SendObserver | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._observer: SendObserver = observer or _ignore
        self._clock: Callable[[], float] = clock or time.time

    async def send(self, message: OutboundMessage) -> SendResult:
        """See :meth:`Channel.send`."""
        started = time.perf_counter()
        if self.ttl_s(message) <= 0:
            result: SendResult = Failed("expired", permanent=True)
        else:
            result = await self._send(message)
        self._observer(self.name, result, time.perf_counter() - started)
        return result

    def ttl_s(self, message: OutboundMessage) -> float:
        """Seconds until ``message`` expires (≤ 0: expired), by this channel's clock."""
        return message.data.expires_at - self._clock()

    @abstractmethod
    async def _send(self, message: OutboundMessage) -> SendResult:
        """Deliver a message that has not expired; map every answer to a result."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, not abstract on purpose
        """Nothing to release by default."""


class RecordingChannel:
    """A :class:`Channel` for tests of other layers: records what it is given and answers
    from a script (``Delivered()`` once the script runs out).

    >>> ch = RecordingChannel("webhook", results=[Retry("503", after_s=2.0)])
    """

    def __init__(self, name: str = INBOX, results: Iterable[SendResult] = ()) -> None:
        self._name = name
        self._script: deque[SendResult] = deque(results)
        self.sent: list[OutboundMessage] = []
        self.closed = False

    @property
    def name(self) -> str:
        return self._name

    def script(self, *results: SendResult) -> None:
        """Queue further answers, in order."""
        self._script.extend(results)

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        return self._script.popleft() if self._script else Delivered(f"recorded-{len(self.sent)}")

    async def aclose(self) -> None:
        self.closed = True
