"""Group commit of behaviour events over both stores: concurrent requests share a
transaction, each gets exactly its own answer, and only once the transaction is done."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import pytest

from server.behaviour_group_commit import BehaviourGroupCommitter
from server.store import Store
from server.store.roles import BehaviourRecord, BehaviourStore
from tests.behaviour.builders import MONDAY_NOON, event, views
from triggers.behaviour.events import BehaviourEvent
from triggers.decisions.models import Campaign

pytestmark = pytest.mark.asyncio(loop_scope="session")

RECEIVED = MONDAY_NOON + 60.0


class _Recording:
    """A behaviour store that records each ``ingest_behaviour`` call, takes its time
    (so that other requests queue meanwhile), and fails any call holding ``poison``."""

    def __init__(self, inner: Store, poison: str | None = None) -> None:
        self.inner = inner
        self.poison = poison
        self.calls: list[list[str]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def ingest_behaviour(self, tenant_id: str, records: Sequence[BehaviourRecord], *,
                               campaigns: Sequence[Campaign] = (),
                               now: float | None = None) -> list[BehaviourRecord]:
        self.calls.append([r.event_key for r in records])
        await asyncio.sleep(0.01)
        await self.release.wait()
        if self.poison is not None and any(r.event.user_id == self.poison for r in records):
            raise RuntimeError(f"disk full for {self.poison}")
        return await self.inner.ingest_behaviour(tenant_id, records, campaigns=campaigns,
                                                 now=now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _committer(recording: _Recording, **kwargs: Any) -> BehaviourGroupCommitter:
    return BehaviourGroupCommitter(cast(BehaviourStore, recording), **kwargs)


def _records(events: Sequence[BehaviourEvent]) -> list[BehaviourRecord]:
    return [BehaviourRecord.of(e, RECEIVED) for e in events]


async def _holding_the_store(groups: BehaviourGroupCommitter, recording: _Recording,
                             tenant: str) -> asyncio.Task[list[BehaviourRecord]]:
    """A first request, in the store until ``recording.release`` is set: the requests
    made meanwhile queue for the next group."""
    recording.release.clear()
    first = asyncio.create_task(groups.ingest(tenant, _request("zoe"), now=RECEIVED))
    while not recording.calls:
        await asyncio.sleep(0.001)
    return first


def _request(user: str) -> list[BehaviourRecord]:
    return _records(views(3, "baby", user=user))


async def test_concurrent_requests_share_a_transaction_and_get_their_own_answers(
    store: Store, tenant: str,
) -> None:
    recording = _Recording(store)
    groups = _committer(recording)
    requests = [_request(f"u{i}") for i in range(8)]
    answers = await asyncio.gather(*(groups.ingest(tenant, r, now=RECEIVED)
                                     for r in requests))
    assert answers == requests
    assert len(recording.calls) < len(requests)  # the first alone, the rest grouped
    for i in range(8):
        assert len(await store.list_behaviour(tenant, f"u{i}")) == 3


async def test_an_event_id_in_two_concurrent_requests_is_stored_once_by_the_earlier(
    store: Store, tenant: str,
) -> None:
    recording = _Recording(store)
    groups = _committer(recording)
    first = await _holding_the_store(groups, recording, tenant)
    earlier = _records([event("view", user="mia", item="stroller-9", category="baby",
                              event_id="e-1")])
    later = _records([event("view", user="mia", item="crib-2", category="baby",
                            event_id="e-1"),
                      event("view", user="mia", item="cot-4", category="baby", event_id="e-2")])
    answers = [asyncio.create_task(groups.ingest(tenant, r, now=RECEIVED))
               for r in (earlier, later)]
    await asyncio.sleep(0.02)
    recording.release.set()
    await first
    assert [await a for a in answers] == [earlier, later[1:]]
    # Both queued requests went in one group, in the order they arrived.
    assert recording.calls[1] == [r.event_key for r in earlier + later]
    stored = await store.list_behaviour(tenant, "mia")
    assert sorted(r.event.item.id for r in stored if r.event.item) == ["cot-4", "stroller-9"]
    features = await store.get_features(tenant, "mia")
    assert features is not None and features.events == 2  # folded once


async def test_a_failing_request_does_not_sink_a_concurrent_good_one(
    store: Store, tenant: str,
) -> None:
    recording = _Recording(store, poison="bad")
    groups = _committer(recording)
    first = await _holding_the_store(groups, recording, tenant)
    good, bad, also_good = _request("mia"), _request("bad"), _request("leo")
    answers = [asyncio.create_task(groups.ingest(tenant, r, now=RECEIVED))
               for r in (good, bad, also_good)]
    await asyncio.sleep(0.02)
    recording.release.set()
    await first
    assert await answers[0] == good and await answers[2] == also_good
    with pytest.raises(RuntimeError, match="disk full for bad"):
        await answers[1]
    assert len(await store.list_behaviour(tenant, "mia")) == 3
    assert len(await store.list_behaviour(tenant, "leo")) == 3
    assert await store.list_behaviour(tenant, "bad") == []


async def test_a_request_is_answered_only_after_its_events_are_stored(
    store: Store, tenant: str,
) -> None:
    recording = _Recording(store)
    groups = _committer(recording)
    recording.release.clear()
    answer = asyncio.create_task(groups.ingest(tenant, _request("mia"), now=RECEIVED))
    await asyncio.sleep(0.05)
    assert not answer.done()
    assert await store.list_behaviour(tenant, "mia") == []
    recording.release.set()
    assert len(await answer) == 3
    assert len(await store.list_behaviour(tenant, "mia")) == 3


async def test_a_group_holds_at_most_max_events_and_never_splits_a_request(
    store: Store, tenant: str,
) -> None:
    recording = _Recording(store)
    groups = _committer(recording, max_events=5)
    requests = [_request(f"u{i}") for i in range(4)]
    assert await asyncio.gather(*(groups.ingest(tenant, r, now=RECEIVED)
                                  for r in requests)) == requests
    assert [len(keys) for keys in recording.calls] == [3, 3, 3, 3]
