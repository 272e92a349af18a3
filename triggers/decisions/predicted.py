"""Conditions on what the learned models predict, pure: the caller looks the scores up
(the service holds the promoted models) and passes them in; these functions say which
campaigns the user misses and why, for ``decide``'s ``learned_unmet``.

- ``audience.interests``: every category's predicted interest must reach its ``min``
  (``interest_below_threshold``, with the score). Without an interest model the
  condition cannot hold: the campaign is skipped, and the reason says so.
- ``min_open_chance`` (location triggers): the predicted chance of opening now must reach
  it (``unlikely_to_open``, with the chance). Without a send-time model it is not applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from triggers.decisions.models import Campaign, InterestThreshold
from triggers.decisions.records import Reason

LearnedMiss = tuple[Reason, str]


@dataclass(frozen=True, slots=True)
class LearnedFacts:
    """What the tenant's promoted models say about one user now: category → predicted
    interest (``None``: no interest model), and the chance of opening now (``None``: no
    send-time model)."""

    interests: Mapping[str, float] | None = None
    open_chance: float | None = None


def learned_campaigns(campaigns: Iterable[Campaign]) -> tuple[Campaign, ...]:
    """The campaigns with a condition on a learned prediction, or a ``best_time``."""
    return tuple(c for c in campaigns
                 if c.audience.interests or c.min_open_chance is not None
                 or (c.trigger.scheduled is not None
                     and c.trigger.scheduled.best_time is not None))


def interest_miss(thresholds: Mapping[str, InterestThreshold],
                  scores: Mapping[str, float] | None) -> str | None:
    """Why the user's predicted interests miss the thresholds, or ``None``."""
    if scores is None:
        return "no interest model promoted for the tenant yet"
    for category, threshold in thresholds.items():
        score = scores.get(category, 0.0)
        if score < threshold.min:
            return f"interest in {category} {score:.2f} below {threshold.min:.2f}"
    return None


def learned_unmet(campaigns: Iterable[Campaign], facts: LearnedFacts) -> dict[str, LearnedMiss]:
    """Campaign id → (reason, detail) for the campaigns whose learned conditions the user
    misses (interests first, then the chance of opening)."""
    out: dict[str, LearnedMiss] = {}
    for campaign in campaigns:
        if campaign.audience.interests:
            why = interest_miss(campaign.audience.interests, facts.interests)
            if why is not None:
                out[campaign.id] = (Reason.INTEREST_BELOW_THRESHOLD, why)
                continue
        least = campaign.min_open_chance
        if least is not None and facts.open_chance is not None and facts.open_chance < least:
            out[campaign.id] = (Reason.UNLIKELY_TO_OPEN,
                                f"chance of opening now {facts.open_chance:.2f} "
                                f"below {least:.2f}")
    return out
