"""The dispatcher against a real signed-webhook receiver, on both stores: retries with
backoff, TTL expiry, dead letters, a dispatcher killed mid-send, several dispatchers."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace

import pytest

from server.channels.inapp import StreamHub
from server.outbox.backoff import Backoff
from server.outbox.channels import ChannelRegistry
from server.outbox.dispatcher import Dispatcher
from server.store import DeliveryStatus, Store
from server.store.base import PolicyRecord
from tests.server.api.conftest import FakeClock
from tests.server.channels.test_sms import FROM, SID, TOKEN, twilio
from tests.server.outbox.conftest import WEBHOOK_SECRET, dispatcher, webhook_receiver
from tests.server.store.builders import FORUM, delivery, venue
from triggers.decisions import FeedbackKind, Profile, TenantPolicy

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _webhook_deliveries(store: Store, tenant: str, url: str, n: int, *,
                              clock: FakeClock, ttl_s: float = 3600.0) -> list[str]:
    await store.put_channel_config(tenant, {"webhook": {"url": url, "secret": WEBHOOK_SECRET}})
    rows = [replace(delivery(f"u{i}", "k", at=clock.now), channel="webhook",
                    expires_at=clock.now + ttl_s) for i in range(n)]
    ids: list[str] = []
    for row in rows:
        async with store.batch(tenant, [row.user_id]) as tx:
            ids += [d.delivery_id for d in await tx.insert_deliveries([row])]
    return ids


async def test_webhook_that_fails_then_answers_gets_the_message_after_a_retry(
    store: Store, tenant: str, clock: FakeClock
) -> None:
    async with webhook_receiver(clock, 500) as rx, dispatcher(store, clock) as d:
        [did] = await _webhook_deliveries(store, tenant, rx.url, 1, clock=clock)
        first = await d.run_once([tenant])
        row = await store.get_delivery(tenant, did)
        assert first.count(DeliveryStatus.FAILED) == 1
        assert row is not None and row.status is DeliveryStatus.FAILED and row.attempts == 1
        assert row.last_error == "webhook answered 500"
        assert row.next_attempt_at is not None
        # Backoff: base 2 s, jitter takes off at most half.
        assert clock.now + 1.0 <= row.next_attempt_at <= clock.now + 2.0
        assert (await d.run_once([tenant])).claimed == 0  # not due yet
        clock.advance(2.0)
        assert (await d.run_once([tenant])).count(DeliveryStatus.SENT) == 1
        row = await store.get_delivery(tenant, did)
        assert row is not None and row.status is DeliveryStatus.SENT and row.attempts == 2
        assert len(rx.accepted) == 1 and rx.bad_signatures == 0


async def test_offer_past_its_ttl_is_never_sent(
    store: Store, tenant: str, clock: FakeClock
) -> None:
    async with webhook_receiver(clock) as rx, dispatcher(store, clock) as d:
        [did] = await _webhook_deliveries(store, tenant, rx.url, 1, clock=clock, ttl_s=60)
        clock.advance(61)
        result = await d.run_once([tenant])
        assert (result.claimed, result.expired) == (0, 1)
        row = await store.get_delivery(tenant, did)
        assert row is not None and row.status is DeliveryStatus.EXPIRED
        assert rx.accepted == []


async def test_retry_that_would_land_after_the_ttl_expires_the_offer(
    store: Store, tenant: str, clock: FakeClock
) -> None:
    async with webhook_receiver(clock, 503) as rx, dispatcher(store, clock) as d:
        [did] = await _webhook_deliveries(store, tenant, rx.url, 1, clock=clock, ttl_s=1.5)
        await d.run_once([tenant])
        row = await store.get_delivery(tenant, did)
        assert row is not None and row.status is DeliveryStatus.EXPIRED
        assert row.last_error is not None and "webhook answered 503" in row.last_error


async def test_permanent_refusal_is_dead_lettered_with_the_reason(
    store: Store, tenant: str, clock: FakeClock
) -> None:
    async with webhook_receiver(clock, 410) as rx, dispatcher(store, clock) as d:
        [did] = await _webhook_deliveries(store, tenant, rx.url, 1, clock=clock)
        await d.run_once([tenant])
        row = await store.get_delivery(tenant, did)
        assert row is not None and row.status is DeliveryStatus.DEAD
        assert row.last_error == "webhook answered 410" and rx.accepted == []


async def test_attempts_run_out_into_the_dead_letter(
    store: Store, tenant: str, clock: FakeClock
) -> None:
    registry = ChannelRegistry(StreamHub(), observer=lambda *_: None, clock=clock)
    async with webhook_receiver(clock, *[500] * 10) as rx:
        [did] = await _webhook_deliveries(store, tenant, rx.url, 1, clock=clock)
        d = Dispatcher(store, registry, clock=clock, rng=random.Random(1),
                       backoff=Backoff(base_s=1.0, max_s=1.0, max_attempts=3))
        for _ in range(3):
            await d.run_once([tenant])
            clock.advance(1.0)
        row = await store.get_delivery(tenant, did)
        assert row is not None and row.status is DeliveryStatus.DEAD and row.attempts == 3
        assert row.last_error == "gave up after 3 attempts: webhook answered 500"
    await registry.aclose()


async def test_killed_dispatcher_mid_send_is_resent_after_the_lease_and_seen_once(
    store: Store, tenant: str, clock: FakeClock
) -> None:
    async with webhook_receiver(clock) as rx, dispatcher(store, clock, lease_s=30) as first:
        ids = await _webhook_deliveries(store, tenant, rx.url, 3, clock=clock)
        rx.hold = asyncio.Event()
        task = asyncio.create_task(first.run_once([tenant]))
        await asyncio.wait_for(rx.holding.wait(), 10)
        task.cancel()  # killed mid-send: its claims stay until the lease runs out
        with pytest.raises(asyncio.CancelledError):
            await task
        rx.hold.set()  # the receiver answers, but nobody is listening any more
        # Nothing can be watched for here (the answer goes nowhere): a short grace for a
        # wrong write to land, so the check below would see one.
        await asyncio.sleep(0.05)
        rows = [await store.get_delivery(tenant, i) for i in ids]
        assert all(r is not None and r.status is DeliveryStatus.PENDING for r in rows)
        async with dispatcher(store, clock) as second:
            assert (await second.run_once([tenant])).claimed == 0  # still leased
            clock.advance(30)
            assert (await second.run_once([tenant])).count(DeliveryStatus.SENT) == 3
        rows = [await store.get_delivery(tenant, i) for i in ids]
        assert all(r is not None and r.status is DeliveryStatus.SENT for r in rows)
        # Some requests may have arrived twice; the client shows each message once.
        assert len(rx.accepted) >= 3
        assert rx.unique_keys == {r.idempotency_key for r in rows if r is not None}


async def test_several_dispatchers_share_the_outbox_without_doubles(
    store: Store, tenant: str, clock: FakeClock
) -> None:
    async with webhook_receiver(clock) as rx:
        ids = await _webhook_deliveries(store, tenant, rx.url, 40, clock=clock)
        registry = ChannelRegistry(StreamHub(), observer=lambda *_: None, clock=clock)
        workers = [Dispatcher(store, registry, clock=clock, batch=7) for _ in range(4)]
        while len(rx.accepted) < len(ids):
            results = await asyncio.gather(*(w.run_once([tenant]) for w in workers))
            assert sum(r.claimed for r in results) > 0
        await registry.aclose()
        assert len(rx.accepted) == len(rx.unique_keys) == 40


async def test_sent_offer_expiring_unopened_extends_the_ignored_streak(
    store: Store, tenant: str, clock: FakeClock
) -> None:
    async with webhook_receiver(clock) as rx, dispatcher(store, clock) as d:
        quiet, clicked = await _webhook_deliveries(store, tenant, rx.url, 2, clock=clock, ttl_s=60)
        await d.run_once([tenant])
        await store.record_feedback(tenant, clicked, FeedbackKind.CLICKED, now=clock.now)
        clock.advance(60)
        result = await d.run_once([tenant])
        assert result.ignored == 1
        row = await store.get_delivery(tenant, quiet)
        assert row is not None and row.feedback == ("ignored",)


# --------------------------------------------------------------------------- SMS at night


async def _sms_delivery(store: Store, tenant: str, url: str, clock: FakeClock, *,
                        user_tz: str | None, policy: TenantPolicy) -> str:
    """A due SMS delivery to ``u1`` (+86 mobile), the tenant's SMS set up at ``url``."""
    await store.put_policy(tenant, PolicyRecord(policy=policy))
    await store.put_channel_config(tenant, {"sms": {
        "account_sid": SID, "auth_token": TOKEN, "from_number": FROM, "base_url": url}})
    await store.put_profile(tenant, Profile.model_validate({
        "user_id": "u1", "attributes": {"timezone": user_tz},
        "contacts": {"phone": "+8613812345678"}}))
    row = replace(delivery("u1", "k", at=clock.now), channel="sms",
                  expires_at=clock.now + 3600)
    async with store.batch(tenant, [row.user_id]) as tx:
        [created] = await tx.insert_deliveries([row])
    return created.delivery_id


