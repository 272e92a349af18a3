"""Hostile and odd input on the learning surfaces, on both stores: a campaign's learned
conditions (``audience.interests``, ``min_open_chance``, ``best_time``, ``optimize``,
``channel_choice``, ``categories``), ``GET /v1/models``, ``POST /v1/models/train`` and
the send-time preview. Bad values are a 4xx naming the field; edge values that are valid
are stored; nothing is a 500."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.auth import Role
from server.models import fit_sendtime
from server.store import MemoryStore
from tests.server.api.conftest import NOON_UTC, Api, campaign_body, serving
from tests.server.api.test_learned_decisions import _habits
from tests.server.conftest import TENANT

pytestmark = pytest.mark.asyncio(loop_scope="session")


def best_time(fallback: Any = "10:00", **more: Any) -> dict[str, Any]:
    return {"scheduled": {"times": ["10:00"], "best_time": {"fallback": fallback, **more}}}


def two_arms(weight_b: float = 1.0) -> list[dict[str, Any]]:
    return [{"id": "a", "title": "A", "body": "a"},
            {"id": "b", "title": "B", "body": "b", "weight": weight_b}]


BAD = [
    ({"audience": {"interests": {"mother_baby": {"min": 1.5}}}},
     "audience.interests.mother_baby.min"),
    ({"audience": {"interests": {"mother_baby": {"min": -1}}}},
     "audience.interests.mother_baby.min"),
    ({"audience": {"interests": {"mother_baby": {"min": "NaN"}}}},
     "audience.interests.mother_baby.min"),
    ({"audience": {"interests": {"mother_baby": {"min": "much"}}}},
     "audience.interests.mother_baby.min"),
    ({"audience": {"interests": {"mother_baby": {"min": None}}}},
     "audience.interests.mother_baby.min"),
    ({"audience": {"interests": {"mother_baby": {}}}}, "audience.interests.mother_baby.min"),
    ({"audience": {"interests": {"mother_baby": 0.5}}}, "audience.interests.mother_baby"),
    ({"audience": {"interests": {"": {"min": 0.5}}}}, 'audience.interests[""]'),
    ({"audience": {"interests": ["mother_baby"]}}, "audience.interests"),
    ({"audience": {"interests": {f"c{i}": {"min": 0.5} for i in range(3000)}}},
     "audience.interests"),
    ({"min_open_chance": 1.5}, "min_open_chance"),
    ({"min_open_chance": -0.1}, "min_open_chance"),
    ({"min_open_chance": "NaN"}, "min_open_chance"),
    ({"min_open_chance": [0.5]}, "min_open_chance"),
    ({"trigger": best_time("24:00")}, "trigger.scheduled.best_time.fallback"),
    ({"trigger": best_time(-1)}, "trigger.scheduled.best_time.fallback"),
    ({"trigger": best_time(window="09:00-25:00")}, "trigger.scheduled.best_time.window"),
    ({"trigger": best_time(window="09:00-09:00")}, "trigger.scheduled.best_time.window"),
    ({"trigger": best_time(window="09:15-09:45")}, "trigger.scheduled.best_time.window"),
    ({"trigger": best_time(window="23:30-24:00")}, "trigger.scheduled.best_time.window"),
    ({"trigger": {"scheduled": {"times": ["10:00"], "best_time": "10:00"}}},
     "trigger.scheduled.best_time"),
    ({"trigger": {"scheduled": {}}}, "trigger.scheduled.times"),
    ({"trigger": {"scheduled": {"times": [], "best_time": None}}}, "trigger.scheduled.times"),
    ({"optimize": "thompson", "variants": []}, "variants"),
    ({"optimize": "thompson", "variants": two_arms(0.0)[1:]}, "variants"),
    ({"optimize": "ucb"}, "optimize"),
    ({"channel_choice": "auto", "channels": []}, "channels"),
    ({"channel_choice": "auto", "channels": ["inbox", "pigeon"]}, "channels"),
    ({"channels": "auto"}, "channels"),
    ({"channel_choice": "best"}, "channel_choice"),
    ({"categories": [""]}, "categories[0]"),
    ({"categories": ["baby", 7]}, "categories[1]"),
    ({"categories": [f"c{i}" for i in range(5000)]}, "categories"),
    ({"categories": "baby"}, "categories"),
]


@pytest.mark.parametrize(("over", "field"), BAD, ids=[
    f"{i}-{json.dumps(over)[:40]}" for i, (over, _) in enumerate(BAD)])
async def test_an_interest_threshold_above_one_and_other_bad_values_are_a_422_naming_the_path(
        api: Api, over: dict[str, Any], field: str | None) -> None:
    _, answer = await api.call("PUT", "/v1/campaigns/learned", expect=422,
                               json_body=campaign_body("learned", **over))
    assert answer["error"]["code"] == "validation_error"
    assert answer["error"]["field"] == field
    await api.call("GET", "/v1/campaigns/learned", expect=404)


EDGES = [
    {"audience": {"interests": {"mother_baby": {"min": 0}, "sport": {"min": 1}}}},
    {"audience": {"interests": {"母婴": {"min": 0.5}}}},
    {"audience": {"interests": {f"c{i}": {"min": 0.5} for i in range(256)}}},
    {"min_open_chance": 0},
    {"min_open_chance": 1},
    {"trigger": best_time("23:59", window="23:00-01:00"), "venues": {}},
    {"trigger": best_time("00:00", window="09:45-10:01"), "venues": {}},
    {"trigger": best_time(window="٠٩:٠٠-٢١:٠٠"), "venues": {}},  # Arabic-Indic digits
    {"trigger": {"scheduled": {"best_time": {"fallback": "10:30"}}}, "venues": {}},  # no times
    {"optimize": "thompson"},
    {"optimize": "thompson", "variants": two_arms(0.0), "control_pct": 100},
    {"channel_choice": "auto", "channels": ["sms"]},
    {"categories": [f"c{i}" for i in range(256)]},
]


@pytest.mark.parametrize("over", EDGES, ids=[json.dumps(e)[:40] for e in EDGES])
async def test_edge_values_of_the_learning_fields_are_stored_as_given(
        api: Api, over: dict[str, Any]) -> None:
    await api.call("PUT", "/v1/campaigns/edge", expect=201,
                   json_body=campaign_body("edge", **over))
    _, stored = await api.call("GET", "/v1/campaigns/edge", expect=200)
    for key, value in over.items():
        if key != "variants":
            assert _subset(value, stored[key]), (key, stored[key])


def _subset(given: Any, stored: Any) -> bool:
    if isinstance(given, dict):
        return all(_subset(v, stored[k]) for k, v in given.items())
    if isinstance(given, list):
        return len(given) == len(stored) and all(map(_subset, given, stored))
    return bool(given == stored)


LEARNING_FIELDS = [
    ("audience", "interests"), ("audience", "interests", "baby"),
    ("audience", "interests", "baby", "min"), ("min_open_chance",), ("optimize",),
    ("channel_choice",), ("channels",), ("categories",),
    ("trigger", "scheduled", "best_time"), ("trigger", "scheduled", "best_time", "fallback"),
    ("trigger", "scheduled", "best_time", "window"),
]

# What JSON can carry: no NaN or infinity (a body with them is invalid_json, a 400 for
# the whole body: tests/server/api/test_json_codec.py).
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from(["", "auto", "thompson", "09:15-09:45", "NaN"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=12)


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    body = campaign_body("any", venues={}, trigger=best_time(window="09:00-21:00"),
                         audience={"interests": {"baby": {"min": 0.5}}})
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


@pytest.fixture
async def unthrottled(memory_store: MemoryStore) -> AsyncIterator[Api]:
    """The app on the embedded store, shared by a property's examples: rate limits far
    above what they send."""
    async with serving(memory_store, rate_admin_per_s=1e6, rate_admin_burst=10**6) as api:
        yield api


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(path=st.sampled_from(LEARNING_FIELDS), value=JSON)
async def test_any_json_value_at_a_learning_field_is_stored_or_a_422_naming_that_field(
        unthrottled: Api, path: tuple[str, ...], value: Any) -> None:
    resp, answer = await unthrottled.call("PUT", "/v1/campaigns/any",
                                          json_body=_with(path, value))
    assert resp.status in (200, 201, 422), (resp.status, answer)
    if resp.status == 422:
        field = answer["error"]["field"]
        # The named field is the one set or inside it (audience.interests.baby.min).
        assert field is not None and (field + ".").startswith(
            ".".join(path[:1 + (path[0] in ("audience", "trigger"))])), (field, path)


async def test_training_a_kind_twice_in_one_request_is_a_422_naming_the_repeat(
        api: Api) -> None:
    _, answer = await api.call("POST", "/v1/models/train", role=Role.MANAGER, expect=422,
                               json_body={"kinds": ["interests", "sendtime", "interests"]})
    assert answer["error"]["field"] == "kinds[2]"
    _, listed = await api.call("GET", "/v1/models", role=Role.MANAGER, expect=200)
    assert listed == {"models": []}


@pytest.mark.parametrize("query", ["kind=", "kind=%00", "kind=%E6%AF%8D", "kind=-1",
                                   "kind=INTERESTS", "kind=interests%20", "kind=%FF%FE",
                                   "kind=" + "x" * 4000, "kind=churn&kind=interests"])
async def test_an_odd_model_kind_in_the_query_is_a_422_naming_kind(
        api: Api, query: str) -> None:
    _, answer = await api.call("GET", f"/v1/models?{query}", role=Role.MANAGER, expect=422)
    assert answer["error"]["field"] == "kind"


@pytest.mark.parametrize("body", [[], "interests", 1, {"kinds": "interests"},
                                  {"kinds": [["interests"]]}, {"kinds": [{}]},
                                  {"kinds": ["interests"], "why": 1}])
async def test_an_odd_training_body_is_a_422(api: Api, body: Any) -> None:
    await api.call("POST", "/v1/models/train", role=Role.MANAGER, json_body=body,
                   expect=422)


async def test_the_preview_refuses_unknown_foreign_and_other_kinds_of_campaign(
        api: Api) -> None:
    await api.call("POST", "/v1/campaigns", expect=201, json_body=campaign_body(
        "on_view", venues={}, trigger={"behaviour": {"kind": "view"}}))
    await api.call("POST", "/v1/campaigns", expect=201, json_body=campaign_body(
        "at_ten", venues={}, trigger={"scheduled": {"times": ["10:00"]}}))
    await api.call("POST", "/v1/campaigns", expect=201, json_body=campaign_body(
        "fair", venues={}, trigger=best_time()))
    for cid in ("on_view", "at_ten"):
        _, answer = await api.call("GET", f"/v1/campaigns/{cid}/sendtime-preview",
                                   role=Role.MANAGER, expect=422)
        assert answer["error"]["code"] == "not_best_time"
    for cid in ("%E6%AF%8D", "a%2Fb", "%20"):
        await api.call("GET", f"/v1/campaigns/{cid}/sendtime-preview", role=Role.MANAGER,
                       expect=404)
    _, answer = await api.call("GET", f"/v1/campaigns/{'x' * 300}/sendtime-preview",
                               role=Role.MANAGER, expect=422)
    assert answer["error"]["field"] == "id"
    await api.call("GET", "/v1/campaigns/fair/sendtime-preview", role=Role.MANAGER,
                   tenant="globex", expect=404)
    _, empty = await api.call("GET", "/v1/campaigns/fair/sendtime-preview?users=-1&users=x",
                              role=Role.MANAGER, expect=200)
    assert (empty["users"], empty["times"]) == (0, {})


async def test_a_window_that_wraps_midnight_previews_users_at_its_whole_hours(
        api: Api) -> None:
    fitted = await asyncio.to_thread(fit_sendtime, _habits(), NOON_UTC)
    await api.store.add_model(TENANT, "sendtime", fitted.blob, fitted.evaluation,
                              promote=True)
    for user in ("owl-0", "lunch-0", "newcomer"):
        await api.call("PUT", f"/v1/users/{user}", role=Role.MANAGER, expect=201,
                       json_body={"attributes": {"timezone": "UTC"}})
    await api.call("POST", "/v1/campaigns", expect=201, json_body=campaign_body(
        "late", venues={}, trigger=best_time(window="23:30-00:15")))
    _, preview = await api.call("GET", "/v1/campaigns/late/sendtime-preview",
                                role=Role.MANAGER, expect=200)
    # 00:00 is the window's one whole hour: both users with data are sent then.
    assert preview["times"] == {"00:00": 2, "10:00": 1}
