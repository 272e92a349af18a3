"""Parts of a presence state: the users of one batch, in and out, without a copy of all.

A service keeps presence per user but processes a batch of users at a time. These pure
functions move users between a large state (a store's whole tenant, or nothing) and a
small one holding just a batch's users, vectorised over the user columns:

- :func:`extract_users` — a new state holding copies of the given users (zero counters,
  ``fence_ids`` unset so the caller reconciles them against the current venues);
- :func:`merge_users` — write a small state's users back into a large one (adding the
  new users, replacing the known ones, scheduling the timers that changed);
- :func:`drop_users` — remove users entirely (erasure);
- :func:`due_user_ids` — the users with a live timer due by a time, earliest first,
  without popping the heap;
- :func:`to_columns` / :func:`from_columns` — a state as plain columns, one entry per user
  (a database row each: five floats, a small int, the open visits and candidates as
  JSON-serialisable lists or ``None``, and the next due time).

The small state is a private copy: processing it changes nothing in the large one until
:func:`merge_users`, so a batch that fails leaves the large state as it was.
"""

from __future__ import annotations

import copy
import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from triggers.errors import TriggerError
from triggers.presence_state import (
    PresenceState,
    new_state,
    timer_entries,
    timer_visit,
    user_rows,
    visit_from_row,
    visit_row,
)

_COLUMNS = ("last_ts", "anchor_ts", "anchor_lat", "anchor_lng", "reject_streak", "lag_s")


def _keys(user_ids: Sequence[str]) -> NDArray[np.bytes_]:
    """Distinct ids as sorted UTF-8 bytes (code point order survives the encoding)."""
    distinct = sorted({u.encode() for u in user_ids})
    if not distinct:
        return np.zeros(0, dtype="S1")
    return np.array(distinct, dtype=f"S{max(len(b) for b in distinct) or 1}")


def user_ids(state: PresenceState) -> list[str]:
    """The ids of the users ``state`` holds, in row order."""
    return [bytes(b).decode() for b in state.ids[: state.n_users].tolist()]


def find_rows(state: PresenceState, keys: NDArray[np.bytes_]) -> NDArray[np.int64]:
    """The row of each key (sorted distinct UTF-8 ids), -1 where the state lacks it."""
    n = state.n_users
    rows = np.full(keys.shape[0], -1, dtype=np.int64)
    if not n or not keys.shape[0]:
        return rows
    ids, order = state.ids[:n], state.order[:n]
    pos = np.searchsorted(ids, keys, sorter=order)
    inside = pos < n
    hit = np.zeros(keys.shape[0], dtype=np.bool_)
    hit[inside] = ids[order[pos[inside]]] == keys[inside]
    rows[hit] = order[pos[hit]]
    return rows


def extract_users(state: PresenceState, user_ids: Sequence[str]) -> PresenceState:
    """A new state holding copies of those of ``user_ids`` that ``state`` knows."""
    keys = _keys(user_ids)
    rows = find_rows(state, keys)
    known = rows >= 0
    rows = rows[known]
    sub = new_state()
    n = int(rows.shape[0])
    if not n:
        return sub
    sub.ids = keys[known]  # sorted, so the order permutation is the identity
    sub.order = np.arange(n, dtype=np.int64)
    for name in _COLUMNS:
        setattr(sub, name, getattr(state, name)[rows])  # fancy indexing copies
    sub.n_users = n
    visits, candidates = state.visits, state.candidates
    if visits or candidates:
        for sub_row, row in enumerate(rows.tolist()):
            own = visits.get(row)
            if own:
                sub.visits[sub_row] = {vid: copy.copy(v) for vid, v in own.items()}
            cands = candidates.get(row)
            if cands:
                sub.candidates[sub_row] = dict(cands)
        sub.timers = timer_entries(sub)
    return sub