# The test clock starts at 12:00 UTC: 20:00 in Shanghai; three hours on, 23:00.
# (the user's zone, the tenant's default zone, hours on, what becomes of the SMS)
_NIGHT_CASES = [
    ("Asia/Shanghai", "UTC", 3, DeliveryStatus.DEAD),  # 23:00 for the user
    ("Asia/Shanghai", "UTC", 0, DeliveryStatus.SENT),  # 20:00
    (None, "Asia/Shanghai", 3, DeliveryStatus.DEAD),  # no zone of the user's, nor venue's
    ("Europe/Helsinki", "Asia/Shanghai", 3, DeliveryStatus.SENT),  # 17:00 for the user
]


@pytest.mark.parametrize("case", _NIGHT_CASES)
async def test_an_sms_falling_due_in_the_users_quiet_hours_is_dropped_unsent(
    store: Store, tenant: str, clock: FakeClock,
    case: tuple[str | None, str, int, DeliveryStatus],
) -> None:
    user_tz, default_tz, hours_on, status = case
    clock.advance(hours_on * 3600)
    policy = TenantPolicy(quiet_hours="22:00-08:00", default_timezone=default_tz)
    async with twilio() as tw, dispatcher(store, clock) as d:
        did = await _sms_delivery(store, tenant, tw.url, clock, user_tz=user_tz, policy=policy)
        await d.run_once([tenant])
        row = await store.get_delivery(tenant, did)
    assert row is not None and row.status is status
    if status is DeliveryStatus.DEAD:
        assert row.last_error == "quiet_hours" and tw.requests == []
    else:
        assert [r["To"] for r in tw.requests] == ["+8613812345678"]


