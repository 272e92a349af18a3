"""Behaviour events in the partitioned mode: the stream message that carries them, and
the gateway's publishing of ``POST /v1/events``.

A batch that passed the checks is split by user partition
(:func:`~server.cluster.partitions.partition_of`, the pings' partitions), and each
(tenant, partition) group is published **on the partition's own subject**,
``pings.<tenant>.<partition>``, with the header ``Geopush-Kind: events``. Events and
pings of a partition are so one sequence of one stream, read by the partition's one
ordered consumer: its owner takes them in the order JetStream stored them, and the
checkpoint's sequence covers both. (A subject of their own, ``events.<tenant>.<n>``,
would need a consumer with two filter subjects — NATS 2.10 — or a second stream,
whose order no longer agrees with the pings'.)

The message id is a hash of the tenant, the partition and the events (not ``now``):
a batch sent again within the stream's duplicate window is stored once, and one sent
later is stored once in PostgreSQL by ``event_id``.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from server.cluster.gateway import publish_groups
from server.cluster.partitions import MessageError, PingGroup, partition_of
from server.cluster.partitions import decode as decode_pings
from server.cluster.stream import Cluster
from triggers.behaviour.events import BehaviourEvent

KIND_HEADER = "Geopush-Kind"
EVENTS_KIND = "events"
EVENTS_VERSION = 1

_EVENTS = TypeAdapter(list[BehaviourEvent])


@dataclass(frozen=True, slots=True)
class EventGroup:
    """The behaviour events of one tenant and partition from one request, and the
    gateway's wall time (the events' ``received_at``; triggers are started and
    cancelled at it, so a replay decides the same)."""

    tenant_id: str
    partition: int
    now: float
    events: tuple[BehaviourEvent, ...]

    def _body(self) -> list[dict[str, Any]]:
        return [e.model_dump(mode="json") for e in self.events]

    def message_id(self) -> str:
        head = f"{EVENTS_KIND}\x1f{self.tenant_id}\x1f{self.partition}\x1f".encode()
        return hashlib.sha256(head + orjson.dumps(self._body())).hexdigest()

    def encode(self) -> bytes:
        return orjson.dumps({"v": EVENTS_VERSION, "tenant": self.tenant_id,
                             "partition": self.partition, "now": self.now,
                             "events": self._body()})


def split_events(tenant_id: str, events: Sequence[BehaviourEvent], partitions: int, *,
                 now: float) -> list[EventGroup]:
    """The batch as one group per partition, events in their batch order."""
    by_partition: dict[int, list[BehaviourEvent]] = defaultdict(list)
    for event in events:
        by_partition[partition_of(tenant_id, event.user_id, partitions)].append(event)
    return [EventGroup(tenant_id, p, now, tuple(found))
            for p, found in sorted(by_partition.items())]


def decode_message(data: bytes, headers: Mapping[str, str] | None) -> PingGroup | EventGroup:
    """A partition's message: a ping group, or (header ``Geopush-Kind: events``) an
    event group. Raises :class:`MessageError` when it is neither."""
    if not headers or headers.get(KIND_HEADER) != EVENTS_KIND:
        return decode_pings(data)
    try:
        body = orjson.loads(data)
        if body["v"] != EVENTS_VERSION:
            raise MessageError(f"events message version {body['v']!r} is not "
                               f"{EVENTS_VERSION}")
        return EventGroup(str(body["tenant"]), int(body["partition"]), float(body["now"]),
                          tuple(_EVENTS.validate_python(body["events"])))
    except MessageError:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, ValidationError) as exc:
        raise MessageError(f"not an event group: {exc}") from exc


def in_stream_steps(groups: Sequence[PingGroup | EventGroup],
                    ) -> list[tuple[list[PingGroup], list[EventGroup]]]:
    """A round's messages, in stream order, as steps of (ping groups, then the event
    groups after them): each step's pings are processed before its events, and its
    events before the next step's pings."""
    steps: list[tuple[list[PingGroup], list[EventGroup]]] = [([], [])]
    for group in groups:
        if isinstance(group, EventGroup):
            steps[-1][1].append(group)
        else:
            if steps[-1][1]:
                steps.append(([], []))
            steps[-1][0].append(group)
    return steps


class StreamEvents:
    """The gateway's ``POST /v1/events`` sink: publishes the checked events to the
    partitions' subjects and returns once JetStream acknowledged every group."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self.published = 0
        """Messages acknowledged so far (for tests)."""

    async def publish(self, tenant_id: str, events: Sequence[BehaviourEvent], *,
                      now: float) -> None:
        """Raises :class:`ApiError` 503 (``stream_unavailable``) when JetStream does not
        acknowledge in time (see :func:`~server.cluster.gateway.publish_groups`)."""
        groups = split_events(tenant_id, events, self._cluster.partitions, now=now)
        await publish_groups(self._cluster, groups, "the stream did not acknowledge the "
                             "events", {KIND_HEADER: EVENTS_KIND})
        self.published += len(groups)
