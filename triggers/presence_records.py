"""Presence state as per-user records, so a service loads only a batch's users. Pure.

:func:`split_state` cuts a :class:`~triggers.presence_state.PresenceState` into one
JSON-serialisable record per user, each with the user's next timer due time;
:func:`state_from_records` builds a state holding just the given users. Both go
through :func:`~triggers.presence_state.snapshot` / ``restore``, so the record format
follows the snapshot's and a record read back is exact.

Processing the merged records of a batch's users gives the same events as processing
one state holding every user: no rule looks at two users at once (DESIGN.md,
scale-out), and events are ordered by (time, user id), never by row.

What a record does not carry: the hygiene counters (a merged state starts at zero, so
its counters are the batch's own) and the venue ids last seen (``fence_ids`` is None;
callers reconcile against the current index, see :func:`triggers.presence.reconcile_venues`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from triggers.errors import TriggerError
from triggers.presence_state import SNAPSHOT_VERSION, PresenceState, restore, snapshot

RECORD_VERSION = 1

_USER_COLUMNS = ("last_ts", "anchor_ts", "anchor_lat", "anchor_lng", "reject_streak")


@dataclass(frozen=True, slots=True)
class UserRecord:
    """One user's presence. ``data`` is JSON-serialisable; ``next_due_s`` is the
    earliest timer of the user's open visits (epoch s), None when none is open."""

    user_id: str
    data: dict[str, Any]
    next_due_s: float | None


def split_state(state: PresenceState) -> dict[str, UserRecord]:
    """One record per user the state knows, keyed by user id."""
    snap = snapshot(state)
    users = snap["users"]
    visits: dict[int, list[list[Any]]] = {}
    for row, *visit in snap["visits"]:
        visits.setdefault(row, []).append(visit)
    candidates: dict[int, list[list[Any]]] = {}
    for row, *cand in snap["candidates"]:
        candidates.setdefault(row, []).append(cand)
    out: dict[str, UserRecord] = {}
    for row, user_id in enumerate(users["ids"]):
        own = visits.get(row, [])
        data: dict[str, Any] = {
            "version": RECORD_VERSION,
            "user_id": user_id,
            **{name: users[name][row] for name in _USER_COLUMNS},
            "visits": own,
            "candidates": candidates.get(row, []),
        }
        # visit[8] is scheduled_s: the visit's one live timer.
        due = min((float(v[8]) for v in own), default=math.inf)
        out[user_id] = UserRecord(user_id, data, due if math.isfinite(due) else None)
    return out


def state_from_records(records: Iterable[Mapping[str, Any]]) -> PresenceState:
    """A state holding exactly the users of ``records`` (their ``data``), with zero
    counters and no venue set seen yet. Raises :class:`TriggerError` when a record is
    malformed or two records name one user."""
    ids: list[str] = []
    columns: dict[str, list[Any]] = {name: [] for name in _USER_COLUMNS}
    visits: list[list[Any]] = []
    candidates: list[list[Any]] = []
    seen: set[str] = set()
    try:
        for row, record in enumerate(records):
            if record["version"] != RECORD_VERSION:
                raise TriggerError(f"presence record version {record['version']!r} unknown")
            user_id = str(record["user_id"])
            if user_id in seen:
                raise TriggerError(f"two presence records for user {user_id!r}")
            seen.add(user_id)
            ids.append(user_id)
            for name in _USER_COLUMNS:
                columns[name].append(record[name])
            visits.extend([row, *v] for v in record["visits"])
            candidates.extend([row, *c] for c in record["candidates"])
    except (KeyError, TypeError) as exc:
        raise TriggerError(f"malformed presence record: {exc!r}") from exc
    return restore({
        "version": SNAPSHOT_VERSION,
        "users": {"ids": ids, **columns},
        "visits": visits,
        "candidates": candidates,
        "counters": {},
        "fence_ids": None,
    })
