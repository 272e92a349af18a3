"""Learned tags: every default rule, its provenance, and lapse with time or new rules."""

from __future__ import annotations

import pydantic
import pytest

from tests.behaviour.builders import DAY, MONDAY_NOON, event, views
from triggers.behaviour.features import EMPTY, fold
from triggers.behaviour.rules import DEFAULT_TAG_RULES, TagRules, learn_tags


def tags_at(events: list, now: float, rules: TagRules = DEFAULT_TAG_RULES) -> dict[str, str]:
    return {t.tag: t.reason for t in learn_tags(rules, fold(EMPTY, events), now)}


def test_sports_fan_from_seven_views_names_them() -> None:
    assert tags_at(views(7, "sports", every_s=DAY), MONDAY_NOON + 7 * DAY) == {
        "sports_fan": "7 views of sports in 30 days"}


def test_four_views_of_sports_are_not_yet_a_fan() -> None:
    assert tags_at(views(4, "sports"), MONDAY_NOON) == {}


def test_sports_fan_from_one_purchase() -> None:
    bought = [event("purchase", item="racket-1", category="sports", price=89.0)]
    assert tags_at(bought, MONDAY_NOON) == {"sports_fan": "1 purchase of sports in 30 days"}


def test_food_delivery_frequent_needs_three_orders_in_a_week() -> None:
    orders = [event("purchase", at=MONDAY_NOON + d * DAY, item=f"order-{d}",
                    category="food_delivery") for d in (0, 2, 5)]
    assert tags_at(orders, MONDAY_NOON + 5 * DAY) == {
        "food_delivery_frequent": "3 purchases of food_delivery in 7 days"}
    assert tags_at(orders[:2], MONDAY_NOON + 5 * DAY) == {}


def test_mother_baby_from_a_purchase_in_any_baby_category() -> None:
    bought = [event("purchase", item="diapers-xl", category="diapers")]
    assert tags_at(bought, MONDAY_NOON + 10 * DAY) == {
        "mother_baby": "1 purchase of baby or maternity or diapers in 90 days"}


def test_a_tag_lapses_when_time_passes_without_new_events() -> None:
    events = views(6, "sports")
    assert "sports_fan" in tags_at(events, MONDAY_NOON + 29 * DAY)
    assert tags_at(events, MONDAY_NOON + 31 * DAY) == {}


def test_a_custom_rule_on_a_custom_kind_and_any_category() -> None:
    rules = TagRules.model_validate({"rules": [
        {"tag": "night_reader", "any": [{"kind": "read_article", "min_count": 2,
                                         "within_days": 1}]}]})
    reads = [event("read_article", at=MONDAY_NOON + i) for i in range(2)]
    assert tags_at(reads, MONDAY_NOON, rules) == {
        "night_reader": "2 read_article events in 1 day"}


def test_the_learned_tag_carries_count_and_last_event() -> None:
    events = views(5, "sports")
    (tag,) = learn_tags(DEFAULT_TAG_RULES, fold(EMPTY, events), MONDAY_NOON + DAY)
    assert (tag.count, tag.categories, tag.last_at) == (5, ("sports",), events[-1].ts)


@pytest.mark.parametrize(("body", "field"), [
    ({"rules": [{"tag": "a", "any": []}]}, ("rules", 0, "any")),
    ({"rules": [{"tag": "a", "any": [{"kind": "view", "within_days": 365}]}]},
     ("rules", 0, "any", 0, "within_days")),
    ({"rules": [{"tag": "a", "any": [{"kind": "view", "min_count": 0}]}]},
     ("rules", 0, "any", 0, "min_count")),
])
def test_bad_rules_name_the_field(body: dict, field: tuple) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        TagRules.model_validate(body)
    assert info.value.errors()[0]["loc"] == field


def test_two_rules_for_one_tag_are_refused() -> None:
    rule = {"tag": "a", "any": [{"kind": "view"}]}
    with pytest.raises(pydantic.ValidationError, match="two rules"):
        TagRules.model_validate({"rules": [rule, rule]})
