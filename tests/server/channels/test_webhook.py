"""Webhooks against a real aiohttp receiver on 127.0.0.1 that verifies every signature."""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from server.channels import webhook
from server.channels.base import (
    Delivered,
    Failed,
    Recipient,
    Retry,
    SendCounters,
    WebhookTarget,
)
from server.channels.webhook import WebhookChannel, sign, verify_signature
from tests.server.channels.builders import DIAPERS_IMAGE, NOW, Clock, free_port, message, rich_offer

SECRET = "whsec_5f1c0de"


@dataclass
class Receiver:
    """A tenant's endpoint: answers from a script and keeps every request it verified."""

    url: str
    answers: list[tuple[int, dict[str, str]]]
    requests: list[tuple[dict[str, str], bytes, bool]] = field(default_factory=list)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body, _ in self.requests]


@asynccontextmanager
async def receiver(
    *answers: tuple[int, dict[str, str]], verify_at: float = NOW, delay_s: float = 0.0
) -> AsyncIterator[Receiver]:
    """An aiohttp server answering ``answers`` in order, then 200s."""
    rx = Receiver(url="", answers=list(answers))

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        ok = verify_signature(
            SECRET,
            request.headers["X-Geopush-Timestamp"],
            body,
            request.headers["X-Geopush-Signature"],
            now=verify_at,
        )
        rx.requests.append((dict(request.headers), body, ok))
        if delay_s:
            await asyncio.sleep(delay_s)  # a slow receiver is the input of the timeout tests
        if not ok:
            return web.Response(status=401, text="bad signature")
        status, headers = rx.answers.pop(0) if rx.answers else (200, {})
        return web.Response(status=status, headers=headers)

    app = web.Application()
    app.router.add_post("/hooks/geopush", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    rx.url = str(server.make_url("/hooks/geopush"))
    try:
        yield rx
    finally:
        await server.close()


def to(rx: Receiver | str, secret: str = SECRET) -> Recipient:
    return Recipient(webhook=WebhookTarget(url=rx if isinstance(rx, str) else rx.url,
                                           secret=secret))


@asynccontextmanager
async def channel(**kwargs: Any) -> AsyncIterator[WebhookChannel]:
    ch = WebhookChannel(**{"clock": Clock(), **kwargs})
    try:
        yield ch
    finally:
        await ch.aclose()


async def test_receiver_verifies_the_signature_and_gets_the_payload() -> None:
    msg = message(extra={"coupon": "BABY20"})
    async with receiver() as rx, channel() as ch:
        result = await ch.send(replace(msg, recipient=to(rx)))

    assert isinstance(result, Delivered)
    [(headers, _, verified)] = rx.requests
    assert verified
    assert headers["X-Geopush-Timestamp"] == str(int(NOW))
    assert headers["X-Geopush-Idempotency-Key"] == "evt-42:diapers"
    assert headers["Content-Type"] == "application/json"
    assert rx.bodies[0] == msg.payload()
    assert rx.bodies[0]["data"]["extra"] == {"coupon": "BABY20"}


async def test_server_error_is_retried_and_the_retry_is_the_same_delivery() -> None:
    async with receiver((500, {})) as rx, channel() as ch:
        first = await ch.send(message(recipient=to(rx)))
        second = await ch.send(message(recipient=to(rx)))

    assert isinstance(first, Retry)
    assert first.after_s is None
    assert "500" in first.reason
    assert isinstance(second, Delivered)
    (h1, b1, _), (h2, b2, _) = rx.requests
    assert b1 == b2
    assert h1["X-Geopush-Idempotency-Key"] == h2["X-Geopush-Idempotency-Key"]


@pytest.mark.parametrize(
    ("status", "retry_after", "after_s"),
    [
        (429, "7", 7.0),
        (503, "120", 120.0),
        (503, email.utils.formatdate(NOW + 90, usegmt=True), 90.0),
        (429, email.utils.formatdate(NOW - 30, usegmt=True), 0.0),  # already past: now
        (503, "soon", None),  # unreadable: the dispatcher's own backoff
        (502, "", None),
    ],
)
async def test_retry_after_is_honoured_in_the_result(
    status: int, retry_after: str, after_s: float | None
) -> None:
    async with receiver((status, {"Retry-After": retry_after})) as rx, channel() as ch:
        result = await ch.send(message(recipient=to(rx)))

    assert result == Retry(f"webhook answered {status}", after_s=after_s)


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422, 301])
async def test_client_errors_and_redirects_fail_permanently(status: int) -> None:
    headers = {"Location": "https://example.invalid/"} if status == 301 else {}
    async with receiver((status, headers)) as rx, channel() as ch:
        result = await ch.send(message(recipient=to(rx)))

    assert result == Failed(f"webhook answered {status}", permanent=True)
    assert len(rx.requests) == 1  # the redirect was not followed


