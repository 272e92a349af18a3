"""The decision record: what was sent for an event, and why every other campaign was not.

This is the answer to "why didn't user X get it?" and the ``decisions`` of
``simulate --json``. ``Decision.to_json()`` is deterministic (fixed field order, no clock),
so the same input gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, TypeAdapter

from triggers.decisions.ledger import LedgerEntry
from triggers.decisions.rich import RichContent


class Reason(StrEnum):
    """Reason codes of ``considered[].reason`` (the decision log's, plus
    ``template_error``). Listed in the order the checks run."""

    STALE_EVENT = "stale_event"
    NOT_IN_AUDIENCE = "not_in_audience"
    OUTSIDE_SCHEDULE = "outside_schedule"
    VENUE_CLOSED = "venue_closed"
    QUIET_HOURS = "quiet_hours"
    NO_CHANNEL = "no_channel"
    OPTED_OUT = "opted_out"
    CAMPAIGN_CAP = "campaign_cap"
    COOLDOWN = "cooldown"
    GLOBAL_CAP = "global_cap"
    FATIGUE = "fatigue"
    LEARNED_CAP = "learned_cap"
    MIN_GAP = "min_gap"
    HELD_OUT_CONTROL = "held_out_control"
    TEMPLATE_ERROR = "template_error"
    LOWER_PRIORITY = "lower_priority"
    SENT = "sent"
    CANCELLED_BY_FOLLOW_UP = "cancelled_by_follow_up"
    """A behaviour trigger whose ``unless`` follow-up came before its delay passed."""
    BEHAVIOUR_CONDITION_UNMET = "behaviour_condition_unmet"
    """A location campaign whose ``also`` behaviour condition the user did not meet."""
    INTEREST_BELOW_THRESHOLD = "interest_below_threshold"
    """An ``audience.interests`` threshold the user's predicted interest is below."""
    UNLIKELY_TO_OPEN = "unlikely_to_open"
    """A ``min_open_chance`` the user's predicted chance of opening now is below."""
    SLOT_MISSED = "slot_missed"
    """A scheduled slot whose grace period ended before the service could send it."""


_HELD_OUT_CONTROL = Reason.HELD_OUT_CONTROL
"""A member read once: an enum member lookup costs as much as the rest of a loop step."""


class Outcome(StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"
    """A rule stopped it; the reason says which."""
    HELD_OUT = "held_out"
    """Eligible, but the user is in the campaign's control group."""
    ERROR = "error"
    """Eligible and chosen, but its content failed to render."""


# Frozen dataclasses, not pydantic models: decide writes a Decision per event, ~30
# Considered lines and a Chosen per push, and a dataclass costs a fraction of a validated
# model (the lines it can reuse are even built once, see rules.py). Pydantic still
# validates, serialises and documents them (``_DECISION``, and as fields of the API's
# models): the same JSON and JSON schema as the models they replaced. Nothing is coerced
# on construction, so callers pass tuples, and decide passes times as floats (an int in a
# float field would still be written ``1.0`` to JSON, but read back as an int in Python).
@dataclass(frozen=True, slots=True)
class Considered:
    """One campaign's line in a decision: its outcome and the reason."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    campaign_id: str
    outcome: Outcome
    reason: Reason
    variant_id: str | None = None
    """The arm, where one was drawn (sent, held out, template error)."""
    detail: str | None = None
    """Human words for the reason (which cap, which window, the template error)."""


# Keyword-only, as the models were: ``locale`` has a default and ``expires_at`` does not,
# and the fields keep their order, which is the JSON's.
@dataclass(frozen=True, slots=True, kw_only=True)
class Chosen:
    __pydantic_config__ = ConfigDict(extra="forbid")

    campaign_id: str
    variant_id: str
    title: str
    body: str
    channel: str
    locale: str | None = None
    """The locale of the rendition sent (``None`` for a locale-neutral one)."""
    expires_at: float
    """Epoch seconds: decided_at + the campaign's ``offer_ttl_s``."""
    # Left out of the JSON when there is none, so a plain push's record keeps its bytes.
    rich: Annotated[RichContent | None, Field(exclude_if=lambda v: v is None)] = None
    """The image (chosen for the user's interests), link and buttons, when the variant
    has any."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The outcome of one event: at most one push, and a line per campaign considered.

    ``considered`` lists every active campaign whose trigger and venue selector matched the
    event, in arbitration order (priority, then campaign id).
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    user_id: str
    venue_id: str | None
    """``None`` for a scheduled or behaviour decision: no venue."""
    event: str
    """``enter`` / ``dwell`` / ``exit``, ``scheduled`` or ``behaviour``."""
    at: float
    """Event time, epoch seconds."""
    visit_id: str
    decided_at: float
    """The ``now`` the rules were evaluated at; a push is recorded at this time. A
    scheduled or behaviour message held over quiet hours is decided at the window's end
    (see ``hold.quiet_hours_release``)."""
    chosen: Chosen | None
    considered: tuple[Considered, ...]
    notes: tuple[str, ...] = ()
    """Caveats, e.g. opening hours the parser does not understand (treated as open)."""

    def ledger_entries(self) -> list[LedgerEntry]:
        """What the caller records in the ledger, in the same transaction as the delivery:
        the push sent, and a control entry per campaign held out."""
        entries = [
            LedgerEntry(
                user_id=self.user_id,
                campaign_id=c.campaign_id,
                venue_id=self.venue_id or "",
                variant_id=c.variant_id or "",
                at=self.decided_at,
                control=True,
            )
            for c in self.considered
            if c.reason is _HELD_OUT_CONTROL
        ]
        if self.chosen is not None:
            entries.append(
                LedgerEntry(
                    user_id=self.user_id,
                    campaign_id=self.chosen.campaign_id,
                    venue_id=self.venue_id or "",
                    variant_id=self.chosen.variant_id,
                    at=self.decided_at,
                    channel=self.chosen.channel,
                )
            )
        return entries

    def to_json(self) -> str:
        """Compact JSON; byte-identical for identical decisions."""
        return _DECISION.dump_json(self).decode()

    @classmethod
    def from_json_obj(cls, data: object) -> Decision:
        """The decision ``data`` (decoded JSON, e.g. a stored ``to_json()``) describes;
        raises ``pydantic.ValidationError`` when it is not one."""
        return _DECISION.validate_python(data)


_DECISION = TypeAdapter(Decision)
"""Validates and serialises decisions (pydantic compiles it once, here)."""
