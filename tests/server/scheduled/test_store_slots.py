"""The profile role's fan-out methods, on both stores: zones, keyset pages of a zone
group, and slot cursors that never move back."""

from __future__ import annotations

import pytest

from server.store import Store
from server.store.base import SlotCursor
from tests.decisions.builders import profile

pytestmark = pytest.mark.asyncio(loop_scope="session")

TENANT = "acme"


async def _people(store: Store) -> None:
    await store.ensure_tenant(TENANT)
    for user_id in ("b", "a", "ä", "c", "B"):
        await store.put_profile(TENANT, profile(user_id))
    await store.put_profile(TENANT, profile("ny", attributes={"timezone": "America/New_York"}))
    await store.put_profile(TENANT, profile("none", attributes={"timezone": None}))


async def test_zones_are_listed_once_each_with_zoneless_first(store: Store) -> None:
    await _people(store)
    assert await store.profile_zones(TENANT) == [None, "America/New_York", "Europe/Helsinki"]
    assert await store.profile_zones("nobody") == []


async def test_pages_walk_a_zone_in_code_point_order_without_skip_or_repeat(
    store: Store,
) -> None:
    await _people(store)
    seen: list[str] = []
    after: str | None = None
    while page := await store.profiles_page(TENANT, timezone="Europe/Helsinki", after=after,
                                            limit=2):
        seen += [p.user_id for p in page]
        after = page[-1].user_id
    assert seen == ["B", "a", "b", "c", "ä"]  # code points: B < a < ä
    zoneless = await store.profiles_page(TENANT, timezone=None, after=None, limit=10)
    assert [p.user_id for p in zoneless] == ["none"]


async def test_a_cursor_never_moves_back_and_done_stays_done(store: Store) -> None:
    await store.ensure_tenant(TENANT)
    cursor = SlotCursor("c@2026-12-07T10:00@Europe/Helsinki", "c", 1000.0, "u5", False)
    await store.save_slot_cursor(TENANT, cursor)
    await store.save_slot_cursor(TENANT, SlotCursor(cursor.cursor_id, "c", 1000.0, "u3", True))
    await store.save_slot_cursor(TENANT, SlotCursor(cursor.cursor_id, "c", 1000.0, "u4", False))
    found = await store.slot_cursors(TENANT, since=1000.0)
    assert found == {cursor.cursor_id: SlotCursor(cursor.cursor_id, "c", 1000.0, "u5", True)}
    assert await store.slot_cursors(TENANT, since=1000.5) == {}
