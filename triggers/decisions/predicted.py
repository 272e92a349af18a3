"""Conditions on what the learned models predict, pure: the caller looks the scores up
(the service holds the promoted models) and passes them in; these functions say which
campaigns the user misses and why, for ``decide``'s ``learned_unmet``.

- ``audience.interests``: every category's predicted interest must reach its ``min``
  (``interest_below_threshold``, with the score and, from a ranker, the features that
  contributed most to it). Without an interest model the
  condition cannot hold: the campaign is skipped, and the reason says so.
- ``min_open_chance`` (location triggers): the predicted chance of opening now must reach
  it (``unlikely_to_open``, with the chance). Without a send-time model it is not applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from triggers.decisions.models import Campaign
from triggers.decisions.records import Reason

LearnedMiss = tuple[Reason, str]


@dataclass(frozen=True, slots=True)
class LearnedFacts:
    """What the tenant's promoted models say about one user now: category → predicted
    interest (``None``: no interest model), and the chance of opening now (``None``: no
    send-time model); ``reasons``: category → its score's top contributing features in
    words."""

    interests: Mapping[str, float] | None = None
    open_chance: float | None = None
    reasons: Mapping[str, str] = field(default_factory=dict)

    @property
    def interest_base_rate(self) -> float:
        held = list(self.interests.values()) if self.interests else []
        return sum(held) / len(held) if held else 0.0

    def why_interest(self, category: str) -> str | None:
        return self.reasons.get(category)

    def interest(self, category: str) -> float | None:
        """The predicted interest in ``category`` (0.0 outside the user's top
        categories), ``None`` without an interest model."""
        return None if self.interests is None else self.interests.get(category, 0.0)


NO_FACTS = LearnedFacts()
"""No model promoted: an interest condition cannot hold, ``min_open_chance`` is not
applied."""


class UserFacts(Protocol):
    """What a check reads of a user's predictions (:class:`LearnedFacts`, or a view that
    reads the scorers when asked): one category's interest at a time, so a check needs no
    mapping of the user's scores."""

    def interest(self, category: str) -> float | None: ...

    @property
    def open_chance(self) -> float | None: ...

    @property
    def interest_base_rate(self) -> float:
        """The mean of the interest scores held for the user (0.0 without)."""
        ...

    def why_interest(self, category: str) -> str | None:
        """The interest score's top contributing features in words (``None``: no
        ranker, or a category outside the user's top)."""
        ...


def learned_campaigns(campaigns: Iterable[Campaign]) -> tuple[Campaign, ...]:
    """The campaigns with a condition on a learned prediction, or a ``best_time``."""
    return tuple(c for c in campaigns
                 if c.audience.interests or c.min_open_chance is not None
                 or (c.trigger.scheduled is not None
                     and c.trigger.scheduled.best_time is not None))


class LearnedTerms(NamedTuple):
    """A campaign's learned conditions, flat: (category, least interest) pairs in the
    campaign's order, and the least chance of opening (``None``: not asked). What a check
    reads on the decision path, built once per round of decisions
    (:func:`learned_conditions`): the campaign's own objects (its audience, each
    threshold's model) are several reads apart, each likely a cache miss there."""

    interests: tuple[tuple[str, float], ...]
    min_open_chance: float | None

    @classmethod
    def of(cls, campaign: Campaign) -> LearnedTerms:
        thresholds = campaign.audience.interests
        return cls(tuple((category, thresholds[category].min) for category in thresholds),
                   campaign.min_open_chance)


def learned_conditions(campaigns: Iterable[Campaign]) -> dict[str, LearnedTerms]:
    """Campaign id → its learned conditions, for :func:`learned_campaigns`' campaigns
    (what :class:`LearnedMisses` checks)."""
    return {c.id: LearnedTerms.of(c) for c in learned_campaigns(campaigns)}


def interest_miss(thresholds: Iterable[tuple[str, float]], facts: UserFacts) -> str | None:
    """Why the user's predicted interests miss the (category, least) ``thresholds``, or
    ``None``."""
    for category, least in thresholds:
        score = facts.interest(category)
        if score is None:
            return "no interest model promoted for the tenant yet"
        if score < least:
            said = f"interest in {category} {score:.2f} below {least:.2f}"
            features = facts.why_interest(category)
            return said if features is None else f"{said}: {features}"
    return None


def terms_miss(terms: LearnedTerms, facts: UserFacts) -> LearnedMiss | None:
    """Why the user misses a campaign's learned conditions (interests first, then the
    chance of opening), or ``None``."""
    interests, least = terms
    if interests:
        why = interest_miss(interests, facts)
        if why is not None:
            return Reason.INTEREST_BELOW_THRESHOLD, why
    if least is None:
        return None
    chance = facts.open_chance
    if chance is not None and chance < least:
        return (Reason.UNLIKELY_TO_OPEN, f"chance of opening now {chance:.2f} below {least:.2f}")
    return None


def campaign_miss(campaign: Campaign, facts: UserFacts) -> LearnedMiss | None:
    """:func:`terms_miss` of one campaign (off the decision path: builds its terms)."""
    return terms_miss(LearnedTerms.of(campaign), facts)


def learned_unmet(campaigns: Iterable[Campaign], facts: UserFacts) -> dict[str, LearnedMiss]:
    """Campaign id → (reason, detail) for every campaign whose learned conditions the
    user misses."""
    out: dict[str, LearnedMiss] = {}
    for campaign in campaigns:
        miss = campaign_miss(campaign, facts)
        if miss is not None:
            out[campaign.id] = miss
    return out


class LearnedMisses(Mapping[str, LearnedMiss]):
    """:func:`learned_unmet` computed only for the campaigns ``decide`` asks about (its
    candidates, each once): a decision costs its candidates' checks, not one per campaign
    of the tenant. ``facts`` should look each prediction up only when read (the
    service's view does), so a decision that asks nothing looks nothing up. Nothing is
    memoised: the checks allocate no container per decision beyond this object and a
    miss's reason."""

    __slots__ = ("_by_id", "_facts")

    def __init__(self, by_id: Mapping[str, LearnedTerms], facts: UserFacts) -> None:
        self._by_id = by_id
        """Campaign id → its learned conditions (:func:`learned_conditions`)."""
        self._facts = facts

    def get(self, campaign_id: str, default: object = None) -> LearnedMiss | None:  # type: ignore[override]
        """The campaign's miss, or ``None`` (one lookup: ``decide``'s question)."""
        terms = self._by_id.get(campaign_id)
        return None if terms is None else terms_miss(terms, self._facts)

    def __getitem__(self, campaign_id: str) -> LearnedMiss:
        miss = self.get(campaign_id)
        if miss is None:
            raise KeyError(campaign_id)
        return miss

    def __contains__(self, campaign_id: object) -> bool:
        return isinstance(campaign_id, str) and self.get(campaign_id) is not None

    def __iter__(self) -> Iterator[str]:
        return (cid for cid in self._by_id if self.get(cid) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:
        return bool(self._by_id)
