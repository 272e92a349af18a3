"""Expected value: how the promoted models order eligible campaigns of equal priority,
and what their reason lines say of it. Pure: the caller passes the user's predictions in
(a view that reads each prediction when asked).

A campaign's expected value (EV) is ``interest × open chance``:

- ``interest``: the user's predicted interest in the campaign's ``categories`` (the
  largest; a category outside the user's top categories scores 0). A campaign without
  categories gets the user's **base rate**, the mean of the scores the model holds for
  the user (their top categories, or the popular ones for a user without history): what
  the user's interest in an offer about nothing in particular is worth, below their
  favourite categories and above the ones they ignore.
- ``open chance``: the send-time model's chance that the user opens a push now, when one
  is promoted (otherwise the factor is left out). It is the same for every campaign of a
  decision, so it scales the numbers and never changes the order.

Priority still dominates: only the eligible campaigns of the top priority band are
ordered, and only when there are two or more, the tenant has a promoted interest model
and at least one of them names categories (otherwise every EV is equal and the order is
the id order it already is). Ties keep the id order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from triggers.decisions.models import Campaign
from triggers.decisions.predicted import UserFacts


class ExpectedValue(NamedTuple):
    """One campaign's EV and its factors (``category`` ``None``: the base rate). A named
    tuple: built for every campaign of a ranked band, on the decision path."""

    campaign_id: str
    value: float
    interest: float
    category: str | None
    open_chance: float | None

    def factors(self) -> str:
        """"interest in sports 0.62 × open chance 0.50"."""
        what = "base rate" if self.category is None else f"interest in {self.category}"
        said = f"{what} {self.interest:.2f}"
        return said if self.open_chance is None else f"{said} × open chance {self.open_chance:.2f}"


class Ranking:
    """A user's EVs for ``decide``'s arbitration. ``facts`` reads nothing until asked
    (the service's view), so a decision that ranks nothing looks nothing up."""

    __slots__ = ("_facts", "_said")

    def __init__(self, facts: UserFacts) -> None:
        self._facts = facts
        self._said: dict[str, str | None] | None = None
        """category → its features in words, once a line has asked (the sent line and a
        met threshold's note may both name the same category); made on the first
        question, so a decision that asks none allocates no dict for the collector."""

    def band(self, campaigns: Sequence[Campaign]) -> list[ExpectedValue] | None:
        """The EVs of one priority band's campaigns (in id order), best first, ties in
        the given order; ``None`` when they leave the order as it is (see the module
        docstring)."""
        if len(campaigns) < 2 or not any(c.categories for c in campaigns):
            return None
        facts = self._facts
        chance = facts.open_chance
        values = []
        base: float | None = None
        for campaign in campaigns:
            if campaign.categories:
                value = _expected_value(campaign, facts, chance)
                if value is None:
                    return None  # no interest model
            else:
                if base is None:
                    base = facts.interest_base_rate
                value = ExpectedValue(campaign.id, base if chance is None else base * chance,
                                      base, None, chance)
            values.append(value)
        return sorted(values, key=lambda v: -v.value)  # stable: ties keep the id order

    def met_note(self, campaign: Campaign) -> str | None:
        """The interest thresholds ``campaign`` met, with the scores' features (a note
        of the decision that sends it), or ``None`` without thresholds."""
        thresholds = campaign.audience.interests
        if not thresholds:
            return None
        parts = []
        for category in thresholds:
            score = self._facts.interest(category) or 0.0
            said = f"interest in {category} {score:.2f} reached {thresholds[category].min:.2f}"
            why = self.why_interest(category)
            parts.append(said if why is None else f"{said}: {why}")
        return f"{campaign.id}: " + "; ".join(parts)

    def why_interest(self, category: str | None) -> str | None:
        """The interest score's top contributing features in words, or ``None``."""
        if category is None:
            return None
        if self._said is None:
            self._said = {}
        if category not in self._said:
            self._said[category] = self._facts.why_interest(category)
        return self._said[category]


def _expected_value(campaign: Campaign, facts: UserFacts,
                    chance: float | None) -> ExpectedValue | None:
    """The EV of a campaign with categories; ``None`` without an interest model."""
    category: str | None = None
    interest = 0.0
    for named in campaign.categories:  # the largest score; ties to the first listed
        score = facts.interest(named)
        if score is None:
            return None
        if category is None or score > interest:
            category, interest = named, score
    value = interest if chance is None else interest * chance
    return ExpectedValue(campaign.id, value, interest, category, chance)


def winner_detail(values: Sequence[ExpectedValue], winner: str,
                  why: str | None) -> str:
    """The sent line's words: "ranked by expected value 0.31 (interest in sports 0.62 ×
    open chance 0.50) over c2 0.12; interest in sports: <features>" (``values``: the
    band, best first; ``why``: the winner's features)."""
    place = next(i for i, v in enumerate(values) if v.campaign_id == winner)
    won = values[place]
    detail = f"ranked by expected value {won.value:.2f} ({won.factors()})"
    below = values[place + 1:]  # those ranked above it were held out or failed
    if below:
        detail += " over " + ", ".join(f"{v.campaign_id} {v.value:.2f}" for v in below)
    return detail if why is None else f"{detail}; interest in {won.category}: {why}"


def loser_detail(value: ExpectedValue, winner: ExpectedValue) -> str:
    """A band-mate's ``lower_priority`` words: "c1 won: expected value 0.12 (...) below
    0.31"."""
    return (f"{winner.campaign_id} won: expected value {value.value:.2f} "
            f"({value.factors()}) below {winner.value:.2f}")
