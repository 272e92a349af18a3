"""Which partition a user's pings go to, and the stream message that carries them.

A ping batch of one tenant is split by partition: ``partition_of(tenant, user, P)`` is a
stable 64-bit BLAKE2b hash of (tenant, user) modulo ``P``, the same in every process and
every release (never Python's ``hash``, which is salted per process). Hashing the tenant
too spreads tenants that reuse the same user ids (``user1``...) over the partitions.

One message per (tenant, partition) group carries that group's pings as columns, with the
gateway's wall time ``now``: the worker processes the message at that ``now``, so a replay
after a crash gives the very events and decisions of the first pass. The message id
(``Nats-Msg-Id``) is a hash of the tenant, the partition and the pings: a client or a
gateway that sends the same batch again within the stream's duplicate window is stored
once.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from triggers.errors import TriggerError
from triggers.pings import PingBatch

SUBJECT_PREFIX = "pings"
MESSAGE_VERSION = 1
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}").fullmatch


class MessageError(ValueError):
    """A stream message that is not a ping group of this format (logged and skipped)."""


def partition_of(tenant_id: str, user_id: str, partitions: int) -> int:
    """The partition (0 .. partitions - 1) of a user of a tenant; stable everywhere."""
    digest = hashlib.blake2b(f"{tenant_id}\x1f{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def tenant_token(tenant_id: str) -> str:
    """The tenant as one subject token: itself when it is plain (letters, digits, ``_``,
    ``-``), else ``=`` and its UTF-8 in hex (``=`` never starts a plain id, so no two
    tenants share a token; dots and wildcards would break the subject)."""
    if _PLAIN_TOKEN(tenant_id):
        return tenant_id
    return "=" + tenant_id.encode().hex()


def subject(tenant_id: str, partition: int) -> str:
    """``pings.<tenant>.<partition>``."""
    return f"{SUBJECT_PREFIX}.{tenant_token(tenant_id)}.{partition}"


def partition_filter(partition: int) -> str:
    """The subject filter of one partition, every tenant."""
    return f"{SUBJECT_PREFIX}.*.{partition}"


@dataclass(frozen=True, slots=True)
class PingGroup:
    """The pings of one tenant and partition from one request, and its wall time."""

    tenant_id: str
    partition: int
    now: float
    pings: PingBatch

    def message_id(self) -> str:
        """The de-duplication id: the same pings of the same tenant and partition give
        the same id whatever ``now`` (a resent batch is the same message)."""
        body = orjson.dumps(_columns(self.pings))
        head = f"{self.tenant_id}\x1f{self.partition}\x1f".encode()
        return hashlib.sha256(head + body).hexdigest()

    def encode(self) -> bytes:
        return orjson.dumps({"v": MESSAGE_VERSION, "tenant": self.tenant_id,
                             "partition": self.partition, "now": self.now,
                             "pings": _columns(self.pings)})


def split(tenant_id: str, pings: PingBatch, partitions: int, *, now: float) -> list[PingGroup]:
    """The batch as one group per partition that has pings, pings in their batch order."""
    users = [str(u) for u in pings.user_id.tolist()]
    of_user = {u: partition_of(tenant_id, u, partitions) for u in set(users)}
    which = np.array([of_user[u] for u in users], dtype=np.int64)
    groups = []
    for partition in sorted(set(of_user.values())):
        rows = np.flatnonzero(which == partition)
        groups.append(PingGroup(tenant_id, partition, now, _take(pings, rows)))
    return groups


def decode(data: bytes) -> PingGroup:
    """A message back as a group; raises :class:`MessageError` when it is not one."""
    try:
        body = orjson.loads(data)
        if body["v"] != MESSAGE_VERSION:
            raise MessageError(f"message version {body['v']!r} is not {MESSAGE_VERSION}")
        cols = body["pings"]
        pings = PingBatch.from_columns(
            np.array(cols["user_id"], dtype=str), _floats(cols["ts"]),
            _floats(cols["lat"]), _floats(cols["lng"]),
            accuracy_m=_floats(cols["accuracy_m"]), speed_mps=_floats(cols["speed_mps"]),
            heading_deg=_floats(cols["heading_deg"]),
            mock=np.array(cols["mock"], dtype=np.bool_))
        return PingGroup(str(body["tenant"]), int(body["partition"]), float(body["now"]),
                         pings)
    except MessageError:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, TriggerError) as exc:
        raise MessageError(f"not a ping group: {exc}") from exc


def _take(pings: PingBatch, rows: np.ndarray[Any, np.dtype[np.int64]]) -> PingBatch:
    if rows.shape[0] == len(pings):
        return pings
    return PingBatch.from_columns(
        np.array([str(u) for u in pings.user_id[rows].tolist()], dtype=str),
        pings.ts[rows], pings.lat[rows], pings.lng[rows], accuracy_m=pings.accuracy_m[rows],
        speed_mps=pings.speed_mps[rows], heading_deg=pings.heading_deg[rows],
        mock=pings.mock[rows])


def _columns(pings: PingBatch) -> dict[str, list[Any]]:
    # JSON has no NaN: an absent value (NaN in the engine's columns) travels as null.
    return {
        "user_id": [str(u) for u in pings.user_id.tolist()],
        "ts": pings.ts.tolist(), "lat": pings.lat.tolist(), "lng": pings.lng.tolist(),
        "accuracy_m": _nullable(pings.accuracy_m), "speed_mps": _nullable(pings.speed_mps),
        "heading_deg": _nullable(pings.heading_deg), "mock": pings.mock.tolist(),
    }


def _nullable(values: np.ndarray[Any, np.dtype[np.float64]]) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.tolist()]


def _floats(values: list[float | None]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.array(values, dtype=np.float64)  # None becomes NaN


def plan_runs(groups: Sequence[PingGroup], max_pings: int = 2_000) -> list[list[PingGroup]]:
    """Consecutive stream messages as runs the engine can take at once (as the group
    commit does with concurrent requests): one tenant per run, no user in two groups of
    a run, at most ``max_pings`` pings (a single larger group is a run of its own). A
    group sharing a user with one passed over waits for a later run too, so each user's
    messages are processed in stream order."""
    runs: list[list[PingGroup]] = []
    waiting = list(groups)
    while waiting:
        run: list[PingGroup] = []
        taken: set[tuple[str, str]] = set()
        passed: set[tuple[str, str]] = set()
        size = 0
        kept: list[PingGroup] = []
        for group in waiting:
            users = {(group.tenant_id, str(u)) for u in group.pings.user_id.tolist()}
            fits = not run or (group.tenant_id == run[0].tenant_id
                               and size + len(group.pings) <= max_pings)
            if fits and users.isdisjoint(taken) and users.isdisjoint(passed):
                run.append(group)
                taken |= users
                size += len(group.pings)
            else:
                passed |= users
                kept.append(group)
        runs.append(run)
        waiting = kept
    return runs

