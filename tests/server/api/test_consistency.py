"""Values that are each fine but contradict each other, and codes that name nothing: a
campaign scheduled to end before it starts, an age range whose minimum is above its
maximum, an assumed ping accuracy the policy would always ignore, a policy country
that is no country. Each is a 422 naming the field, at creation and at update, on both
stores, and nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.api.conftest import Api, campaign_body
from tests.server.api.test_service import assert_error
from tests.server.conftest import TENANT

pytestmark = pytest.mark.asyncio(loop_scope="session")

ADVENT = "2026-11-29T00:00:00+02:00"
CHRISTMAS = "2026-12-24T00:00:00+02:00"


@pytest.mark.parametrize(("over", "field", "says"), [
    ({"schedule": {"start": CHRISTMAS, "end": ADVENT}}, "schedule.end", "not after start"),
    ({"schedule": {"start": ADVENT, "end": ADVENT}}, "schedule.end", "not after start"),
    ({"schedule": {"start": 1_800_000_000, "end": 1_700_000_000}}, "schedule.end",
     "not after start"),
    ({"schedule": {"start": 1e300, "end": -1e300}}, "schedule.end",
     "end (-1e+300 s) is not after start (1e+300 s)"),
    ({"audience": {"age": {"min": 40, "max": 30}}}, "audience.age.max", "below min (40)"),
], ids=["christmas-to-advent", "empty", "epoch-seconds", "beyond-the-calendar", "age"])
@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_a_campaign_that_contradicts_itself_is_a_422_naming_the_field(
    api: Api, method: str, over: dict[str, Any], field: str, says: str,
) -> None:
    path = "/v1/campaigns" if method == "POST" else "/v1/campaigns/hello"
    _, answer = await api.call(method, path, json_body=campaign_body(**over), expect=422)
    assert_error(answer, "validation_error", field)
    assert says in answer["error"]["message"]
    assert await api.store.get_campaign(TENANT, "hello") is None


async def test_an_update_that_contradicts_itself_keeps_the_stored_campaign(api: Api) -> None:
    good = campaign_body(schedule={"start": ADVENT, "end": CHRISTMAS},
                         audience={"age": {"min": 30, "max": 30}})
    await api.call("POST", "/v1/campaigns", json_body=good, expect=201)
    _, answer = await api.call("PUT", "/v1/campaigns/hello", expect=422, json_body={
        **good, "schedule": {"start": CHRISTMAS, "end": ADVENT}})
    assert_error(answer, "validation_error", "schedule.end")
    stored = await api.store.get_campaign(TENANT, "hello")
    assert stored is not None and stored.schedule.start is not None
    assert stored.schedule.end is not None and stored.schedule.start < stored.schedule.end


@pytest.mark.parametrize(("presence", "field"), [
    ({"max_accuracy_m": 20}, "presence.max_accuracy_m"),
    ({"default_accuracy_m": 250}, "presence.default_accuracy_m"),
    ({"max_accuracy_m": 50, "default_accuracy_m": 60}, "presence.default_accuracy_m"),
])
async def test_an_assumed_accuracy_the_policy_always_ignores_is_a_422(
    api: Api, presence: dict[str, float], field: str,
) -> None:
    """A ping without an accuracy is taken as ``default_accuracy_m``; above
    ``max_accuracy_m`` every such ping would be ignored for transitions."""
    _, answer = await api.call("PUT", "/v1/policy", json_body={"presence": presence},
                               expect=422)
    assert_error(answer, "validation_error", field)
    assert (await api.store.get_policy(TENANT)).presence == {}


async def test_an_assumed_accuracy_within_the_limit_is_fine(api: Api) -> None:
    _, put = await api.call("PUT", "/v1/policy", expect=200, json_body={
        "presence": {"max_accuracy_m": 50, "default_accuracy_m": 50}})
    assert put["presence"] == {"max_accuracy_m": 50.0, "default_accuracy_m": 50.0}


@pytest.mark.parametrize("country", ["XX", "ZZ", "UK", "EU", "AA"])
async def test_a_policy_country_that_is_no_iso_country_is_a_422(api: Api,
                                                                country: str) -> None:
    _, answer = await api.call("PUT", "/v1/policy", json_body={"policy": {"country": country}},
                               expect=422)
    assert_error(answer, "validation_error", "policy.country")
    assert country in answer["error"]["message"]
    assert (await api.store.get_policy(TENANT)).policy.country is None


@pytest.mark.parametrize("country", ["FI", "CN", "AQ", "GB", "XK"])
async def test_a_policy_country_that_is_an_iso_country_is_kept(api: Api, country: str) -> None:
    _, put = await api.call("PUT", "/v1/policy", json_body={"policy": {"country": country}},
                            expect=200)
    assert put["policy"]["country"] == country
    assert (await api.store.get_policy(TENANT)).policy.country == country
