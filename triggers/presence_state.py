"""Presence state as plain data: user columns, open visits, entry candidates, timers.

Layout, chosen for the batch hot path and for memory:

- **Users** are rows of numpy columns (id bytes, last processed ts, the last accepted
  ping, a teleport streak, the lag of the user's clock), looked up vectorised with
  ``searchsorted`` through a sort permutation; integer user codes go through a hash
  cache of the codes first (:func:`code_rows`). A user with nothing open costs ~70
  bytes plus its id (~16 more when it comes as an integer code; the benchmark measures
  it), and a batch touches them without a Python loop.
- **Open visits** and **entry candidates** are small dicts keyed by user row: few users
  have them at any time, and only those users' pings run the per-user state machine.
- **Timers** are a heap of ``(wall_due_s, row, venue_id, visit_id)`` with lazy
  deletion: each open visit owns exactly one live entry, the one whose key is its
  ``scheduled_s`` (event time) plus its user's ``lag_s`` (see :func:`timer_visit`);
  entries of ended or rescheduled visits, or of a user whose lag changed since, are
  dropped when popped. A live user's lag is 0, so the key is the due time itself.

:func:`snapshot` gives JSON-serialisable data and :func:`restore` rebuilds an
equivalent state (the heap is rebuilt from the visits' ``scheduled_s`` and the lags).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from triggers.errors import TriggerError
from triggers.presence_events import Confidence, PresenceCounters

SNAPSHOT_VERSION = 1

TimerEntry = tuple[float, int, str, str]
"""(wall_due_s, user row, venue_id, visit_id): the wall (or virtual) time at which the
visit's timer falls due — its ``scheduled_s`` on its user's clock, plus the user's
``lag_s``. Tuples order by due, then row, then venue — a total order, so timers due at
the same instant always fire in the same order."""


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
    """Due time of this visit's live timer entry, on its user's clock (event time)."""


class CandidateLevel(IntEnum):
    """How far the previous accepted ping got into a venue with no open visit: the
    second look an ENTER needs (see :mod:`triggers.presence`, "Rules")."""

    NONE = 0
    """No usable previous ping at this venue."""
    TOUCHED = 1
    """The accuracy circle touched the venue (signed edge distance > -accuracy)."""
    CENTRE_INSIDE = 2
    """The centre was inside but not deep enough to enter on its own."""


Candidate = tuple[float, int]
"""What the previous accepted ping said about a venue with no open visit:
(its ts, :class:`CandidateLevel`)."""


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
    lag_s: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    """How far (s) each user's clock runs behind the wall clock: 0 for a live user;
    for one uploading history, how late their latest ping arrived (see
    ``PresencePolicy.live_lag_s``). The user's timers fire at ``wall - lag_s``."""
    n_users: int = 0
    visits: dict[int, dict[str, Visit]] = field(default_factory=dict)
    candidates: dict[int, dict[str, Candidate]] = field(default_factory=dict)
    timers: list[TimerEntry] = field(default_factory=list)
    counters: PresenceCounters = field(default_factory=PresenceCounters)
    fence_ids: tuple[str, ...] | None = None
    """The venue ids of the index last seen: a different index means reconcile."""
    code_slots: NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))
    """An open-addressing table of the integer user codes seen so far: each slot holds
    a row (-1: empty) whose code is ``row_code[row]``. A cache in front of ``ids`` for
    batches that carry integer codes (see :func:`code_rows`); derived data, not in
    snapshots, refilled as users reappear after a restore. ~16 bytes a user."""
    row_code: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    n_codes: int = 0

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
        state.lag_s[n:n + n_new] = 0.0
        # keys are sorted, so the new ones are too: merge instead of re-sorting all.
        insert_at = pos[new]
        merged = np.insert(order, insert_at, new_rows)
        state.order = _with_capacity(merged, state.ids.shape[0])
        state.n_users = n + n_new
    return rows


def code_rows(state: PresenceState, codes: NDArray[np.int64]) -> NDArray[np.int64]:
    """Rows of integer-coded users, one per entry of ``codes`` (repeats allowed),
    adding the unknown ones; an int code is the user id written in decimal.

    A known code costs a hash probe or two (vectorised): no code is turned into text
    once its user is known. A code not in the cache goes through :func:`user_rows` by
    its decimal text, so a user first seen as the string ``"42"`` and later as the
    code 42 (or the reverse) keeps one row.
    """
    rows = _code_find(state, codes)
    miss = np.flatnonzero(rows < 0)
    if miss.shape[0]:
        new = np.unique(codes[miss])
        # Decimal text no wider than the widest code (int64 would otherwise give S21).
        width = max(len(str(int(new[0]))), len(str(int(new[-1]))))
        text = new.astype(f"S{width}")
        perm = np.argsort(text, kind="stable")
        new_rows = np.empty(new.shape[0], dtype=np.int64)
        new_rows[perm] = user_rows(state, text[perm])
        _code_insert(state, new, new_rows)
        rows[miss] = new_rows[np.searchsorted(new, codes[miss])]
    return rows


_FIBONACCI = np.uint64(0x9E3779B97F4A7C15)


def _code_slots(codes: NDArray[np.int64], size: int) -> NDArray[np.int64]:
    """Home slot of each code in a table of ``size`` (a power of two) slots."""
    bits = np.uint64(64 - (size.bit_length() - 1))
    mixed = np.ascontiguousarray(codes, dtype=np.int64).view(np.uint64) * _FIBONACCI
    out: NDArray[np.int64] = (mixed >> bits).astype(np.int64)
    return out


