"""The Store contract: every test runs against the memory store and PostgreSQL."""

from __future__ import annotations

import asyncio

import pydantic
import pytest

from server.store import (
    BBox,
    ConflictError,
    DeliveryStatus,
    NotFoundError,
    OutsideBatchError,
    PolicyRecord,
    Role,
    Store,
    VenueHasChildrenError,
    hash_key,
)
from server.store.roles import BehaviourRecord
from tests.server.conftest import OTHER_TENANT, ManualClock, open_clocked
from tests.server.store.builders import (
    FORUM,
    KLUUVI,
    MARIMEKKO,
    T0,
    campaign,
    circle,
    decision_row,
    delivery,
    described,
    dues,
    event_row,
    ledger_row,
    pings,
    presence,
    presences,
    profile,
    venue,
)
from triggers.behaviour.events import BehaviourEvent
from triggers.decisions import CampaignStatus, FeedbackKind, TenantPolicy
from triggers.pings import PingBatch
from venues import venue_to_feature

pytestmark = pytest.mark.asyncio(loop_scope="session")


# --------------------------------------------------------------------------- tenants, keys


async def test_ensure_tenant_creates_once_and_lists_by_id(store: Store) -> None:
    first = await store.ensure_tenant("t2", name="Two")
    again = await store.ensure_tenant("t2", name="ignored")
    await store.ensure_tenant("t1")
    assert again == first
    assert [t.tenant_id for t in await store.list_tenants()] == ["t1", "t2"]
    assert await store.get_tenant("nope") is None


async def test_key_is_found_by_its_hash_never_by_the_secret(store: Store, tenant: str) -> None:
    secret = "gp_live_" + "x" * 40
    await store.create_key(tenant, key_id="k1", key_hash=hash_key(secret), role=Role.SDK,
                           name="ios app")
    found = await store.find_key(hash_key(secret))
    assert found is not None
    assert (found.tenant_id, found.key_id, found.role, found.revoked) == (tenant, "k1",
                                                                          Role.SDK, False)
    assert await store.find_key(secret) is None
    assert await store.find_key(hash_key(secret + "y")) is None


async def test_key_ids_are_unique_per_tenant(store: Store, tenant: str) -> None:
    await store.create_key(tenant, key_id="k1", key_hash=hash_key("a"), role=Role.ADMIN)
    with pytest.raises(ConflictError):
        await store.create_key(tenant, key_id="k1", key_hash=hash_key("b"), role=Role.ADMIN)
    with pytest.raises(ConflictError):
        await store.create_key(tenant, key_id="k2", key_hash=hash_key("a"), role=Role.ADMIN)
    await store.create_key(OTHER_TENANT, key_id="k1", key_hash=hash_key("c"), role=Role.SDK)
    with pytest.raises(NotFoundError):
        await store.create_key("nope", key_id="k1", key_hash=hash_key("d"), role=Role.SDK)


async def test_revoked_key_is_still_found_and_marked(store: Store, tenant: str) -> None:
    await store.create_key(tenant, key_id="k1", key_hash=hash_key("a"), role=Role.MANAGER)
    assert not await store.revoke_key(OTHER_TENANT, "k1")
    assert await store.revoke_key(tenant, "k1")
    found = await store.find_key(hash_key("a"))
    assert found is not None and found.revoked
    assert [k.key_id for k in await store.list_keys(tenant)] == ["k1"]
    assert await store.list_keys(OTHER_TENANT) == []


async def test_tenants_and_keys_are_dated_by_the_clock_the_store_was_given(
    store: Store, database_url: str
) -> None:
    clock = ManualClock(T0)  # a day long past: no store could take it from the wall
    clocked = await open_clocked(store, database_url, clock)
    try:
        created = await clocked.ensure_tenant("t-clock")
        clock.now += 60
        key = await clocked.create_key("t-clock", key_id="k1", key_hash=hash_key("a"),
                                       role=Role.SDK)
        stored = (await clocked.get_tenant("t-clock"), await clocked.find_key(hash_key("a")))
    finally:
        await clocked.close()
    assert (created.created_at, key.created_at) == (T0, T0 + 60)
    assert stored[0] is not None and stored[0].created_at == T0
    assert stored[1] is not None and stored[1].created_at == T0 + 60


# --------------------------------------------------------------------------- venues


