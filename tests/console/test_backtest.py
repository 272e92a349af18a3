"""Back-test before activating: a candidate campaign replayed over the tenant's recorded
pings says what it would have sent and whom it would have displaced; nothing is sent or
stored. On both stores."""

from __future__ import annotations

import pytest

from server.auth import Role
from tests.console.conftest import Api
from tests.console.test_security import sign_in
from tests.server.api.conftest import (  # noqa: F401
    blockbuster,
    campaign_body,
    ping,
    venue_feature,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _walkers(api: Api, n: int) -> None:
    now = api.clock.now
    await api.call("POST", "/v1/pings", role=Role.SDK, expect=200, json_body={"pings": [
        p for i in range(n) for p in (ping(f"walker-{i}", ts=now - 600 + i),
                                      ping(f"walker-{i}", ts=now - 590 + i))]})


async def test_a_higher_priority_candidate_would_have_displaced_the_live_campaign(
    api: Api,
) -> None:
    await api.call("PUT", "/v1/venues/senate", json_body=venue_feature(), expect=201)
    await api.call("POST", "/v1/campaigns", expect=201,
                   json_body=campaign_body("hello", status="active"))
    await _walkers(api, 3)
    before = await api.store.list_deliveries("acme", limit=100)
    assert len(before) == 3  # the live campaign's pushes
    hour = api.clock.now - api.clock.now % 3600
    assert await api.store.delivery_timeline("acme", "hello", bucket_s=3600) == [
        (hour, "inbox", "pending", 3)]  # what the Results page charts over time
    signed = await sign_in(api)
    rival = campaign_body("rival", priority=10, status="draft",
                          variants=[{"id": "r", "title": "Rival", "body": "Over here"}])
    resp = await api.client.post("/console/api/campaigns/backtest?days=1", json=rival,
                                 headers={**signed.headers, "X-CSRF-Token": signed.csrf})
    answer = await resp.json()
    assert resp.status == 200, answer
    assert (answer["pings"], answer["users"]) == (6, 3)
    report = answer["backtest"]
    assert report["pushes"] == 3 and report["users_reached"] == 3
    assert report["pushes_by_variant"] == {"r": 3}
    assert report["displaced"]["by_priority"] == {"hello": 3}
    assert report["live_pushes_without"] == 3
    # Nothing was sent or stored by the back-test.
    assert len(await api.store.list_deliveries("acme", limit=100)) == 3
    await api.call("GET", "/v1/campaigns/rival", expect=404)


async def test_a_back_test_checks_the_campaign_as_the_api_does_and_needs_the_token(
    api: Api,
) -> None:
    signed = await sign_in(api)
    bad = campaign_body("rival", variants=[{"id": "r", "title": "{{ oops", "body": "x"}])
    resp = await api.client.post("/console/api/campaigns/backtest", json=bad,
                                 headers={**signed.headers, "X-CSRF-Token": signed.csrf})
    answer = await resp.json()
    assert resp.status == 422
    assert answer["error"]["field"] == "variants[0].title"
    no_token = await api.client.post("/console/api/campaigns/backtest",
                                     json=campaign_body("rival"), headers=signed.headers)
    assert no_token.status == 403


async def test_a_back_test_without_recorded_pings_says_so(api: Api) -> None:
    signed = await sign_in(api)
    resp = await api.client.post("/console/api/campaigns/backtest?days=7",
                                 json=campaign_body("rival"),
                                 headers={**signed.headers, "X-CSRF-Token": signed.csrf})
    answer = await resp.json()
    assert resp.status == 200, answer
    assert (answer["pings"], answer["backtest"]) == (0, None)


async def test_checking_a_campaign_previews_variants_and_payloads_and_stores_nothing(
    api: Api,
) -> None:
    signed = await sign_in(api)
    body = campaign_body("tea", offer={"code": "TEA20"}, variants=[
        {"id": "zh", "title": "{{ user.first_name or '朋友' }}，欢迎", "body": "八折"},
        {"id": "en", "title": "Hello {{ user.first_name or 'there' }}", "body": "20% off",
         "image_url": "https://example.com/tea.png", "image_alt": "A cup of tea",
         "deep_link": "shop://tea"}])
    resp = await api.client.post("/console/api/campaigns/check", json=body,
                                 headers={**signed.headers, "X-CSRF-Token": signed.csrf})
    answer = await resp.json()
    assert resp.status == 200, answer
    titles = {(p["variant_id"], p["user_id"]): p["title"] for p in answer["previews"]}
    assert titles[("zh", "sample-young")] == "小红，欢迎"
    assert titles[("en", "sample-unknown")] == "Hello there"
    [zh, en] = answer["payloads"]
    assert zh["channels"] == ["inbox"]
    assert zh["payload"]["data"]["campaign_id"] == "tea"
    assert en["payload"]["data"]["extra"] == {"code": "TEA20"}
    assert en["payload"]["rich"]["image_url"] == "https://example.com/tea.png"
    assert "rich" not in zh["payload"]  # plain text stays plain
    assert answer["previews"][-1]["rich"]["deep_link"] == "shop://tea"
    await api.call("GET", "/v1/campaigns/tea", expect=404)
