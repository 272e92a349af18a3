"""Channel by habit: ``channel_choice: auto`` sends on the channel the user opens most."""

from __future__ import annotations

import pytest

from tests.decisions.builders import FORUM, at, campaign, event, profile, run, venue
from triggers.decisions import Campaign
from triggers.learning.channels import PRIOR_STRENGTH, UNSEEN_RATE, rank_channels, smoothed_rate
from triggers.learning.signals import Counts, FeedbackBook

SATURDAY_2PM = at("2026-11-28 14:00")


def _book(user: dict[str, tuple[int, int]], others: dict[str, tuple[int, int]]) -> FeedbackBook:
    """Aino's (deliveries, opens) per channel, and the rest of the tenant's."""
    book = FeedbackBook()
    for user_id, table in (("u1", user), ("others", others)):
        for channel, (deliveries, opens) in table.items():
            for n in range(deliveries):
                push = book.record_send(user_id, "past", "a", channel, SATURDAY_2PM - 86_400 + n)
                if n < opens:
                    book.record_open(push)
    return book


def _auto(**data: object) -> Campaign:
    return campaign("forum-welcome", channels=["email", "fcm", "inbox"], channel_choice="auto",
                    **data)


def test_sends_on_the_channel_the_user_opens_most_with_the_numbers() -> None:
    # Aino opened 4 of 12 app pushes and 0 of 3 e-mails; the tenant: 22 % and 15 %.
    book = _book({"fcm": (12, 4), "email": (3, 0)}, {"fcm": (88, 20), "email": (97, 15)})
    decision = run(event(FORUM, SATURDAY_2PM), profile(), [_auto()], venue(FORUM), signals=book)
    assert decision.chosen is not None and decision.chosen.channel == "fcm"
    line = decision.considered[0]
    # fcm: (4 + 10 * 0.24) / (12 + 10) = 0.29; email: (0 + 10 * 0.15) / 13 = 0.12;
    # inbox: never delivered, the unseen prior 0.10.
    assert line.detail == ("fcm 0.29 (4/12, prior 0.24) > email 0.12 (0/3, prior 0.15) > "
                           "inbox 0.10 (0/0, prior 0.10)")


def test_a_channel_the_user_cannot_receive_or_refused_is_not_ranked() -> None:
    book = _book({"fcm": (10, 9)}, {"email": (50, 10)})
    user = profile(channels=["email", "fcm", "inbox"], opt_outs=["fcm"])
    decision = run(event(FORUM, SATURDAY_2PM), user, [_auto()], venue(FORUM), signals=book)
    assert decision.chosen is not None and decision.chosen.channel == "email"
    assert decision.considered[0].detail is not None
    assert "fcm" not in decision.considered[0].detail


def test_without_history_the_campaign_order_breaks_the_tie() -> None:
    decision = run(event(FORUM, SATURDAY_2PM), profile(), [_auto()], venue(FORUM),
                   signals=FeedbackBook())
    assert decision.chosen is not None and decision.chosen.channel == "email"


def test_first_choice_campaigns_ignore_the_habits() -> None:
    book = _book({"fcm": (12, 12)}, {})
    offer = campaign("forum-welcome", channels=["email", "fcm"])
    decision = run(event(FORUM, SATURDAY_2PM), profile(), [offer], venue(FORUM), signals=book)
    assert decision.chosen is not None and decision.chosen.channel == "email"
    assert decision.considered[0].detail is None


@pytest.mark.parametrize(("own", "prior", "expected"), [
    (Counts(0, 0), 0.22, 0.22),            # no history: the tenant's rate
    (Counts(10, 10), 0.0, 0.5),            # ten own deliveries weigh as much as the prior
    (Counts(1000, 300), 0.9, 0.3059),      # a long history: the user's own rate
])
def test_smoothed_rate_shrinks_toward_the_tenant_rate(own: Counts, prior: float,
                                                      expected: float) -> None:
    assert PRIOR_STRENGTH == 10.0
    assert smoothed_rate(own, prior) == pytest.approx(expected, abs=1e-4)


def test_a_channel_the_tenant_never_used_gets_the_unseen_prior() -> None:
    ranked = rank_channels(["sms"], {}, {})
    assert (ranked[0].prior, ranked[0].rate) == (UNSEEN_RATE, UNSEEN_RATE)
