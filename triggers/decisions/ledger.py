"""The cap ledger: what was pushed to whom and when, and how the user reacted.

The decision only *reads* the ledger; the caller *records* what the decision chose. That
split is what lets the service check and consume caps atomically with the delivery:

    async with conn.transaction():
        await lock_user(conn, tenant, user_id)          # pg_advisory_xact_lock
        ledger = await load_user_ledger(conn, user_id,  # rows since now - history_horizon_s
                                        since=now - history_horizon_s(policy, campaigns))
        decision = decide(event, profile, index, venue, policy, ledger, now)
        for entry in decision.ledger_entries():
            ledger.record(entry); await insert_push(conn, entry)
        await insert_delivery(conn, decision)           # same transaction

so a PostgreSQL implementation can either implement :class:`Ledger` with queries, or (as
above) load one user's recent rows into an :class:`InMemoryLedger` — state is per user,
so that snapshot is small and the per-user lock keeps it true until commit.

Windows are epoch-second ranges; calendar days are turned into ranges by the core
(``hours.local_day_bounds``), so no implementation needs time-zone logic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from triggers.decisions.models import Campaign, TenantPolicy

WEEK_S = 7 * 86_400


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One push sent, or one push withheld from a control-group user (``control=True``).

    Control entries count for the campaign's own cap and cooldown — control users must see
    the campaign's exposure rhythm, or lift is measured against a different population —
    but not for the user's global caps, min gap or fatigue: nothing reached the user.
    """

    user_id: str
    campaign_id: str
    venue_id: str
    """``""`` for a push that was not about a venue (scheduled, behaviour)."""
    variant_id: str
    at: float
    channel: str | None = None
    control: bool = False


class FeedbackKind(StrEnum):
    DELIVERED = "delivered"
    OPENED = "opened"
    CLICKED = "clicked"
    DISMISSED = "dismissed"
    CONVERTED = "converted"
    IGNORED = "ignored"
    """No interaction before the offer expired (the service records it at TTL)."""


IGNORED_KINDS = frozenset({FeedbackKind.DISMISSED, FeedbackKind.IGNORED})
"""Feedback that extends the ignored streak."""
ENGAGED_KINDS = frozenset({FeedbackKind.CLICKED, FeedbackKind.CONVERTED})
"""Feedback that ends it (a click restores the daily cap). Delivered/opened are neutral:
opening without clicking neither tires nor re-engages."""


class Ledger(Protocol):
    """Reads the decision needs, and the two writes the caller makes afterwards."""

    def count_pushes(
        self, user_id: str, since: float, until: float, *, campaign_id: str | None = None
    ) -> int:
        """Pushes with ``since <= at < until``: all sent ones, or — with ``campaign_id`` —
        that campaign's sent and control entries."""
        ...

    def last_push_at(
        self, user_id: str, *, campaign_id: str | None = None, venue_id: str | None = None
    ) -> float | None:
        """Time of the latest sent push to the user (any campaign), or — with
        ``campaign_id`` and ``venue_id`` — of that campaign's latest entry (sent or
        control) at that venue. ``None`` when there is none."""
        ...

    def ignored_streak(self, user_id: str) -> int:
        """Pushes ignored in a row since the user's last click."""
        ...

    def record(self, entry: LedgerEntry) -> None:
        """Add a push (or a control hold-out) the decision chose."""
        ...

    def record_feedback(self, user_id: str, kind: FeedbackKind) -> None:
        """Update the ignored streak from delivery feedback."""
        ...


class InMemoryLedger:
    """The :class:`Ledger` of the simulator and of a per-transaction snapshot.

    Entries are kept in recording order, per user and per (user, campaign): ``decide``
    asks for several candidate campaigns per decision, and most of them never reached the
    user, so their queries look at an empty list instead of the user's whole history. A
    horizon of :func:`history_horizon_s` keeps the lists short.
    """

    def __init__(
        self, entries: Iterable[LedgerEntry] = (), streaks: dict[str, int] | None = None
    ) -> None:
        self._entries: dict[str, list[LedgerEntry]] = {}
        self._by_campaign: dict[tuple[str, str], list[LedgerEntry]] = {}
        self._streaks: dict[str, int] = dict(streaks or {})
        for entry in entries:
            self.record(entry)

    def count_pushes(
        self, user_id: str, since: float, until: float, *, campaign_id: str | None = None
    ) -> int:
        count = 0
        if campaign_id is not None:
            for e in self._by_campaign.get((user_id, campaign_id), ()):
                if since <= e.at < until:
                    count += 1
        else:
            for e in self._entries.get(user_id, ()):
                if not e.control and since <= e.at < until:
                    count += 1
        return count

    def last_push_at(
        self, user_id: str, *, campaign_id: str | None = None, venue_id: str | None = None
    ) -> float | None:
        if campaign_id is not None:
            entries = self._by_campaign.get((user_id, campaign_id), ())
        else:
            entries = [e for e in self._entries.get(user_id, ()) if not e.control]
        last: float | None = None
        for e in entries:
            if (venue_id is None or e.venue_id == venue_id) and (last is None or e.at > last):
                last = e.at
        return last

    def ignored_streak(self, user_id: str) -> int:
        return self._streaks.get(user_id, 0)

    def record(self, entry: LedgerEntry) -> None:
        self._entries.setdefault(entry.user_id, []).append(entry)
        self._by_campaign.setdefault((entry.user_id, entry.campaign_id), []).append(entry)

    def record_feedback(self, user_id: str, kind: FeedbackKind) -> None:
        if kind in IGNORED_KINDS:
            self._streaks[user_id] = self._streaks.get(user_id, 0) + 1
        elif kind in ENGAGED_KINDS:
            self._streaks[user_id] = 0

    def entries(self, user_id: str) -> tuple[LedgerEntry, ...]:
        """The user's entries in recording order (for reports and tests)."""
        return tuple(self._entries.get(user_id, ()))


def history_horizon_s(policy: TenantPolicy, campaigns: Iterable[Campaign]) -> float:
    """How far back a ledger snapshot must reach for every rule to see what it needs.

    The longest of: a week (weekly cap), two days (a calendar day in any zone starts at
    most ~26 h ago), the min gap, and every campaign's cap period and cooldown.
    """
    horizon = max(2 * 86_400.0, policy.min_gap_s)
    if policy.max_per_week is not None:
        horizon = max(horizon, float(WEEK_S))
    for campaign in campaigns:
        if campaign.caps.per_user is not None:
            horizon = max(horizon, campaign.caps.per_user.period_s)
        if campaign.caps.cooldown_s is not None:
            horizon = max(horizon, campaign.caps.cooldown_s)
    return horizon
