"""Fixtures of the outbox tests: the API fixtures (an app per store, fake clock, keys,
blockbuster), the channel tests' peers (MQTT broker, TLS), and a signed-webhook
receiver that can hold a request (to kill a dispatcher mid-send)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from server.channels.inapp import StreamHub
from server.channels.webhook import verify_signature
from server.outbox.backoff import Backoff
from server.outbox.channels import ChannelRegistry
from server.outbox.dispatcher import Dispatcher
from server.store import Store
from tests.server.api.conftest import FakeClock, blockbuster, clock  # noqa: F401 - fixtures
from tests.server.channels.conftest import local_tls, mqtt_broker  # noqa: F401 - fixtures
from tests.server.channels.test_apns import ec_key  # noqa: F401 - fixture
from tests.server.channels.test_fcm import rsa_key  # noqa: F401 - fixture

WEBHOOK_SECRET = "whsec_outbox-test-0123456789"


@dataclass
class Receiver:
    """A tenant's webhook endpoint: verifies every signature, answers from a script
    (then 200), and keeps what it accepted. ``hold`` makes the next request wait until
    released (the sender sees no answer)."""

    clock: FakeClock
    url: str = ""
    answers: list[int] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    hold: asyncio.Event | None = None
    holding: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def unique_keys(self) -> set[str]:
        """What the tenant's client shows: one message per idempotency key."""
        return {m["idempotency_key"] for m in self.accepted}


@asynccontextmanager
async def webhook_receiver(now: FakeClock, *answers: int) -> AsyncIterator[Receiver]:
    rx = Receiver(clock=now, answers=list(answers))

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        if not verify_signature(WEBHOOK_SECRET, request.headers["X-Geopush-Timestamp"], body,
                                request.headers["X-Geopush-Signature"], now=rx.clock.now):
            rx.bad_signatures += 1
            return web.Response(status=401)
        if rx.hold is not None:
            rx.holding.set()
            await rx.hold.wait()
        if rx.answers:
            return web.Response(status=rx.answers.pop(0))
        message = json.loads(body)
        assert message["idempotency_key"] == request.headers["X-Geopush-Idempotency-Key"]
        rx.accepted.append(message)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    rx.url = str(server.make_url("/hook"))
    try:
        yield rx
    finally:
        if rx.hold is not None:
            rx.hold.set()
        await server.close()


@asynccontextmanager
async def dispatcher(store: Store, now: FakeClock, *, seed: int = 7,
                     lease_s: float = 30.0, hub: StreamHub | None = None,
                     registry: ChannelRegistry | None = None) -> AsyncIterator[Dispatcher]:
    """A dispatcher on ``store`` with the fake clock and seeded jitter."""
    own = registry is None
    registry = registry or ChannelRegistry(hub or StreamHub(), observer=lambda *_: None,
                                           clock=now)
    try:
        yield Dispatcher(store, registry, clock=now, backoff=Backoff(base_s=2.0),
                         rng=random.Random(seed), lease_s=lease_s)
    finally:
        if own:
            await registry.aclose()
