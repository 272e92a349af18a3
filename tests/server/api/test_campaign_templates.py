"""A campaign's templates are checked when it is written (POST and PUT): one that does
not parse, or that goes past the render limits for a sample user, is a 422 naming the
variant's field; one that only fails for some real user is recorded as
``template_error`` with the reason, on both stores."""

from __future__ import annotations

import pytest

from server.auth import Role
from tests.server.api.conftest import Api, campaign_body, ping, venue_feature
from tests.server.api.test_service import assert_error

pytestmark = pytest.mark.asyncio(loop_scope="session")

COSTLY = ("{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}")


def _variant(**fields: str) -> list[dict[str, str]]:
    return [{"id": "a", "title": "Welcome", "body": "Hi there"},
            {"id": "b", "title": "Hello", "body": "Hi", **fields}]


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_a_template_that_does_not_parse_is_a_422_naming_the_field(
    api: Api, method: str,
) -> None:
    body = campaign_body(variants=[{"id": "a", "title": "Hi",
                                    "body": "Hi {{ user.first_name"}])
    path = "/v1/campaigns" if method == "POST" else "/v1/campaigns/hello"
    _, answer = await api.call(method, path, json_body=body, expect=422)
    assert_error(answer, "template_syntax_error", "variants[0].body")
    await api.call("GET", "/v1/campaigns/hello", expect=404)  # nothing stored


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_a_template_past_the_limits_is_a_422_naming_every_field(
    api: Api, method: str,
) -> None:
    body = campaign_body(variants=_variant(title="{{ 9**64**64**64**64 }}", body=COSTLY))
    path = "/v1/campaigns" if method == "POST" else "/v1/campaigns/hello"
    _, answer = await api.call(method, path, json_body=body, expect=422)
    assert_error(answer, "template_limit_exceeded", "variants[1].title")
    assert "digits" in answer["error"]["message"]
    assert [(d["field"], d["code"]) for d in answer["error"]["details"]] == [
        ("variants[1].title", "template_limit_exceeded"),
        ("variants[1].body", "template_limit_exceeded")]


async def test_a_template_failing_for_one_real_user_records_the_reason(api: Api) -> None:
    # No sample user is called "victim", so the preview lets it through.
    trap = "{% if user.user_id == 'victim' %}{{ 9**64**64**64**64 }}{% endif %}Hei!"
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    await api.call("POST", "/v1/campaigns", expect=201, json_body=campaign_body(
        status="active", variants=[{"id": "a", "title": "Tervetuloa", "body": trap}]))
    now = api.clock.now
    for user, sent in (("victim", False), ("bystander", True)):
        _, answer = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200,
                                   json_body={"pings": [ping(user, ts=now - 20),
                                                        ping(user, ts=now - 10)]})
        assert bool(answer["deliveries"]) is sent
    _, log = await api.call("GET", "/v1/users/victim/decisions", expect=200)
    [considered] = log["decisions"][0]["considered"]
    assert considered["reason"] == "template_error"
    assert "TemplateLimitError" in considered["detail"] and "digits" in considered["detail"]
