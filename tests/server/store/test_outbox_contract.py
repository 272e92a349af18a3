"""The Store contract of the outbox: claims and leases, outcomes, TTL expiry, idempotent
feedback, contacts, channel settings, stream secrets and the stats aggregates. Every
test runs against the memory store and PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from server.store import (
    DeliveryOutcome,
    DeliveryStatus,
    KeyedEntry,
    NotFoundError,
    Store,
)
from tests.server.conftest import OTHER_TENANT
from tests.server.store.builders import T0, delivery, profile
from triggers.decisions import FeedbackKind, LedgerEntry
from triggers.decisions.models import Contacts, Device
from triggers.decisions.rich import Button, RichContent

pytestmark = pytest.mark.asyncio(loop_scope="session")

LEASE_S = 30.0


async def _pending(store: Store, tenant: str, *keys: str, user: str = "u1",
                   at: float = T0) -> list[str]:
    async with store.batch(tenant, [user]) as tx:
        created = await tx.insert_deliveries([delivery(user, k, at=at) for k in keys])
    return [d.delivery_id for d in created]


async def _streak(store: Store, tenant: str, user: str) -> int:
    async with store.batch(tenant, [user]) as tx:
        return (await tx.load_ledger(0.0)).streaks.get(user, 0)


async def test_claim_takes_due_rows_once_and_counts_the_attempt(
    store: Store, tenant: str
) -> None:
    ids = await _pending(store, tenant, "k1", "k2", "k3")
    first = await store.claim_deliveries(tenant, now=T0 + 1, limit=2, lease_s=LEASE_S,
                                         claim="a")
    second = await store.claim_deliveries(tenant, now=T0 + 1, limit=10, lease_s=LEASE_S,
                                          claim="b")
    assert len(first) == 2 and len(second) == 1
    assert sorted(d.delivery_id for d in first + second) == sorted(ids)
    assert all(d.attempts == 1 and d.claimed_until == T0 + 1 + LEASE_S for d in first)
    assert {d.claimed_by for d in first} == {"a"}
    assert await store.claim_deliveries(tenant, now=T0 + 2, limit=10, lease_s=LEASE_S,
                                        claim="c") == []
    assert await store.claim_deliveries(OTHER_TENANT, now=T0 + 2, limit=10,
                                        lease_s=LEASE_S, claim="c") == []


async def test_concurrent_claims_never_share_a_row(store: Store, tenant: str) -> None:
    await _pending(store, tenant, *[f"k{i:02d}x" for i in range(30)])
    batches = await asyncio.gather(*[
        store.claim_deliveries(tenant, now=T0 + 1, limit=7, lease_s=LEASE_S, claim=f"w{i}")
        for i in range(6)])
    taken = [d.delivery_id for batch in batches for d in batch]
    assert len(taken) == len(set(taken)) == 30


async def test_claim_of_a_dead_dispatcher_comes_back_after_the_lease(
    store: Store, tenant: str
) -> None:
    [did] = await _pending(store, tenant, "k1")
    await store.claim_deliveries(tenant, now=T0, limit=1, lease_s=LEASE_S, claim="dead")
    assert await store.claim_deliveries(tenant, now=T0 + LEASE_S - 1, limit=1,
                                        lease_s=LEASE_S, claim="new") == []
    [again] = await store.claim_deliveries(tenant, now=T0 + LEASE_S, limit=1,
                                           lease_s=LEASE_S, claim="new")
    assert again.delivery_id == did and again.attempts == 2 and again.claimed_by == "new"
    # The dead claim's late outcome is refused; the live one's is written.
    late = DeliveryOutcome(did, DeliveryStatus.DEAD, last_error="late")
    assert await store.complete_deliveries(tenant, "dead", [late], now=T0 + 40) == 0
    done = DeliveryOutcome(did, DeliveryStatus.SENT, channel="webhook", provider_id="p-1")
    assert await store.complete_deliveries(tenant, "new", [done], now=T0 + 41) == 1
    row = await store.get_delivery(tenant, did)
    assert row is not None
    assert (row.status, row.channel, row.provider_id, row.claimed_by, row.claimed_until) == (
        DeliveryStatus.SENT, "webhook", "p-1", None, None)


async def test_retry_waits_until_its_next_attempt(store: Store, tenant: str) -> None:
    [did] = await _pending(store, tenant, "k1")
    await store.claim_deliveries(tenant, now=T0, limit=1, lease_s=LEASE_S, claim="a")
    retry = DeliveryOutcome(did, DeliveryStatus.FAILED, next_attempt_at=T0 + 60,
                            last_error="webhook answered 500")
    await store.complete_deliveries(tenant, "a", [retry], now=T0 + 1)
    assert await store.claim_deliveries(tenant, now=T0 + 59, limit=1, lease_s=LEASE_S,
                                        claim="b") == []
    [row] = await store.claim_deliveries(tenant, now=T0 + 60, limit=1, lease_s=LEASE_S,
                                         claim="b")
    assert row.status is DeliveryStatus.FAILED and row.attempts == 2
    assert row.last_error == "webhook answered 500"


async def test_offer_past_its_ttl_is_never_claimed_but_expired(
    store: Store, tenant: str
) -> None:
    [did] = await _pending(store, tenant, "k1")  # expires at T0 + 3600
    assert await store.claim_deliveries(tenant, now=T0 + 3600, limit=5, lease_s=LEASE_S,
                                        claim="a") == []
    sweep = await store.expire_deliveries(tenant, now=T0 + 3600, limit=10)
    assert [d.delivery_id for d in sweep.expired] == [did] and sweep.ignored == ()
    row = await store.get_delivery(tenant, did)
    assert row is not None and row.status is DeliveryStatus.EXPIRED
    assert row.last_error is not None and row.last_error.startswith("expired")
    assert await store.count_deliveries(tenant, DeliveryStatus.EXPIRED) == 1
    assert await _streak(store, tenant, "u1") == 0  # never seen: not "ignored"


async def test_sent_offer_nobody_reacted_to_counts_ignored_once_at_its_ttl(
    store: Store, tenant: str
) -> None:
    quiet, opened = await _pending(store, tenant, "k1", "k2")
    await store.claim_deliveries(tenant, now=T0, limit=5, lease_s=LEASE_S, claim="a")
    await store.complete_deliveries(tenant, "a", [
        DeliveryOutcome(quiet, DeliveryStatus.SENT), DeliveryOutcome(opened, DeliveryStatus.SENT)
    ], now=T0 + 1)
    await store.record_feedback(tenant, opened, FeedbackKind.OPENED, now=T0 + 2)
    assert (await store.expire_deliveries(tenant, now=T0 + 100, limit=10)).ignored == ()
    sweep = await store.expire_deliveries(tenant, now=T0 + 3600, limit=10)
    assert [d.delivery_id for d in sweep.ignored] == [quiet]
    again = await store.expire_deliveries(tenant, now=T0 + 7200, limit=10)
    assert again.ignored == () and again.expired == ()
    assert await _streak(store, tenant, "u1") == 1
    row = await store.get_delivery(tenant, quiet)
    assert row is not None and row.feedback == ("ignored",) and row.settled


async def test_same_feedback_twice_counts_once(store: Store, tenant: str) -> None:
    [did] = await _pending(store, tenant, "k1")
    for _ in range(2):
        row = await store.record_feedback(tenant, did, FeedbackKind.DISMISSED, now=T0 + 1)
        assert row is not None and row.feedback == ("dismissed",)
    assert await _streak(store, tenant, "u1") == 1
    await store.record_feedback(tenant, did, FeedbackKind.CLICKED, now=T0 + 2)
    assert await _streak(store, tenant, "u1") == 0


async def test_inbox_lists_sent_in_app_messages_newest_first(store: Store, tenant: str) -> None:
    old = await _pending(store, tenant, "k1", at=T0)
    new = await _pending(store, tenant, "k2", at=T0 + 10)
    unsent = await _pending(store, tenant, "k3", at=T0 + 20)
    claimed = await store.claim_deliveries(tenant, now=T0 + 30, limit=2, lease_s=LEASE_S,
                                           claim="a")
    assert {d.delivery_id for d in claimed} == {*old, *new}
    await store.complete_deliveries(tenant, "a", [
        DeliveryOutcome(d, DeliveryStatus.SENT, channel="inbox") for d in (*old, *new)
    ], now=T0 + 31)
    inbox = await store.list_inbox(tenant, "u1")
    assert [d.delivery_id for d in inbox] == [*new, *old]
    assert unsent[0] not in {d.delivery_id for d in inbox}
    assert [d.delivery_id for d in await store.list_inbox(tenant, "u1", before=T0 + 5)] == old
    assert await store.list_inbox(OTHER_TENANT, "u1") == []
    assert await store.count_deliveries(tenant, DeliveryStatus.PENDING) == 1
    assert await store.count_deliveries(tenant, DeliveryStatus.SENT) == 2


async def test_dead_token_is_removed_from_the_profile_only(store: Store, tenant: str) -> None:
    contacts = Contacts(devices=(Device(platform="fcm", token="dead"),
                                 Device(platform="fcm", token="alive"),
                                 Device(platform="apns", token="dead")),
                        email="a@example.com")
    await store.put_profile(tenant, profile("u1").model_copy(update={"contacts": contacts}))
    assert await store.remove_contact(tenant, "u1", "fcm", "dead")
    assert not await store.remove_contact(tenant, "u1", "fcm", "dead")
    assert await store.remove_contact(tenant, "u1", "email", "a@example.com")
    assert not await store.remove_contact(tenant, "nobody", "fcm", "alive")
    got = (await store.get_profiles(tenant, ["u1", "nobody"]))["u1"].contacts
    assert got.tokens("fcm") == ("alive",) and got.tokens("apns") == ("dead",)
    assert got.email is None


async def test_channel_settings_and_stream_secret_are_per_tenant(
    store: Store, tenant: str
) -> None:
    assert await store.get_channel_config(tenant) is None
    await store.put_channel_config(tenant, {"webhook": {"url": "http://x", "secret": "s"}})
    assert await store.get_channel_config(tenant) == {
        "webhook": {"url": "http://x", "secret": "s"}}
    assert await store.get_channel_config(OTHER_TENANT) is None
    secret = await store.stream_secret(tenant)
    assert len(secret) >= 32 and await store.stream_secret(tenant) == secret
    assert await store.stream_secret(OTHER_TENANT) != secret
    with pytest.raises(NotFoundError):
        await store.stream_secret("nope")
    with pytest.raises(NotFoundError):
        await store.put_channel_config("nope", {})


async def test_campaign_stats_aggregate_outbox_feedback_and_conversions(
    store: Store, tenant: str
) -> None:
    a1, a2 = await _pending(store, tenant, "k1", "k2", user="u1")
    [b1] = await _pending(store, tenant, "k3", user="u2")
    await store.claim_deliveries(tenant, now=T0, limit=5, lease_s=LEASE_S, claim="a")
    await store.complete_deliveries(tenant, "a", [
        DeliveryOutcome(a1, DeliveryStatus.SENT), DeliveryOutcome(a2, DeliveryStatus.DEAD),
        DeliveryOutcome(b1, DeliveryStatus.SENT)], now=T0 + 1)
    await store.record_feedback(tenant, a1, FeedbackKind.CLICKED, now=T0 + 2)
    await store.record_feedback(tenant, a1, FeedbackKind.CLICKED, now=T0 + 3)
    await store.record_feedback(tenant, b1, FeedbackKind.CONVERTED, now=T0 + 3)
    for user in ("u8", "u9"):
        async with store.batch(tenant, [user]) as tx:
            await tx.insert_ledger([KeyedEntry(
                f"{user}:ctl", LedgerEntry(user, "c1", "forum", "a", T0, None, control=True))])
    assert await store.record_conversion(tenant, "c1", "u9", at=T0 + 5)
    assert not await store.record_conversion(tenant, "c1", "u9", at=T0 + 6)
    stats = await store.campaign_stats(tenant, "c1")
    [variant] = stats.variants
    assert variant.variant_id == "a" and variant.deliveries == 3
    assert dict(variant.by_status) == {"sent": 2, "dead": 1}
    assert dict(variant.feedback) == {"clicked": 1, "converted": 1}
    assert (variant.users, variant.converted_users) == (2, 1)
    assert (stats.control_users, stats.control_converted) == (2, 1)
    assert (await store.campaign_stats(OTHER_TENANT, "c1")).variants == ()


async def test_rich_content_and_the_pressed_button_are_stored(
    store: Store, tenant: str
) -> None:
    rich = RichContent(
        image_url="https://cdn.forum.example/img/stroller.jpg", image_alt="A stroller",
        image_tag="mother_baby", deep_link="forumapp://offers/baby-week",
        buttons=(Button(id="shop", title="Shop now",
                        deep_link="https://forum.example/offers/baby-week"),
                 Button(id="map", title="Show on map", deep_link="forumapp://map")))
    async with store.batch(tenant, ["u1"]) as tx:
        [created] = await tx.insert_deliveries([replace(delivery("u1", "k1"), rich=rich)])
    assert created.rich == rich and created.button is None
    clicked = await store.record_feedback(tenant, created.delivery_id, FeedbackKind.CLICKED,
                                          now=T0 + 1, button="map")
    assert clicked is not None and clicked.button == "map"
    again = await store.record_feedback(tenant, created.delivery_id, FeedbackKind.CLICKED,
                                        now=T0 + 2, button="shop")
    assert again is not None and again.button == "map"  # the first click's button
    row = await store.get_delivery(tenant, created.delivery_id)
    assert row is not None and row.rich == rich and row.button == "map"
    [variant] = (await store.campaign_stats(tenant, "c1")).variants
    assert variant.buttons == {"map": 1}
