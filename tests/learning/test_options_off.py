"""With the learning options off, feedback counts change no decision: every row of the
reason table decides byte-identically with and without a full FeedbackBook."""

from __future__ import annotations

from typing import Any

import pytest

from tests.decisions.builders import FORUM, campaign, event, policy, profile, run, venue
from tests.decisions.test_decide import REASON_TABLE, SATURDAY_2PM
from triggers.decisions import FeedbackKind, InMemoryLedger
from triggers.learning.signals import Counts, FeedbackBook


def _busy_book() -> FeedbackBook:
    """Counts that would change every learning option's answer if it were on."""
    book = FeedbackBook()
    book.set_arm_counts("c1", {"a": Counts(500, 400)})
    book.set_arm_counts("c0", {"a": Counts(500, 0)})
    for n in range(12):
        book.record_send("u1", "x", "a", "sms", SATURDAY_2PM - 86_400 + 600 * n)
    return book


@pytest.mark.parametrize(("expected", "row"), [r for r in REASON_TABLE if r[0] != "learned_cap"],
                         ids=[r[0] for r in REASON_TABLE if r[0] != "learned_cap"])
def test_decision_is_the_same_with_and_without_feedback(expected: str,
                                                        row: dict[str, Any]) -> None:
    def decide_with(signals: FeedbackBook | None) -> str:
        ledger = InMemoryLedger(row.get("ledger", ()))
        for _ in range(row.get("ignored", 0)):
            ledger.record_feedback("u1", FeedbackKind.IGNORED)
        campaigns = [campaign("c1", **row.get("campaign", {}))]
        campaigns += [campaign(**other) for other in row.get("others", [])]
        when = row.get("when", SATURDAY_2PM)
        return run(event(FORUM, when, stale=row.get("stale", False)),
                   profile(**row.get("profile", {})), campaigns,
                   venue(FORUM, **row.get("venue", {})), pol=policy(**row.get("policy", {})),
                   ledger=ledger, signals=signals).to_json()

    assert decide_with(_busy_book()) == decide_with(None)
    assert expected in decide_with(None)
