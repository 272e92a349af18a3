"""SMS against a local aiohttp server speaking Twilio's Messages resource."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.channels.base import (
    ChannelConfigError,
    Delivered,
    Failed,
    OutboundMessage,
    QuietHours,
    Recipient,
    Retry,
    TokenInvalid,
)
from server.channels.sms import (
    MAX_BODY_CHARS,
    SmsChannel,
    in_recipients_quiet_hours,
    normalise_phone,
    sms_text,
)
from tests.server.channels.builders import NOW, SHOP_LINK, Clock, free_port, message, rich_offer

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "twilio-auth-token"
FROM = "+14155552671"
Answer = tuple[int, dict[str, Any], dict[str, str]]


@dataclass
class Twilio:
    url: str = ""
    answers: list[Answer] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)


def twilio_error(code: int, text: str, status: int = 400,
                 headers: dict[str, str] | None = None) -> Answer:
    return status, {"code": code, "message": text, "status": status,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}"}, headers or {}


@asynccontextmanager
async def twilio() -> AsyncIterator[Twilio]:
    tw = Twilio()

    async def create(request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"code": 20003, "message": "Authenticate",
                                      "status": 401}, status=401)
        if request.content_type != "application/x-www-form-urlencoded":
            return web.json_response({"code": 0, "message": "form expected"}, status=415)
        form = {k: str(v) for k, v in (await request.post()).items()}
        tw.requests.append(form)
        if tw.answers:
            status, body, headers = tw.answers.pop(0)
            return web.json_response(body, status=status, headers=headers)
        return web.json_response(
            {"sid": f"SM{len(tw.requests):032d}", "status": "queued", "to": form["To"],
             "body": form["Body"]}, status=201)

    app = web.Application()
    app.router.add_post(f"/2010-04-01/Accounts/{SID}/Messages.json", create)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    tw.url = str(server.make_url(""))
    try:
        yield tw
    finally:
        await server.close()


@asynccontextmanager
async def setup(**kwargs: Any) -> AsyncIterator[tuple[Twilio, SmsChannel]]:
    async with twilio() as tw:
        options: dict[str, Any] = {"account_sid": SID, "auth_token": TOKEN,
                                   "base_url": tw.url, "clock": Clock(), **kwargs}
        if "messaging_service_sid" not in options:
            options.setdefault("from_number", FROM)
        ch = SmsChannel(**options)
        try:
            yield tw, ch
        finally:
            await ch.aclose()


def to(phone: str, **kwargs: Any) -> OutboundMessage:
    return message(recipient=Recipient(phone=phone), **kwargs)


async def test_text_is_posted_in_twilio_shape_with_the_number_in_e164() -> None:
    async with setup(default_region="CN") as (tw, ch):
        result = await ch.send(to("138 1234 5678"))
    assert result == Delivered("SM" + "1".zfill(32))
    assert tw.requests == [{
        "To": "+8613812345678",
        "From": FROM,
        "Body": "Baby week at Joy City\n20% off diapers on level 3 until 21:00",
    }]


async def test_messaging_service_sends_with_a_validity_period_from_the_expiry() -> None:
    async with setup(messaging_service_sid="MG123") as (tw, ch):
        result = await ch.send(to("+358401234567", expires_at=NOW + 1200))
    assert isinstance(result, Delivered)
    [form] = tw.requests
    assert form["MessagingServiceSid"] == "MG123"
    assert "From" not in form
    assert form["ValidityPeriod"] == "1200"


async def test_validity_period_is_capped_at_twilios_four_hours() -> None:
    async with setup(messaging_service_sid="MG123") as (tw, ch):
        await ch.send(to("+358401234567", expires_at=NOW + 86_400))
    assert tw.requests[0]["ValidityPeriod"] == "14400"


@pytest.mark.parametrize("phone", ["12345", "+86 123", "call me maybe", "+1 555 0100"])
async def test_invalid_number_fails_permanently_without_a_request(phone: str) -> None:
    async with setup() as (tw, ch):
        result = await ch.send(to(phone))
    assert isinstance(result, Failed)
    assert result.permanent
    assert tw.requests == []


@pytest.mark.parametrize(
    "answer",
    [twilio_error(21211, "The 'To' number +8613800000000 is not a valid phone number."),
     twilio_error(21614, "'To' number is not a valid mobile number"),
     twilio_error(21612, "The 'To' phone number is not currently reachable")],
    ids=["21211", "21614", "21612"],
)
async def test_number_twilio_calls_invalid_is_reported_invalid(
    answer: Answer,
) -> None:
    async with setup() as (tw, ch):
        tw.answers.append(answer)
        result = await ch.send(to("+8613812345678"))
    assert isinstance(result, TokenInvalid)
    assert str(answer[1]["code"]) in result.reason


async def test_recipient_who_replied_stop_fails_permanently() -> None:
    async with setup() as (tw, ch):
        tw.answers.append(twilio_error(21610, "Attempt to send to unsubscribed recipient"))
        result = await ch.send(to("+8613812345678"))
    assert result == Failed("twilio 400 21610: Attempt to send to unsubscribed recipient",
                            permanent=True)


@pytest.mark.parametrize(
    ("answer", "after_s"),
    [(twilio_error(20429, "Too Many Requests", 429, {"Retry-After": "3"}), 3.0),
     (twilio_error(20500, "Internal Server Error", 500), None),
     (twilio_error(20503, "Service Unavailable", 503, {"Retry-After": "40"}), 40.0)],
)
async def test_rate_limit_and_outages_are_retried(
    answer: Answer, after_s: float | None,
) -> None:
    async with setup() as (tw, ch):
        tw.answers.append(answer)
        result = await ch.send(to("+8613812345678"))
    assert isinstance(result, Retry)
    assert result.after_s == after_s


async def test_other_client_error_fails_permanently() -> None:
    async with setup() as (tw, ch):
        tw.answers.append(twilio_error(21602, "Message body is required."))
        result = await ch.send(to("+8613812345678"))
    assert result == Failed("twilio 400 21602: Message body is required.", permanent=True)


async def test_wrong_credentials_fail_as_config_error() -> None:
    async with setup(auth_token="wrong") as (tw, ch):
        result = await ch.send(to("+8613812345678"))
    assert result == Failed("twilio 401 20003: Authenticate", permanent=False)
    assert tw.requests == []


async def test_quiet_hours_guard_stops_the_text_at_send_time() -> None:
    asked: list[tuple[str, float]] = []

    def night_in_shanghai(msg: OutboundMessage, now: float) -> bool:
        asked.append((msg.user_id, now))
        return True

    async with setup(in_quiet_hours=night_in_shanghai) as (tw, ch):
        result = await ch.send(to("+8613812345678"))
    assert result == Failed("quiet_hours", permanent=True)
    assert asked == [("u1", NOW)]
    assert tw.requests == []


async def test_quiet_hours_guard_lets_daytime_texts_through() -> None:
    async with setup(in_quiet_hours=lambda msg, now: False) as (tw, ch):
        assert isinstance(await ch.send(to("+8613812345678")), Delivered)
    assert len(tw.requests) == 1


# NOW is 19:06 in Shanghai, 13:06 in Helsinki.
@pytest.mark.parametrize(("window", "zone", "quiet"), [
    ("19:00-08:00", "Asia/Shanghai", True),
    ("22:00-08:00", "Asia/Shanghai", False),
    ("12:00-14:00", "Europe/Helsinki", True),
    ("13:10-13:00", "Europe/Helsinki", False),  # wraps midnight, 13:06 is outside
])
def test_quiet_hours_are_read_in_the_recipients_zone(window: str, zone: str,
                                                     quiet: bool) -> None:
    msg = replace(to("+8613812345678"), quiet_hours=QuietHours(window, zone))
    assert in_recipients_quiet_hours(msg, NOW) is quiet


async def test_by_default_the_messages_quiet_hours_stop_the_text() -> None:
    night = replace(to("+8613812345678"), quiet_hours=QuietHours("19:00-08:00", "Asia/Shanghai"))
    day = replace(night, quiet_hours=QuietHours("22:00-08:00", "Asia/Shanghai"))
    async with setup() as (tw, ch):
        assert await ch.send(night) == Failed("quiet_hours", permanent=True)
        assert isinstance(await ch.send(day), Delivered)
        assert isinstance(await ch.send(to("+8613812345678")), Delivered)  # no quiet hours
    assert len(tw.requests) == 2


async def test_long_text_is_cut_to_twilios_limit() -> None:
    async with setup() as (tw, ch):
        await ch.send(to("+8613812345678", body="优惠" * 1000))
    body = tw.requests[0]["Body"]
    assert len(body) == 1600
    assert body.endswith("…")


async def test_unreachable_provider_is_retried() -> None:
    ch = SmsChannel(account_sid=SID, auth_token=TOKEN, from_number=FROM, clock=Clock(),
                    base_url=f"http://127.0.0.1:{free_port()}")
    result = await ch.send(to("+8613812345678"))
    await ch.aclose()
    assert isinstance(result, Retry)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"from_number": FROM, "messaging_service_sid": "MG1"}, "exactly one"),
     ({}, "exactly one"),
     ({"from_number": "12"}, "from_number"),
     ({"from_number": FROM, "auth_token": ""}, "auth_token")],
)
def test_unusable_configuration_is_refused_at_construction(
    kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ChannelConfigError, match=match):
        SmsChannel(**{"account_sid": SID, "auth_token": TOKEN, **kwargs})


@pytest.mark.parametrize(
    ("number", "region", "e164"),
    [("+86 138-1234-5678", None, "+8613812345678"), ("(415) 555-2671", "US", "+14155552671"),
     ("040 123 4567", "FI", "+358401234567"), ("040 123 4567", None, None), ("", "CN", None)],
)
def test_numbers_are_normalised_to_e164(number: str, region: str | None,
                                        e164: str | None) -> None:
    assert normalise_phone(number, region) == e164


async def test_rich_text_ends_with_the_first_web_link() -> None:
    # The app link (joycity://) is not tappable in a text message: the shop's web page
    # from the first button is sent instead.
    async with setup(default_region="CN") as (tw, ch):
        result = await ch.send(to("138 1234 5678", rich=rich_offer()))
    assert isinstance(result, Delivered)
    assert tw.requests[0]["Body"] == (
        f"Baby week at Joy City\n20% off diapers on level 3 until 21:00\n{SHOP_LINK}")


async def test_long_text_is_cut_so_that_the_link_stays_whole() -> None:
    long_body = "Diapers, wipes and bottles on offer. " * 60
    async with setup(default_region="CN") as (tw, ch):
        await ch.send(to("138 1234 5678", body=long_body,
                         rich=rich_offer(deep_link=SHOP_LINK, buttons=())))
    sent = tw.requests[0]["Body"]
    assert len(sent) == MAX_BODY_CHARS
    text, link = sent.rsplit("\n", 1)
    assert link == SHOP_LINK and text.endswith("…")


def test_a_link_longer_than_half_the_message_is_left_out() -> None:
    huge = "https://joycity.example/o?" + "x" * 900
    sent = sms_text(message(rich=rich_offer(deep_link=huge, buttons=())))
    assert sent == "Baby week at Joy City\n20% off diapers on level 3 until 21:00"
