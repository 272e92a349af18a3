"""The campaign preview's channel payloads: each channel of the campaign shows the request
body it would send (FCM, APNs, email, SMS, and the one JSON shape of webhook, MQTT and
in-app), built by the channels' own code, addressed to sample addresses marked as such,
and nothing is sent or stored."""

from __future__ import annotations

from typing import Any

import pytest

from server.console.payloads import SAMPLE_RECIPIENT
from tests.console.conftest import Api
from tests.console.test_security import sign_in
from tests.server.api.conftest import blockbuster, campaign_body  # noqa: F401

pytestmark = pytest.mark.asyncio(loop_scope="session")

TEA = campaign_body(
    "tea", offer={"code": "TEA20"}, offer_ttl_s=1800,
    channels=["fcm", "apns", "email", "sms", "webhook"],
    variants=[
        {"id": "zh", "title": "{{ user.first_name or '朋友' }}，欢迎", "body": "八折"},
        {"id": "en", "title": "Hello {{ user.first_name or 'there' }}", "body": "20% off",
         "image_url": "https://example.com/tea.png", "image_alt": "A cup of tea",
         "deep_link": "https://example.com/tea"}])


async def _checked(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    signed = await sign_in(api)
    resp = await api.client.post("/console/api/campaigns/check", json=body,
                                 headers={**signed.headers, "X-CSRF-Token": signed.csrf})
    answer: dict[str, Any] = await resp.json()
    assert resp.status == 200, answer
    return answer


def _requests(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["channel"]: r for r in payload["requests"]}


async def test_the_preview_shows_each_channels_request_in_the_campaigns_order(
    memory_api: Api,
) -> None:
    answer = await _checked(memory_api, TEA)
    [zh, _] = answer["payloads"]
    assert [r["channel"] for r in zh["requests"]] == ["fcm", "apns", "email", "sms", "webhook"]
    fcm = _requests(zh)["fcm"]["body"]["message"]
    assert fcm["notification"] == {"title": "小红，欢迎", "body": "八折"}
    assert fcm["data"]["campaign_id"] == "tea" and fcm["data"]["code"] == "TEA20"
    assert fcm["android"]["ttl"] == "1800s"  # the offer's lifetime, sent at once
    apns = _requests(zh)["apns"]["body"]
    assert apns["aps"]["alert"] == {"title": "小红，欢迎", "body": "八折"}
    assert apns["aps"]["thread-id"] == "tea" and apns["code"] == "TEA20"
    assert _requests(zh)["webhook"]["body"] == zh["payload"]


async def test_rich_content_reaches_fcm_apns_email_and_sms_as_each_shows_it(
    memory_api: Api,
) -> None:
    answer = await _checked(memory_api, TEA)
    en = _requests(answer["payloads"][1])
    fcm = en["fcm"]["body"]["message"]
    assert fcm["notification"]["image"] == "https://example.com/tea.png"
    assert fcm["apns"]["payload"]["aps"]["mutable-content"] == 1
    assert fcm["data"]["deep_link"] == "https://example.com/tea"
    apns = en["apns"]["body"]
    assert (apns["aps"]["mutable-content"], apns["image_url"], apns["image_alt"]) == (
        1, "https://example.com/tea.png", "A cup of tea")
    mail = en["email"]["body"]
    assert mail["headers"]["Subject"].startswith("Hello")
    assert mail["headers"]["To"] == "sample.person@example.com"
    assert '<img src="https://example.com/tea.png" alt="A cup of tea"' in mail["text/html"]
    assert "Open: https://example.com/tea" in mail["text/plain"]
    sms = en["sms"]
    assert sms["format"] == "form"
    assert sms["body"]["To"] == "+8613800138000"
    assert sms["body"]["Body"].endswith("\nhttps://example.com/tea")  # the link kept whole


async def test_the_addresses_are_samples_and_say_so(memory_api: Api) -> None:
    answer = await _checked(memory_api, TEA)
    zh = _requests(answer["payloads"][0])
    assert zh["fcm"]["sample_address"] == SAMPLE_RECIPIENT.fcm_token
    assert zh["fcm"]["body"]["message"]["token"].startswith("SAMPLE-")
    assert zh["apns"]["sample_address"] == SAMPLE_RECIPIENT.apns_token
    assert zh["email"]["sample_address"].endswith("@example.com")
    assert zh["sms"]["sample_address"] == SAMPLE_RECIPIENT.phone
    assert zh["webhook"]["sample_address"] is None  # the tenant's URL, not a person's
    await memory_api.call("GET", "/v1/campaigns/tea", expect=404)
    assert await memory_api.store.list_deliveries("acme", limit=10) == []
