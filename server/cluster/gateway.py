"""The gateway's ingest: validated pings go to the JetStream stream, not to the engine.

``geopush serve --role gateway`` answers ping requests as every node does (the same
validation, the same rejects), then hands each batch to :class:`StreamIngest` instead of
the group committer: the batch is split by partition
(:func:`~server.cluster.partitions.split`), one message per (tenant, partition) group
is published with its ``Nats-Msg-Id``, and the call returns once JetStream has
acknowledged every one (stored on a majority of the stream's replicas). Only then does
the client get its 2xx: an acknowledged ping is in the stream, and the partition's
owner will process it.

Events, decisions and deliveries happen later in the workers, so the result carries
none: the answer's ``events`` and ``deliveries`` are empty and ``ignored`` is ``{}``
(see ``docs/scale-out.md``). A publish that fails or times out fails the request
(503, ``stream_unavailable``); the client retries the batch, and the groups that had
been stored are recognised by their message ids and stored once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Protocol

from nats.errors import Error as NatsError

from server.cluster.partitions import split, subject
from server.cluster.stream import STREAM, Cluster
from server.errors import ApiError
from server.pipeline import IngestResult
from triggers.pings import PingBatch

PUBLISH_TIMEOUT_S = 5.0
"""How long a publish waits for JetStream's acknowledgement (a replica election after
a node dies takes a few seconds)."""


class StreamIngest:
    """Publishes ping batches to the stream (the gateway's replacement for the group
    committer; the same ``ingest`` / ``close`` calls)."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self.published = 0
        """Messages acknowledged so far (for metrics and tests)."""

    async def ingest(self, tenant_id: str, pings: PingBatch, *, now: float) -> IngestResult:
        """Publish the batch, one message per partition group; returns after every
        acknowledgement. Raises :class:`ApiError` 503 when JetStream does not ack."""
        groups = split(tenant_id, pings, self._cluster.partitions, now=now)
        await publish_groups(self._cluster, groups, "the ping stream did not acknowledge "
                             "the batch")
        self.published += len(groups)
        return IngestResult()

    async def close(self) -> None:
        await self._cluster.close()


class Publishable(Protocol):
    """A partition's message: a ping group or an event group."""

    @property
    def tenant_id(self) -> str: ...

    @property
    def partition(self) -> int: ...

    def encode(self) -> bytes: ...

    def message_id(self) -> str: ...


async def publish_groups(cluster: Cluster, groups: Sequence[Publishable], failed: str,
                         headers: Mapping[str, str] | None = None) -> None:
    """Publish each group to its partition's subject with its ``Nats-Msg-Id`` (and
    ``headers``); returns once JetStream acknowledged every one. Raises
    :class:`ApiError` 503 (``stream_unavailable``, the message starting with ``failed``)
    when it does not within :data:`PUBLISH_TIMEOUT_S`: the client sends it again."""
    js = cluster.js
    try:
        await asyncio.gather(*(
            js.publish(subject(g.tenant_id, g.partition), g.encode(), stream=STREAM,
                       timeout=PUBLISH_TIMEOUT_S,
                       headers={"Nats-Msg-Id": g.message_id(), **(headers or {})})
            for g in groups))
    except (NatsError, TimeoutError) as exc:
        raise ApiError(503, "stream_unavailable",
                       f"{failed}: {exc or 'timeout'}; send it again", field=None) from exc
