"""What decisions learn from feedback: per-arm clicks, per-channel opens, recent opens.

``decide`` reads these only for campaigns that ask (``optimize: thompson``,
``channel_choice: auto``) and for a policy with ``learned_caps: true``; without a
:class:`Signals` every decision is what it was before learning existed.

:class:`FeedbackBook` is the in-memory implementation: the simulator records each push
and its opens and clicks in it as they happen, and the service fills one per tenant from
the campaign statistics its store already aggregates (refreshed in the background, never
a query per decision). Pure: times are the caller's epoch seconds.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Counts:
    """``successes`` out of ``trials`` (clicks of sends, opens of deliveries); see
    :func:`checked` for counts from outside."""

    trials: int
    successes: int


def checked(counts: Counts) -> Counts:
    """``counts``, or ``ValueError`` unless ``0 <= successes <= trials``."""
    if counts.trials < 0 or not 0 <= counts.successes <= counts.trials:
        raise ValueError(f"need 0 <= successes <= trials, got {counts.successes}/"
                         f"{counts.trials}")
    return counts


NO_COUNTS = Counts(0, 0)


class Signals(Protocol):
    """The feedback counts a decision may read."""

    def arm_counts(self, campaign_id: str) -> Mapping[str, Counts]:
        """Sends (trials) and clicked sends (successes) per variant id of the campaign."""
        ...

    def channel_counts(self, user_id: str) -> Mapping[str, Counts]:
        """The user's deliveries and opened deliveries per channel."""
        ...

    def tenant_channel_counts(self) -> Mapping[str, Counts]:
        """Every user's deliveries and opened deliveries per channel (the prior)."""
        ...

    def recent_engagement(self, user_id: str, since: float) -> Counts:
        """Pushes the user received at or after ``since``, and how many of them were opened."""
        ...


class FeedbackBook:
    """A :class:`Signals` kept in memory: record sends, opens and clicks as they happen.

    An open or a click is credited to the push it answers (``push_id`` as returned by
    :meth:`record_send`); a click implies an open. The arm counts may also be set whole
    (:meth:`set_arm_counts`), as the service does from its aggregated campaign stats.
    Sends are recorded in time order (the simulator's and the service's clock only moves
    forward), which :meth:`recent_engagement` relies on. Reads return the book's own
    mappings (decisions read them per event, so they are not copied): do not change them.
    """

    def __init__(self) -> None:
        self._arms: dict[str, dict[str, Counts]] = {}
        self._channels: dict[str, dict[str, Counts]] = {}
        self._tenant: dict[str, Counts] = {}
        self._sent_at: dict[str, list[float]] = {}
        """User → times of their pushes, in recording order."""
        self._opened: dict[str, list[bool]] = {}
        self._pushes: list[tuple[str, str, str, str, int]] = []
        """Push id → (user, campaign, variant, channel, index in the user's lists)."""
        self._clicked: set[int] = set()

    def record_send(
        self, user_id: str, campaign_id: str, variant_id: str, channel: str, at: float
    ) -> int:
        """Count a push delivered to the user; returns its push id."""
        arms = self._arms.setdefault(campaign_id, {})
        arms[variant_id] = _plus(arms.get(variant_id, NO_COUNTS), 1, 0)
        user = self._channels.setdefault(user_id, {})
        user[channel] = _plus(user.get(channel, NO_COUNTS), 1, 0)
        self._tenant[channel] = _plus(self._tenant.get(channel, NO_COUNTS), 1, 0)
        times = self._sent_at.setdefault(user_id, [])
        times.append(at)
        self._opened.setdefault(user_id, []).append(False)
        self._pushes.append((user_id, campaign_id, variant_id, channel, len(times) - 1))
        return len(self._pushes) - 1

    def record_open(self, push_id: int) -> None:
        """The push was opened (once per push; a second open changes nothing)."""
        user_id, _, _, channel, position = self._pushes[push_id]
        opened = self._opened[user_id]
        if opened[position]:
            return
        opened[position] = True
        user = self._channels[user_id]
        user[channel] = _plus(user[channel], 0, 1)
        self._tenant[channel] = _plus(self._tenant[channel], 0, 1)

    def record_click(self, push_id: int) -> None:
        """The push was clicked (and so opened); counted once per push."""
        self.record_open(push_id)
        if push_id in self._clicked:
            return
        self._clicked.add(push_id)
        _, campaign_id, variant_id, _, _ = self._pushes[push_id]
        arms = self._arms[campaign_id]
        arms[variant_id] = _plus(arms[variant_id], 0, 1)

    def set_arm_counts(self, campaign_id: str, counts: Mapping[str, Counts]) -> None:
        """Replace the campaign's per-arm counts (the service's periodic refresh); raises
        ``ValueError`` for counts with more successes than trials."""
        self._arms[campaign_id] = {arm: checked(c) for arm, c in counts.items()}

    def set_tenant_channel_counts(self, counts: Mapping[str, Counts]) -> None:
        """Replace the tenant's per-channel deliveries and opens (the channel prior)."""
        self._tenant = {channel: checked(c) for channel, c in counts.items()}

    def arm_counts(self, campaign_id: str) -> Mapping[str, Counts]:
        return self._arms.get(campaign_id, _EMPTY)

    def channel_counts(self, user_id: str) -> Mapping[str, Counts]:
        return self._channels.get(user_id, _EMPTY)

    def tenant_channel_counts(self) -> Mapping[str, Counts]:
        return self._tenant

    def recent_engagement(self, user_id: str, since: float) -> Counts:
        times = self._sent_at.get(user_id)
        if not times:
            return NO_COUNTS
        start = bisect_left(times, since)
        return Counts(len(times) - start, sum(self._opened[user_id][start:]))


_EMPTY: Mapping[str, Counts] = MappingProxyType({})


def _plus(counts: Counts, trials: int, successes: int) -> Counts:
    return Counts(counts.trials + trials, counts.successes + successes)