def _code_find(state: PresenceState, codes: NDArray[np.int64]) -> NDArray[np.int64]:
    """Row of each code, -1 where the cache does not hold it (linear probing)."""
    rows = np.full(codes.shape[0], -1, dtype=np.int64)
    size = state.code_slots.shape[0]
    if not size or not codes.shape[0]:
        return rows
    slot = _code_slots(codes, size)
    active: NDArray[np.intp] | None = None  # None: every entry
    want = codes
    while slot.shape[0]:
        held = state.code_slots[slot]
        full = held >= 0
        # An empty slot (-1) reads the last row's code: harmless, ``full`` masks it.
        match = full & (state.row_code[held] == want)
        where = np.flatnonzero(match)
        rows[where if active is None else active[where]] = held[where]
        probe = np.flatnonzero(full & ~match)
        active = probe if active is None else active[probe]
        want = want[probe]
        slot = (slot[probe] + 1) & (size - 1)
    return rows


def _code_insert(state: PresenceState, codes: NDArray[np.int64], rows: NDArray[np.int64]) -> None:
    """Add distinct codes absent from the cache; the table stays at most 2/3 full."""
    if state.row_code.shape[0] < state.ids.shape[0]:  # e.g. after a restore
        state.row_code = _with_capacity(state.row_code, state.ids.shape[0])
    state.row_code[rows] = codes
    size = state.code_slots.shape[0]
    needed = state.n_codes + codes.shape[0]
    if needed * 3 > size * 2:
        held = state.code_slots[state.code_slots >= 0].astype(np.int64)
        rows = np.concatenate([held, rows])
        size = max(1024, 1 << (needed * 3 // 2).bit_length())
        state.code_slots = np.full(size, -1, dtype=np.int32)
    slots = state.code_slots
    slot = _code_slots(state.row_code[rows], size)
    pending = np.arange(rows.shape[0])
    while pending.shape[0]:
        free = slots[slot] < 0
        # Of several codes wanting one free slot, the first takes it; the rest probe on.
        taken, first = np.unique(slot[free], return_index=True)
        slots[taken] = rows[pending[free][first]]
        placed = np.zeros(pending.shape[0], dtype=np.bool_)
        placed[np.flatnonzero(free)[first]] = True
        pending = pending[~placed]
        slot = (slot[~placed] + 1) & (size - 1)
    state.n_codes = needed


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
    for name in ("last_ts", "anchor_ts", "anchor_lat", "anchor_lng", "reject_streak",
                 "lag_s"):
        setattr(state, name, _with_capacity(getattr(state, name), new_cap))
    if state.row_code.shape[0]:
        state.row_code = _with_capacity(state.row_code, new_cap)


def schedule(state: PresenceState, row: int, visit: Visit, due_s: float) -> None:
    """Make ``due_s`` (on the user's clock) the visit's live timer; older entries
    become stale."""
    visit.scheduled_s = due_s
    heapq.heappush(state.timers,
                   (due_s + float(state.lag_s[row]), row, visit.venue_id, visit.visit_id))


def timer_visit(state: PresenceState, entry: TimerEntry) -> Visit | None:
    """The open visit whose live timer ``entry`` is, else None (a stale entry: the
    visit ended or was rescheduled, or its user's lag changed since)."""
    wall_due, row, venue_id, visit_id = entry
    visits = state.visits.get(row)
    visit = visits.get(venue_id) if visits else None
    if visit is None or visit.visit_id != visit_id:
        return None
    if visit.scheduled_s + float(state.lag_s[row]) != wall_due:
        return None
    return visit


def timer_entries(state: PresenceState) -> list[TimerEntry]:
    """A heap of the live timer of every open visit (for a state built from data)."""
    lag = state.lag_s
    timers = [(v.scheduled_s + float(lag[row]), row, vid, v.visit_id)
              for row, vs in state.visits.items() for vid, v in vs.items()]
    heapq.heapify(timers)
    return timers


# --------------------------------------------------------------------------- snapshot


def visit_row(v: Visit) -> list[Any]:
    """A visit as JSON-serialisable data (every float in it is finite):
    ``[venue_id, visit_id, enter_at, last_inside_at, last_event_at, dwell_done_s,
    out_streak, confidence, scheduled_s]``."""
    return [v.venue_id, v.visit_id, v.enter_at, v.last_inside_at, v.last_event_at,
            v.dwell_done_s, v.out_streak, v.confidence.value, v.scheduled_s]


def visit_from_row(row: Sequence[Any]) -> Visit:
    """:func:`visit_row` read back; raises ``ValueError`` / ``TypeError`` if malformed."""
    venue_id, visit_id, enter_at, last_in, last_ev, done, streak, conf, sched = row
    return Visit(venue_id=str(venue_id), visit_id=str(visit_id), enter_at=float(enter_at),
                 last_inside_at=float(last_in), last_event_at=float(last_ev),
                 dwell_done_s=int(done), out_streak=int(streak), confidence=Confidence(conf),
                 scheduled_s=float(sched))


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
            "lag_s": [float(x) for x in state.lag_s[:n]],
        },
        "visits": [
            [row, *visit_row(v)] for row, vs in sorted(state.visits.items()) for v in vs.values()
        ],
        "candidates": [
            [row, venue_id, ts, int(level)]
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
        # Snapshots from before lags existed: every user was on the wall clock.
        state.lag_s = np.array([float(x) for x in users.get("lag_s", [0.0] * n)],
                               dtype=np.float64)
        if state.lag_s.shape != (n,):
            raise ValueError(f"lag_s has {state.lag_s.shape[0]} entries for {n} users")
        state.n_users = n
        for row, *fields in data["visits"]:
            visit = visit_from_row(fields)
            state.visits.setdefault(int(row), {})[visit.venue_id] = visit
        state.timers = timer_entries(state)
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
