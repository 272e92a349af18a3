"""Scheduled fan-out in the partitioned mode: each worker sends a due slot to the users
of the partitions it owns, and keeps one cursor per (slot, zone group, partition).

A round (:func:`schedule_owned`) finds the tenant's open slots as a node does
(:func:`server.scheduler.open_work`: due slots, caught-up slots within their grace,
missed ones), then walks each slot's zone group in keyset pages of profiles
(``profiles_page``, user-id order). From each page it takes, per owned partition, the
users of that partition after the partition's cursor; it decides and writes these
shares in one transaction, holding those partitions' locks
(:func:`server.scheduler.settle_page`: the same ``decide``, the same keys (tenant,
campaign, user, slot), ``ON CONFLICT DO NOTHING``), then moves each partition's cursor
to the page's last user id: every user of the partition up to it is settled. The
walk starts at the lowest cursor among the owned partitions still open and marks each
one done at the group's end.

**Handover.** A partition that moves (handed over, or its worker killed) is resumed
by its new owner from the partition's cursor, which lives in PostgreSQL
(``schedule_slots``, id ``<campaign>@<local slot>@<zone>#p<n>/<P>``). The old owner
stops walking it as soon as the partition is no longer its own; a page it was writing
when it died is written again by the new owner under the same keys, so nobody gets a
second push and nobody is skipped.

**Cost.** The partition is not stored with the profile (it is a BLAKE2b hash of the
tenant and user that PostgreSQL cannot index), so each worker reads every profile of a
zone group once per slot and decides only its own users: W workers read W times the
audience, and write each user once. The reads are sequential keyset pages on the
profiles' primary key, far cheaper than the decisions and their writes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from server.cluster.partitions import partition_of
from server.scheduler import (
    DEFAULT_PAGE_USERS,
    RoundResult,
    ScheduleStore,
    cursor_id,
    open_work,
    settle_page,
    with_learned_tags,
)
from server.store.base import SlotCursor
from server.tenant_core import NO_LEARNED, Learned, TenantCore, TenantCores, learned_for
from triggers.decisions import Profile
from triggers.decisions.slots import Slot, SlotState

OwnedLock = Callable[[int], asyncio.Lock | None]
"""A partition's lock while this worker owns it and may fire its timers, else None."""


def partition_cursor_id(slot: Slot, zone: str | None, partition: int, partitions: int) -> str:
    """The cursor of one partition's users in a slot's zone group."""
    return f"{cursor_id(slot, zone)}#p{partition}/{partitions}"


async def schedule_owned(
    store: ScheduleStore, cores: TenantCores, tenant_id: str, now: float, *,
    owned: OwnedLock, partitions: int, page_users: int = DEFAULT_PAGE_USERS,
) -> RoundResult:
    """Settle the tenant's open slots at ``now`` for the users of the partitions
    ``owned`` gives a lock for (see the module docstring)."""
    result = RoundResult()
    core = await cores.get(store, tenant_id)
    campaigns = core.campaigns.active_of_kind("scheduled")
    mine = [p for p in range(partitions) if owned(p) is not None]
    if not campaigns or not mine:
        return result
    work = open_work(campaigns, await store.profile_zones(tenant_id), core.policy, now)
    if not work:
        return result
    cursors = await store.slot_cursors(tenant_id, min(slot.at for slot, _, _ in work))
    walk = _PartitionWalk(store, core, now, owned, partitions, page_users, result,
                          await learned_for(cores, core, now))
    for slot, state, zone in work:
        after: dict[int, str | None] = {}
        for partition in mine:
            found = cursors.get(partition_cursor_id(slot, zone, partition, partitions))
            if found is None or not found.done:
                after[partition] = None if found is None else found.after_user
        if after:
            await walk.group(slot, state, zone, after)
    return result


