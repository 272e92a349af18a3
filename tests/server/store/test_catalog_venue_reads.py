"""A catalogue read returns the venues as stored now, on both stores, though PostgreSQL's
read parses only the venues written since its last read (``server.store.pg_venue_cache``):
a venue replaced within the same clock second reads back replaced, a deleted one is gone,
and an unchanged one is the very object of the last read (not parsed again)."""

from __future__ import annotations

import pytest

from server.store import PostgresStore, Store
from tests.server.conftest import TENANT, ManualClock, open_clocked
from venues import parse_feature_collection
from venues.model import Venue

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _venue(venue_id: str, name: str, lng: float, lat: float) -> Venue:
    """A 50 m circle (Helsinki's Senate Square and the Market Square)."""
    load = parse_feature_collection({"type": "Feature", "id": venue_id, "geometry": {
        "type": "Point", "coordinates": [lng, lat]}, "properties": {
            "name": name, "kind": "other", "radius_m": 50.0}}, source="test")
    return load.venues[0]


async def test_a_catalogue_read_sees_every_venue_change_made_in_one_clock_second(
        store: Store, database_url: str) -> None:
    clocked = await open_clocked(store, database_url, ManualClock(1_772_452_800.0))
    try:
        await clocked.ensure_tenant(TENANT)
        await clocked.put_venues(TENANT, [_venue("senate", "Senate Square", 24.952, 60.1694),
                                          _venue("tori", "Market Square", 24.953, 60.1675)])
        first = await clocked.load_catalog(TENANT)
        assert [v.name for v in first.venues] == ["Senate Square", "Market Square"]
        await clocked.put_venues(TENANT, [_venue("senate", "Senaatintori", 24.952, 60.1694)])
        second = await clocked.load_catalog(TENANT)
        assert [(v.id, v.name) for v in second.venues] == [
            ("senate", "Senaatintori"), ("tori", "Market Square")]
        if isinstance(clocked, PostgresStore):
            assert second.venues[1] is first.venues[1]  # unchanged: not parsed again
        await clocked.delete_venue(TENANT, "tori")
        third = await clocked.load_catalog(TENANT)
        assert [v.id for v in third.venues] == ["senate"]
    finally:
        await clocked.close()
