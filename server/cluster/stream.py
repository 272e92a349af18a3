"""The JetStream objects of the partitioned mode, their settings, and connecting.

Three objects, created by whichever process comes first (a gateway or
``geopush cluster init``), with ``replicas`` copies each (3 on a three-node cluster:
any one node may die):

- the stream :data:`STREAM` on ``pings.>``: every ping group, kept by *limits*
  retention (not work-queue: a new owner replays from its checkpoint, so messages must
  outlive their first reading) for :data:`DEFAULT_MAX_AGE_S`, with a
  :data:`DUPLICATE_WINDOW_S` window for ``Nats-Msg-Id`` de-duplication;
- the KV bucket :data:`LEASES`: one lease per partition (``p.<n>``), one heartbeat
  per live worker (``w.<id>``), and the partition count (``partitions``);
- the object store :data:`CHECKPOINTS`: each partition's presence and the stream
  sequence it reached (objects can exceed a message's size, KV values cannot).

Workers read with ordered consumers (ephemeral, no acknowledgements, flow control and
idle heartbeats; the client recreates one on a gap): the worker's own checkpoint is its
position, so JetStream keeps no consumer state that could disagree with it, and ack
wait does not apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, KeyWrongLastSequenceError, ServiceUnavailableError
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from server.cluster.partitions import SUBJECT_PREFIX

STREAM = "GEOPUSH_PINGS"
LEASES = "geopush_leases"
CHECKPOINTS = "geopush_checkpoints"
PARTITIONS_KEY = "partitions"
DEFAULT_PARTITIONS = 64
DEFAULT_MAX_AGE_S = 7 * 86_400.0
"""A week: far beyond any checkpoint interval, so a partition is always replayable."""
NO_PEERS_YET = 10005
"""JetStream's ``err_code`` for "no suitable peers for placement"."""
SETUP_WAIT_S = 20.0
"""How long opening waits for JetStream (a fresh cluster elects its leaders first)."""
CLOSE_WAIT_S = 5.0
"""How long closing waits for the connection to drain (NATS may be gone)."""
CONNECT_WAIT_S = 3.0
"""How long a read-only look (``cluster status``) tries to connect."""
DUPLICATE_WINDOW_S = 120.0
"""Client retries of one batch within two minutes are stored once."""
PARTITION_REQUEST_S = 2.0
"""How long a partition's own JetStream requests (a consumer created, its last sequence
asked) wait. A live node answers in milliseconds; a request that JetStream cannot answer
(no leader yet, or a consumer placed on a dead node) is retried by the partition's next
round instead of holding it for the client's default 5 s."""


@dataclass(frozen=True, slots=True)
class StreamMark:
    """A subject filter's last stream sequence, as JetStream answered it at wall time
    ``at``: every message published before ``at`` has a sequence up to ``seq``."""

    at: float
    seq: int


async def last_sequence(js: JetStreamContext, subject_filter: str) -> int:
    """The stream sequence of the last message on ``subject_filter`` (wildcards allowed;
    0: none). Answered by the stream's leader; raises when it cannot answer."""
    try:
        found = await js.get_last_msg(STREAM, subject_filter)
    except nats.js.errors.NotFoundError:
        return 0
    return int(found.seq or 0)


class ClusterSetupError(Exception):
    """The stream or its buckets could not be read or created (the message says which)."""


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """What the stream is created with (only the first creation counts)."""

    partitions: int = DEFAULT_PARTITIONS
    replicas: int = 1
    max_age_s: float = DEFAULT_MAX_AGE_S


@dataclass(slots=True)
class Cluster:
    """A connection and the partitioned mode's JetStream objects."""

    nc: Client
    js: JetStreamContext
    leases: KeyValue
    checkpoints: ObjectStore
    partitions: int

    async def close(self) -> None:
        """Drain (publishes in flight finish), at most :data:`CLOSE_WAIT_S`, then close."""
        try:
            await asyncio.wait_for(self.nc.drain(), CLOSE_WAIT_S)
        except (TimeoutError, NatsError):
            await self.nc.close()


def split_urls(urls: str | Sequence[str]) -> list[str]:
    """``nats://a:4222,nats://b:4222`` (or a list of such) as one URL per server."""
    items = [urls] if isinstance(urls, str) else list(urls)
    return [u.strip() for item in items for u in item.split(",") if u.strip()]


async def connect(urls: str | Sequence[str], *, name: str = "geopush") -> Client:
    """A client that reconnects to any of ``urls`` forever (a node may be restarting)."""
    return await nats.connect(servers=split_urls(urls), name=name, max_reconnect_attempts=-1,
                              reconnect_time_wait=0.25, connect_timeout=5)


