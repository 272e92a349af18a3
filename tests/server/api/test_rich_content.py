"""Rich content through the HTTP API, on both stores: a campaign with a picture per
interest, a deep link and buttons; the delivery that carries them; feedback naming the
button pressed; clicks per button in the stats; bad rich fields as 422s naming the field;
the limits in the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest

from server.app import OPERATIONS
from server.auth import Role
from server.openapi import build_openapi
from server.settings import Settings
from server.store import DeliveryStatus
from tests.server.api.conftest import Api, campaign_body, ping, venue_feature
from tests.server.api.test_service import assert_error
from tests.server.conftest import TENANT

pytestmark = pytest.mark.asyncio(loop_scope="session")

STROLLER = "https://cdn.senate.example/img/stroller.jpg"
SQUARE = "https://cdn.senate.example/img/square.jpg"
SHOP = "https://senate.example/offers/baby-week"

BUTTONS = [{"id": "shop", "title": "Shop now", "deep_link": SHOP},
           {"id": "later", "title": "Remind me later", "deep_link": "senateapp://remind"}]


def _rich_campaign(**variant: Any) -> dict[str, Any]:
    return campaign_body(variants=[{
        "id": "a", "title": "Welcome", "body": "Baby week on the square",
        "image_url": SQUARE, "image_by_tag": {"mother_baby": STROLLER},
        "deep_link": "senateapp://offers/baby-week", "buttons": BUTTONS, **variant}])


async def _delivery_for_a_mother(api: Api) -> str:
    """A ``mother_baby`` user walks onto the square; the delivery's id."""
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    await api.call("PUT", "/v1/users/mei", json_body={"tags": ["mother_baby"]}, expect=201)
    await api.call("POST", "/v1/campaigns", json_body={**_rich_campaign(),
                                                       "status": "active"}, expect=201)
    now = api.clock.now
    _, body = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={
        "pings": [ping("mei", ts=now - 20), ping("mei", ts=now - 10)]})
    [delivery] = body["deliveries"]
    return str(delivery["id"])


async def test_delivery_carries_the_picture_of_the_users_interest_and_the_buttons(
    api: Api,
) -> None:
    did = await _delivery_for_a_mother(api)
    _, got = await api.call("GET", f"/v1/deliveries/{did}", role=Role.MANAGER, expect=200)
    assert got["rich"] == {"image_url": STROLLER, "image_alt": "Welcome",
                           "image_tag": "mother_baby",
                           "deep_link": "senateapp://offers/baby-week", "buttons": BUTTONS}
    assert got["button"] is None
    _, decisions = await api.call("GET", "/v1/users/mei/decisions", expect=200)
    assert decisions["decisions"][0]["chosen"]["rich"]["image_url"] == STROLLER
    # Once sent to the in-app inbox, the app lists it with the same content.
    await api.store.update_delivery(TENANT, did, status=DeliveryStatus.SENT,
                                    now=api.clock.now)
    _, inbox = await api.call("GET", "/v1/users/mei/inbox", role=Role.MANAGER, expect=200)
    assert inbox["messages"][0]["rich"] == got["rich"]


async def test_feedback_records_the_button_pressed_and_stats_count_it(api: Api) -> None:
    did = await _delivery_for_a_mother(api)
    _, first = await api.call("POST", f"/v1/deliveries/{did}/feedback", role=Role.SDK,
                              json_body={"kind": "clicked", "button": "shop"}, expect=200)
    assert first["recorded"] and first["button"] == "shop"
    # The same click reported again (another button named) counts once, as it was.
    _, again = await api.call("POST", f"/v1/deliveries/{did}/feedback", role=Role.SDK,
                              json_body={"kind": "clicked", "button": "later"}, expect=200)
    assert not again["recorded"] and again["button"] == "shop"
    _, got = await api.call("GET", f"/v1/deliveries/{did}", role=Role.MANAGER, expect=200)
    assert got["button"] == "shop" and got["feedback"] == ["clicked"]
    _, stats = await api.call("GET", "/v1/campaigns/hello/stats", expect=200)
    assert stats["buttons"] == {"shop": 1}
    assert stats["variants"][0]["buttons"] == {"shop": 1}


