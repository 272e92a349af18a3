"""A behaviour event: one thing a user did in the app (viewed an item, bought one, opened
the app).

Built from the HTTP API's JSON, a CSV/JSONL file or a scenario with
``BehaviourEvent.model_validate(data)``; a bad value is a ``pydantic.ValidationError`` whose
``errors()`` name the field path (``("item", "price")``). Times are float epoch seconds; on
input also ISO-8601 strings with an offset.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from triggers.decisions.models import (
    MAX_ID_CHARS,
    MAX_TAGS,
    BehaviourKindName,
    EpochSeconds,
    Id,
    Name,
    Short,
    Tag,
    Text,
    _Frozen,
)

MAX_EVENTS_PER_BATCH = 1000
"""``POST /v1/events`` takes at most this many events a request."""
MAX_PROPS = 32
"""Free properties of one event."""
MAX_TS = 32_503_680_000.0
"""3000-01-01: an event time is between 1970 and this (day numbers stay small)."""
MAX_FUTURE_S = 300.0
"""An event dated further ahead of the clock that takes it in than this is refused
(``future_ts``): a phone's clock may be a little fast, not hours."""

Url = Annotated[str, StringConstraints(max_length=2048)]


class BehaviourKind(StrEnum):
    """The kinds the product knows; any other name is a custom kind."""

    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    SEARCH = "search"
    APP_OPEN = "app_open"


class BehaviourItem(_Frozen):
    """The item an event is about (a product, an article, a store)."""

    id: Id = Field(min_length=1)
    name: Name | None = None
    category: Tag | None = None
    tags: tuple[Tag, ...] = Field(default=(), max_length=MAX_TAGS)
    price: float | None = Field(default=None, ge=0)
    currency: Short | None = None
    url: Url | None = None
    image_url: Url | None = None


class BehaviourEvent(_Frozen):
    """``{event_id?, user_id, ts, kind, item?, props?}``; ``kind`` is a
    :class:`BehaviourKind` value or a custom name."""

    event_id: Id | None = Field(default=None, min_length=1)
    user_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    ts: EpochSeconds = Field(ge=0, le=MAX_TS)
    kind: BehaviourKindName
    item: BehaviourItem | None = None
    props: dict[Tag, Text | int | float | bool | None] = Field(default_factory=dict,
                                                              max_length=MAX_PROPS)

    @property
    def known_kind(self) -> BehaviourKind | None:
        """The kind as a :class:`BehaviourKind`, or ``None`` for a custom kind."""
        try:
            return BehaviourKind(self.kind)
        except ValueError:
            return None

    def key(self) -> str:
        """The idempotency key: ``event_id`` when the app gave one, else a hash of the
        whole event, so the same event posted twice is stored once."""
        if self.event_id is not None:
            return "id:" + self.event_id
        canonical: dict[str, Any] = self.model_dump(mode="json", exclude={"event_id"})
        digest = hashlib.sha256(json.dumps(canonical, sort_keys=True,
                                           separators=(",", ":")).encode()).hexdigest()
        return "h:" + digest[:32]
