"""Ranking eligible campaigns of equal priority by expected value (the user's predicted
interest in the offer's categories × the chance of opening now), and the reason lines
that give the numbers; u1 entering Forum (Helsinki) on a Saturday at 14:00."""

from __future__ import annotations

from typing import Any

from tests.decisions.builders import FORUM, at, campaign, event, profile, reasons, venue
from triggers.decisions import CampaignIndex, InMemoryLedger, decide
from triggers.decisions.models import TenantPolicy
from triggers.decisions.predicted import LearnedFacts, LearnedMisses, learned_conditions
from triggers.decisions.ranking import MissesAndRanking, Ranking

SATURDAY_2PM = at("2026-11-28 14:00")
SPORTS_FAN = LearnedFacts(interests={"sports": 0.62, "books": 0.30, "garden": 0.10},
                          open_chance=0.5)
"""Held scores' mean (the base rate of an offer without categories): 0.34."""


def _decide(campaigns: list[Any], facts: LearnedFacts | None, user: str = "u1") -> Any:
    ranking = None if facts is None else Ranking(facts)
    unmet = None if facts is None else LearnedMisses(
        learned_conditions(campaigns), facts)
    return decide(event(FORUM, SATURDAY_2PM, user_id=user), profile(user),
                  CampaignIndex(campaigns), venue(FORUM), TenantPolicy(), InMemoryLedger(),
                  SATURDAY_2PM, learned_unmet=unmet, ranking=ranking)


def _lines(decision: Any) -> dict[str, str | None]:
    return {c.campaign_id: c.detail for c in decision.considered}


def test_the_campaign_the_user_is_likeliest_to_value_wins_its_priority_band() -> None:
    band = [campaign("a-books", categories=["books"]), campaign("b-anything"),
            campaign("c-sports", categories=["sports", "garden"])]
    decision = _decide(band, SPORTS_FAN)
    assert decision.chosen.campaign_id == "c-sports"
    assert _lines(decision) == {
        "a-books": "c-sports won: expected value 0.15 (interest in books 0.30 × open "
                   "chance 0.50) below 0.31",
        "b-anything": "c-sports won: expected value 0.17 (base rate 0.34 × open chance "
                      "0.50) below 0.31",
        "c-sports": "ranked by expected value 0.31 (interest in sports 0.62 × open "
                    "chance 0.50) over b-anything 0.17, a-books 0.15",
    }


def test_priority_dominates_expected_value() -> None:
    urgent = campaign("urgent", priority=5, categories=["garden"])
    band = [urgent, campaign("books", priority=1, categories=["books"]),
            campaign("sports", priority=1, categories=["sports"])]
    decision = _decide(band, SPORTS_FAN)
    assert decision.chosen.campaign_id == "urgent"
    assert reasons(decision) == {"urgent": "sent", "books": "lower_priority",
                                 "sports": "lower_priority"}
    assert set(_lines(decision).values()) == {None, "urgent won"}


def test_a_lower_band_keeps_its_id_order_behind_a_single_winner() -> None:
    band = [campaign("top", priority=3), campaign("a", categories=["books"]),
            campaign("b", categories=["sports"])]
    decision = _decide(band, SPORTS_FAN)
    assert decision.chosen.campaign_id == "top"
    assert _lines(decision) == {"top": None, "a": "top won", "b": "top won"}


def test_without_an_interest_model_the_order_is_exactly_as_before() -> None:
    band = [campaign("a-books", categories=["books"]),
            campaign("c-sports", categories=["sports"])]
    without_models = _decide(band, None)
    no_interest_model = _decide(band, LearnedFacts(open_chance=0.9))
    assert without_models.chosen.campaign_id == "a-books"
    assert no_interest_model == without_models


class _Counting:
    """:data:`SPORTS_FAN`'s predictions, counting the interests read."""

    open_chance = SPORTS_FAN.open_chance
    interest_base_rate = SPORTS_FAN.interest_base_rate

    def __init__(self) -> None:
        self.asked: list[str] = []

    def interest(self, category: str) -> float | None:
        self.asked.append(category)
        return SPORTS_FAN.interest(category)

    def why_interest(self, category: str) -> str | None:
        return None


def test_predictions_are_looked_up_only_when_two_campaigns_share_the_top_band() -> None:
    facts = _Counting()
    for band in ([campaign("only", categories=["books"])],
                 [campaign("a"), campaign("b")],  # no categories: every value is equal
                 [campaign("top", priority=2), campaign("x", categories=["sports"])]):
        decide(event(FORUM, SATURDAY_2PM), profile(), CampaignIndex(band), venue(FORUM),
               TenantPolicy(), InMemoryLedger(), SATURDAY_2PM, ranking=Ranking(facts))
    assert facts.asked == []
    decide(event(FORUM, SATURDAY_2PM), profile(), CampaignIndex(
        [campaign("a", categories=["books"]), campaign("b", categories=["sports"])]),
        venue(FORUM), TenantPolicy(), InMemoryLedger(), SATURDAY_2PM, ranking=Ranking(facts))
    assert facts.asked == ["books", "sports"]


