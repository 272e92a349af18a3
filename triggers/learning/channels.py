"""Channel by habit: rank the channels a user can receive by their open rate. Pure.

A user's open rate on a channel is smoothed toward the tenant's rate on that channel: a
Beta prior of :data:`PRIOR_STRENGTH` pseudo-deliveries at the tenant's rate, so

    rate = (opens + PRIOR_STRENGTH * prior) / (deliveries + PRIOR_STRENGTH)

A user with no history on a channel gets the tenant's rate; ten of their own deliveries
weigh as much as the prior. A channel the tenant has never delivered on has the prior
:data:`UNSEEN_RATE`. Ties keep the campaign's order of ``channels``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from triggers.learning.signals import NO_COUNTS, Counts

PRIOR_STRENGTH = 10.0
"""Pseudo-deliveries of the tenant prior: a user's own rate takes over after ~10 pushes."""
UNSEEN_RATE = 0.1
"""Prior open rate of a channel the tenant has no deliveries on: a cautious push-level
open rate, so a channel that has never been tried neither wins nor is ruled out."""


@dataclass(frozen=True, slots=True)
class ChannelRate:
    """A channel's smoothed open rate for a user, and the numbers it came from."""

    channel: str
    rate: float
    opens: int
    deliveries: int
    prior: float

    def describe(self) -> str:
        """``fcm 0.31 (4/12, prior 0.22)``."""
        return (f"{self.channel} {self.rate:.2f} ({self.opens}/{self.deliveries}, "
                f"prior {self.prior:.2f})")


def prior_rate(tenant: Counts | None) -> float:
    """The tenant's open rate on a channel, or :data:`UNSEEN_RATE` without deliveries."""
    if tenant is None or tenant.trials == 0:
        return UNSEEN_RATE
    return tenant.successes / tenant.trials


def smoothed_rate(user: Counts, prior: float) -> float:
    """The user's open rate shrunk toward ``prior`` (see the module docstring)."""
    return (user.successes + PRIOR_STRENGTH * prior) / (user.trials + PRIOR_STRENGTH)


def rank_channels(
    allowed: Sequence[str],
    user: Mapping[str, Counts],
    tenant: Mapping[str, Counts],
) -> list[ChannelRate]:
    """``allowed`` (the channels the user can receive, in the campaign's order), best first."""
    rates = []
    for channel in allowed:
        prior = prior_rate(tenant.get(channel))
        own = user.get(channel, NO_COUNTS)
        rates.append(ChannelRate(channel, smoothed_rate(own, prior), own.successes, own.trials,
                                 prior))
    # sorted is stable: equal rates keep the campaign's order.
    return sorted(rates, key=lambda r: -r.rate)


def reason_line(ranked: Sequence[ChannelRate]) -> str:
    """``fcm 0.31 (4/12, prior 0.22) > email 0.12 (0/3, prior 0.15)``: why the first won."""
    return " > ".join(r.describe() for r in ranked)
