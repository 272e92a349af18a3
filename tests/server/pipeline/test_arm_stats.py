"""The learning options in the service (both stores; Forum, Helsinki): Thompson's per-arm
counts from the stores' campaign stats, cached per tenant; channel choice and learned caps
from the deciding users' recent pushes and opens, loaded per batch."""

from __future__ import annotations

import pytest

from server.arm_stats import ArmStatsRefresher
from server.pipeline import ingest
from server.store import PolicyRecord, Store
from server.store.base import DeliveryRecord, DeliveryStatus
from server.tenant_core import TenantCores
from tests.decisions.builders import campaign
from tests.server.pipeline.builders import FORUM, T0, batch, setup_tenant, walk_into_forum
from triggers.decisions import TenantPolicy
from triggers.decisions.ledger import FeedbackKind
from triggers.learning.signals import Counts, FeedbackBook

pytestmark = pytest.mark.asyncio(loop_scope="session")

TENANT = "acme"
SHOPPERS = ("u1", "u2", "u3", "u4", "u5")


@pytest.fixture
async def thompson_store(store: Store) -> Store:
    await setup_tenant(store, TENANT, users=SHOPPERS)
    await store.create_campaign(TENANT, campaign(
        "forum-sale", trigger={"event": "enter"}, venues={"ids": [FORUM]}, priority=9,
        optimize="thompson", schedule={"respect_opening_hours": False},
        variants=[{"id": "calm", "title": "Forum sale", "body": "20 % off"},
                  {"id": "bold", "title": "FORUM SALE", "body": "20 % off today!"}]))
    return store


async def _walk_in(store: Store, cores: TenantCores, user_id: str, t0: float) -> str:
    """The user walks into Forum; returns the variant of the push they got."""
    fixes = walk_into_forum(user_id, t0)
    result = await ingest(store, cores, TENANT, batch(fixes), now=fixes[-1].ts)
    [delivery] = result.deliveries
    assert delivery.campaign_id == "forum-sale"
    return delivery.variant_id


async def test_arm_counts_come_from_sent_deliveries_and_their_clicks(
    thompson_store: Store,
) -> None:
    store, cores = thompson_store, TenantCores()
    for n, user_id in enumerate(("u1", "u2")):
        fixes = walk_into_forum(user_id, T0 + 600 * n)
        result = await ingest(store, cores, TENANT, batch(fixes), now=fixes[-1].ts)
        [delivery] = result.deliveries
        await store.update_delivery(TENANT, delivery.delivery_id, status=DeliveryStatus.SENT,
                                    now=fixes[-1].ts + 1)
        if user_id == "u1":
            await store.record_feedback(TENANT, delivery.delivery_id, FeedbackKind.CLICKED,
                                        now=fixes[-1].ts + 60)
    refresher = ArmStatsRefresher(store, cores, lambda: T0 + 3600)
    await refresher.refresh(TENANT)
    signals = cores.signals(TENANT)
    assert signals is not None
    counts = signals.arm_counts("forum-sale")
    assert sum(c.trials for c in counts.values()) == 2
    assert sum(c.successes for c in counts.values()) == 1


async def test_decisions_read_the_cached_counts(thompson_store: Store) -> None:
    store, cores = thompson_store, TenantCores()
    await cores.get(store, TENANT)
    book = FeedbackBook()
    book.set_arm_counts("forum-sale", {"calm": Counts(1000, 10), "bold": Counts(1000, 400)})
    cores.set_signals(TENANT, book)
    variants = [await _walk_in(store, cores, user_id, T0 + 600 * n)
                for n, user_id in enumerate(SHOPPERS)]
    assert variants == ["bold"] * len(SHOPPERS)


async def test_a_tenant_without_thompson_campaigns_caches_nothing(store: Store) -> None:
    await setup_tenant(store, TENANT)
    cores = TenantCores()
    await cores.get(store, TENANT)
    cores.set_signals(TENANT, FeedbackBook())
    await ArmStatsRefresher(store, cores, lambda: T0).refresh(TENANT)
    assert cores.signals(TENANT) is None


async def _hello_walk(store: Store, cores: TenantCores, t0: float) -> DeliveryRecord | None:
    """u1 walks into Forum at ``t0``; the push they got (marked sent), if any."""
    fixes = walk_into_forum("u1", t0)
    result = await ingest(store, cores, TENANT, batch(fixes), now=fixes[-1].ts)
    hello = [d for d in result.deliveries if d.campaign_id == "forum-hello"]
    if not hello:
        return None
    sent = await store.update_delivery(TENANT, hello[0].delivery_id,
                                       status=DeliveryStatus.SENT, now=fixes[-1].ts + 1)
    assert sent is not None
    return sent


async def _hello_tenant(store: Store, **changes: object) -> None:
    await setup_tenant(store, TENANT)
    await store.create_campaign(TENANT, campaign(
        "forum-hello", trigger={"event": "enter"}, venues={"ids": [FORUM]}, priority=9,
        schedule={"respect_opening_hours": False}, **changes))


async def test_auto_channel_reads_the_users_own_unopened_pushes(store: Store) -> None:
    await _hello_tenant(store, channels=["inbox", "email"], channel_choice="auto")
    cores = TenantCores()
    first = await _hello_walk(store, cores, T0)
    assert first is not None and first.channel == "inbox"  # no history: campaign order
    second = await _hello_walk(store, cores, T0 + 7200)
    assert second is not None and second.channel == "email"
    [record] = [r for r in await store.list_decisions(TENANT, "u1")
                if r.decision.chosen is not None and r.decision.chosen.channel == "email"]
    [line] = [c for c in record.decision.considered if c.campaign_id == "forum-hello"]
    assert line.detail == ("email 0.10 (0/0, prior 0.10) > inbox 0.09 (0/1, prior 0.10)")
    # The tenant's open rate per channel, the prior, comes with the cached counts.
    await store.record_feedback(TENANT, second.delivery_id, FeedbackKind.OPENED, now=T0 + 7300)
    await ArmStatsRefresher(store, cores, lambda: T0 + 7400).refresh(TENANT)
    signals = cores.signals(TENANT)
    assert signals is not None
    assert dict(signals.tenant_channel_counts()) == {"inbox": Counts(1, 0),
                                                     "email": Counts(1, 1)}


async def test_learned_caps_hold_back_a_user_who_opens_nothing(store: Store) -> None:
    await _hello_tenant(store)
    await store.put_policy(TENANT, PolicyRecord(TenantPolicy(
        quiet_hours=None, max_per_day=3, min_gap_s=0, fatigue_after_ignored=None,
        learned_caps=True)))
    cores = TenantCores()
    pushed = [await _hello_walk(store, cores, T0 + 3600 * n) for n in range(3)]
    assert [p is not None for p in pushed] == [True, True, False]
    reasons = [c.reason.value for r in await store.list_decisions(TENANT, "u1")
               for c in r.decision.considered if c.campaign_id == "forum-hello"]
    assert "learned_cap" in reasons