async def test_request_timeout_status_is_retried() -> None:
    async with receiver((408, {})) as rx, channel() as ch:
        result = await ch.send(message(recipient=to(rx)))
    assert isinstance(result, Retry)


async def test_slow_receiver_times_out_into_a_retry() -> None:
    async with receiver(delay_s=1.0) as rx, channel(timeout_s=0.2) as ch:
        result = await ch.send(message(recipient=to(rx)))
    assert isinstance(result, Retry)
    assert "timeout" in result.reason


async def test_nobody_listening_is_retried() -> None:
    async with channel() as ch:
        result = await ch.send(message(recipient=to(f"http://127.0.0.1:{free_port()}/h")))
    assert isinstance(result, Retry)
    assert "network error" in result.reason


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/h", "not a url", "http://"])
async def test_unusable_url_fails_permanently_without_a_request(url: str) -> None:
    async with channel() as ch:
        result = await ch.send(message(recipient=to(url)))
    assert isinstance(result, Failed)
    assert result.permanent


async def test_recipient_without_webhook_fails_permanently() -> None:
    async with channel() as ch:
        result = await ch.send(message())
    assert result == Failed("recipient has no webhook URL", permanent=True)


async def test_expired_offer_is_not_posted() -> None:
    async with receiver() as rx, channel() as ch:
        result = await ch.send(message(recipient=to(rx), expires_at=NOW - 1))
    assert result == Failed("expired", permanent=True)
    assert rx.requests == []


async def test_wrong_secret_is_refused_by_the_receiver() -> None:
    async with receiver() as rx, channel() as ch:
        result = await ch.send(message(recipient=to(rx, secret="not-the-tenants")))
    assert result == Failed("webhook answered 401", permanent=True)
    assert [ok for _, _, ok in rx.requests] == [False]


async def test_observer_counts_sends_and_failures() -> None:
    counters = SendCounters()
    async with receiver((503, {}), (400, {})) as rx, channel(observer=counters) as ch:
        for _ in range(3):
            await ch.send(message(recipient=to(rx)))
    assert counters.sends("webhook") == 3
    assert counters.failures("webhook") == 2
    assert counters.counts["webhook", "retry"] == 1
    assert counters.counts["webhook", "failed"] == 1


# ------------------------------------------------------------------ verification


BODY = b'{"delivery_id":"d1","title":"Hi"}'


def test_signature_verifies_within_the_replay_window() -> None:
    sig = sign(SECRET, 1_795_000_000, BODY)
    assert re.fullmatch(r"v1=[0-9a-f]{64}", sig)
    assert verify_signature(SECRET, "1795000000", BODY, sig, now=1_795_000_000 + 299)
    assert verify_signature(SECRET, 1_795_000_000, BODY, sig, now=1_795_000_000 - 299)


def test_tampered_body_fails_verification() -> None:
    sig = sign(SECRET, 1_795_000_000, BODY)
    tampered = BODY.replace(b"Hi", b"Ho")
    assert not verify_signature(SECRET, 1_795_000_000, tampered, sig, now=1_795_000_000)


