"""Campaigns with conditions on learned predictions, decided by the service on both
stores: an ``audience.interests`` campaign before any interest model is promoted, and
``min_open_chance`` against the tenant's promoted send-time model (the night owl who
walks into the mall at noon is skipped as ``unlikely_to_open``; the lunch-time user is
sent)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from server.auth import Role
from server.models import TrainingData, fit_sendtime
from tests.server.api.conftest import NOON_UTC, Api, campaign_body, ping, venue_feature
from tests.server.conftest import TENANT
from triggers.learning.coding import APP_OPEN, Vocabulary

pytestmark = pytest.mark.asyncio(loop_scope="session")

DAY_S = 86_400.0


def _habits() -> TrainingData:
    """30 days: 20 night owls opening the app around 03:00 UTC, 20 lunch-time users
    around 12:00 UTC, three opens a day each."""
    users = Vocabulary()
    rows: list[tuple[str, float]] = []
    for n in range(20):
        for day in range(1, 31):
            for k in range(3):
                rows.append((f"owl-{n}", NOON_UTC - day * DAY_S - 9 * 3600 + k * 600))
                rows.append((f"lunch-{n}", NOON_UTC - day * DAY_S + k * 600))
    user = users.index([u for u, _ in rows])
    return TrainingData(users, Vocabulary(), user, np.full(len(rows), -1, dtype=np.int64),
                        np.full(len(rows), APP_OPEN, dtype=np.int8),
                        np.array([t for _, t in rows], dtype=np.float64))


async def walk_in(api: Api, user: str) -> dict[str, Any]:
    now = api.clock.now
    _, body = await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={
        "pings": [ping(user=user, ts=now - 20), ping(user=user, ts=now - 10)]})
    return dict(body)


async def line_of(api: Api, user: str) -> tuple[str, str | None]:
    _, body = await api.call("GET", f"/v1/users/{user}/decisions", role=Role.MANAGER,
                             expect=200)
    (decision,) = body["decisions"]
    (line,) = decision["considered"]
    return line["reason"], line.get("detail")


async def test_an_interest_audience_reaches_nobody_before_an_interest_model(api: Api) -> None:
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    await api.call("POST", "/v1/campaigns", expect=201, json_body=campaign_body(
        "baby_fair", status="active", audience={"interests": {"mother_baby": {"min": 0.6}}}))
    assert (await walk_in(api, "mum-1"))["deliveries"] == []
    assert await line_of(api, "mum-1") == (
        "interest_below_threshold", "no interest model promoted for the tenant yet")


async def test_min_open_chance_skips_the_night_owl_at_noon_and_sends_at_lunch(
        api: Api) -> None:
    fitted = await asyncio.to_thread(fit_sendtime, _habits(), NOON_UTC)
    await api.store.add_model(TENANT, "sendtime", fitted.blob, fitted.evaluation,
                              promote=True)
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    await api.call("POST", "/v1/campaigns", expect=201, json_body=campaign_body(
        "lunch_deal", status="active", min_open_chance=0.9))
    assert (await walk_in(api, "owl-3"))["deliveries"] == []
    reason, detail = await line_of(api, "owl-3")
    assert reason == "unlikely_to_open"
    assert detail is not None and detail.startswith("chance of opening now 0.")
    assert [d["campaign_id"] for d in (await walk_in(api, "lunch-3"))["deliveries"]] == [
        "lunch_deal"]


BEST_TIME_FAIR = {"scheduled": {"times": ["10:00"], "best_time": {
    "fallback": "10:30", "window": "09:00-21:00"}}}


async def test_the_sendtime_preview_counts_users_with_data_and_their_hours(api: Api) -> None:
    fitted = await asyncio.to_thread(fit_sendtime, _habits(), NOON_UTC)
    await api.store.add_model(TENANT, "sendtime", fitted.blob, fitted.evaluation,
                              promote=True)
    for user in ("lunch-0", "lunch-1", "newcomer"):
        await api.call("PUT", f"/v1/users/{user}", role=Role.MANAGER, expect=201, json_body={
            "attributes": {"timezone": "Europe/Helsinki"}})
    await api.call("POST", "/v1/campaigns", expect=201, json_body=campaign_body(
        "fair", trigger=BEST_TIME_FAIR, venues={}))
    _, preview = await api.call("GET", "/v1/campaigns/fair/sendtime-preview",
                                role=Role.MANAGER, expect=200)
    # Lunch at 12:00 UTC is 14:00 in Helsinki in winter; the newcomer has no data.
    assert preview == {"campaign_id": "fair", "users": 3, "with_data": 2, "fallback": 1,
                       "fallback_time": "10:30", "window": "09:00-21:00",
                       "times": {"10:30": 1, "14:00": 2}}


async def test_the_sendtime_preview_needs_a_best_time_campaign(api: Api) -> None:
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    await api.call("POST", "/v1/campaigns", expect=201, json_body=campaign_body("plain"))
    _, answer = await api.call("GET", "/v1/campaigns/plain/sendtime-preview",
                               role=Role.MANAGER, expect=422)
    assert answer["error"]["field"] == "trigger.scheduled.best_time"
    await api.call("GET", "/v1/campaigns/nope/sendtime-preview", role=Role.MANAGER,
                   expect=404)
