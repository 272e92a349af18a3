"""GET /v1/models and POST /v1/models/train on both stores: a training run from the
tenant's posted behaviour events, its versions listed with their evaluation, roles,
bad input."""

from __future__ import annotations

from typing import Any

import pytest

from server.auth import Role
from tests.server.api.conftest import NOON_UTC, Api

pytestmark = pytest.mark.asyncio(loop_scope="session")

DAY_S = 86_400.0


def app_open(user: str, at: float) -> dict[str, Any]:
    return {"user_id": user, "ts": at, "kind": "app_open"}


async def test_a_training_run_is_listed_with_its_evaluation(api: Api) -> None:
    _, empty = await api.call("GET", "/v1/models", role=Role.MANAGER, expect=200)
    assert empty == {"models": []}
    events = [app_open(f"u{u}", NOON_UTC - d * DAY_S + (u % 3) * 4 * 3600)
              for u in range(12) for d in range(1, 10)]
    await api.call("POST", "/v1/events", role=Role.SDK, json_body={"events": events},
                   expect=200)
    _, trained = await api.call("POST", "/v1/models/train", role=Role.MANAGER, expect=200)
    assert [m["kind"] for m in trained["models"]] == ["interests", "sendtime"]
    assert all(m["version"] == 1 for m in trained["models"])
    assert all(m["evaluation"]["events"] == len(events) for m in trained["models"])
    assert all("verdict" in m["evaluation"] for m in trained["models"])
    _, again = await api.call("POST", "/v1/models/train", role=Role.ADMIN,
                              json_body={"kinds": ["sendtime"]}, expect=200)
    assert [(m["kind"], m["version"]) for m in again["models"]] == [("sendtime", 2)]
    _, listed = await api.call("GET", "/v1/models?kind=sendtime", role=Role.MANAGER,
                               expect=200)
    assert [m["version"] for m in listed["models"]] == [2, 1]
    _, other = await api.call("GET", "/v1/models", role=Role.MANAGER, tenant="globex",
                              expect=200)
    assert other == {"models": []}


async def test_an_sdk_key_may_neither_list_nor_train_models(api: Api) -> None:
    await api.call("GET", "/v1/models", role=Role.SDK, expect=403)
    await api.call("POST", "/v1/models/train", role=Role.SDK, expect=403)


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("GET", "/v1/models?kind=churn", None, "kind"),
    ("POST", "/v1/models/train", {"kinds": ["interests", "churn"]}, "kinds[1]"),
    ("POST", "/v1/models/train", {"kinds": []}, "kinds"),
])
async def test_an_unknown_model_kind_is_refused_naming_the_field(
        api: Api, method: str, path: str, body: Any, field: str) -> None:
    _, answer = await api.call(method, path, role=Role.MANAGER, json_body=body, expect=422)
    assert answer["error"]["field"] == field


async def test_a_tenant_without_events_gets_versions_that_are_not_promoted(api: Api) -> None:
    _, trained = await api.call("POST", "/v1/models/train", role=Role.MANAGER,
                                json_body={"kinds": ["interests", "sendtime"]}, expect=200)
    assert [(m["kind"], m["promoted"], m["evaluation"]["events"])
            for m in trained["models"]] == [("interests", False, 0), ("sendtime", False, 0)]
