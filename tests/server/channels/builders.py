"""Small builders for channel tests: a message to a user with the addresses a test needs."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from server.channels.base import MessageData, OutboundMessage, Recipient
from triggers.decisions.rich import Button, RichContent

NOW = 1_795_000_000.0
"""A fixed epoch second (2026-11-18) for tests whose channel clock is pinned."""


def message(
    *,
    recipient: Recipient | None = None,
    expires_at: float | None = None,
    key: str = "evt-42:diapers",
    user_id: str = "u1",
    tenant_id: str = "acme",
    title: str = "Baby week at Joy City",
    body: str = "20% off diapers on level 3 until 21:00",
    rich: RichContent | None = None,
    **data: Any,
) -> OutboundMessage:
    """A dwell offer at a mall, expiring an hour after :data:`NOW` unless told."""
    return OutboundMessage(
        delivery_id=f"dlv-{key}",
        idempotency_key=key,
        tenant_id=tenant_id,
        user_id=user_id,
        title=title,
        body=body,
        data=MessageData(
            campaign_id=data.pop("campaign_id", "diapers"),
            variant_id=data.pop("variant_id", "a"),
            venue_id=data.pop("venue_id", "joy-city"),
            event=data.pop("event", "dwell"),
            expires_at=NOW + 3600 if expires_at is None else expires_at,
            extra=data.pop("extra", {}),
        ),
        recipient=recipient or Recipient(),
        rich=rich,
    )


DIAPERS_IMAGE = "https://cdn.joycity.example/img/diapers-800.jpg"
SHOP_LINK = "https://joycity.example/offers/diapers?src=push&week=baby"
APP_LINK = "joycity://offers/diapers"


def rich_offer(**over: Any) -> RichContent:
    """The baby-week offer's rich content: a picture chosen for the ``mother_baby``
    interest, an app link, and two buttons (one to the shop's web page)."""
    fields: dict[str, Any] = {
        "image_url": DIAPERS_IMAGE,
        "image_alt": "A pack of diapers with a 20% off sticker",
        "image_tag": "mother_baby",
        "deep_link": APP_LINK,
        "buttons": (Button(id="shop", title="Shop now", deep_link=SHOP_LINK),
                    Button(id="later", title="Remind me later",
                           deep_link="joycity://remind/diapers")),
    }
    fields.update(over)
    return RichContent(**fields)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for servers that cannot bind port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HandClock(Protocol):
    """What the receivers' stand-ins read: a clock tests move by hand through ``now``
    (this module's :class:`Clock` or the API tests' ``FakeClock``)."""

    now: float

    def __call__(self) -> float: ...


class Clock:
    """A channel clock pinned at ``now`` (epoch seconds); tests move it by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class LocalTls:
    """A throwaway CA and a certificate for 127.0.0.1 it signed: the server side as
    files and as a context, and a client context that trusts only that CA."""

    certfile: Path
    keyfile: Path
    server: ssl.SSLContext
    client: ssl.SSLContext
