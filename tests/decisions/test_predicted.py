"""Conditions on learned predictions: an audience's predicted-interest thresholds
(``interest_below_threshold``) and a location campaign's ``min_open_chance``
(``unlikely_to_open``), decided for u1 entering Forum (Helsinki) on a Saturday at 14:00."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from tests.decisions.builders import FORUM, at, campaign, event, profile, reasons, venue
from triggers.decisions import CampaignIndex, InMemoryLedger, decide
from triggers.decisions.models import TenantPolicy
from triggers.decisions.predicted import LearnedFacts, learned_campaigns, learned_unmet

SATURDAY_2PM = at("2026-11-28 14:00")
BABY_FAIR = {"audience": {"interests": {"mother_baby": {"min": 0.6}}}}
ONLY_IF_LIKELY = {"min_open_chance": 0.5}


def _decide(campaigns: list[Any], facts: LearnedFacts) -> Any:
    unmet = learned_unmet(learned_campaigns(campaigns), facts)
    return decide(event(FORUM, SATURDAY_2PM), profile(), CampaignIndex(campaigns),
                  venue(FORUM), TenantPolicy(), InMemoryLedger(), SATURDAY_2PM,
                  learned_unmet=unmet)


def test_a_user_below_the_interest_threshold_is_skipped_with_the_score() -> None:
    fair = campaign("fair", **BABY_FAIR)
    decision = _decide([fair], LearnedFacts(interests={"mother_baby": 0.42, "books": 0.9}))
    assert reasons(decision) == {"fair": "interest_below_threshold"}
    assert decision.considered[0].detail == "interest in mother_baby 0.42 below 0.60"
    assert decision.chosen is None


def test_a_user_at_or_above_the_interest_threshold_is_sent() -> None:
    fair = campaign("fair", **BABY_FAIR)
    decision = _decide([fair], LearnedFacts(interests={"mother_baby": 0.6}))
    assert decision.chosen is not None and decision.chosen.campaign_id == "fair"


def test_without_an_interest_model_an_interest_audience_is_never_reached() -> None:
    decision = _decide([campaign("fair", **BABY_FAIR)], LearnedFacts())
    assert reasons(decision) == {"fair": "interest_below_threshold"}
    assert decision.considered[0].detail == "no interest model promoted for the tenant yet"


def test_a_category_the_model_does_not_rank_for_the_user_scores_zero() -> None:
    decision = _decide([campaign("fair", **BABY_FAIR)], LearnedFacts(interests={"books": 0.8}))
    assert decision.considered[0].detail == "interest in mother_baby 0.00 below 0.60"


def test_a_user_unlikely_to_open_now_is_skipped_and_another_campaign_wins() -> None:
    likely_only = campaign("likely", priority=5, **ONLY_IF_LIKELY)
    anyone = campaign("anyone", priority=1)
    decision = _decide([likely_only, anyone], LearnedFacts(open_chance=0.2))
    assert reasons(decision) == {"likely": "unlikely_to_open", "anyone": "sent"}
    assert decision.considered[0].detail == "chance of opening now 0.20 below 0.50"


def test_a_user_likely_to_open_now_or_without_a_send_time_model_is_sent() -> None:
    for facts in (LearnedFacts(open_chance=0.8), LearnedFacts()):
        decision = _decide([campaign("likely", **ONLY_IF_LIKELY)], facts)
        assert decision.chosen is not None, facts


def test_only_campaigns_with_learned_conditions_need_the_models() -> None:
    plain, fair = campaign("plain"), campaign("fair", **BABY_FAIR)
    assert learned_campaigns([plain, fair]) == (fair,)


@pytest.mark.parametrize("bad", [{"min_open_chance": 1.5},
                                 {"audience": {"interests": {"mother_baby": {"min": -0.1}}}},
                                 {"audience": {"interests": {"mother_baby": 0.6}}}])
def test_thresholds_outside_zero_to_one_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        campaign("c1", **bad)
