"""The pipeline over both stores: a walk into Forum, its timer, its one delivery."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from server.pipeline import IngestResult, fire_all_timers, fire_timers, ingest
from server.store import NotFoundError, PolicyRecord, Store, StoreUnavailableError
from server.store.base import DecisionRecord
from server.store.roles import BatchTx
from server.tenant_core import CoreBuildError, TenantCores
from tests.decisions.builders import campaign
from tests.server.pipeline.builders import (
    FORUM,
    T0,
    Fix,
    IngestForwarder,
    batch,
    setup_tenant,
    walk_into_forum,
)
from tests.server.store.builders import described, dues
from tests.triggers.builders import offset

pytestmark = pytest.mark.asyncio(loop_scope="session")

TENANT = "acme"


def kinds(events: Iterable[Any]) -> list[str]:
    return [f"{e.kind.value}:{e.venue_id}" for e in events]


@pytest.fixture
async def ready_store(store: Store) -> Store:
    await setup_tenant(store, TENANT)
    return store


async def _walk_in(store: Store, cores: TenantCores) -> list[Fix]:
    fixes = walk_into_forum("u1")
    result = await ingest(store, cores, TENANT, batch(fixes), now=fixes[-1].ts)
    assert kinds(result.events) == [f"enter:{FORUM}"]
    assert result.deliveries == ()
    return fixes


async def test_walk_into_forum_enters_dwells_by_timer_and_delivers_once(
    ready_store: Store,
) -> None:
    store, cores = ready_store, TenantCores()
    await _walk_in(store, cores)
    enter_at = (await store.list_events(TENANT, "u1"))[0].event.at
    dwell_at = enter_at + 300

    early = await fire_timers(store, cores, TENANT, dwell_at - 1)
    assert early.events == () and early.users == ()
    fired = await fire_timers(store, cores, TENANT, dwell_at)
    assert kinds(fired.events) == [f"dwell:{FORUM}"]
    assert fired.events[0].at == dwell_at
    (decision,) = fired.decisions
    assert decision.chosen is not None and decision.chosen.campaign_id == "forum-dwell"
    (delivery,) = fired.deliveries
    assert (delivery.user_id, delivery.campaign_id, delivery.status.value) == (
        "u1", "forum-dwell", "pending")
    again = await fire_timers(store, cores, TENANT, dwell_at + 1)
    assert again.events == ()

    assert await store.list_deliveries(TENANT) == [delivery]
    logged = await store.list_decisions(TENANT, "u1")
    assert [d.decision.event for d in logged] == ["dwell", "enter"]


async def test_reprocessing_the_same_batch_creates_no_second_delivery(
    ready_store: Store,
) -> None:
    store, cores = ready_store, TenantCores()
    fixes = await _walk_in(store, cores)
    enter_at = (await store.list_events(TENANT, "u1"))[0].event.at
    await fire_timers(store, cores, TENANT, enter_at + 300)
    replay = await ingest(store, cores, TENANT, batch(fixes), now=enter_at + 310)
    assert replay.events == () and replay.deliveries == ()
    assert replay.counters.late + replay.counters.duplicate == len(fixes)
    await fire_timers(store, cores, TENANT, enter_at + 320)
    assert len(await store.list_deliveries(TENANT)) == 1


async def test_replaying_events_from_an_older_state_sends_nothing_twice(
    ready_store: Store,
) -> None:
    """A node that restarts from older presence (a redelivered log message) derives the
    same events again: keys make every write a no-op, and the cap is not counted twice."""
    store, cores = ready_store, TenantCores()
    await _walk_in(store, cores)
    async with store.batch(TENANT, ["u1"]) as tx:
        before = await tx.load_state()
    dwell_at = dues(before)["u1"]
    assert dwell_at is not None
    await fire_timers(store, cores, TENANT, dwell_at)
    async with store.batch(TENANT, ["u1"]) as tx:
        await tx.save_state(before)
    replay = await fire_timers(store, cores, TENANT, dwell_at + 5)
    assert kinds(replay.events) == [f"dwell:{FORUM}"]
    assert replay.deliveries == ()
    assert len(await store.list_deliveries(TENANT)) == 1
    assert len(await store.list_decisions(TENANT, "u1")) == 2
    async with store.batch(TENANT, ["u1"]) as tx:
        assert len((await tx.load_ledger(0.0)).entries) == 1


class _FailingTx:
    """Delegates to a real transaction, and fails where a disk would."""

    def __init__(self, inner: BatchTx) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def insert_decisions(self, decisions: Sequence[DecisionRecord]) -> int:
        raise RuntimeError("disk on fire")


class _FailingStore(IngestForwarder):
    """An ingest store whose batches fail after the deliveries and ledger rows were written."""

    @asynccontextmanager
    async def batch(self, tenant_id: str, user_ids: Sequence[str], *,
                    skip_locked: bool = False) -> AsyncIterator[BatchTx]:
        async with self.inner.batch(tenant_id, user_ids, skip_locked=skip_locked) as tx:
            yield _FailingTx(tx)


async def test_an_exception_mid_batch_leaves_no_half_state(ready_store: Store) -> None:
    store, cores = ready_store, TenantCores()
    await _walk_in(store, cores)
    async with store.batch(TENANT, ["u1"]) as tx:
        before = described(await tx.load_state())
    dwell_at = dues(await tx.load_state())["u1"]
    assert dwell_at is not None

    with pytest.raises(RuntimeError, match="disk on fire"):
        await fire_timers(_FailingStore(store), cores, TENANT, dwell_at)

    assert await store.list_deliveries(TENANT) == []
    assert kinds(e.event for e in await store.list_events(TENANT, "u1")) == [f"enter:{FORUM}"]
    async with store.batch(TENANT, ["u1"]) as tx:
        assert described(await tx.load_state()) == before
        assert (await tx.load_ledger(0.0)).entries == ()
    # Nothing was lost either: the timer is still due and fires on the next round.
    retried = await fire_timers(store, cores, TENANT, dwell_at + 1)
    assert len(retried.deliveries) == 1


async def test_deleted_venue_ends_the_open_visit_as_venue_removed(ready_store: Store) -> None:
    store, cores = ready_store, TenantCores()
    fixes = await _walk_in(store, cores)
    assert await store.delete_venue(TENANT, FORUM, cascade=True)  # Forum holds stores
    far = offset(fixes[-1].at, 0.0, -600.0)  # down Mannerheimintie, near no venue
    later = [Fix("u1", fixes[-1].ts + 60, far)]
    result = await ingest(store, cores, TENANT, batch(later), now=later[0].ts)
    assert kinds(result.events) == [f"exit:{FORUM}"]
    assert result.events[0].reason is not None
    assert result.events[0].reason.value == "venue_removed"
    assert await store.due_users(TENANT, T0 + 10_000, 10) == []


async def test_a_campaign_with_a_longer_dwell_gets_its_own_dwell_event(
    ready_store: Store,
) -> None:
    store, cores = ready_store, TenantCores()
    await store.create_campaign(TENANT, campaign(
        "forum-dwell-10min", trigger={"event": "dwell", "dwell_s": 600},
        venues={"ids": [FORUM]}, schedule={"respect_opening_hours": False}))
    await _walk_in(store, cores)
    enter_at = (await store.list_events(TENANT, "u1"))[0].event.at
    first = await fire_timers(store, cores, TENANT, enter_at + 300)
    second = await fire_timers(store, cores, TENANT, enter_at + 600)
    assert [e.dwell_s for e in first.events + second.events] == [300, 600]
    assert [d.campaign_id for d in first.deliveries + second.deliveries] == [
        "forum-dwell", "forum-dwell-10min"]


async def test_core_is_rebuilt_only_when_the_catalogue_changes(ready_store: Store) -> None:
    store, cores = ready_store, TenantCores()
    core = await cores.get(store, TENANT)
    assert await cores.get(store, TENANT) is core
    await store.put_campaign(TENANT, campaign("another"))
    rebuilt = await cores.get(store, TENANT)
    assert rebuilt is not core
    assert rebuilt.catalog_version == await store.catalog_version(TENANT)
    assert "another" in {c.id for c in rebuilt.campaigns.campaigns}


async def test_unknown_tenant_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await ingest(store, TenantCores(), "nope", batch(walk_into_forum()), now=T0)


class _BrokenTenantStore(IngestForwarder):
    def __init__(self, inner: Store, broken: str) -> None:
        super().__init__(inner)
        self._broken = broken

    async def due_users(self, tenant_id: str, now: float, limit: int) -> list[str]:
        if tenant_id == self._broken:
            raise StoreUnavailableError("shard of tenant unreachable")
        return await self.inner.due_users(tenant_id, now, limit)


async def test_timer_round_logs_and_skips_a_failing_tenant(
    ready_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store, cores = ready_store, TenantCores()
    await setup_tenant(store, "broken")
    await _walk_in(store, cores)
    enter_at = (await store.list_events(TENANT, "u1"))[0].event.at
    wrapped = _BrokenTenantStore(store, "broken")
    # An unreachable shard is an outage: logged as a warning once it starts (FailureLog).
    with caplog.at_level(logging.WARNING, logger="geopush.pipeline"):
        results: dict[str, IngestResult] = {}
        await fire_all_timers(wrapped, cores, lambda: enter_at + 300,
                              on_result=results.__setitem__)
    assert "broken" not in results
    assert len(results[TENANT].deliveries) == 1
    assert any("broken" in r.getMessage() for r in caplog.records)


async def test_a_catalogue_that_does_not_compile_keeps_the_previous_core(
    ready_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store, cores = ready_store, TenantCores()
    core = await cores.get(store, TENANT)
    await store.put_policy(TENANT, PolicyRecord(presence={"silence_timeout_s": -1}))
    with caplog.at_level(logging.ERROR, logger="geopush.core"):
        assert await cores.get(store, TENANT) is core
        assert await cores.get(store, TENANT) is core
    assert len(caplog.records) == 1  # not rebuilt (nor logged) again until it changes
    with pytest.raises(CoreBuildError):
        await TenantCores().get(store, TENANT)