async def test_polygon_venue_round_trips_as_its_geojson_feature(store: Store, tenant: str) -> None:
    forum = venue(FORUM, dwell_s=420, opening_hours="Mo-Sa 09:00-21:00")
    assert await store.put_venue(tenant, forum)
    got = await store.get_venue(tenant, FORUM)
    assert got is not None
    assert venue_to_feature(got) == venue_to_feature(forum)
    assert got.shape is not None and got.shape.equals(forum.shape)


async def test_circle_venue_round_trips(store: Store, tenant: str) -> None:
    kiosk = circle(metadata={"lines": ["1", "2"]}, enabled=False)
    await store.put_venue(tenant, kiosk)
    got = await store.get_venue(tenant, kiosk.id)
    assert got == kiosk


async def test_put_venue_says_whether_it_created(store: Store, tenant: str) -> None:
    assert await store.put_venue(tenant, venue(FORUM))
    assert not await store.put_venue(tenant, venue(FORUM, name="Forum (renamed)"))
    got = await store.get_venue(tenant, FORUM)
    assert got is not None and got.name == "Forum (renamed)"
    assert await store.put_venues(tenant, [venue(FORUM), venue(KLUUVI), circle()]) == 2


async def test_a_parent_venue_is_deleted_only_with_cascade(store: Store, tenant: str) -> None:
    kiosk = circle("kiosk-in-marimekko", parent_id=MARIMEKKO)
    await store.put_venues(tenant, [venue(FORUM), venue(MARIMEKKO), kiosk, venue(KLUUVI)])
    version = await store.catalog_version(tenant)
    with pytest.raises(VenueHasChildrenError) as refused:
        await store.delete_venue(tenant, FORUM)
    assert refused.value.children == (MARIMEKKO,)  # children only, not grandchildren
    assert await store.catalog_version(tenant) == version  # nothing deleted
    assert await store.get_venue(tenant, MARIMEKKO) is not None
    gone = await store.delete_venue(tenant, FORUM, cascade=True)
    assert gone == (FORUM, "kiosk-in-marimekko", MARIMEKKO)
    assert [v.id for v in await store.list_venues(tenant)] == [KLUUVI]
    assert await store.catalog_version(tenant) > version
    # A leaf needs no cascade; another tenant's tree is untouched.
    assert await store.delete_venue(tenant, KLUUVI) == (KLUUVI,)


async def test_every_catalogue_change_bumps_the_version(store: Store, tenant: str) -> None:
    versions = [await store.catalog_version(tenant)]

    async def changed() -> None:
        versions.append(await store.catalog_version(tenant))
        assert versions[-1] > versions[-2]

    await store.put_venue(tenant, venue(FORUM))
    await changed()
    await store.put_venues(tenant, [venue(KLUUVI), circle()])
    await changed()
    await store.delete_venue(tenant, KLUUVI)
    await changed()
    await store.create_campaign(tenant, campaign("c1"))
    await changed()
    await store.put_campaign(tenant, campaign("c1", priority=3))
    await changed()
    await store.set_campaign_status(tenant, "c1", CampaignStatus.PAUSED)
    await changed()
    await store.delete_campaign(tenant, "c1")
    await changed()
    await store.put_policy(tenant, PolicyRecord(TenantPolicy(max_per_day=5)))
    await changed()
    # Reads, misses and profile writes leave it alone.
    await store.get_venue(tenant, FORUM)
    await store.delete_venue(tenant, "missing")
    await store.put_profile(tenant, profile("u1"))
    assert await store.catalog_version(tenant) == versions[-1]
    assert await store.catalog_version(OTHER_TENANT) == 0


async def test_list_venues_filters_by_bbox_kind_and_tag(store: Store, tenant: str) -> None:
    await store.put_venues(tenant, [venue(FORUM), venue(KLUUVI), venue(MARIMEKKO), circle()])
    ids = [v.id for v in await store.list_venues(tenant)]
    assert ids == sorted([FORUM, KLUUVI, MARIMEKKO, "kiosk-1"])
    malls = await store.list_venues(tenant, kind="mall")
    assert {v.id for v in malls} == {FORUM, KLUUVI}
    kiosks = await store.list_venues(tenant, tag="kiosk")
    assert [v.id for v in kiosks] == ["kiosk-1"]
    # A box around Forum (Mannerheimintie) only: not Kluuvi, 300 m east.
    around_forum = BBox(24.9370, 60.1685, 24.9392, 60.1698)
    assert {v.id for v in await store.list_venues(tenant, bbox=around_forum)} == {
        FORUM, MARIMEKKO}
    page1 = await store.list_venues(tenant, limit=2)
    page2 = await store.list_venues(tenant, after=page1[-1].id, limit=2)
    assert [v.id for v in page1 + page2] == ids


