"""What the learning options add to a decision, given the feedback :class:`Signals`. Pure.

- ``optimize: thompson``: the arm by Thompson sampling on the arms' clicks;
- ``channel_choice: auto``: the reachable channel with the user's best open rate, and the
  numbers for the sent line;
- ``learned_caps``: the ``learned_cap`` skip of a user who reached their learned daily cap.

Without signals each sees no history: Thompson samples uniform posteriors, channels rank
by the unseen prior (the campaign's order), and every user keeps the tenant's cap.
"""

from __future__ import annotations

from collections.abc import Sequence

from triggers.decisions.models import ALL_CHANNELS, Profile
from triggers.decisions.records import Reason
from triggers.learning.channels import rank_channels, reason_line
from triggers.learning.signals import Signals
from triggers.learning.thompson import thompson_arm
from triggers.learning.tolerance import WINDOW_S, learned_cap


def sampled_arm(
    campaign_id: str, user_id: str, at: float, arms: Sequence[tuple[str, float]],
    signals: Signals | None,
) -> str:
    """The arm Thompson sampling picks for the user's event at ``at``."""
    counts = {} if signals is None else signals.arm_counts(campaign_id)
    return thompson_arm(campaign_id, user_id, at, arms, counts)


def best_channel(
    profile: Profile, channels: Sequence[str], signals: Signals | None
) -> tuple[str, str]:
    """The channel of ``channels`` the user can receive, has not refused and opens most
    (at least one must be allowed: the reach rule has passed), and the ranked rates."""
    refused = set(profile.opt_outs)
    allowed = [ch for ch in channels
               if (profile.channels is None or ch in profile.channels)
               and ch not in refused and ALL_CHANNELS not in refused]
    user = {} if signals is None else signals.channel_counts(profile.user_id)
    tenant = {} if signals is None else signals.tenant_channel_counts()
    ranked = rank_channels(allowed, user, tenant)
    return ranked[0].channel, reason_line(ranked)


def learned_block(
    signals: Signals | None, user_id: str, now: float, today: int, tenant_cap: int
) -> tuple[Reason, str] | None:
    """``learned_cap`` when the user's pushes today reach their learned daily cap."""
    if signals is None:
        return None
    tolerance = learned_cap(signals.recent_engagement(user_id, now - WINDOW_S), tenant_cap)
    if today < tolerance.cap:
        return None
    return Reason.LEARNED_CAP, f"{tolerance.describe()}; {today} today"
