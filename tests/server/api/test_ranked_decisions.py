"""Campaigns of equal priority ranked by the tenant's promoted interest model, decided by
the service on both stores: at the Senate Square (Helsinki) the runner gets the sports
offer and the reader the book offer, each line giving the expected values."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from server.auth import Role
from server.models import TrainingData, fit_interests
from tests.server.api.conftest import NOON_UTC, Api, campaign_body, ping, venue_feature
from tests.server.conftest import TENANT
from triggers.learning.coding import VIEW, Vocabulary

pytestmark = pytest.mark.asyncio(loop_scope="session")

DAY_S = 86_400.0


def _readers_and_runners() -> TrainingData:
    """Three weeks of views: runners view sports daily and books once a week, readers the
    other way round."""
    users, categories = Vocabulary(), Vocabulary()
    rows: list[tuple[str, str, float]] = []
    for n in range(5):
        for day in range(1, 22):
            t = NOON_UTC - day * DAY_S
            rows += [(f"runner-{n}", "sports", t), (f"reader-{n}", "books", t)]
            if day % 7 == 0:
                rows += [(f"runner-{n}", "books", t + 60), (f"reader-{n}", "sports", t + 60)]
    return TrainingData(users, categories, users.index([u for u, _, _ in rows]),
                        categories.index([c for _, c, _ in rows]),
                        np.full(len(rows), VIEW, dtype=np.int8),
                        np.array([t for _, _, t in rows], dtype=np.float64))


async def walk_in(api: Api, user: str) -> list[str]:
    now = api.clock.now
    _, body = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={
        "pings": [ping(user=user, ts=now - 20), ping(user=user, ts=now - 10)]})
    return [d["campaign_id"] for d in body["deliveries"]]


async def lines_of(api: Api, user: str) -> dict[str, tuple[str, str | None]]:
    _, body = await api.call("GET", f"/v1/users/{user}/decisions", role=Role.MANAGER,
                             expect=200)
    (decision,) = body["decisions"]
    return {c["campaign_id"]: (c["reason"], c.get("detail")) for c in decision["considered"]}


async def test_equal_priority_offers_go_to_the_user_likeliest_to_value_them(api: Api) -> None:
    fitted = await asyncio.to_thread(fit_interests, _readers_and_runners(), NOON_UTC)
    await api.store.add_model(TENANT, "interests", fitted.blob, fitted.evaluation,
                              promote=True)
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    for offer, category in (("book_sale", "books"), ("run_club", "sports")):
        await api.call("POST", "/v1/campaigns", expect=201, json_body=campaign_body(
            offer, status="active", categories=[category]))
    assert await walk_in(api, "runner-1") == ["run_club"]
    assert await walk_in(api, "reader-1") == ["book_sale"]
    runner: dict[str, Any] = await lines_of(api, "runner-1")
    reason, detail = runner["run_club"]
    assert reason == "sent"
    assert detail is not None and detail.startswith("ranked by expected value 0.")
    assert "(interest in sports 0." in detail and " over book_sale 0." in detail
    reason, detail = runner["book_sale"]
    assert reason == "lower_priority"
    assert detail is not None and detail.startswith("run_club won: expected value 0.")