async def test_load_catalog_reads_venues_campaigns_policy_and_version(
    store: Store, tenant: str
) -> None:
    await store.put_venues(tenant, [venue(KLUUVI), venue(FORUM)])
    await store.create_campaign(tenant, campaign("c2"))
    await store.create_campaign(tenant, campaign("c1", status="draft"))
    record = PolicyRecord(TenantPolicy(quiet_hours=None), {"silence_timeout_s": 600.0})
    await store.put_policy(tenant, record)
    catalog = await store.load_catalog(tenant)
    assert catalog.version == await store.catalog_version(tenant)
    assert [v.id for v in catalog.venues] == sorted([FORUM, KLUUVI])
    assert [c.id for c in catalog.campaigns] == ["c1", "c2"]
    assert catalog.policy == record
    with pytest.raises(NotFoundError):
        await store.load_catalog("nope")


# --------------------------------------------------------------------------- isolation


async def test_ids_guessed_across_tenants_read_as_absent(store: Store, tenant: str) -> None:
    await store.put_venue(tenant, venue(FORUM))
    await store.create_campaign(tenant, campaign("c1"))
    await store.put_profile(tenant, profile("u1"))
    async with store.batch(tenant, ["u1"]) as tx:
        await tx.insert_decisions([decision_row("u1")])
        created = await tx.insert_deliveries([delivery("u1")])
    delivery_id = created[0].delivery_id

    other = OTHER_TENANT
    assert await store.get_venue(other, FORUM) is None
    assert await store.list_venues(other) == []
    assert await store.get_campaign(other, "c1") is None
    assert await store.list_campaigns(other) == []
    assert await store.get_profile(other, "u1") is None
    assert await store.list_decisions(other, "u1") == []
    assert await store.get_delivery(other, delivery_id) is None
    assert await store.list_deliveries(other) == []
    assert await store.set_campaign_status(other, "c1", CampaignStatus.ENDED) is None
    assert await store.update_delivery(other, delivery_id, status=DeliveryStatus.SENT,
                                       now=T0) is None
    assert await store.record_feedback(other, delivery_id, FeedbackKind.CLICKED,
                                       now=T0) is None
    assert not await store.delete_venue(other, FORUM)
    assert not await store.delete_campaign(other, "c1")
    with pytest.raises(NotFoundError):
        await store.patch_profile(other, "u1", {"tags": ["x"]})
    # ... and the owner's rows are untouched by all of that.
    assert await store.get_venue(tenant, FORUM) is not None
    got = await store.get_campaign(tenant, "c1")
    assert got is not None and got.status is CampaignStatus.ACTIVE
    one = await store.get_delivery(tenant, delivery_id)
    assert one is not None and one.status is DeliveryStatus.PENDING and one.feedback == ()


async def test_writes_to_an_unknown_tenant_raise_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.put_venue("nope", venue(FORUM))
    with pytest.raises(NotFoundError):
        await store.create_campaign("nope", campaign())
    with pytest.raises(NotFoundError):
        await store.put_profile("nope", profile())
    with pytest.raises(NotFoundError):
        await store.put_policy("nope", PolicyRecord())
    with pytest.raises(NotFoundError):
        await store.catalog_version("nope")
    with pytest.raises(NotFoundError):
        await store.get_policy("nope")
    with pytest.raises(NotFoundError):
        async with store.batch("nope", ["u1"]):
            pass


# --------------------------------------------------------------------------- profiles


async def test_profile_upsert_then_merge_patch(store: Store, tenant: str) -> None:
    assert await store.put_profile(tenant, profile("u1", tags=["runner"]))
    assert not await store.put_profile(tenant, profile("u1", tags=["runner", "parent"]))
    patched = await store.patch_profile(
        tenant, "u1", {"attributes": {"age": 35, "first_name": None}, "language": "sv"})
    assert patched.attributes.age == 35
    assert patched.attributes.first_name is None
    assert patched.attributes.timezone == "Europe/Helsinki"  # merged, not replaced
    assert patched.tags == ("runner", "parent")
    assert patched.language == "sv"
    assert await store.get_profile(tenant, "u1") == patched


