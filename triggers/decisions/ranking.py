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
from operator import attrgetter, itemgetter
from typing import NamedTuple

from triggers.decisions.models import Campaign
from triggers.decisions.predicted import LearnedMisses, UserFacts


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
        chance = self.open_chance
        if self.category is None:
            if chance is None:
                return f"base rate {self.interest:.2f}"
            return f"base rate {self.interest:.2f} × open chance {chance:.2f}"
        if chance is None:
            return f"interest in {self.category} {self.interest:.2f}"
        return f"interest in {self.category} {self.interest:.2f} × open chance {chance:.2f}"


_new_value = tuple.__new__
"""``ExpectedValue``'s fields in order, without the named tuple's ``__new__`` frame
(half the cost of building one; a band builds one per campaign)."""
_VALUE = itemgetter(1)
"""An ``ExpectedValue``'s ``value``, the ranking's sort key."""
_CATEGORIES = attrgetter("categories")
"""A campaign's ``categories`` (``any(map(...))``: no generator frame per band)."""


class Ranker:
    """What ``decide``'s arbitration asks of a user's predictions: their EVs and the
    words behind them. Holds no state of its own (``__slots__`` empty, so a class can
    take it beside another slotted base): :class:`Ranking` and :class:`MissesAndRanking`
    hold the user's ``_facts``. The sent line and a met threshold's note may both ask
    the same category's features; the service's view remembers the last it said."""

    __slots__ = ()
    _facts: UserFacts

    def band(self, campaigns: Sequence[Campaign]) -> list[ExpectedValue] | None:
        """The EVs of one priority band's campaigns (in id order), best first, ties in
        the given order; ``None`` when they leave the order as it is (see the module
        docstring)."""
        if len(campaigns) < 2 or not any(map(_CATEGORIES, campaigns)):
            return None
        facts = self._facts
        chance = facts.open_chance
        values = []
        base: float | None = None
        for campaign in campaigns:
            categories = campaign.categories
            if categories:
                category: str | None = None
                interest = 0.0
                for named in categories:  # the largest score; ties to the first listed
                    score = facts.interest(named)
                    if score is None:
                        return None  # no interest model
                    if category is None or score > interest:
                        category, interest = named, score
            else:
                if base is None:
                    base = facts.interest_base_rate
                category, interest = None, base
            values.append(_new_value(ExpectedValue, (
                campaign.id, interest if chance is None else interest * chance, interest,
                category, chance)))
        # Stable, reverse included: ties keep the id order.
        values.sort(key=_VALUE, reverse=True)
        return values

    def met_note(self, campaign: Campaign) -> str | None:
        """The interest thresholds ``campaign`` met, with the scores' features (a note
        of the decision that sends it), or ``None`` without thresholds."""
        thresholds = campaign.audience.interests
        if not thresholds:
            return None
        facts = self._facts
        note = f"{campaign.id}: "
        sep = ""  # one growing string, no list: most campaigns name one category
        for category in thresholds:
            score = facts.interest(category) or 0.0
            said = f"interest in {category} {score:.2f} reached {thresholds[category].min:.2f}"
            why = self.why_interest(category)
            note = f"{note}{sep}{said}" if why is None else f"{note}{sep}{said}: {why}"
            sep = "; "
        return note

    def why_interest(self, category: str | None) -> str | None:
        """The interest score's top contributing features in words, or ``None``."""
        return None if category is None else self._facts.why_interest(category)


class Ranking(Ranker):
    """A user's EVs for ``decide``'s arbitration. ``facts`` reads nothing until asked
    (the service's view), so a decision that ranks nothing looks nothing up."""

    __slots__ = ("_facts",)

    def __init__(self, facts: UserFacts) -> None:
        self._facts = facts


class MissesAndRanking(LearnedMisses, Ranker):
    """``decide``'s ``learned_unmet`` and ``ranking`` in one object over one view of the
    user's predictions (:class:`LearnedMisses` for ``campaigns``, :class:`Ranking`): the
    service passes both for every decision, so one allocation instead of two."""

    __slots__ = ()


def winner_detail(values: Sequence[ExpectedValue], place: int, why: str | None) -> str:
    """The sent line's words: "ranked by expected value 0.31 (interest in sports 0.62 ×
    open chance 0.50) over c2 0.12; interest in sports: <features>" (``values``: the
    band, best first; ``place``: the winner's in it; ``why``: the winner's features)."""
    won = values[place]
    detail = f"ranked by expected value {won.value:.2f} ({won.factors()})"
    sep = " over "  # those ranked above it were held out or failed
    for below in range(place + 1, len(values)):  # no slice, no list: one growing string
        value = values[below]
        detail = f"{detail}{sep}{value.campaign_id} {value.value:.2f}"
        sep = ", "
    return detail if why is None else f"{detail}; interest in {won.category}: {why}"


def loser_detail(value: ExpectedValue, winner: ExpectedValue) -> str:
    """A band-mate's ``lower_priority`` words: "c1 won: expected value 0.12 (...) below
    0.31"."""
    return (f"{winner.campaign_id} won: expected value {value.value:.2f} "
            f"({value.factors()}) below {winner.value:.2f}")