@pytest.mark.parametrize(("body", "code"), [
    ({"kind": "clicked", "button": "buy"}, "unknown_button"),
    ({"kind": "opened", "button": "shop"}, "validation_error"),
    ({"kind": "clicked", "button": "shop now!"}, "validation_error"),
])
async def test_a_button_the_delivery_does_not_have_is_a_422_naming_button(
    api: Api, body: dict[str, Any], code: str
) -> None:
    did = await _delivery_for_a_mother(api)
    _, answer = await api.call("POST", f"/v1/deliveries/{did}/feedback", role=Role.SDK,
                               json_body=body, expect=422)
    assert_error(answer, code, "button")
    _, got = await api.call("GET", f"/v1/deliveries/{did}", role=Role.MANAGER, expect=200)
    assert got["feedback"] == [] and got["button"] is None


async def test_a_button_on_a_plain_push_is_a_422(api: Api) -> None:
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    await api.call("POST", "/v1/campaigns", json_body={**campaign_body(), "status": "active"},
                   expect=201)
    now = api.clock.now
    _, body = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={
        "pings": [ping("u1", ts=now - 20), ping("u1", ts=now - 10)]})
    did = body["deliveries"][0]["id"]
    _, answer = await api.call("POST", f"/v1/deliveries/{did}/feedback", role=Role.SDK,
                               json_body={"kind": "clicked", "button": "shop"}, expect=422)
    assert_error(answer, "unknown_button", "button")
    assert "no buttons" in answer["error"]["message"]


@pytest.mark.parametrize(("variant", "field"), [
    ({"buttons": [*BUTTONS, {**BUTTONS[0], "id": "b3"}, {**BUTTONS[0], "id": "b4"}]},
     "variants[0].buttons"),
    ({"buttons": [BUTTONS[0], BUTTONS[0]]}, "variants[0].buttons"),
    ({"deep_link": "javascript:alert(1)"}, "variants[0].deep_link"),
    ({"deep_link": "https://senate.example/\r\nX-Injected: 1"}, "variants[0].deep_link"),
    ({"buttons": [{**BUTTONS[0], "deep_link": "vbscript:msgbox"}]},
     "variants[0].buttons[0].deep_link"),
    ({"image_url": "http://cdn.senate.example/a.jpg"}, "variants[0].image_url"),
])
async def test_bad_rich_fields_are_422s_naming_the_field(
    api: Api, variant: dict[str, Any], field: str
) -> None:
    _, answer = await api.call("POST", "/v1/campaigns", json_body=_rich_campaign(**variant),
                               expect=422)
    assert answer["error"]["field"] == field, answer


async def test_a_picture_without_alt_text_for_a_sample_user_is_refused_at_creation(
    api: Api,
) -> None:
    body = _rich_campaign(title="{% if user.first_name %}Hi {{ user.first_name }}{% endif %}")
    _, answer = await api.call("POST", "/v1/campaigns", json_body=body, expect=422)
    assert_error(answer, "rich_content_error", "variants[0].image_alt")


def _schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = doc["components"]["schemas"][name]
    return found


async def test_openapi_shows_the_rich_fields_with_their_limits() -> None:
    doc = build_openapi(OPERATIONS, version="test", settings=Settings())
    variant = _schema(doc, "Variant")["properties"]
    image = next(s for s in variant["image_url"]["anyOf"] if s.get("type") == "string")
    assert image["maxLength"] == 2048
    assert variant["image_by_tag"]["maxProperties"] == 32
    assert variant["buttons"]["maxItems"] == 3
    alt = next(s for s in variant["image_alt"]["anyOf"] if s.get("type") == "string")
    assert alt["maxLength"] == 256
    button = _schema(doc, "Button")["properties"]
    assert button["title"]["maxLength"] == 40
    assert button["id"]["pattern"] == "^[A-Za-z0-9_-]{1,32}$"
    feedback = _schema(doc, "FeedbackIn")["properties"]
    assert any(s.get("maxLength") == 32 for s in feedback["button"]["anyOf"])
