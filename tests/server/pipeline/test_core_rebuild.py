"""A tenant's core is rebuilt off the event loop after a catalogue change, and ingestion
goes on with the previous core until the new one is swapped in (both stores)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from server.pipeline import ingest
from server.store import Store, StoreUnavailableError
from server.store.base import Catalog
from server.tenant_core import TenantCore, TenantCores
from tests.decisions.builders import KLUUVI, campaign
from tests.server.pipeline.builders import FORUM, batch, setup_tenant, walk_into_forum
from tests.server.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

TENANT = "acme"


class _GatedCatalog:
    """The store, whose catalogue reads wait for ``gate`` (a rebuild in slow motion)
    or raise ``failing`` while it is set: the edge of the world, behind the real port."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.gate = asyncio.Event()
        self.gate.set()
        self.failing: Exception | None = None
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def load_catalog(self, tenant_id: str) -> Catalog:
        self.reads += 1
        await self.gate.wait()
        if self.failing is not None:
            raise self.failing
        return await self._inner.load_catalog(tenant_id)


@pytest.fixture
async def gated(store: Store) -> _GatedCatalog:
    await setup_tenant(store, TENANT)
    return _GatedCatalog(store)


async def test_ingestion_uses_the_previous_core_while_the_new_one_is_built(
    gated: _GatedCatalog,
) -> None:
    cores = TenantCores(rebuild_wait_s=0.0)
    old = await cores.get(gated, TENANT)
    gated.gate.clear()
    gated.reads = 0
    await gated.put_campaign(TENANT, campaign("another", venues={"ids": [KLUUVI]}))

    # The version moved; the rebuild waits on the catalogue read, the batch does not.
    fixes = walk_into_forum("u1")
    result = await ingest(gated, cores, TENANT, batch(fixes), now=fixes[-1].ts)
    assert [e.venue_id for e in result.events] == [FORUM]
    await eventually(lambda: gated.reads == 1)  # the rebuild started, and waits
    assert await cores.get(gated, TENANT) is old
    assert gated.reads == 1  # one rebuild in flight, shared by every caller

    gated.gate.set()
    new = await cores.refresh(gated, TENANT)
    assert new is not old and "another" in {c.id for c in new.campaigns.campaigns}
    assert await cores.get(gated, TENANT) is new


async def test_a_short_wait_gets_the_new_core_when_it_is_ready_in_time(
    gated: _GatedCatalog,
) -> None:
    cores = TenantCores(rebuild_wait_s=30.0)
    old = await cores.get(gated, TENANT)
    await gated.put_campaign(TENANT, campaign("another"))
    new = await cores.get(gated, TENANT)
    assert new is not old and new.catalog_version == await gated.catalog_version(TENANT)


async def test_refresh_after_a_change_made_during_a_build_waits_for_the_later_build(
    gated: _GatedCatalog,
) -> None:
    cores = TenantCores(rebuild_wait_s=0.0)
    await cores.get(gated, TENANT)
    gated.gate.clear()
    await gated.put_campaign(TENANT, campaign("first"))
    await cores.get(gated, TENANT)  # starts a build, waits not
    await gated.put_campaign(TENANT, campaign("second"))
    refreshed = asyncio.ensure_future(cores.refresh(gated, TENANT))
    gated.gate.set()
    core = await refreshed
    assert {"first", "second"} <= {c.id for c in core.campaigns.campaigns}


async def _changed_then_failing(gated: _GatedCatalog,
                                error: Exception) -> tuple[TenantCores, TenantCore]:
    """Cores holding the tenant's core, whose catalogue then changes and fails to load."""
    cores = TenantCores(rebuild_wait_s=0.0)
    old = await cores.get(gated, TENANT)
    gated.failing = error
    await gated.put_campaign(TENANT, campaign("another"))
    return cores, old


async def test_a_background_rebuild_that_fails_is_logged_and_the_old_core_kept(
    gated: _GatedCatalog, caplog: pytest.LogCaptureFixture,
) -> None:
    cores, old = await _changed_then_failing(gated, RuntimeError("a bug in the reading"))
    with caplog.at_level(logging.ERROR, logger="geopush.core"):
        assert await cores.get(gated, TENANT) is old
        await eventually(lambda: any("rebuild failed" in r.getMessage() and r.exc_info
                                     for r in caplog.records))
    gated.failing = None
    assert (await cores.refresh(gated, TENANT)).catalog_version > old.catalog_version


async def test_rebuilds_without_the_database_log_a_line_when_it_starts_and_one_when_it_ends(
    gated: _GatedCatalog, caplog: pytest.LogCaptureFixture,
) -> None:
    cores, old = await _changed_then_failing(
        gated, StoreUnavailableError("catalogue shard unreachable"))
    with caplog.at_level(logging.INFO, logger="geopush.core"):
        for _ in range(3):  # each rebuild fails as soon as its read does
            reads = gated.reads
            assert await cores.get(gated, TENANT) is old
            await eventually(lambda: gated.reads > reads)  # noqa: B023
        gated.failing = None
        assert (await cores.refresh(gated, TENANT)).catalog_version > old.catalog_version
    ours = [r for r in caplog.records if r.name == "geopush.core"]
    assert [(getattr(r, "outage", None), getattr(r, "step", None)) for r in ours] == [
        ("started", f"tenant {TENANT}"), ("ended", f"tenant {TENANT}")]
    assert not [r for r in ours if r.exc_info]
    assert getattr(ours[1], "failures", 0) >= 3


async def test_shutdown_cancels_a_rebuild_in_flight(gated: _GatedCatalog) -> None:
    cores = TenantCores(rebuild_wait_s=0.0)
    await cores.get(gated, TENANT)
    gated.gate.clear()
    await gated.put_campaign(TENANT, campaign("another"))
    await cores.get(gated, TENANT)
    await cores.aclose()
    gated.gate.set()
    assert cores.cached(TENANT) is not None