async def test_a_user_without_a_zone_is_quiet_in_the_venues_zone(
    store: Store, tenant: str, clock: FakeClock
) -> None:
    # Forum is in Helsinki: 15:00 UTC is 17:00 there (not quiet), 01:00 in the default.
    forum = await asyncio.to_thread(venue, FORUM, timezone="Europe/Helsinki")  # reads a file
    await store.put_venue(tenant, forum)
    clock.advance(3 * 3600)
    policy = TenantPolicy(quiet_hours="22:00-08:00", default_timezone="Asia/Tokyo")
    async with twilio() as tw, dispatcher(store, clock) as d:
        did = await _sms_delivery(store, tenant, tw.url, clock, user_tz=None, policy=policy)
        await d.run_once([tenant])
        row = await store.get_delivery(tenant, did)
    assert row is not None and row.status is DeliveryStatus.SENT and len(tw.requests) == 1


async def test_without_quiet_hours_an_sms_goes_out_at_any_hour(
    store: Store, tenant: str, clock: FakeClock
) -> None:
    clock.advance(3 * 3600)  # 23:00 in Shanghai
    async with twilio() as tw, dispatcher(store, clock) as d:
        did = await _sms_delivery(store, tenant, tw.url, clock, user_tz="Asia/Shanghai",
                                  policy=TenantPolicy(quiet_hours=None))
        await d.run_once([tenant])
        row = await store.get_delivery(tenant, did)
    assert row is not None and row.status is DeliveryStatus.SENT and len(tw.requests) == 1