def merge_users(state: PresenceState, sub: PresenceState) -> None:
    """Write every user of ``sub`` into ``state`` (``sub`` is left unusable: its visits
    are moved, not copied). Timers of visits that are new or rescheduled, or whose
    user's lag changed, are pushed; the entries of visits that ended or moved go stale
    (the heap deletes lazily)."""
    n = sub.n_users
    if not n:
        return
    keys = sub.ids[:n]
    perm = np.argsort(keys, kind="stable")  # new users were appended unsorted
    rows = np.empty(n, dtype=np.int64)
    rows[perm] = user_rows(state, keys[perm])
    old_lag = state.lag_s[rows].tolist()
    new_lag = sub.lag_s[:n].tolist()
    for name in _COLUMNS:
        getattr(state, name)[rows] = getattr(sub, name)[:n]
    big_visits, big_cands = state.visits, state.candidates
    row_of = rows.tolist()
    touched = set(sub.visits) | set(sub.candidates)
    if big_visits or big_cands:
        touched.update(i for i, r in enumerate(row_of) if r in big_visits or r in big_cands)
    for sub_row in touched:
        row = row_of[sub_row]
        old = big_visits.pop(row, None) or {}
        new = sub.visits.get(sub_row)
        if new:
            big_visits[row] = new
            lag = new_lag[sub_row]
            lag_moved = old_lag[sub_row] != lag
            for vid, visit in new.items():
                before = old.get(vid)
                if (lag_moved or before is None or before.visit_id != visit.visit_id
                        or before.scheduled_s != visit.scheduled_s):
                    heapq.heappush(state.timers,
                                   (visit.scheduled_s + lag, row, vid, visit.visit_id))
        cands = sub.candidates.get(sub_row)
        if cands:
            big_cands[row] = cands
        else:
            big_cands.pop(row, None)


def drop_users(state: PresenceState, user_ids: Sequence[str]) -> int:
    """Remove the users (rows renumbered, timers rebuilt); returns how many it held."""
    rows = find_rows(state, _keys(user_ids))
    rows = rows[rows >= 0]
    if not rows.shape[0]:
        return 0
    n = state.n_users
    keep = np.ones(n, dtype=np.bool_)
    keep[rows] = False
    new_row = np.cumsum(keep) - 1
    kept = np.flatnonzero(keep)
    m = int(kept.shape[0])
    state.ids = state.ids[kept]
    for name in _COLUMNS:
        setattr(state, name, getattr(state, name)[kept])
    state.order = np.argsort(state.ids, kind="stable").astype(np.int64)
    state.n_users = m
    mapping = new_row.tolist()
    dropped = set(rows.tolist())
    state.visits = {mapping[r]: v for r, v in state.visits.items() if r not in dropped}
    state.candidates = {mapping[r]: c for r, c in state.candidates.items() if r not in dropped}
    state.timers = timer_entries(state)
    # The integer-code cache points at old rows: empty it (it refills as users reappear).
    state.code_slots = np.zeros(0, np.int32)
    state.row_code = np.zeros(0, np.int64)
    state.n_codes = 0
    return int(rows.shape[0])


def due_user_ids(state: PresenceState, now: float, limit: int) -> list[str]:
    """Users with a live timer due at or before ``now``, earliest first (ties by row),
    at most ``limit``. Stale entries on top of the heap are dropped on the way."""
    timers = state.timers

    def live(entry: tuple[float, int, str, str]) -> bool:
        return timer_visit(state, entry) is not None

    while timers and not live(timers[0]):
        heapq.heappop(timers)
    # Walk the heap as a tree from the root, only below entries already due.
    found: list[tuple[float, int]] = []
    stack = [0] if timers and timers[0][0] <= now else []
    while stack:
        i = stack.pop()
        entry = timers[i]
        if live(entry):
            found.append((entry[0], entry[1]))
        for child in (2 * i + 1, 2 * i + 2):
            if child < len(timers) and timers[child][0] <= now:
                stack.append(child)
    out: list[str] = []
    seen: set[int] = set()
    for _, row in sorted(found):
        if row not in seen:
            seen.add(row)
            out.append(state.user_id(row))
            if len(out) == limit:
                break
    return out


# --------------------------------------------------------------------------- columns


