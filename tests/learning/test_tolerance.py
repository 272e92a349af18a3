"""Frequency by feedback: each user's daily cap learned from how many pushes they open."""

from __future__ import annotations

import pytest

from tests.decisions.builders import FORUM, at, campaign, event, policy, profile, run, venue
from triggers.decisions import Decision, InMemoryLedger, LedgerEntry
from triggers.learning.signals import Counts, FeedbackBook
from triggers.learning.tolerance import learned_cap, open_probability

SATURDAY_2PM = at("2026-11-28 14:00")


def _history(opened: int, pushes: int, *, days_ago: float = 3.0) -> FeedbackBook:
    """Aino's pushes ``days_ago`` days back, the first ``opened`` of them opened."""
    book = FeedbackBook()
    for n in range(pushes):
        push = book.record_send("u1", "past", "a", "inbox",
                                SATURDAY_2PM - days_ago * 86_400 + 600 * n)
        if n < opened:
            book.record_open(push)
    return book


def _pushed_today(*hours: str) -> InMemoryLedger:
    return InMemoryLedger(LedgerEntry("u1", f"c{h}", FORUM, "a", at(f"2026-11-28 {h}"))
                          for h in hours)


def _decide(book: FeedbackBook, ledger: InMemoryLedger, **rules: object) -> Decision:
    return run(event(FORUM, SATURDAY_2PM), profile(), [campaign("forum-welcome")], venue(FORUM),
               pol=policy(**rules), ledger=ledger, signals=book)


def test_a_user_who_never_opens_is_held_to_one_push_a_day() -> None:
    decision = _decide(_history(0, 8), _pushed_today("09:00"), learned_caps=True)
    line = decision.considered[0]
    assert decision.chosen is None
    assert str(line.reason) == "learned_cap"
    assert line.detail == ("opened 0/8 pushes in 7 days (p_open 0.10): learned cap 1 of 3; "
                           "1 today")


def test_a_user_who_opens_keeps_the_tenant_cap() -> None:
    decision = _decide(_history(5, 8), _pushed_today("09:00", "11:00"), learned_caps=True)
    assert decision.chosen is not None


def test_the_learned_cap_never_exceeds_the_tenant_cap() -> None:
    decision = _decide(_history(8, 8), _pushed_today("09:00", "10:00", "11:00"),
                       learned_caps=True)
    assert str(decision.considered[0].reason) == "global_cap"
    assert learned_cap(Counts(100, 100), 3).cap == 3


def test_off_by_default_the_same_user_gets_the_tenant_cap() -> None:
    decision = _decide(_history(0, 8), _pushed_today("09:00"))
    assert decision.chosen is not None


def test_pushes_older_than_a_week_do_not_count() -> None:
    decision = _decide(_history(0, 8, days_ago=8.0), _pushed_today("09:00"), learned_caps=True)
    assert decision.chosen is not None


@pytest.mark.parametrize(("opens", "pushes", "tenant_cap", "cap"), [
    (0, 0, 3, 3),     # no history: p_open 0.5, the tenant's cap
    (0, 8, 3, 1),     # p_open 0.10: one a day
    (1, 8, 5, 2),     # p_open 0.20: 1 + floor(4 * 0.4)
    (2, 8, 5, 3),     # p_open 0.30: 1 + floor(4 * 0.6)
    (4, 8, 5, 5),     # p_open 0.50: the whole cap
    (0, 50, 1, 1),    # a cap of one stays one
    (3, 3, 0, 0),     # a tenant cap of zero sends nothing
])
def test_the_stated_rule(opens: int, pushes: int, tenant_cap: int, cap: int) -> None:
    assert learned_cap(Counts(pushes, opens), tenant_cap).cap == cap


def test_open_probability_is_the_beta_binomial_mean() -> None:
    assert open_probability(Counts(0, 0)) == 0.5
    assert open_probability(Counts(8, 0)) == pytest.approx(0.1)
