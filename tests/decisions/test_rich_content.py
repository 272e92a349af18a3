"""Rich content: what a variant may declare, which picture a user gets, and what the
decision's ``chosen`` carries."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from tests.decisions.builders import FORUM, HELSINKI, at, campaign, event, profile, run, venue
from triggers.decisions import ContentEngine, preview_campaign
from triggers.decisions.models import Variant
from triggers.decisions.rich import (
    MAX_RICH_BYTES,
    Button,
    RichContent,
    check_deep_link,
    choose_image,
)
from triggers.simulation.result import decision_json

SATURDAY_2PM = at("2026-11-28 14:00")

BABY = "https://cdn.forum.example/img/baby-stroller.jpg"
FOOD = "https://cdn.forum.example/img/noodles.jpg"
DEFAULT = "https://cdn.forum.example/img/forum-front.jpg"
SHOP = "https://forum.example/offers/baby-week"


def _variant(**rich: Any) -> dict[str, Any]:
    return {"id": "a", "title": "Hei {{ user.first_name }}", "body": "Tervetuloa", **rich}


def _button(button_id: str = "shop", **over: Any) -> dict[str, Any]:
    return {"id": button_id, "title": "Shop now", "deep_link": SHOP, **over}


RICH = _variant(image_url=DEFAULT, image_by_tag={"mother_baby": BABY, "foodie": FOOD},
                deep_link="forumapp://offers/baby-week",
                buttons=[_button(), _button("map", title="Show on map",
                                            deep_link="forumapp://map/forum")])


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("rich", "loc", "words"), [
    ({"buttons": [_button(f"b{i}") for i in range(4)]}, ("buttons",), "at most 3"),
    ({"buttons": [_button(), _button()]}, ("buttons",), "used twice"),
    ({"buttons": [_button(deep_link="javascript:alert(1)")]},
     ("buttons", 0, "deep_link"), "javascript"),
    ({"buttons": [_button(id="shop now")]}, ("buttons", 0, "id"), "pattern"),
    ({"buttons": [_button(title="")]}, ("buttons", 0, "title"), "at least 1"),
    ({"deep_link": "JavaScript:alert(document.cookie)"}, ("deep_link",), "not allowed"),
    ({"deep_link": "https://forum.example/\r\nSet-Cookie: x=1"}, ("deep_link",),
     "line breaks"),
    ({"deep_link": "data:text/html;base64,PHNjcmlwdD4="}, ("deep_link",), "not allowed"),
    ({"deep_link": "offers/baby-week"}, ("deep_link",), "needs a scheme"),
    ({"image_url": "http://cdn.forum.example/a.jpg"}, ("image_url",), "https"),
    ({"image_url": "https://" + "x" * 2050}, ("image_url",), "at most 2048"),
    ({"image_by_tag": {"foodie": "ftp://cdn.forum.example/a.jpg"}},
     ("image_by_tag", "foodie"), "https"),
    ({"image_alt": "A stroller"}, ("image_alt",), "without an image"),
    ({"image_url": DEFAULT, "image_alt": "line\nbreak"}, ("image_alt",), "pattern"),
    ({"image_url": "https://cdn.forum.example/" + "a" * 1500,
      "deep_link": "https://forum.example/" + "b" * 1000}, ("buttons",), "bytes of JSON"),
])
def test_bad_rich_fields_are_refused_naming_the_field(
    rich: dict[str, Any], loc: tuple[Any, ...], words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        campaign(variants=[_variant(**rich)])
    error = caught.value.errors()[0]
    assert error["loc"] == ("variants", 0, *loc)
    assert words in error["msg"]


@pytest.mark.parametrize("link", [
    "https://forum.example/offers/1?x=1&y=2", "forumapp://offers/1", "mailto:help@forum.fi",
    "tel:+358401234567", "intent://scan/#Intent;scheme=zxing;end"])
def test_web_and_app_links_are_accepted(link: str) -> None:
    assert check_deep_link(link) == link


def test_the_largest_push_within_the_limit_is_accepted() -> None:
    variant = Variant.model_validate(RICH)
    assert len(variant.buttons) == 2
    assert len(json.dumps(RichContent(image_url=BABY, buttons=variant.buttons).as_json())) \
        < MAX_RICH_BYTES


# --------------------------------------------------------------------------- the picture


@pytest.mark.parametrize(("tags", "expected"), [
    ({"mother_baby", "foodie"}, (BABY, "mother_baby")),  # the campaign's order decides
    ({"foodie", "commuter"}, (FOOD, "foodie")),
    ({"commuter"}, (DEFAULT, None)),  # none of the tags: the fallback
    (set(), (DEFAULT, None)),
])
def test_picture_follows_the_strongest_interest_in_the_campaigns_order(
    tags: set[str], expected: tuple[str, str | None]
) -> None:
    assert choose_image(DEFAULT, {"mother_baby": BABY, "foodie": FOOD}, tags) == expected


def test_without_a_fallback_a_user_of_no_listed_interest_gets_no_picture() -> None:
    assert choose_image(None, {"foodie": FOOD}, {"commuter"}) == (None, None)


# --------------------------------------------------------------------------- decisions


def _chosen(user_tags: tuple[str, ...] = (), **variant: Any) -> RichContent | None:
    decision = run(event(FORUM, SATURDAY_2PM), profile(tags=user_tags),
                   [campaign(variants=[variant or RICH])], venue(FORUM))
    assert decision.chosen is not None
    return decision.chosen.rich


def test_the_push_carries_the_picture_of_the_users_interest_and_the_buttons() -> None:
    rich = _chosen(("foodie",))
    assert rich is not None
    assert (rich.image_url, rich.image_tag) == (FOOD, "foodie")
    assert rich.image_alt == "Hei Aino"  # no image_alt: the rendered title describes it
    assert rich.deep_link == "forumapp://offers/baby-week"
    assert rich.button_ids() == ("shop", "map")


def test_interest_and_scene_tags_both_choose_the_picture() -> None:
    decision = run(event(FORUM, SATURDAY_2PM), profile(scene_tags=("mother_baby",)),
                   [campaign(variants=[RICH])], venue(FORUM))
    assert decision.chosen is not None and decision.chosen.rich is not None
    assert decision.chosen.rich.image_url == BABY


def test_given_alt_text_is_kept() -> None:
    rich = _chosen(**_variant(image_url=DEFAULT, image_alt="Forum's front doors"))
    assert rich == RichContent(image_url=DEFAULT, image_alt="Forum's front doors")


def test_a_plain_variant_sends_no_rich_content_and_its_json_has_none() -> None:
    decision = run(event(FORUM, SATURDAY_2PM), profile(), [campaign()], venue(FORUM))
    assert decision.chosen is not None and decision.chosen.rich is None
    assert '"rich"' not in decision.to_json()


def test_the_decision_json_shows_the_chosen_content_and_reads_back() -> None:
    decision = run(event(FORUM, SATURDAY_2PM), profile(tags=("mother_baby",)),
                   [campaign(variants=[RICH])], venue(FORUM))
    body = json.loads(decision.to_json())
    assert body["chosen"]["rich"] == {
        "image_url": BABY, "image_alt": "Hei Aino", "image_tag": "mother_baby",
        "deep_link": "forumapp://offers/baby-week",
        "buttons": [{"id": "shop", "title": "Shop now", "deep_link": SHOP},
                    {"id": "map", "title": "Show on map", "deep_link": "forumapp://map/forum"}]}
    assert type(decision).from_json_obj(body) == decision


def test_simulate_json_shows_the_chosen_rich_content() -> None:
    decision = run(event(FORUM, SATURDAY_2PM), profile(tags=("foodie",)),
                   [campaign(variants=[RICH])], venue(FORUM))
    chosen = decision_json(decision, ZoneInfo(HELSINKI))["chosen"]
    assert chosen["rich"]["image_url"] == FOOD
    assert [b["id"] for b in chosen["rich"]["buttons"]] == ["shop", "map"]
    plain = run(event(FORUM, SATURDAY_2PM), profile(), [campaign()], venue(FORUM))
    assert "rich" not in decision_json(plain, ZoneInfo(HELSINKI))["chosen"]


def test_rich_content_survives_its_stored_json() -> None:
    rich = RichContent(image_url=BABY, image_alt="A stroller", image_tag="mother_baby",
                       buttons=(Button(id="shop", title="Shop now", deep_link=SHOP),))
    assert RichContent.from_json(rich.as_json()) == rich
    assert RichContent.from_json(None) is None and RichContent.from_json({}) is None


def test_sms_link_is_the_first_web_link() -> None:
    app_only = RichContent(deep_link="forumapp://offers/1")
    assert app_only.web_link() is None
    with_button = RichContent(deep_link="forumapp://offers/1",
                              buttons=(Button(id="shop", title="Shop", deep_link=SHOP),))
    assert with_button.web_link() == SHOP


# --------------------------------------------------------------------------- preview


def test_preview_refuses_a_picture_whose_title_renders_empty_for_a_sample_user() -> None:
    bad = campaign(variants=[_variant(
        title="{% if user.first_name %}{{ user.first_name }}{% endif %}",
        image_url=DEFAULT)])
    problems = preview_campaign(ContentEngine(), bad)
    assert [(p.field, p.kind) for p in problems] == [("variants[0].image_alt", "content")]
    assert "sample-unknown" in problems[0].message


def test_preview_accepts_pictures_with_alt_text_or_a_title() -> None:
    good = campaign(variants=[RICH, {**RICH, "locale": "zh", "image_alt": "婴儿车"}])
    assert preview_campaign(ContentEngine(), good) == []