async def test_invalid_patch_stores_nothing(store: Store, tenant: str) -> None:
    await store.put_profile(tenant, profile("u1"))
    before = await store.get_profile(tenant, "u1")
    with pytest.raises(pydantic.ValidationError):
        await store.patch_profile(tenant, "u1", {"attributes": {"age": -3}})
    assert await store.get_profile(tenant, "u1") == before
    with pytest.raises(NotFoundError):
        await store.patch_profile(tenant, "u2", {"tags": ["x"]})


# --------------------------------------------------------------------------- campaigns, policy


async def test_campaign_crud_and_status(store: Store, tenant: str) -> None:
    c1 = campaign("c1", priority=2, caps={"per_user": {"count": 1, "period_s": 86400}})
    await store.create_campaign(tenant, c1)
    with pytest.raises(ConflictError):
        await store.create_campaign(tenant, c1)
    assert await store.get_campaign(tenant, "c1") == c1
    assert not await store.put_campaign(tenant, campaign("c1", priority=9))
    assert await store.put_campaign(tenant, campaign("c0", status="draft"))
    paused = await store.set_campaign_status(tenant, "c1", CampaignStatus.PAUSED)
    assert paused is not None and paused.status is CampaignStatus.PAUSED and paused.priority == 9
    assert [c.id for c in await store.list_campaigns(tenant)] == ["c0", "c1"]
    drafts = await store.list_campaigns(tenant, status=CampaignStatus.DRAFT)
    assert [c.id for c in drafts] == ["c0"]
    assert await store.delete_campaign(tenant, "c0")
    assert not await store.delete_campaign(tenant, "c0")
    assert await store.set_campaign_status(tenant, "c0", CampaignStatus.ACTIVE) is None


async def test_policy_is_default_until_put(store: Store, tenant: str) -> None:
    assert await store.get_policy(tenant) == PolicyRecord()
    record = PolicyRecord(TenantPolicy(max_per_day=1, quiet_hours="23:00-07:00"),
                          {"dwell_s": 120, "exit_confirm_pings": 3})
    await store.put_policy(tenant, record)
    assert await store.get_policy(tenant) == record
    assert await store.get_policy(OTHER_TENANT) == PolicyRecord()


# --------------------------------------------------------------------------- batches


async def test_pings_of_a_retried_batch_are_stored_once(store: Store, tenant: str) -> None:
    async with store.batch(tenant, ["u1"]) as tx:
        assert await tx.insert_pings(pings("u1"), received_at=T0 + 30) == 3
    async with store.batch(tenant, ["u1"]) as tx:  # the client never saw the answer
        assert await tx.insert_pings(pings("u1", n=4), received_at=T0 + 60) == 1
        twice = PingBatch.concat([pings("u1", n=1, t0=T0 + 100)] * 2)
        assert await tx.insert_pings(twice, received_at=T0 + 60) == 1
    erased = await store.erase_user(tenant, "u1")
    assert erased["pings"] == 5


async def test_batch_commits_every_write_at_a_clean_exit(store: Store, tenant: str) -> None:
    async with store.batch(tenant, ["u1"]) as tx:
        assert tx.user_ids == ("u1",)
        assert described(await tx.load_state()) == {}
        assert await tx.insert_pings(pings("u1"), received_at=T0 + 30) == 3
        assert await tx.insert_events([event_row("u1")]) == 1
        assert await tx.insert_decisions([decision_row("u1")]) == 1
        assert await tx.insert_ledger([ledger_row("u1")]) == 1
        created = await tx.insert_deliveries([delivery("u1")])
        await tx.save_state(presence("u1"))
    assert [d.delivery_id for d in created] == [delivery("u1").delivery_id]
    assert created[0].status is DeliveryStatus.PENDING
    assert [e.event_key for e in await store.list_events(tenant, "u1")] == ["u1:e1"]
    assert [d.decision for d in await store.list_decisions(tenant, "u1")] == [
        decision_row("u1").decision]
    assert await store.list_deliveries(tenant, user_id="u1") == created
    async with store.batch(tenant, ["u1"]) as tx:
        assert described(await tx.load_state()) == described(presence("u1"))
        snap = await tx.load_ledger(T0 - 1)
        assert snap.entries == (ledger_row("u1").entry,)
        assert (await tx.load_ledger(T0 + 1)).entries == ()


