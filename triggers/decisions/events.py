"""What the decision needs of a presence event, as a protocol.

The presence engine's event type satisfies :class:`EventLike` structurally, so decisions do
not import the engine (and a test or the simulator can pass any object with these fields).
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol


class EventLike(Protocol):
    """A presence event (ENTER, DWELL or EXIT at a venue). Read-only attributes."""

    @property
    def user_id(self) -> str: ...
    @property
    def venue_id(self) -> str | None:
        """The venue of a location event; ``None`` for a scheduled or behaviour one."""
    @property
    def kind(self) -> object:
        """``"enter"`` / ``"dwell"`` / ``"exit"`` (or an enum whose value is one of them),
        ``"scheduled"`` or ``"behaviour"``."""
    @property
    def at(self) -> float:
        """Event time, epoch seconds."""
    @property
    def visit_id(self) -> str: ...
    @property
    def dwell_s(self) -> float | None:
        """Seconds inside the venue so far (DWELL) or in all (EXIT)."""
    @property
    def confidence(self) -> object: ...
    @property
    def reason(self) -> object: ...
    @property
    def stale(self) -> bool:
        """True when the event came from a ping too old to act on: record, never push."""


def kind_of(event: EventLike) -> str:
    """The event kind as its string value, whatever enum the engine uses."""
    kind = event.kind
    found = _KIND_TEXT.get(kind)
    if found is None:
        found = str(kind.value) if isinstance(kind, Enum) else str(kind)
        if len(_KIND_TEXT) < _MAX_KINDS:
            _KIND_TEXT[kind] = found
    return found


_KIND_TEXT: dict[object, str] = {}
"""A pure memo of :func:`kind_of` (asked once per decision; a handful of kinds exist)."""
_MAX_KINDS = 64
