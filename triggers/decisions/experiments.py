"""Deterministic experiment assignment: control group and variant arm per (campaign, user).

Assignments come from SHA-256 of the ids (never Python's ``hash``, which is salted per
process), so every node, every replay and every restart puts a user in the same group.
The control draw and the arm draw hash with different salts, so they are independent: the
arm split among treated users is the declared weights whatever ``control_pct`` is.
Changing ``control_pct`` or the weights moves only the users near the changed boundaries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

_SCALE = float(1 << 64)


def unit_hash(*parts: str) -> float:
    """A uniform number in [0, 1) from the parts (joined with a separator no id contains)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def in_control(campaign_id: str, user_id: str, control_pct: float) -> bool:
    """Whether the user is in the campaign's control group (``control_pct`` in [0, 100])."""
    if control_pct <= 0:  # no hash is below 0: skip hashing for the common campaign
        return False
    return unit_hash("control", campaign_id, user_id) * 100.0 < control_pct


def pick_arm(campaign_id: str, user_id: str, arms: Sequence[tuple[str, float]]) -> str:
    """The arm (variant id) for the user, drawn by weight; ``arms`` in declared order.

    Raises ``ValueError`` when there is no arm with a positive weight.
    """
    if len(arms) == 1 and arms[0][1] > 0:  # one arm: every point falls in it
        return arms[0][0]
    total = sum(weight for _, weight in arms)
    if total <= 0:
        raise ValueError("no arm has a positive weight")
    point = unit_hash("variant", campaign_id, user_id) * total
    cumulative = 0.0
    chosen = None
    for arm_id, weight in arms:
        if weight <= 0:
            continue
        chosen = arm_id
        cumulative += weight
        if point < cumulative:
            return arm_id
    # Float rounding can leave ``point`` a hair above the last boundary: the last arm owns it.
    assert chosen is not None
    return chosen


@dataclass(frozen=True, slots=True)
class Assignment:
    """A user's place in a campaign's experiment."""

    control: bool
    arm: str


def assign(
    campaign_id: str, user_id: str, control_pct: float, arms: Sequence[tuple[str, float]]
) -> Assignment:
    """Control membership and arm together; the arm is what the user would get if treated."""
    return Assignment(
        control=in_control(campaign_id, user_id, control_pct),
        arm=pick_arm(campaign_id, user_id, arms),
    )