async def test_batch_rolls_back_everything_when_the_block_raises(
    store: Store, tenant: str
) -> None:
    async with store.batch(tenant, ["u1"]) as tx:
        await tx.save_state(presence("u1", T0 + 300))
    with pytest.raises(RuntimeError, match="boom"):
        async with store.batch(tenant, ["u1"]) as tx:
            await tx.insert_pings(pings("u1"), received_at=T0)
            await tx.insert_events([event_row("u1")])
            await tx.insert_decisions([decision_row("u1")])
            await tx.insert_ledger([ledger_row("u1")])
            await tx.insert_deliveries([delivery("u1")])
            await tx.save_state(presence("u1", T0 + 999))
            raise RuntimeError("boom")
    assert await store.list_events(tenant, "u1") == []
    assert await store.list_decisions(tenant, "u1") == []
    assert await store.list_deliveries(tenant) == []
    async with store.batch(tenant, ["u1"]) as tx:
        assert dues(await tx.load_state()) == {"u1": T0 + 300}
        assert (await tx.load_ledger(0.0)).entries == ()


async def test_keyed_rows_are_written_once(store: Store, tenant: str) -> None:
    for _ in range(2):
        async with store.batch(tenant, ["u1"]) as tx:
            again = [await tx.insert_events([event_row("u1")]),
                     await tx.insert_decisions([decision_row("u1")]),
                     await tx.insert_ledger([ledger_row("u1")]),
                     len(await tx.insert_deliveries([delivery("u1"), delivery("u1")]))]
    assert again == [0, 0, 0, 0]
    assert len(await store.list_events(tenant, "u1")) == 1
    assert len(await store.list_decisions(tenant, "u1")) == 1
    assert len(await store.list_deliveries(tenant)) == 1


async def test_a_key_given_twice_in_one_call_is_written_and_returned_once(
    store: Store, tenant: str
) -> None:
    async with store.batch(tenant, ["u1"]) as tx:
        new = [await tx.insert_events([event_row("u1"), event_row("u1", at=T0 + 1)]),
               await tx.insert_decisions([decision_row("u1"),
                                          decision_row("u1", decided_at=T0 + 1)]),
               await tx.insert_ledger([ledger_row("u1"), ledger_row("u1", at=T0 + 1)])]
        kept = await tx.insert_deliveries([delivery("u1"), delivery("u1", at=T0 + 1)])
    assert new == [1, 1, 1]
    assert [d.created_at for d in kept] == [T0]  # the first given is the one kept
    assert [r.event.at for r in await store.list_events(tenant, "u1")] == [T0]
    assert [r.decision.decided_at for r in await store.list_decisions(tenant, "u1")] == [T0]
    async with store.batch(tenant, ["u1"]) as tx:
        assert [e.at for e in (await tx.load_ledger(0.0)).entries] == [T0]
    assert [d.created_at for d in await store.list_deliveries(tenant)] == [T0]


async def test_delivery_idempotency_key_is_unique_per_tenant_not_across(
    store: Store, tenant: str
) -> None:
    async with store.batch(tenant, ["u1"]) as tx:
        assert len(await tx.insert_deliveries([delivery("u1")])) == 1
    async with store.batch(OTHER_TENANT, ["u1"]) as tx:
        assert len(await tx.insert_deliveries([delivery("u1")])) == 1
    async with store.batch(tenant, ["u1"]) as tx:
        assert await tx.insert_deliveries([delivery("u1")]) == []


async def test_batch_reads_profiles_and_ledger_of_some_locked_users(
    store: Store, tenant: str
) -> None:
    for user_id in ("u1", "u2"):
        await store.put_profile(tenant, profile(user_id))
        async with store.batch(tenant, [user_id]) as tx:
            await tx.insert_ledger([ledger_row(user_id)])
    async with store.batch(tenant, ["u1", "u2"]) as tx:
        assert sorted(await tx.load_profiles()) == ["u1", "u2"]
        assert sorted(await tx.load_profiles(["u2"])) == ["u2"]
        assert [e.user_id for e in (await tx.load_ledger(0.0, ["u1"])).entries] == ["u1"]
        assert len((await tx.load_ledger(0.0)).entries) == 2
        with pytest.raises(OutsideBatchError):
            await tx.load_profiles(["u3"])
        with pytest.raises(OutsideBatchError):
            await tx.load_ledger(0.0, ["u3"])


