"""Behaviour events as partition messages: split by the pings' partitions, one id per
content, read back exactly, told apart from ping groups by their header, and taken in
stream order with the pings."""

from __future__ import annotations

import numpy as np
import pytest

from server.cluster.events import (
    EVENTS_KIND,
    KIND_HEADER,
    EventGroup,
    decode_message,
    in_stream_steps,
    split_events,
)
from server.cluster.partitions import MessageError, PingGroup, partition_of
from triggers.behaviour.events import BehaviourEvent
from triggers.pings import PingBatch

TENANT = "acme"
NOON = 1_796_644_800.0
HEADERS = {KIND_HEADER: EVENTS_KIND}


def view(user: str, item: str = "stroller-9", **extra: object) -> BehaviourEvent:
    return BehaviourEvent.model_validate({
        "event_id": f"view-{user}-{item}", "user_id": user, "ts": NOON, "kind": "view",
        "item": {"id": item, "name": "City stroller", "category": "baby", "price": 499.0},
        **extra})


def pings_of(user: str) -> PingGroup:
    batch = PingBatch.from_columns(np.array([user]), np.array([NOON]),
                                   np.array([60.1699]), np.array([24.9384]))
    return PingGroup(TENANT, 0, NOON, batch)


def test_each_event_goes_to_its_users_partition_in_batch_order() -> None:
    events = [view(f"mum-{i}", item) for i in range(12) for item in ("a", "b")]
    groups = split_events(TENANT, events, 4, now=NOON)
    assert len(groups) > 1 and sum(len(g.events) for g in groups) == len(events)
    for group in groups:
        assert {partition_of(TENANT, e.user_id, 4) for e in group.events} == {group.partition}
        assert list(group.events) == [e for e in events if e in group.events]


def test_a_group_reads_back_as_the_same_events_with_the_same_keys() -> None:
    [group] = split_events(TENANT, [view("mum-1", props={"screen": "pdp"})], 1, now=NOON)
    back = decode_message(group.encode(), HEADERS)
    assert back == group
    assert isinstance(back, EventGroup) and back.events[0].key() == "id:view-mum-1-stroller-9"


def test_the_message_id_is_the_events_not_the_time_they_were_sent() -> None:
    events = (view("mum-1"),)
    first = EventGroup(TENANT, 3, NOON, events)
    assert first.message_id() == EventGroup(TENANT, 3, NOON + 30, events).message_id()
    assert first.message_id() != EventGroup(TENANT, 3, NOON, (view("mum-2"),)).message_id()
    assert first.message_id() != EventGroup("other", 3, NOON, events).message_id()


def test_a_message_without_the_events_header_is_a_ping_group() -> None:
    group = pings_of("mum-1")
    assert isinstance(decode_message(group.encode(), None), PingGroup)
    assert isinstance(decode_message(group.encode(), {"Nats-Msg-Id": "x"}), PingGroup)


@pytest.mark.parametrize("data", [b"{", b'{"v": 9, "tenant": "acme"}',
                                  b'{"v": 1, "tenant": "acme", "partition": 0, "now": 1,'
                                  b' "events": [{"user_id": "u"}]}'])
def test_an_unreadable_event_group_is_a_message_error(data: bytes) -> None:
    with pytest.raises(MessageError):
        decode_message(data, HEADERS)


def test_pings_and_events_keep_their_stream_order_in_steps() -> None:
    p1, p2, p3 = pings_of("a"), pings_of("b"), pings_of("c")
    e1, e2 = EventGroup(TENANT, 0, NOON, (view("a"),)), EventGroup(TENANT, 0, NOON, (view("b"),))
    assert in_stream_steps([p1, e1, e2, p2, p3, e1]) == [([p1], [e1, e2]), ([p2, p3], [e1])]
    assert in_stream_steps([e1, p1]) == [([], [e1]), ([p1], [])]
    assert in_stream_steps([]) == [([], [])]
