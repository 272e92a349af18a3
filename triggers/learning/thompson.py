"""Variants that learn: Thompson sampling over a campaign's arms on clicks. Pure.

Each arm's click rate has a Beta posterior, ``Beta(1 + clicks, 1 + sends - clicks)``
(a uniform prior: an arm nobody has seen is as likely as not to be the best). For every
decision one rate is drawn from each arm's posterior and the highest draw wins, so an arm
is chosen as often as it is probably the best: a clearly worse arm is soon sent rarely,
and arms that are still close keep sharing the traffic.

The draws are seeded from SHA-256 of (campaign, user, event time), never from a global
random state, so a replay of the same events with the same counts picks the same arms.
Arms with weight 0 stay switched off; the declared weights otherwise play no part. The
control group is not drawn here: it stays the fixed hash hold-out of
:func:`triggers.decisions.experiments.in_control`, so the users held out are the same
whatever the arms' counts, and the lift against them stays honest.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence

from triggers.learning.signals import NO_COUNTS, Counts


def seed_of(campaign_id: str, user_id: str, at: float) -> int:
    """The draw's seed: 64 bits of SHA-256 of the campaign, the user and the event time."""
    text = "\x1f".join(("thompson", campaign_id, user_id, repr(float(at))))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def posterior(counts: Counts) -> tuple[float, float]:
    """The Beta posterior ``(alpha, beta)`` of an arm's click rate."""
    return 1.0 + counts.successes, 1.0 + counts.trials - counts.successes


def thompson_arm(
    campaign_id: str,
    user_id: str,
    at: float,
    arms: Sequence[tuple[str, float]],
    counts: Mapping[str, Counts],
) -> str:
    """The arm (variant id) Thompson sampling picks for this user and event.

    ``arms`` as declared (``(variant id, weight)``); ``counts`` per variant id (an arm
    missing from it has no sends yet). Ties go to the first declared arm. Raises
    ``ValueError`` when no arm has a positive weight.
    """
    live = [arm_id for arm_id, weight in arms if weight > 0]
    if not live:
        raise ValueError("no arm has a positive weight")
    if len(live) == 1:
        return live[0]
    rng = random.Random(seed_of(campaign_id, user_id, at))
    best, best_draw = live[0], -1.0
    for arm_id in live:
        alpha, beta = posterior(counts.get(arm_id, NO_COUNTS))
        draw = rng.betavariate(alpha, beta)
        if draw > best_draw:
            best, best_draw = arm_id, draw
    return best
