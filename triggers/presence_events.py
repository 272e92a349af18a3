"""What the presence engine emits: events, their vocabulary, and ping-hygiene counters."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    """The transition vocabulary, from (was inside, is inside) per (user, venue):
    (no, yes) → ENTER; (yes, yes) past a threshold → DWELL; (yes, no) → EXIT."""

    ENTER = "enter"
    DWELL = "dwell"
    EXIT = "exit"


class Confidence(StrEnum):
    """How sure the evidence is: HIGH, the accuracy circle lies inside;
    MEDIUM, the centre is inside; LOW, only the circle touches (or, for an EXIT by
    timeout, no ping said so)."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class ExitReason(StrEnum):
    LEFT = "left"
    TIMEOUT = "timeout"
    VENUE_REMOVED = "venue_removed"


@dataclass(frozen=True, slots=True)
class PresenceEvent:
    """One presence transition of one user at one venue.

    ``at``: event time, epoch seconds. ``dwell_s``: for DWELL the threshold crossed,
    for EXIT the visit's duration in seconds, else None. ``reason`` only on EXIT.
    ``stale``: the evidence was older than the policy's ``stale_after_s`` when
    processed; recorded for analytics, never to be pushed.
    """

    user_id: str
    venue_id: str
    kind: EventKind
    at: float
    visit_id: str
    dwell_s: float | None
    confidence: Confidence
    reason: ExitReason | None = None
    stale: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (enums as their string values)."""
        out = asdict(self)
        out["kind"] = self.kind.value
        out["confidence"] = self.confidence.value
        out["reason"] = None if self.reason is None else self.reason.value
        return out


def visit_id_for(user_id: str, venue_id: str, enter_at: float) -> str:
    """A deterministic visit id: the same (user, venue, enter time) always gives it.

    BLAKE2b-64 of the fields joined by a separator that cannot occur in ``repr`` of a
    float; 16 hex digits keep collisions negligible per user and venue.
    """
    raw = f"{user_id}\x1f{venue_id}\x1f{enter_at!r}".encode()
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


@dataclass(slots=True)
class PresenceCounters:
    """Ping hygiene, one counter per rule; cumulative over the state's life.

    Each received ping lands in exactly one of ``accepted`` or the rejection
    counters (``invalid`` .. ``teleport``); ``assumed_accuracy``, ``relocated`` and
    ``stale_events`` count alongside.
    """

    received: int = 0
    accepted: int = 0
    invalid: int = 0
    future: int = 0
    mock: int = 0
    duplicate: int = 0
    late: int = 0
    inaccurate: int = 0
    teleport: int = 0
    assumed_accuracy: int = 0
    relocated: int = 0
    stale_events: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}
