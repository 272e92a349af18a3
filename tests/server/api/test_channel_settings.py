"""What a tenant may write into its channel settings and a user's contacts (issue 14):
no control character in any URL, host or header-bound text, and MQTT topics only inside
the tenant's namespace, with names-only placeholders. Each refusal is a 422 naming the
field; nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest

from server.channels.inapp import StreamHub
from server.outbox.channels import ChannelRegistry
from tests.server.api.conftest import Api

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "whsec_0123456789abcdef"
CRLF = "\r\nX-Injected: 1"
SERVICE_ACCOUNT = {"type": "service_account", "project_id": "geopush-test",
                   "client_email": "push@geopush-test.iam.gserviceaccount.com",
                   "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"}
APNS = {"team_id": "TEAM123456", "key_id": "KEY1234567", "topic": "com.example.app",
        "private_key": "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n"}
SMS = {"account_sid": "AC1", "auth_token": "t0ken", "from_number": "+14155552671"}


@pytest.mark.parametrize(("channels", "field"), [
    ({"webhook": {"url": f"https://hooks.example.com/geopush{CRLF}", "secret": SECRET}},
     "webhook.url"),
    ({"webhook": {"url": "https://hooks.example.com/\nx", "secret": SECRET}}, "webhook.url"),
    ({"webhook": {"url": "https://hooks.example.com/\tx", "secret": SECRET}}, "webhook.url"),
    ({"webhook": {"url": "https://hooks.example.com/\x85", "secret": SECRET}}, "webhook.url"),
    ({"fcm": {"service_account": SERVICE_ACCOUNT, "base_url": f"https://fcm.example.com{CRLF}"}},
     "fcm.base_url"),
    ({"fcm": {"service_account": SERVICE_ACCOUNT, "token_uri": f"https://oauth.example.com{CRLF}"}},
     "fcm.token_uri"),
    ({"fcm": {"service_account": {**SERVICE_ACCOUNT,
                                  "token_uri": f"https://oauth.example.com/token{CRLF}"}}},
     "fcm.service_account"),
    ({"apns": {**APNS, "base_url": f"https://api.push.apple.com{CRLF}"}}, "apns.base_url"),
    ({"apns": {**APNS, "topic": f"com.example.app{CRLF}"}}, "apns.topic"),
    ({"sms": {**SMS, "base_url": f"https://api.twilio.com{CRLF}"}}, "sms.base_url"),
    ({"email": {"host": "smtp.example.com", "sender": "o@example.com\r\nBcc: all@example.com"}},
     "email.sender"),
    ({"mqtt": {"host": "broker.example.com\r\n", "port": 1883}}, "mqtt.host"),
])
async def test_a_control_character_in_a_tenant_setting_is_refused_naming_the_field(
    api: Api, channels: dict[str, Any], field: str
) -> None:
    _, body = await api.call("PUT", "/v1/channels", json_body=channels, expect=422)
    assert body["error"]["code"] == "validation_error"
    assert body["error"]["field"] == field
    assert body["error"]["details"][0]["code"] == "control_character"
    _, stored = await api.call("GET", "/v1/channels", expect=200)
    assert stored["channels"] == {}


@pytest.mark.parametrize("template", [
    "geopush/globex/users/{user_id}",  # the attack: another tenant's namespace
    "devices/{user_id}",
    "geopush/{user_id}/inbox",
    "geopush/{tenant_id}/{user_id.__class__.__mro__}",  # rendered a Python repr before
    "geopush/{tenant_id}/{user_id!r}",
    "geopush/{tenant_id}/+/{user_id}",
])
async def test_a_topic_template_outside_the_namespace_or_with_more_than_names_is_refused(
    api: Api, template: str
) -> None:
    _, body = await api.call("PUT", "/v1/channels", expect=422, json_body={
        "mqtt": {"host": "127.0.0.1", "port": 1883, "topic_template": template}})
    assert body["error"]["field"] == "mqtt.topic_template"
    assert body["error"]["details"][0]["code"] == "invalid_topic_template"


async def test_a_topic_template_in_the_namespace_is_accepted(api: Api) -> None:
    template = "geopush/{tenant_id}/campaigns/{campaign_id}/users/{user_id}"
    _, body = await api.call("PUT", "/v1/channels", expect=200, json_body={
        "mqtt": {"host": "127.0.0.1", "port": 1883, "topic_template": template}})
    assert body["channels"]["mqtt"]["topic_template"] == template


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_a_users_own_mqtt_topic_must_lie_in_the_tenants_namespace(
    api: Api, method: str
) -> None:
    if method == "PATCH":
        await api.call("PUT", "/v1/users/u1", expect=201, json_body={})
    _, body = await api.call(method, "/v1/users/u1", expect=422, json_body={
        "contacts": {"mqtt_topic": "geopush/globex/users/u1"}})
    assert body["error"]["code"] == "invalid_mqtt_topic"
    assert body["error"]["field"] == "contacts.mqtt_topic"
    await api.call(method, "/v1/users/u1", expect=200 if method == "PATCH" else 201,
                   json_body={"contacts": {"mqtt_topic": "geopush/acme/devices/d-7"}})
    profile = await api.store.get_profile("acme", "u1")
    assert profile is not None
    assert profile.contacts.mqtt_topic == "geopush/acme/devices/d-7"


@pytest.mark.parametrize("stored", [
    {"mqtt": {"host": "127.0.0.1", "port": 1883, "topic_template": "geopush/globex/{user_id}"}},
    {"webhook": {"url": f"https://hooks.example.com/{CRLF}", "secret": SECRET}},
])
async def test_settings_stored_before_these_rules_that_break_them_leave_the_inbox_only(
    stored: dict[str, Any],
) -> None:
    """Written by an older version: the dispatcher sends on none of their channels (and
    logs why) rather than publishing outside the namespace or posting a bad URL."""
    registry = ChannelRegistry(StreamHub(), observer=lambda *_: None, clock=lambda: 0.0)
    try:
        assert registry.for_settings("acme", stored).configured == {"inbox"}
    finally:
        await registry.aclose()
