"""Presence state as plain data: user columns, open visits, entry candidates, timers.

Layout, chosen for the batch hot path and for memory:

- **Users** are rows of numpy columns (id bytes, last processed ts, the last accepted
  ping, a teleport streak), looked up vectorised with ``searchsorted`` through a sort
  permutation. A user with nothing open costs ~60 bytes plus its id (the benchmark
  measures it), and a batch touches them without a Python loop.
- **Open visits** and **entry candidates** are small dicts keyed by user row: few users
  have them at any time, and only those users' pings run the per-user state machine.
- **Timers** are a heap of ``(due_s, row, venue_id, visit_id)`` with lazy deletion:
  each open visit owns exactly one live entry (the one whose due equals its
  ``scheduled_s``); entries of ended or rescheduled visits are dropped when popped.

:func:`snapshot` gives JSON-serialisable data and :func:`restore` rebuilds an
equivalent state (the heap is rebuilt from the visits' ``scheduled_s``).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from triggers.errors import TriggerError
from triggers.presence_events import Confidence, PresenceCounters

SNAPSHOT_VERSION = 1

TimerEntry = tuple[float, int, str, str]
"""(due_s, user row, venue_id, visit_id): tuples order by due, then row, then venue —
a total order, so timers due at the same instant always fire in the same order."""


@dataclass(slots=True)
class Visit:
    """One open visit of one user at one venue (times in epoch seconds)."""

    venue_id: str
    visit_id: str
    enter_at: float
    last_inside_at: float
    last_event_at: float
    dwell_done_s: int
    """The largest dwell threshold already fired (0: none)."""
    out_streak: int
    """Clearly-outside pings since the last centre-inside one."""
    confidence: Confidence
    """Of the latest ping that placed the user inside."""
    scheduled_s: float
    """Due time of this visit's live timer entry."""


Candidate = tuple[float, int]
"""What the previous accepted ping said about a venue with no open visit:
(its ts, level) with level 1 = the accuracy circle touched, 2 = the centre was inside."""


@dataclass(slots=True)
class PresenceState:
    """Everything the engine remembers; plain data, owned by one caller at a time."""

    ids: NDArray[np.bytes_] = field(default_factory=lambda: np.zeros(0, dtype="S1"))
    order: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    last_ts: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    anchor_ts: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    anchor_lat: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    anchor_lng: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    reject_streak: NDArray[np.uint8] = field(default_factory=lambda: np.zeros(0, np.uint8))
    n_users: int = 0
    visits: dict[int, dict[str, Visit]] = field(default_factory=dict)
    candidates: dict[int, dict[str, Candidate]] = field(default_factory=dict)
    timers: list[TimerEntry] = field(default_factory=list)
    counters: PresenceCounters = field(default_factory=PresenceCounters)
    fence_ids: tuple[str, ...] | None = None
    """The venue ids of the index last seen: a different index means reconcile."""

    def user_id(self, row: int) -> str:
        return bytes(self.ids[row]).decode()

    def open_visits(self) -> list[tuple[str, Visit]]:
        """(user id, visit) for every open visit, ordered by user id then venue id."""
        out = [(self.user_id(r), v) for r, vs in self.visits.items() for v in vs.values()]
        return sorted(out, key=lambda p: (p[0], p[1].venue_id))


def new_state() -> PresenceState:
    """An empty state: no users, no visits."""
    return PresenceState()


def user_rows(state: PresenceState, keys: NDArray[np.bytes_]) -> NDArray[np.int64]:
    """Rows of ``keys`` (sorted, distinct user ids as bytes), adding the unknown ones.

    Vectorised: one ``searchsorted`` over the sort permutation; new users are
    appended (amortised doubling) and the permutation is re-merged.
    """
    n = state.n_users
    ids = state.ids[:n]
    if keys.dtype.itemsize > state.ids.dtype.itemsize:
        state.ids = state.ids.astype(keys.dtype)
        ids = state.ids[:n]
    order = state.order[:n]
    pos = np.searchsorted(ids, keys, sorter=order)
    found = np.zeros(keys.shape[0], dtype=np.bool_)
    in_range = pos < n
    found[in_range] = ids[order[pos[in_range]]] == keys[in_range]
    rows = np.empty(keys.shape[0], dtype=np.int64)
    rows[found] = order[pos[found]]
    new = ~found
    n_new = int(new.sum())
    if n_new:
        _grow(state, n + n_new)
        new_rows = np.arange(n, n + n_new, dtype=np.int64)
        rows[new] = new_rows
        state.ids[n:n + n_new] = keys[new]
        state.last_ts[n:n + n_new] = -math.inf
        state.anchor_ts[n:n + n_new] = np.nan
        state.anchor_lat[n:n + n_new] = np.nan
        state.anchor_lng[n:n + n_new] = np.nan
        state.reject_streak[n:n + n_new] = 0
        # keys are sorted, so the new ones are too: merge instead of re-sorting all.
        insert_at = pos[new]
        merged = np.insert(order, insert_at, new_rows)
        state.order = _with_capacity(merged, state.ids.shape[0])
        state.n_users = n + n_new
    return rows