def test_old_or_future_timestamp_fails_verification() -> None:
    sig = sign(SECRET, 1_795_000_000, BODY)
    assert not verify_signature(SECRET, 1_795_000_000, BODY, sig, now=1_795_000_000 + 301)
    assert not verify_signature(SECRET, 1_795_000_000, BODY, sig, now=1_795_000_000 - 301)
    assert verify_signature(SECRET, 1_795_000_000, BODY, sig, now=1_795_000_000 + 3000,
                            tolerance_s=3600)


def test_signature_for_another_timestamp_fails_verification() -> None:
    # Moving the timestamp forward to dodge the replay window breaks the signature.
    sig = sign(SECRET, 1_795_000_000, BODY)
    assert not verify_signature(SECRET, 1_795_000_600, BODY, sig, now=1_795_000_600)


@pytest.mark.parametrize("header", ["", "v1=", "v0=abc", "deadbeef", "v1=zz,v2=00"])
def test_garbage_signature_fails_verification(header: str) -> None:
    assert not verify_signature(SECRET, 1_795_000_000, BODY, header, now=1_795_000_000)


@pytest.mark.parametrize("timestamp", ["", "-5", "1.5e9", "now"])
def test_garbage_timestamp_fails_verification(timestamp: str) -> None:
    sig = sign(SECRET, timestamp, BODY)
    assert not verify_signature(SECRET, timestamp, BODY, sig, now=1_795_000_000)


def test_any_of_several_signatures_verifies_during_a_secret_rotation() -> None:
    header = f"{sign('old-secret', 1_795_000_000, BODY)}, {sign(SECRET, 1_795_000_000, BODY)}"
    assert verify_signature(SECRET, 1_795_000_000, BODY, header, now=1_795_000_000)
    assert verify_signature("old-secret", 1_795_000_000, BODY, header, now=1_795_000_000)
    assert not verify_signature("third", 1_795_000_000, BODY, header, now=1_795_000_000)


async def test_during_a_rotation_a_receiver_on_either_secret_verifies() -> None:
    new = "whsec_new_secret_0123456789"
    async with receiver() as rx, channel() as ch:  # the receiver still has the old one
        rotating = WebhookTarget(rx.url, new, previous_secret=SECRET)
        result = await ch.send(message(recipient=Recipient(webhook=rotating)))
        plain = await ch.send(message(recipient=to(rx)))
    assert isinstance(result, Delivered) and isinstance(plain, Delivered)
    (headers, body, ok), (plain_headers, _, _) = rx.requests
    assert ok
    signature = headers["X-Geopush-Signature"]
    assert signature.count("v1=") == 2 and plain_headers["X-Geopush-Signature"].count("v1=") == 1
    assert verify_signature(new, headers["X-Geopush-Timestamp"], body, signature, now=NOW)


async def test_documented_receiver_snippet_verifies_a_real_delivery() -> None:
    snippet = (webhook.__doc__ or "").split("::\n", 1)[1].split("\n\n", 2)
    code = "\n".join(line[4:] for line in "\n\n".join(snippet[:2]).splitlines())
    namespace: dict[str, Any] = {}
    exec(compile(code, "webhook-docstring", "exec"), namespace)
    verify = namespace["verify"]

    async with receiver(verify_at=time.time()) as rx, channel(clock=time.time) as ch:
        assert isinstance(await ch.send(message(recipient=to(rx), expires_at=time.time() + 60)),
                          Delivered)
    [(headers, body, _)] = rx.requests
    assert verify(SECRET, headers, body)
    assert not verify(SECRET, headers, body + b" ")
    assert not verify("another-secret", headers, body)


async def test_receiver_gets_the_rich_content_as_json() -> None:
    msg = message(rich=rich_offer())
    async with receiver() as rx, channel() as ch:
        result = await ch.send(replace(msg, recipient=to(rx)))

    assert isinstance(result, Delivered)
    assert rx.requests[0][2]  # signed over the body with the rich content
    assert rx.bodies[0]["rich"]["image_url"] == DIAPERS_IMAGE
    assert [b["id"] for b in rx.bodies[0]["rich"]["buttons"]] == ["shop", "later"]
    assert rx.bodies[0] == msg.payload()