def test_without_a_send_time_model_the_value_is_the_interest_alone() -> None:
    facts = LearnedFacts(interests={"sports": 0.62, "books": 0.30})
    decision = _decide([campaign("a", categories=["books"]),
                        campaign("b", categories=["sports"])], facts)
    assert _lines(decision)["b"] == "ranked by expected value 0.62 (interest in sports " \
                                    "0.62) over a 0.30"


def test_a_category_outside_the_users_top_is_worth_nothing_and_ties_keep_id_order() -> None:
    decision = _decide([campaign("b", categories=["toys"]), campaign("c", categories=["tea"])],
                       SPORTS_FAN)
    assert decision.chosen.campaign_id == "b"
    assert _lines(decision)["b"] == "ranked by expected value 0.00 (interest in toys 0.00 " \
                                    "× open chance 0.50) over c 0.00"


def test_the_winner_names_the_features_behind_its_interest() -> None:
    facts = LearnedFacts(interests={"sports": 0.62, "books": 0.30}, reasons={
        "sports": "sessions on it, last 2 weeks 3.78 +1.28, purchases of it 2 +0.40"})
    decision = _decide([campaign("a", categories=["books"]),
                        campaign("b", categories=["sports"])], facts)
    assert _lines(decision)["b"] == (
        "ranked by expected value 0.62 (interest in sports 0.62) over a 0.30; interest in "
        "sports: sessions on it, last 2 weeks 3.78 +1.28, purchases of it 2 +0.40")


def test_a_user_held_out_of_the_best_campaign_gets_the_next_by_value() -> None:
    # u7 is in c-sports's 50 % control group (hash of campaign and user).
    band = [campaign("a-books", categories=["books"]),
            campaign("c-sports", categories=["sports"], control_pct=50)]
    decision = _decide(band, SPORTS_FAN, user="u7")
    assert reasons(decision) == {"a-books": "sent", "c-sports": "held_out_control"}
    assert _lines(decision)["a-books"] == "ranked by expected value 0.15 (interest in books " \
                                          "0.30 × open chance 0.50)"


def test_a_missed_interest_threshold_names_the_features_behind_the_score() -> None:
    fair = campaign("fair", audience={"interests": {"mother_baby": {"min": 0.6}}})
    facts = LearnedFacts(interests={"mother_baby": 0.42}, reasons={
        "mother_baby": "days since last engaged with it 30 -0.85, purchases of it 0 -0.40"})
    decision = _decide([fair], facts)
    assert _lines(decision)["fair"] == (
        "interest in mother_baby 0.42 below 0.60: days since last engaged with it 30 -0.85, "
        "purchases of it 0 -0.40")


def test_a_met_interest_threshold_is_noted_with_its_features() -> None:
    fair = campaign("fair", audience={"interests": {"mother_baby": {"min": 0.6}}})
    facts = LearnedFacts(interests={"mother_baby": 0.82}, reasons={
        "mother_baby": "purchases of it, last month 6 +0.90"})
    decision = _decide([fair], facts)
    assert decision.chosen.campaign_id == "fair"
    assert "fair: interest in mother_baby 0.82 reached 0.60: purchases of it, last month " \
           "6 +0.90" in decision.notes


def test_one_object_for_the_misses_and_the_ranking_decides_as_two_do() -> None:
    # The service passes decide one MissesAndRanking as both learned_unmet and ranking.
    campaigns = [
        campaign("a-books", categories=["books"]),
        campaign("b-fair", categories=["sports"],
                 audience={"interests": {"sports": {"min": 0.6}}}),
        campaign("c-garden", categories=["garden"],
                 audience={"interests": {"garden": {"min": 0.5}}}),
        campaign("d-tea", categories=["tea"]),
    ]
    facts = LearnedFacts(interests=SPORTS_FAN.interests, open_chance=0.5, reasons={
        "sports": "sessions on it, last 2 weeks 3.78 +1.28"})
    both = MissesAndRanking(learned_conditions(campaigns), facts)
    decision = decide(event(FORUM, SATURDAY_2PM), profile(), CampaignIndex(campaigns),
                      venue(FORUM), TenantPolicy(), InMemoryLedger(), SATURDAY_2PM,
                      learned_unmet=both, ranking=both)
    assert decision == _decide(campaigns, facts)
    assert decision.chosen is not None and decision.chosen.campaign_id == "b-fair"
    assert reasons(decision)["c-garden"] == "interest_below_threshold"
    assert "b-fair: interest in sports 0.62 reached 0.60: sessions on it, last 2 weeks " \
           "3.78 +1.28" in decision.notes