def _with_capacity(a: NDArray[Any], capacity: int) -> NDArray[Any]:
    out = np.zeros(capacity, dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


def _grow(state: PresenceState, needed: int) -> None:
    capacity = state.ids.shape[0]
    if needed <= capacity:
        return
    # 1.25x growth: the columns are the per-user memory, so keep the slack small.
    new_cap = max(needed, int(capacity * 1.25) + 16)
    state.ids = _with_capacity(state.ids, new_cap)
    for name in ("last_ts", "anchor_ts", "anchor_lat", "anchor_lng", "reject_streak"):
        setattr(state, name, _with_capacity(getattr(state, name), new_cap))


def schedule(state: PresenceState, row: int, visit: Visit, due_s: float) -> None:
    """Make ``due_s`` the visit's live timer (older entries become stale)."""
    visit.scheduled_s = due_s
    heapq.heappush(state.timers, (due_s, row, visit.venue_id, visit.visit_id))


# --------------------------------------------------------------------------- snapshot


def _f(x: float) -> float | str:
    # JSON has no inf/NaN; these three strings round-trip through float().
    return x if math.isfinite(x) else repr(x)


def snapshot(state: PresenceState) -> dict[str, Any]:
    """The state as JSON-serialisable data; :func:`restore` gives it back exactly."""
    n = state.n_users
    return {
        "version": SNAPSHOT_VERSION,
        "users": {
            "ids": [bytes(b).decode() for b in state.ids[:n]],
            "last_ts": [_f(float(x)) for x in state.last_ts[:n]],
            "anchor_ts": [_f(float(x)) for x in state.anchor_ts[:n]],
            "anchor_lat": [_f(float(x)) for x in state.anchor_lat[:n]],
            "anchor_lng": [_f(float(x)) for x in state.anchor_lng[:n]],
            "reject_streak": [int(x) for x in state.reject_streak[:n]],
        },
        "visits": [
            [row, v.venue_id, v.visit_id, v.enter_at, v.last_inside_at, v.last_event_at,
             v.dwell_done_s, v.out_streak, v.confidence.value, v.scheduled_s]
            for row, vs in sorted(state.visits.items()) for v in vs.values()
        ],
        "candidates": [
            [row, venue_id, ts, level]
            for row, cs in sorted(state.candidates.items()) for venue_id, (ts, level) in cs.items()
        ],
        "counters": state.counters.as_dict(),
        "fence_ids": None if state.fence_ids is None else list(state.fence_ids),
    }


def restore(data: dict[str, Any]) -> PresenceState:
    """A state from :func:`snapshot` data; raises :class:`TriggerError` if malformed."""
    try:
        if data["version"] != SNAPSHOT_VERSION:
            raise TriggerError(f"snapshot version {data['version']!r} is not supported")
        users = data["users"]
        ids = [s.encode() for s in users["ids"]]
        n = len(ids)
        state = PresenceState()
        width = max((len(b) for b in ids), default=1) or 1
        state.ids = np.array(ids, dtype=f"S{width}") if n else np.zeros(0, dtype="S1")
        state.order = np.argsort(state.ids, kind="stable").astype(np.int64)
        state.last_ts = np.array([float(x) for x in users["last_ts"]], dtype=np.float64)
        state.anchor_ts = np.array([float(x) for x in users["anchor_ts"]], dtype=np.float64)
        state.anchor_lat = np.array([float(x) for x in users["anchor_lat"]], dtype=np.float64)
        state.anchor_lng = np.array([float(x) for x in users["anchor_lng"]], dtype=np.float64)
        state.reject_streak = np.array(users["reject_streak"], dtype=np.uint8)
        state.n_users = n
        for row, venue_id, visit_id, enter_at, last_in, last_ev, done, streak, conf, sched \
                in data["visits"]:
            visit = Visit(venue_id, visit_id, float(enter_at), float(last_in), float(last_ev),
                          int(done), int(streak), Confidence(conf), float(sched))
            state.visits.setdefault(int(row), {})[venue_id] = visit
            state.timers.append((visit.scheduled_s, int(row), venue_id, visit_id))
        heapq.heapify(state.timers)
        for row, venue_id, ts, level in data["candidates"]:
            state.candidates.setdefault(int(row), {})[venue_id] = (float(ts), int(level))
        state.counters = PresenceCounters(**data["counters"])
        fence_ids = data["fence_ids"]
        state.fence_ids = None if fence_ids is None else tuple(fence_ids)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, TriggerError):
            raise
        raise TriggerError(f"malformed presence snapshot: {exc!r}") from exc
    return state