async def test_old_pings_are_pruned_by_when_they_were_received(
    store: Store, tenant: str
) -> None:
    async with store.batch(tenant, ["u1", "u2"]) as tx:
        await tx.insert_pings(pings("u1", n=3), received_at=T0)
        await tx.insert_pings(pings("u2", n=2), received_at=T0)
    async with store.batch(tenant, ["u1"]) as tx:
        await tx.insert_pings(pings("u1", n=2, t0=T0 + 100), received_at=T0 + 3600)
    async with store.batch(OTHER_TENANT, ["u1"]) as tx:
        await tx.insert_pings(pings("u1", n=4), received_at=T0)
    assert await store.prune_pings(tenant, before=T0, limit=100) == 0
    pruned = 0
    while (gone := await store.prune_pings(tenant, before=T0 + 60, limit=5)) > 0:
        pruned += gone
    assert pruned == 5
    # What was received later stays, and so does the other tenant's.
    assert (await store.erase_user(tenant, "u1"))["pings"] == 2
    assert (await store.erase_user(OTHER_TENANT, "u1"))["pings"] == 4


async def test_batch_refuses_rows_of_users_it_did_not_lock(store: Store, tenant: str) -> None:
    with pytest.raises(OutsideBatchError):
        async with store.batch(tenant, ["u1"]) as tx:
            await tx.insert_deliveries([delivery("u2")])
    with pytest.raises(OutsideBatchError):
        async with store.batch(tenant, ["u1"]) as tx:
            await tx.save_state(presence("u2"))
    with pytest.raises(OutsideBatchError):
        async with store.batch(tenant, ["u1"]) as tx:
            await tx.insert_pings(pings("u2"), received_at=T0)


async def test_due_users_come_earliest_first(store: Store, tenant: str) -> None:
    async with store.batch(tenant, ["a", "b", "c", "d"]) as tx:
        await tx.save_state(presences({"a": T0 + 30, "b": T0 + 10, "c": None,
                                       "d": T0 + 90}))
    assert await store.due_users(tenant, T0 + 60, 10) == ["b", "a"]
    assert await store.due_users(tenant, T0 + 60, 1) == ["b"]
    assert await store.due_users(OTHER_TENANT, T0 + 60, 10) == []


async def test_skip_locked_does_not_claim_a_user_another_batch_holds(
    store: Store, tenant: str
) -> None:
    holding = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with store.batch(tenant, ["u1"]):
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    try:
        async with store.batch(tenant, ["u1", "u2"], skip_locked=True) as tx:
            assert "u1" not in tx.user_ids
    finally:
        release.set()
        await holder
    async with store.batch(tenant, ["u1", "u2"], skip_locked=True) as tx:
        assert tx.user_ids == ("u1", "u2")


async def test_a_second_batch_of_a_user_waits_for_the_first(store: Store, tenant: str) -> None:
    order: list[str] = []
    inside = asyncio.Event()

    async def first() -> None:
        async with store.batch(tenant, ["u1", "u2"]) as tx:
            inside.set()
            # Holding the batch open is the point: the second one must queue behind it.
            await asyncio.sleep(0.05)
            await tx.save_state(presence("u1", T0 + 1))
            order.append("first")

    async def second() -> None:
        await inside.wait()
        async with store.batch(tenant, ["u2", "u1"]) as tx:
            due = dues(await tx.load_state()).get("u1")
            order.append(f"second saw {due - T0 if due else None}")

    await asyncio.wait_for(asyncio.gather(first(), second()), timeout=10)
    assert order == ["first", "second saw 1.0"]


# --------------------------------------------------------------------------- history, outbox


async def test_decisions_list_newest_first_and_page_by_time(store: Store, tenant: str) -> None:
    async with store.batch(tenant, ["u1"]) as tx:
        await tx.insert_decisions([decision_row("u1", f"e{i}", T0 + i) for i in range(5)])
    rows = await store.list_decisions(tenant, "u1", limit=3)
    assert [r.decision.decided_at - T0 for r in rows] == [4, 3, 2]
    older = await store.list_decisions(tenant, "u1", before=rows[-1].decision.decided_at)
    assert [r.decision.decided_at - T0 for r in older] == [1, 0]


