"""Partition ownership: leases in the NATS KV bucket, taken and kept by compare-and-set.

A lease is the key ``p.<n>`` holding ``{"owner", "expires_at", ...}`` (wall time, epoch
seconds). A worker takes a partition by writing its lease at the revision it read: a
missing key is *created* (fails if another worker created it first), an expired or
released one is *updated at that revision* (fails if anyone wrote it since). The same
compare-and-set renews it. So at most one worker holds a partition's lease at any time.

A lease lasts ``timeout_s`` (default :data:`DEFAULT_LEASE_S`) from its last renewal;
the owner renews every third of that. The owner also stops working on a partition on
its own (monotonic) clock a margin before the lease could expire, so it has stopped
before anybody else may take it; if it is cut off from NATS it cannot renew and stops.

Workers announce themselves with a heartbeat key ``w.<id>`` of the same lifetime: the
live workers decide each one's fair share of the partitions (see :mod:`.worker`).

Extra fields ride along with the lease for ``geopush cluster status``: the stream
sequence the owner reached, the messages still pending, and the checkpoint's sequence
and time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from nats.js.errors import (
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
)
from nats.js.kv import KeyValue

DEFAULT_LEASE_S = 10.0
"""A lease not renewed for this long is free: a dead worker's partitions move after it."""
SAFETY_MARGIN = 0.2
"""Share of the lease time an owner stops early (clock drift, a slow renewal)."""


def lease_key(partition: int) -> str:
    return f"p.{partition}"


def worker_key(worker_id: str) -> str:
    return f"w.{worker_id}"


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease as stored; ``owner`` empty and ``expires_at`` 0 when released."""

    owner: str = ""
    expires_at: float = 0.0
    position: int = 0
    pending: int = 0
    checkpoint_seq: int = 0
    checkpoint_at: float = 0.0

    def free(self, now: float) -> bool:
        return not self.owner or self.expires_at <= now

    def encode(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def decode(cls, data: bytes | None) -> Lease:
        if not data:
            return cls()
        try:
            body: dict[str, Any] = orjson.loads(data)
            return cls(**{k: body[k] for k in cls.__dataclass_fields__ if k in body})
        except (orjson.JSONDecodeError, TypeError):
            return cls()  # a value we cannot read is no lease at all


@dataclass(slots=True)
class Held:
    """A lease this worker holds: the revision to renew at, and until when (monotonic)
    it may work on the partition."""

    revision: int
    valid_until: float
    lease: Lease


@dataclass
class LeaseTable:
    """One worker's view and use of the lease bucket."""

    kv: KeyValue
    worker_id: str
    timeout_s: float = DEFAULT_LEASE_S
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    held: dict[int, Held] = field(default_factory=dict)

    def valid(self, partition: int) -> bool:
        """Whether this worker may still process the partition right now."""
        held = self.held.get(partition)
        return held is not None and self.monotonic() < held.valid_until

    def _grant(self, partition: int, revision: int, lease: Lease, started: float) -> Held:
        held = Held(revision, started + self.timeout_s * (1 - SAFETY_MARGIN), lease)
        self.held[partition] = held
        return held

    async def acquire(self, partition: int) -> bool:
        """Take the partition if its lease is missing, expired or released."""
        started = self.monotonic()
        key = lease_key(partition)
        try:
            entry = await self.kv.get(key)
        except (KeyNotFoundError, KeyDeletedError):
            entry = None
        if entry is not None and entry.revision is not None:
            current = Lease.decode(entry.value)
            if not current.free(self.clock()) and current.owner != self.worker_id:
                return False
            lease = Lease(self.worker_id, self.clock() + self.timeout_s,
                          current.position, current.pending, current.checkpoint_seq,
                          current.checkpoint_at)
            try:
                revision = await self.kv.update(key, lease.encode(), last=entry.revision)
            except KeyWrongLastSequenceError:
                return False
        else:
            lease = Lease(self.worker_id, self.clock() + self.timeout_s)
            try:
                revision = await self.kv.create(key, lease.encode())
            except KeyWrongLastSequenceError:
                return False
        self._grant(partition, revision, lease, started)
        return True

    async def renew(self, partition: int, **progress: float) -> bool:
        """Extend a held lease (and record ``progress`` fields); False, and the lease
        forgotten, when somebody else wrote it since (it was lost)."""
        held = self.held.get(partition)
        if held is None:
            return False
        started = self.monotonic()
        fields = {**asdict(held.lease), **progress,
                  "owner": self.worker_id, "expires_at": self.clock() + self.timeout_s}
        lease = Lease(**fields)
        try:
            revision = await self.kv.update(lease_key(partition), lease.encode(),
                                            last=held.revision)
        except KeyWrongLastSequenceError:
            self.held.pop(partition, None)
            return False
        self._grant(partition, revision, lease, started)
        return True

    async def release(self, partition: int, **progress: float) -> None:
        """Give the partition up (after its checkpoint): free for any worker at once."""
        held = self.held.pop(partition, None)
        if held is None:
            return
        fields = {**asdict(held.lease), **progress, "owner": "", "expires_at": 0.0}
        # A failed compare-and-set: taken over already, nothing of ours to release.
        with contextlib.suppress(KeyWrongLastSequenceError):
            await self.kv.update(lease_key(partition), Lease(**fields).encode(),
                                 last=held.revision)

    async def heartbeat(self) -> None:
        """Announce this worker as live for one lease time."""
        await self.kv.put(worker_key(self.worker_id), orjson.dumps(
            {"expires_at": self.clock() + self.timeout_s}))

    async def leave(self) -> None:
        with contextlib.suppress(KeyNotFoundError, KeyDeletedError):
            await self.kv.delete(worker_key(self.worker_id))


async def read_all(kv: KeyValue, partitions: int) -> tuple[dict[int, Lease], list[str]]:
    """Every partition's lease (a missing one is free) and the live workers, sorted."""
    leases = {p: Lease() for p in range(partitions)}
    workers: list[str] = []
    now = time.time()
    for key in await key_names(kv):
        if not (key.startswith("p.") or key.startswith("w.")):
            continue
        try:
            entry = await kv.get(key)
        except (KeyNotFoundError, KeyDeletedError):
            continue
        if key.startswith("p."):
            partition = int(key[2:])
            if partition < partitions:
                leases[partition] = Lease.decode(entry.value)
        else:
            body = orjson.loads(entry.value or b"{}")
            if float(body.get("expires_at", 0)) > now:
                workers.append(key[2:])
    return leases, sorted(workers)


async def key_names(kv: KeyValue) -> list[str]:
    """The bucket's keys (deleted ones included), from its stream's subject index.

    Not ``kv.keys()``: that creates a consumer, and after a node dies nats-server 2.9
    keeps placing about a third of new single-replica consumers on the dead node, where
    they never answer (measured: ``kv.keys()`` timed out for 50 s and more after a
    kill -9, while gets and puts worked again within 7 s). The subject index is
    answered by the stream's leader alone."""
    prefix = kv._pre  # "$KV.<bucket>."
    info = await kv._js.stream_info(kv._stream, subjects_filter=f"{prefix}>")
    return sorted(subject[len(prefix):] for subject in info.state.subjects or {})