@dataclass(frozen=True, slots=True)
class PresenceColumns:
    """A state as one entry per user, in the state's row order.

    ``lag_s``: how far each user's clock runs behind the wall clock (0: live; see
    ``PresenceState.lag_s``); ``None`` reads as 0 for every user (data written before
    lags existed).
    ``open`` is ``None`` for a user with no open visit and no entry candidate (most
    users, most of the time), else ``[visits, candidates]`` with a visit as
    ``[venue_id, visit_id, enter_at, last_inside_at, last_event_at, dwell_done_s,
    out_streak, confidence, scheduled_s]`` and a candidate as ``[venue_id, ts, level]``
    (JSON-serialisable: every float there is finite). ``next_due_s`` is the wall time
    the earliest timer of the user's open visits falls due (its due on the user's clock
    plus ``lag_s``), NaN when none. The float columns may hold -inf and NaN (a user
    whose pings were all rejected).
    """

    user_ids: list[str]
    last_ts: NDArray[np.float64]
    anchor_ts: NDArray[np.float64]
    anchor_lat: NDArray[np.float64]
    anchor_lng: NDArray[np.float64]
    reject_streak: NDArray[np.int16]
    open: list[list[Any] | None]
    next_due_s: NDArray[np.float64]
    lag_s: NDArray[np.float64] | None = None

    def __len__(self) -> int:
        return len(self.user_ids)


def to_columns(state: PresenceState) -> PresenceColumns:
    """Every user of ``state`` as columns (see :class:`PresenceColumns`)."""
    n = state.n_users
    opened: list[list[Any] | None] = [None] * n
    due = np.full(n, np.nan)
    for row in set(state.visits) | set(state.candidates):
        vs = state.visits.get(row, {})
        cs = state.candidates.get(row, {})
        opened[row] = [
            [visit_row(vs[k]) for k in sorted(vs)],
            [[vid, ts, int(level)] for vid, (ts, level) in sorted(cs.items())],
        ]
        if vs:
            due[row] = min(v.scheduled_s for v in vs.values()) + float(state.lag_s[row])
    return PresenceColumns(
        user_ids=user_ids(state),
        last_ts=state.last_ts[:n].copy(),
        anchor_ts=state.anchor_ts[:n].copy(),
        anchor_lat=state.anchor_lat[:n].copy(),
        anchor_lng=state.anchor_lng[:n].copy(),
        reject_streak=state.reject_streak[:n].astype(np.int16),
        open=opened,
        next_due_s=due,
        lag_s=state.lag_s[:n].copy(),
    )


def from_columns(columns: PresenceColumns) -> PresenceState:
    """The state holding exactly the users of ``columns`` (zero counters, ``fence_ids``
    unset). Raises :class:`TriggerError` when an entry is malformed or an id repeats."""
    n = len(columns)
    state = new_state()
    if not n:
        return state
    encoded = [u.encode() for u in columns.user_ids]
    if len(set(encoded)) != n:
        raise TriggerError("two presence rows for one user")
    state.ids = np.array(encoded, dtype=f"S{max(len(b) for b in encoded) or 1}")
    state.order = np.argsort(state.ids, kind="stable").astype(np.int64)
    state.last_ts = np.asarray(columns.last_ts, dtype=np.float64).copy()
    state.anchor_ts = np.asarray(columns.anchor_ts, dtype=np.float64).copy()
    state.anchor_lat = np.asarray(columns.anchor_lat, dtype=np.float64).copy()
    state.anchor_lng = np.asarray(columns.anchor_lng, dtype=np.float64).copy()
    streak = np.asarray(columns.reject_streak)
    if streak.shape[0] and (streak.min() < 0 or streak.max() > 255):
        raise TriggerError("reject_streak outside 0..255")
    state.reject_streak = streak.astype(np.uint8)
    state.lag_s = (np.zeros(n) if columns.lag_s is None
                   else np.asarray(columns.lag_s, dtype=np.float64).copy())
    if any(getattr(state, c).shape[0] != n for c in _COLUMNS):
        raise TriggerError("presence columns of different lengths")
    state.n_users = n
    try:
        for row, opened in enumerate(columns.open):
            if opened is None:
                continue
            visits, candidates = opened
            for fields in visits:
                visit = visit_from_row(fields)
                state.visits.setdefault(row, {})[visit.venue_id] = visit
            for venue_id, ts, level in candidates:
                state.candidates.setdefault(row, {})[str(venue_id)] = (float(ts), int(level))
    except (TypeError, ValueError) as exc:
        raise TriggerError(f"malformed presence row: {exc!r}") from exc
    if not bool(np.isfinite(state.lag_s).all()) or bool((state.lag_s < 0).any()):
        raise TriggerError("lag_s must be finite and >= 0")
    state.timers = timer_entries(state)
    return state