async def test_delivery_status_and_feedback_feed_the_ignored_streak(
    store: Store, tenant: str
) -> None:
    async with store.batch(tenant, ["u1"]) as tx:
        created = await tx.insert_deliveries([delivery("u1", "k1"), delivery("u1", "k2")])
    d1, d2 = (d.delivery_id for d in created)
    sent = await store.update_delivery(tenant, d1, status=DeliveryStatus.SENT, attempts=1,
                                       now=T0 + 5)
    assert sent is not None and sent.status is DeliveryStatus.SENT and sent.attempts == 1
    assert [d.delivery_id for d in
            await store.list_deliveries(tenant, status=DeliveryStatus.PENDING)] == [d2]
    await store.record_feedback(tenant, d1, FeedbackKind.DELIVERED, now=T0 + 6)
    await store.record_feedback(tenant, d1, FeedbackKind.DISMISSED, now=T0 + 7)
    after = await store.record_feedback(tenant, d2, FeedbackKind.IGNORED, now=T0 + 8)
    assert after is not None and after.feedback == ("ignored",)
    async with store.batch(tenant, ["u1"]) as tx:
        assert (await tx.load_ledger(0.0)).streaks == {"u1": 2}
    await store.record_feedback(tenant, d2, FeedbackKind.CLICKED, now=T0 + 9)
    async with store.batch(tenant, ["u1"]) as tx:
        assert (await tx.load_ledger(0.0)).streaks == {"u1": 0}
    one = await store.get_delivery(tenant, d1)
    assert one is not None and one.feedback == ("delivered", "dismissed")


# --------------------------------------------------------------------------- erasure


async def _everything_about(store: Store, tenant: str, user_id: str) -> None:
    await store.put_profile(tenant, profile(user_id))
    async with store.batch(tenant, [user_id]) as tx:
        await tx.insert_pings(pings(user_id), received_at=T0)
        await tx.insert_events([event_row(user_id)])
        await tx.insert_decisions([decision_row(user_id)])
        await tx.insert_ledger([ledger_row(user_id)])
        created = await tx.insert_deliveries([delivery(user_id)])
        await tx.save_state(presence(user_id))
    await store.record_feedback(tenant, created[0].delivery_id, FeedbackKind.DISMISSED,
                                now=T0)
    await store.record_conversion(tenant, "c1", user_id, at=T0)
    await store.ingest_behaviour(tenant, [BehaviourRecord.of(BehaviourEvent(
        user_id=user_id, ts=T0, kind="view"), received_at=T0)])


async def test_erase_user_deletes_everything_about_the_user_only(
    store: Store, tenant: str
) -> None:
    for user_id in ("u1", "u2"):
        await _everything_about(store, tenant, user_id)
    await _everything_about(store, OTHER_TENANT, "u1")

    counts = await store.erase_user(tenant, "u1")
    assert counts == {"profiles": 1, "pings": 3, "presence": 1, "events": 1, "decisions": 1,
                      "ledger": 1, "streaks": 1, "deliveries": 1, "conversions": 1,
                      "behaviour_events": 1, "behaviour_features": 1,
                      "behaviour_triggers": 0}
    assert await store.get_profile(tenant, "u1") is None
    assert await store.list_events(tenant, "u1") == []
    assert await store.list_decisions(tenant, "u1") == []
    assert await store.list_deliveries(tenant, user_id="u1") == []
    assert await store.due_users(tenant, T0 + 1000, 10) == ["u2"]
    async with store.batch(tenant, ["u1"]) as tx:
        assert described(await tx.load_state()) == {}
        snap = await tx.load_ledger(0.0)
        assert snap.entries == () and snap.streaks == {}
    # The other user, and the same user id in another tenant, keep everything.
    assert await store.get_profile(tenant, "u2") is not None
    assert len(await store.list_deliveries(tenant, user_id="u2")) == 1
    assert await store.get_profile(OTHER_TENANT, "u1") is not None
    assert len(await store.list_decisions(OTHER_TENANT, "u1")) == 1
    again = await store.erase_user(tenant, "u1")
    assert set(again.values()) == {0}


async def test_ready_when_usable(store: Store) -> None:
    readiness = await store.ready()
    assert readiness.ok, readiness.detail
