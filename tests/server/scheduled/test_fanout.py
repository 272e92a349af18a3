"""A scheduled slot fanned out by the service, on both stores: each zone at its own local
time, in pages, once per (campaign, user, slot), caught up within its grace and recorded
as ``slot_missed`` after, resumed from its cursor after a crash, held over quiet hours."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest

from server.pipeline import fire_all_timers
from server.scheduler import RoundResult, ScheduleStore, schedule_round
from server.store import BatchTx, Store
from server.store.base import DeliveryRecord
from server.tenant_core import TenantCores
from tests.decisions.builders import at
from tests.server.scheduled.builders import (
    CAMPAIGN,
    HELSINKI_MOTHERS,
    NEW_YORK_MOTHERS,
    TENANT,
    ZONELESS_MOTHERS,
    relaxed_policy,
    setup_case,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

HELSINKI_TEN = at("2026-12-07 10:00")
NEW_YORK_TEN = at("2026-12-07 10:00", "America/New_York")
TOKYO_TEN = at("2026-12-07 10:00", "Asia/Tokyo")


async def _deliveries(store: Store) -> list[DeliveryRecord]:
    return await store.list_deliveries(TENANT, limit=1000)


async def _round(store: Store, now: float, **options: Any) -> RoundResult:
    return await schedule_round(store, TenantCores(), TENANT, now, list_users=True, **options)


def _pushed(result: RoundResult) -> list[str]:
    return sorted(result.delivered_users or [])


async def test_each_zone_gets_its_own_local_ten_oclock(store: Store) -> None:
    await setup_case(store)
    helsinki = await _round(store, HELSINKI_TEN)
    assert _pushed(helsinki) == HELSINKI_MOTHERS
    sent = await _deliveries(store)
    assert {(d.event, d.venue_id, d.title) for d in sent} == {("scheduled", "", "Hei Aino")}
    assert {d.visit_id for d in sent} == {f"{CAMPAIGN}@2026-12-07T10:00@{u}"
                                          for u in HELSINKI_MOTHERS}
    new_york = await _round(store, NEW_YORK_TEN)
    assert _pushed(new_york) == NEW_YORK_MOTHERS
    assert len(await _deliveries(store)) == len(HELSINKI_MOTHERS) + len(NEW_YORK_MOTHERS)


async def test_users_without_a_zone_get_the_tenant_zones_slot(store: Store) -> None:
    await setup_case(store)
    result = await _round(store, TOKYO_TEN)
    assert _pushed(result) == ZONELESS_MOTHERS


async def test_a_slot_sends_once_however_many_rounds_see_it(store: Store) -> None:
    await setup_case(store)
    first = await _round(store, HELSINKI_TEN + 5)
    again = await _round(store, HELSINKI_TEN + 60)
    assert len(_pushed(first)) == len(HELSINKI_MOTHERS)
    assert again.deliveries == 0 and again.pages == 0  # its cursor is done


async def test_decisions_are_recorded_for_the_audience_only(store: Store) -> None:
    await setup_case(store)
    await _round(store, HELSINKI_TEN)
    [record] = await store.list_decisions(TENANT, "hel-0")
    assert (record.decision.event, record.decision.venue_id) == ("scheduled", None)
    assert str(record.decision.considered[0].reason) == "sent"
    assert await store.list_decisions(TENANT, "hel-fan") == []


async def test_pages_bound_a_round_and_the_next_round_continues(store: Store) -> None:
    await setup_case(store)
    first = await _round(store, HELSINKI_TEN, page_users=2, max_pages=2)
    assert first.pending and len(_pushed(first)) == 4
    rest = await _round(store, HELSINKI_TEN + 1, page_users=2, max_pages=2)
    assert _pushed(rest) == ["hel-4"]  # then Tokyo's missed 15:00 is recorded


async def test_a_slot_missed_while_down_is_caught_up_within_its_grace(store: Store) -> None:
    await setup_case(store, grace_s=1800)
    late = await _round(store, HELSINKI_TEN + 1700)  # back 28 minutes after 10:00
    assert _pushed(late) == HELSINKI_MOTHERS


async def test_a_slot_missed_beyond_its_grace_is_skipped_as_slot_missed(store: Store) -> None:
    await setup_case(store, grace_s=1800)
    result = await _round(store, HELSINKI_TEN + 1801)
    assert result.deliveries == 0
    assert result.missed == len(HELSINKI_MOTHERS) + len(ZONELESS_MOTHERS)  # Tokyo 15:00 too
    [record] = await store.list_decisions(TENANT, "hel-3")
    [line] = record.decision.considered
    assert (str(line.reason), line.campaign_id) == ("slot_missed", CAMPAIGN)
    assert record.decision.chosen is None
    assert "after its grace" in (line.detail or "")


async def test_caps_apply_to_the_second_slot_of_the_day(store: Store) -> None:
    await setup_case(store, policy=relaxed_policy(max_per_day=1))
    await _round(store, HELSINKI_TEN)
    afternoon = await _round(store, at("2026-12-07 15:00"))
    assert afternoon.deliveries == 0
    decisions = await store.list_decisions(TENANT, "hel-1")
    assert [str(d.decision.considered[0].reason) for d in decisions] == ["global_cap", "sent"]


async def test_a_slot_in_quiet_hours_is_held_and_not_sent_before_the_window_ends(
    store: Store,
) -> None:
    await setup_case(store, times=["07:00"], offer_ttl_s=4 * 3600,
                     policy=relaxed_policy(quiet_hours="22:00-08:00"))
    await _round(store, at("2026-12-07 07:00"))
    sent = [d for d in await _deliveries(store) if d.user_id in HELSINKI_MOTHERS]
    assert {d.created_at for d in sent} == {at("2026-12-07 08:00")}
    assert {d.expires_at for d in sent} == {at("2026-12-07 11:00")}
    early = await store.claim_deliveries(TENANT, now=at("2026-12-07 07:30"), limit=100,
                                         lease_s=60, claim="test")
    assert early == []
    due = await store.claim_deliveries(TENANT, now=at("2026-12-07 08:00"), limit=100,
                                       lease_s=60, claim="test")
    assert len(due) == len(HELSINKI_MOTHERS)


class _CrashOnPage:
    """The store, except that the ``n``-th batch transaction dies before it commits (the
    process crashing mid fan-out)."""

    def __init__(self, inner: Store, n: int | None) -> None:
        self.inner, self.n, self.batches = inner, n, 0
        self.users: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @asynccontextmanager
    async def batch(self, tenant_id: str, user_ids: Sequence[str], *,
                    skip_locked: bool = False) -> AsyncIterator[BatchTx]:
        self.batches += 1
        self.users.append(sorted(user_ids))
        async with self.inner.batch(tenant_id, user_ids, skip_locked=skip_locked) as tx:
            yield tx
            if self.batches == self.n:
                raise RuntimeError("killed mid fan-out")


async def test_fan_out_resumes_from_its_cursor_after_a_crash(store: Store) -> None:
    await setup_case(store)
    crashing = _CrashOnPage(store, n=2)
    with pytest.raises(RuntimeError, match="killed"):
        await schedule_round(cast("ScheduleStore", crashing), TenantCores(), TENANT,
                             HELSINKI_TEN, page_users=2, pages_in_flight=1)
    assert sorted(d.user_id for d in await _deliveries(store)) == HELSINKI_MOTHERS[:2]
    watching = _CrashOnPage(store, n=None)
    await schedule_round(cast("ScheduleStore", watching), TenantCores(), TENANT,
                         HELSINKI_TEN + 30, page_users=2)
    # The first page is not walked again: the rest of Helsinki is two pages.
    helsinki = [page for page in watching.users if page[0].startswith("hel-")]
    assert helsinki == [["hel-2", "hel-3"], ["hel-4", "hel-fan"]]
    assert sorted(d.user_id for d in await _deliveries(store)) == HELSINKI_MOTHERS


async def test_the_timer_round_runs_the_scheduled_fan_out(store: Store) -> None:
    await setup_case(store)
    seen: dict[str, RoundResult] = {}
    await fire_all_timers(store, TenantCores(), lambda: HELSINKI_TEN, schedule=store,
                          on_scheduled=seen.__setitem__)
    assert seen[TENANT].deliveries == len(HELSINKI_MOTHERS)
    assert sorted(d.user_id for d in await _deliveries(store)) == HELSINKI_MOTHERS


async def test_the_spring_forward_gap_fires_when_the_clocks_jump(store: Store) -> None:
    # Helsinki, 2026-03-29: 03:00 -> 04:00; 03:30 never happens, the slot fires at 04:00.
    await setup_case(store, times=["03:30"])
    jump = at("2026-03-29 01:00", "UTC")  # 03:00 EET becomes 04:00 EEST
    before = await _round(store, jump - 1)
    assert before.deliveries == 0
    jumped = await _round(store, jump)
    assert _pushed(jumped) == HELSINKI_MOTHERS


async def test_the_fall_back_overlap_fires_once(store: Store) -> None:
    # Helsinki, 2026-10-25: 04:00 -> 03:00; 03:30 happens twice, the first one sends.
    await setup_case(store, times=["03:30"])
    first = at("2026-10-25 00:30", "UTC")
    again = first + 3600  # 03:30 EET, the second time the wall clock says 03:30
    assert _pushed(await _round(store, first)) == HELSINKI_MOTHERS
    assert await _round(store, again) == RoundResult(delivered_users=[])
    sent = await _deliveries(store)
    assert len([d for d in sent if d.user_id == "hel-0"]) == 1


async def test_a_scheduled_push_carries_its_picture(store: Store) -> None:
    picture = "https://images.example.com/mother-baby/warm-moment.jpg"
    await setup_case(store, variants=[{"id": "warm", "title": "Hei", "body": "Huomenta",
                                       "image_url": picture}])
    await _round(store, HELSINKI_TEN)
    sent = await _deliveries(store)
    assert len(sent) == len(HELSINKI_MOTHERS)
    assert {d.rich.image_url if d.rich else None for d in sent} == {picture}