@dataclass(slots=True)
class _PartitionWalk:
    """One round's walk over zone groups for the owned partitions."""

    store: ScheduleStore
    core: TenantCore
    now: float
    owned: OwnedLock
    partitions: int
    page_users: int
    result: RoundResult
    learned: Learned = NO_LEARNED

    async def group(self, slot: Slot, state: SlotState, zone: str | None,
                    after: dict[int, str | None]) -> None:
        """Walk the zone group for the partitions of ``after`` (partition → its cursor),
        from the lowest cursor; a partition lost meanwhile is left to its new owner."""
        start = None if None in after.values() else min(a for a in after.values() if a)
        upcoming: asyncio.Task[list[Profile]] | None = self._read(zone, start)
        try:
            while after and upcoming is not None:
                page = await upcoming
                # The next page is read while this one is decided and written.
                upcoming = self._read(zone, page[-1].user_id) \
                    if len(page) == self.page_users else None
                if page:
                    start = page[-1].user_id
                    await self._page(slot, state, zone, page, after)
        finally:
            if upcoming is not None:  # every partition lost, or a page failed
                upcoming.cancel()
                with contextlib.suppress(BaseException):
                    await upcoming
        for partition in after:
            if self.owned(partition) is not None:
                await self._save(slot, zone, partition, start, done=True)

    def _read(self, zone: str | None, after: str | None) -> asyncio.Task[list[Profile]]:
        return asyncio.create_task(self.store.profiles_page(
            self.core.tenant_id, timezone=zone, after=after, limit=self.page_users))

    async def _page(self, slot: Slot, state: SlotState, zone: str | None,
                    page: Sequence[Profile], after: dict[int, str | None]) -> None:
        """Settle the page's shares and move their partitions' cursors to its end; a
        partition lost meanwhile leaves ``after`` (its new owner resumes its cursor)."""
        shares = await self._learned(self._shares(page, after))
        settled = await self._settle(slot, state, shares)
        for partition in set(shares) - settled:
            del after[partition]
        last = page[-1].user_id
        await asyncio.gather(*(self._save(slot, zone, p, last, done=False)
                               for p in sorted(settled)))

    def _shares(self, page: Sequence[Profile],
                after: dict[int, str | None]) -> dict[int, list[Profile]]:
        """The page's users of each open partition past that partition's cursor (user
        ids compare in code point order, as the pages are read)."""
        shares: dict[int, list[Profile]] = defaultdict(list)
        for profile in page:
            partition = partition_of(self.core.tenant_id, profile.user_id, self.partitions)
            if partition in after:
                cursor = after[partition]
                if cursor is None or profile.user_id > cursor:
                    shares[partition].append(profile)
        return shares

    async def _learned(self, shares: dict[int, list[Profile]]) -> dict[int, list[Profile]]:
        """The shares' profiles with their learned tags (read for this worker's users
        only, not for the whole page)."""
        mine = [p for share in shares.values() for p in share]
        if not mine:
            return shares
        learned = await with_learned_tags(self.store, self.core.tenant_id, mine, self.now)
        by_user = {p.user_id: p for p in learned}
        return {partition: [by_user[p.user_id] for p in share]
                for partition, share in shares.items()}

    async def _settle(self, slot: Slot, state: SlotState,
                      shares: dict[int, list[Profile]]) -> set[int]:
        """Decide and write the page's shares of the partitions still owned in one
        transaction, holding their locks (taken in ascending order; every other holder
        takes one lock at a time, so no two wait for each other); which were settled."""
        async with contextlib.AsyncExitStack() as held:
            settled: set[int] = set()
            for partition in sorted(shares):
                lock = self.owned(partition)
                if lock is not None:
                    await held.enter_async_context(lock)
                    settled.add(partition)
            users = [p for partition in sorted(settled) for p in shares[partition]]
            if users:
                await settle_page(self.store, self.core, slot, state, users, now=self.now,
                                  learned=self.learned, result=self.result)
                self.result.pages += 1
        return settled

    async def _save(self, slot: Slot, zone: str | None, partition: int, last: str | None,
                    *, done: bool) -> None:
        await self.store.save_slot_cursor(self.core.tenant_id, SlotCursor(
            partition_cursor_id(slot, zone, partition, self.partitions), slot.campaign_id,
            slot.at, last, done))
