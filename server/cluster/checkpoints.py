"""Checkpoints: a partition's presence state with the stream sequence it reached.

One object per partition in the JetStream object store (``p.<n>``): zlib-compressed
JSON ``{"v", "partition", "seq", "written_at", "owner", "tenants": {tenant:
snapshot}}``, where each snapshot is :func:`triggers.presence_state.snapshot` of the
tenant's users in this partition (exact: :func:`~triggers.presence_state.restore`
gives the same state back). A checkpoint is written only after every effect of the
messages up to ``seq`` is committed in PostgreSQL, so restoring it and replaying from
``seq + 1`` repeats nothing that is not already stored under its idempotency key.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field

import orjson
from nats.js.errors import NotFoundError
from nats.js.object_store import ObjectStore

from triggers.errors import TriggerError
from triggers.presence_state import PresenceState, new_state, restore, snapshot

CHECKPOINT_VERSION = 1


class CheckpointError(Exception):
    """A stored checkpoint that cannot be read (the message says why)."""


@dataclass(slots=True)
class Checkpoint:
    """A partition's state: per tenant, its users' presence; ``seq``: the last stream
    sequence whose effects it includes (0: nothing yet)."""

    partition: int
    seq: int = 0
    tenants: dict[str, PresenceState] = field(default_factory=dict)
    written_at: float = 0.0
    owner: str = ""

    def state(self, tenant_id: str) -> PresenceState:
        """The tenant's presence in this partition (created empty on first use)."""
        found = self.tenants.get(tenant_id)
        if found is None:
            found = self.tenants[tenant_id] = new_state()
        return found


def object_name(partition: int) -> str:
    return f"p.{partition}"


def encode(checkpoint: Checkpoint) -> bytes:
    body = {"v": CHECKPOINT_VERSION, "partition": checkpoint.partition,
            "seq": checkpoint.seq, "written_at": checkpoint.written_at,
            "owner": checkpoint.owner,
            "tenants": {t: snapshot(s) for t, s in sorted(checkpoint.tenants.items())}}
    return zlib.compress(orjson.dumps(body), 1)


def decode(data: bytes) -> Checkpoint:
    try:
        body = orjson.loads(zlib.decompress(data))
        if body["v"] != CHECKPOINT_VERSION:
            raise CheckpointError(f"checkpoint version {body['v']!r} is not supported")
        tenants = {str(t): restore(s) for t, s in body["tenants"].items()}
        return Checkpoint(int(body["partition"]), int(body["seq"]), tenants,
                          float(body["written_at"]), str(body["owner"]))
    except CheckpointError:
        raise
    except (zlib.error, orjson.JSONDecodeError, KeyError, TypeError, ValueError,
            TriggerError) as exc:
        raise CheckpointError(f"unreadable checkpoint: {exc}") from exc


async def save(store: ObjectStore, checkpoint: Checkpoint, *, owner: str) -> float:
    """Write the checkpoint (replacing the previous one); returns its time."""
    checkpoint.written_at = time.time()
    checkpoint.owner = owner
    await store.put(object_name(checkpoint.partition), encode(checkpoint))
    return checkpoint.written_at


async def load(store: ObjectStore, partition: int) -> Checkpoint:
    """The partition's last checkpoint; an empty one at sequence 0 when none exists."""
    try:
        found = await store.get(object_name(partition))
    except NotFoundError:
        return Checkpoint(partition)
    if found.data is None:
        return Checkpoint(partition)
    return decode(found.data)