async def open_cluster(urls: str | Sequence[str], settings: StreamSettings | None = None,
                       *, name: str = "geopush", create: bool = True) -> Cluster:
    """Connect and open (``create``: create when missing) the stream and its buckets.
    The partition count is the stored one when the stream exists already."""
    settings = settings or StreamSettings()
    try:
        # The client retries forever once connected; the first connection is bounded.
        nc = await asyncio.wait_for(connect(urls, name=name),
                                    SETUP_WAIT_S if create else CONNECT_WAIT_S)
    except (OSError, NatsError, TimeoutError) as exc:
        why = str(exc) or type(exc).__name__
        raise ClusterSetupError(f"cannot connect to NATS at {', '.join(split_urls(urls))}: "
                                f"{why}") from exc
    deadline = time.monotonic() + SETUP_WAIT_S
    while True:
        try:
            js = nc.jetstream(timeout=5)
            if create:
                await _ensure_stream(js, settings)
            leases = await _key_value(js, settings, create=create)
            checkpoints = await _object_store(js, settings, create=create)
            partitions = await _partition_count(leases, settings.partitions, create=create)
            return Cluster(nc, js, leases, checkpoints, partitions)
        except (ServiceUnavailableError, TimeoutError, NoRespondersError,
                BadRequestError) as exc:
            if isinstance(exc, BadRequestError) and not _forming(exc):
                await nc.close()
                raise ClusterSetupError(f"JetStream refused the setup: {exc}") from exc
            # A cluster that just started elects its JetStream leaders first, and
            # places replicas only once it has heard from enough servers.
            if time.monotonic() > deadline:
                await nc.close()
                raise ClusterSetupError(f"JetStream not available: {exc!r}") from exc
            await asyncio.sleep(0.25)
        except Exception:
            await nc.close()
            raise


async def _ensure_stream(js: JetStreamContext, settings: StreamSettings) -> None:
    config = StreamConfig(
        name=STREAM, subjects=[f"{SUBJECT_PREFIX}.>"], retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE, num_replicas=settings.replicas,
        max_age=settings.max_age_s, duplicate_window=DUPLICATE_WINDOW_S,
        discard=DiscardPolicy.OLD, description="geopush ping groups, pings.<tenant>.<partition>")
    try:
        await js.stream_info(STREAM)
    except nats.js.errors.NotFoundError:
        try:
            await js.add_stream(config)
        except BadRequestError as exc:  # created by another process meanwhile
            if _forming(exc):
                raise
            if "already in use" not in str(exc):
                raise ClusterSetupError(f"creating stream {STREAM}: {exc}") from exc


def _forming(exc: BadRequestError) -> bool:
    """JetStream's "no suitable peers for placement": a cluster that just started has
    not heard from as many servers as the replicas need yet."""
    return exc.err_code == NO_PEERS_YET


async def _key_value(js: JetStreamContext, settings: StreamSettings, *,
                     create: bool) -> KeyValue:
    try:
        return await js.key_value(LEASES)
    except nats.js.errors.BucketNotFoundError:
        if not create:
            raise ClusterSetupError(f"no KV bucket {LEASES}: no gateway or worker has "
                                    "created the stream yet") from None
    return await js.create_key_value(KeyValueConfig(
        bucket=LEASES, history=1, replicas=settings.replicas,
        description="geopush partition leases and worker heartbeats"))


async def _object_store(js: JetStreamContext, settings: StreamSettings, *,
                        create: bool) -> ObjectStore:
    try:
        return await js.object_store(CHECKPOINTS)
    except nats.js.errors.NotFoundError:
        if not create:
            raise ClusterSetupError(f"no object store {CHECKPOINTS}") from None
    return await js.create_object_store(CHECKPOINTS, config=ObjectStoreConfig(
        replicas=settings.replicas, description="geopush partition checkpoints"))


async def _partition_count(leases: KeyValue, wanted: int, *, create: bool) -> int:
    """The stored partition count; the first process to get here stores ``wanted``."""
    if create:
        # Stored already: the stream's setting wins over this process's flag.
        with contextlib.suppress(KeyWrongLastSequenceError):
            await leases.create(PARTITIONS_KEY, str(wanted).encode())
    entry = await leases.get(PARTITIONS_KEY)
    if entry.value is None:
        raise ClusterSetupError("the partition count is missing from the lease bucket")
    return int(entry.value)
