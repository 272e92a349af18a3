"""The presence engine: pings and time in, ENTER / DWELL / EXIT out. Pure.

``process_batch(state, index, pings, policy, now) -> (state, events)`` and
``advance(state, now, policy) -> events`` are the only ways time moves; nothing here
reads a clock. The state is updated in place and returned (copying the per-user
columns on every batch would cost more than the batch); :func:`snapshot` copies.

**Pipeline of a batch** (vectorised until the last step):

1. hygiene: invalid / future / mock pings are dropped, the rest sorted by
   (user, ts); duplicates and late pings are counted and skipped; inaccurate pings only
   advance the user's clock; a ping faster than ``max_speed_mps`` from the user's last
   accepted ping is a teleport (a per-user replay settles streaks exactly);
2. one index query for all accepted pings (``near_m`` = their exit margin);
3. the per-user state machine runs only for users with an open visit or entry
   candidate, or whose pings hit a fence. A ping far from every venue by a user with
   nothing open costs a few vectorised array operations and nothing else; the two
   commonest busy pings (inside the venue of one's only open visit with no timer due;
   near one venue, outside it, with no visit open) update the state inline, exactly
   as the full step would.

Integer user codes (``PingBatch``) are looked up through a hash cache of codes
(:func:`~triggers.presence_state.code_rows`), and a batch holding each user once is
grouped by a linear-time scatter: at 1e5 users a batch spends ~3 ms on users, not ~35.

**Rules** (thresholds in :class:`~triggers.presence_policy.PresencePolicy`), with
``d`` the signed distance to the edge (positive inside) and ``a`` the accuracy:

- ENTER needs the centre inside (``d >= 0``; a LOW touch never enters) and support
  from a second look, because GPS noise around a standing device is the classic cause
  of false entries: either the accuracy circle lies inside (``d >= a``) and the
  previous accepted ping touched the venue (``d > -a``) — or there is no previous
  ping within ``enter_pair_window_s`` —, or the centre is at least ``a/2`` inside and
  the previous ping's centre was inside too. ENTER is dated at the ping that decides.
  Rates for DESIGN's jitter figure (σ = 10 m per axis, a = 15 m, iid): standing 25 m
  outside, a false ENTER needs a 4σ + 1.5σ pair or a 2.5σ + 3.25σ pair: ~9e-6 per
  ping, ~0.6 % per two hours at 10 s pings; walking in at 1.4 m/s with 10 s pings, the
  second ping inside is ≥ 14 m in and enters unless noise throws it back by > 4 m.
- EXIT ("left") needs ``exit_confirm_pings`` accepted pings clearly outside,
  ``d <= -max(exit_margin_m, a)``, with no centre-inside ping between them; it is
  dated at the confirming ping. Standing 5 m inside with σ = 10 m, one clearly-outside
  ping is a 3.5σ event (2e-4 per ping), two in a row are ~1e-8.
- EXIT ("timeout") when no ping placed the user inside for ``silence_timeout_s``:
  dated at the last inside ping, or at the visit's last DWELL when that came later (a
  visit never ends before its own events).
- DWELL fires at ``enter_at + threshold`` for each of the venue's thresholds, by timer:
  before a ping at ``ts`` all timers due at or before ``ts`` fire first (a timer due
  at the very instant of a ping fires before it: the visit was open up to then).
- **Whose clock.** Between pings, timers fire by ``now`` on their user's clock. For a
  live user (the latest ping arrived within ``live_lag_s`` of its ts) that is the
  wall clock. A user uploading history — whose latest ping arrived ``lag`` seconds
  after its ts — runs ``lag`` behind: their clock is ``min(now, last ts + (now - when
  it arrived))``. So history sent an hour late in many requests is not cut into
  visits by the silence timeout between them; its DWELL fires when the history (or
  the wall time since it stopped) reaches the threshold, and its silence EXIT when no
  upload came for ``silence_timeout_s``, dated at the last inside ping as always.
  ``stale`` still compares the evidence with the wall clock: late events are stale.
- A venue gone from the index ends its visits ("venue_removed") at ``now``;
  a changed geometry is simply used from the next ping on.

Events are returned ordered by (at, user id), and in generation order within a tie;
per (user, venue) they read ENTER DWELL* EXIT with non-decreasing ``at``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geo.hits import IndexHits
from triggers.pings import PingBatch
from triggers.presence_events import (
    Confidence,
    EventKind,
    ExitReason,
    PresenceEvent,
    visit_id_for,
)
from triggers.presence_policy import PresencePolicy
from triggers.presence_state import (
    CandidateLevel,
    PresenceState,
    Visit,
    code_rows,
    schedule,
    timer_entries,
    timer_visit,
    user_rows,
)

_M_PER_DEG = 111_195.0
"""Metres per degree of great circle on the mean Earth sphere: the teleport check
needs speed to a few percent, not geodesy."""


class Verdict(IntEnum):
    """What hygiene made of one ping (see :class:`PresenceCounters`): accepted, or the
    counter that rejected it; ``RELOCATED`` is accepted and counted as relocated."""

    ACCEPTED = 0
    INVALID = 1
    FUTURE = 2
    MOCK = 3
    DUPLICATE = 4
    LATE = 5
    INACCURATE = 6
    TELEPORT = 7
    RELOCATED = 8


class FenceQuery(Protocol):
    """What the engine needs of :class:`geo.index.GeofenceIndex`."""

    @property
    def fence_ids(self) -> tuple[str, ...]: ...

    def query(
        self,
        lat: ArrayLike,
        lng: ArrayLike,
        near_m: float | NDArray[np.float64] | None = None,
    ) -> IndexHits: ...


@dataclass(slots=True)
class _Ctx:
    """What one call needs everywhere: policy, clock, output and user-id cache."""

    state: PresenceState
    policy: PresencePolicy
    now: float
    events: list[PresenceEvent]
    names: dict[int, str]

    def user(self, row: int) -> str:
        name = self.names.get(row)
        if name is None:
            name = self.names[row] = self.state.user_id(row)
        return name

    def emit(
        self,
        row: int,
        visit: Visit,
        kind: EventKind,
        at: float,
        *,
        basis: float,
        dwell_s: float | None,
        confidence: Confidence,
        reason: ExitReason | None = None,
    ) -> None:
        """Record an event; ``basis`` is the time of its evidence (ping ts or due)."""
        stale = self.now - basis > self.policy.stale_after_s
        if stale:
            self.state.counters.stale_events += 1
        visit.last_event_at = at
        self.events.append(PresenceEvent(
            self.user(row), visit.venue_id, kind, at, visit.visit_id, dwell_s,
            confidence, reason, stale,
        ))


# --------------------------------------------------------------------------- public API


def process_batch(
    state: PresenceState,
    index: FenceQuery,
    pings: PingBatch,
    policy: PresencePolicy,
    now: float,
    *,
    received_at: float | NDArray[np.float64] | None = None,
    verdicts: NDArray[np.int8] | None = None,
) -> tuple[PresenceState, list[PresenceEvent]]:
    """Run a batch of pings through presence at wall/virtual time ``now`` (epoch s).

    Pings may come in any order and may repeat; the outcome is the same as for the
    pings sorted by (user, ts) (duplicates of one (user, ts) keep the most accurate).
    Pings older than a user's last processed ping (from earlier batches) are late:
    counted, ignored. Ends with :func:`advance` to ``now``. Updates ``state`` in place
    and returns it with the events. If ``index`` holds other venues than the last
    one, open visits of vanished venues end first (see :func:`reconcile_venues`).

    ``received_at`` (epoch s, one per ping or one for all; at most ``now``): when each
    ping reached the caller — a server passes ``now``. It sets each user's lag (see
    the module docstring, "Whose clock"). ``None``: each ping arrived at its own ts,
    every user is live.

    ``verdicts``, when given (one int8 per ping, zeros), receives each ping's
    :class:`Verdict`: what the hygiene counters counted it as, per ping, so a caller
    that merged several requests into one batch can tell each its own counts.
    """
    if verdicts is not None and verdicts.shape != (len(pings),):
        raise ValueError(f"verdicts has shape {verdicts.shape}, pings {len(pings)}")
    if received_at is not None and np.ndim(received_at) and \
            np.shape(received_at) != (len(pings),):
        raise ValueError(f"received_at has shape {np.shape(received_at)}, pings {len(pings)}")
    ctx = _Ctx(state, policy, now, [], {})
    if state.fence_ids is None:
        state.fence_ids = index.fence_ids
    elif state.fence_ids is not index.fence_ids and state.fence_ids != index.fence_ids:
        _reconcile(ctx, index)
    accepted = _hygiene(state, pings, policy, now, received_at=received_at,
                        verdicts=verdicts)
    if accepted is not None:
        _transitions(ctx, index, accepted)
    _advance(ctx)
    return state, _ordered(ctx.events)


def advance(state: PresenceState, now: float, policy: PresencePolicy) -> list[PresenceEvent]:
    """Fire every timer due at or before wall/virtual time ``now`` on its user's clock
    (the wall clock for a live user): DWELL thresholds and silence EXITs.

    Cost is proportional to the timers due, not to the users tracked (a heap with
    lazy deletion). Events ordered as in :func:`process_batch`.
    """
    ctx = _Ctx(state, policy, now, [], {})
    _advance(ctx)
    return _ordered(ctx.events)


def catch_up(state: PresenceState, now: float, policy: PresencePolicy) -> list[PresenceEvent]:
    """The input is complete up to ``now``: every user's clock joins the wall clock (no
    more history is coming), then every timer due by ``now`` fires.

    For the end of a replayed file (``geopush visits``): a user whose rows came after
    later-dated rows of others ran behind; at the end their visits close exactly as
    they would in the same file sorted by time. Events ordered as in :func:`advance`.
    """
    n = state.n_users
    if bool(np.any(state.lag_s[:n])):
        state.lag_s[:n] = 0.0
        state.timers = timer_entries(state)
    return advance(state, now, policy)


def reconcile_venues(
    state: PresenceState, index: FenceQuery, now: float, policy: PresencePolicy
) -> list[PresenceEvent]:
    """Adopt ``index`` as the current venues: visits of venues it no longer holds
    (removed or disabled) end with reason ``venue_removed`` at ``now``, after their
    timers due by then have fired. Geometry changes need nothing: the next ping is
    evaluated against the new shape."""
    ctx = _Ctx(state, policy, now, [], {})
    _reconcile(ctx, index)
    return _ordered(ctx.events)


# --------------------------------------------------------------------------- hygiene


@dataclass(slots=True)
class _Accepted:
    """Accepted pings, sorted by (user row, ts)."""

    rows: NDArray[np.int64]
    ts: NDArray[np.float64]
    lat: NDArray[np.float64]
    lng: NDArray[np.float64]
    accuracy_m: NDArray[np.float64]
    """Accuracy radius (m); a missing one is the policy's default."""
    prev_ts: NDArray[np.float64]
    """ts of the user's previous accepted ping (NaN: none)."""


def _user_keys(uid: NDArray[Any]) -> tuple[NDArray[np.bytes_], NDArray[np.intp]]:
    """Distinct user ids as sorted UTF-8 bytes, and each ping's position among them."""
    if uid.dtype.kind in "iu":
        codes, inverse = np.unique(uid, return_inverse=True)
        keys = codes.astype("S")
        perm = np.argsort(keys, kind="stable")
        where = np.empty_like(perm)
        where[perm] = np.arange(perm.shape[0])
        return keys[perm], where[inverse]
    uniq, inverse = np.unique(uid, return_inverse=True)
    if uniq.dtype.kind == "U":
        # UTF-8 keeps code point order, so the encoded keys stay sorted.
        uniq = np.char.encode(uniq, "utf-8")
    return uniq, inverse


_INT64_MAX = np.iinfo(np.int64).max


def _rows(state: PresenceState, uid: NDArray[Any]) -> NDArray[np.int64]:
    """The state row of each ping's user, adding unknown users."""
    if uid.dtype.kind == "i" or (
        uid.dtype.kind == "u" and uid.shape[0] and int(uid.max()) <= _INT64_MAX
    ):
        return code_rows(state, uid.astype(np.int64, copy=False))
    keys, inverse = _user_keys(uid)
    rows: NDArray[np.int64] = user_rows(state, keys)[inverse]
    return rows


def _by_row(rows: NDArray[np.int64], n_users: int) -> NDArray[np.intp]:
    """A stable sort permutation of ``rows`` (all in ``[0, n_users)``).

    The common batch holds one ping per user: then a scatter into a row-sized array
    sorts in linear time, ~10x faster than a comparison sort of 1e5 rows.
    """
    m = rows.shape[0]
    if m * 4 >= n_users:
        slot = np.full(n_users, -1, dtype=np.intp)
        slot[rows] = np.arange(m, dtype=np.intp)
        order = slot[slot >= 0]
        if order.shape[0] == m:  # no user twice: the scatter lost nothing
            return order
    out: NDArray[np.intp] = np.argsort(rows, kind="stable")
    return out


def _hygiene(
    state: PresenceState, pings: PingBatch, policy: PresencePolicy, now: float, *,
    received_at: float | NDArray[np.float64] | None, verdicts: NDArray[np.int8] | None,
) -> _Accepted | None:
    """Screen a batch (step 1 of the pipeline in the module docstring): count every
    ping in ``state.counters`` (and ``verdicts``), move the users' clocks and teleport
    anchors, and return the accepted pings sorted by (user row, ts), or None if none.
    """
    state.counters.received += len(pings)
    if len(pings) == 0:
        return None
    kept = _screen(state, pings, policy, now, verdicts)
    if kept.shape[0] == 0:
        return None
    rows, ts, src, tie = _sorted_by_user(state, pings, kept)
    fresh, usable, accuracy_m = _fresh_pings(state, policy, pings, rows=rows, ts=ts, src=src,
                                             tie=tie, verdicts=verdicts)
    _move_clocks(state, policy, rows=rows[fresh], ts=ts[fresh], src=src[fresh],
                 received_at=received_at)
    return _teleports(state, policy, rows=rows[usable], ts=ts[usable], src=src[usable],
                      accuracy_m=accuracy_m[usable], lat_all=pings.lat, lng_all=pings.lng,
                      verdicts=verdicts)


def _screen(
    state: PresenceState, pings: PingBatch, policy: PresencePolicy, now: float,
    verdicts: NDArray[np.int8] | None,
) -> NDArray[np.intp]:
    """Count the invalid, future and mock pings; positions of the others."""
    counters = state.counters
    ts, accuracy_m = pings.ts, pings.accuracy_m
    with np.errstate(invalid="ignore"):
        valid = (np.isfinite(ts) & (np.abs(pings.lat) <= 90.0) & (np.abs(pings.lng) <= 180.0)
                 & ~(accuracy_m < 0.0) & ~np.isinf(accuracy_m))
        future = valid & (ts > now + policy.max_future_s)
    mock = valid & ~future & pings.mock
    keep = valid & ~future & ~pings.mock
    counters.invalid += int(len(pings) - valid.sum())
    counters.future += int(future.sum())
    counters.mock += int(mock.sum())
    if verdicts is not None:
        verdicts[~valid] = Verdict.INVALID
        verdicts[future] = Verdict.FUTURE
        verdicts[mock] = Verdict.MOCK
    return np.flatnonzero(keep)


def _sorted_by_user(
    state: PresenceState, pings: PingBatch, kept: NDArray[np.intp]
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.intp], NDArray[np.bool_]]:
    """The kept pings sorted by (user row, ts): their rows, ts, positions in ``pings``
    (the one to keep first within a tie), and whether each ties with its predecessor
    (same user, same ts)."""
    unsorted_rows = _rows(state, pings.user_id[kept])
    order = _by_row(unsorted_rows, state.n_users)
    rows, ts = unsorted_rows[order], pings.ts[kept][order]
    same_user = rows[1:] == rows[:-1]
    if bool(np.any(same_user & (ts[1:] < ts[:-1]))):
        order = np.lexsort((pings.ts[kept], unsorted_rows))
        rows, ts = unsorted_rows[order], pings.ts[kept][order]
        same_user = rows[1:] == rows[:-1]
    src = kept[order]
    tie = np.zeros(rows.shape[0], dtype=np.bool_)
    tie[1:] = same_user & (ts[1:] == ts[:-1])
    if bool(tie.any()):
        src = _break_ties(src, tie, pings.accuracy_m, pings.lat, pings.lng)
    return rows, ts, src, tie


def _fresh_pings(
    state: PresenceState, policy: PresencePolicy, pings: PingBatch, *,
    rows: NDArray[np.int64], ts: NDArray[np.float64], src: NDArray[np.intp],
    tie: NDArray[np.bool_], verdicts: NDArray[np.int8] | None,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.float64]]:
    """Count the late, duplicate and inaccurate pings among the sorted ones. Returns
    which are fresh (neither late nor duplicate), which are usable (fresh and accurate
    enough), and each one's accuracy (m, the policy's default where missing)."""
    counters = state.counters
    accuracy_m = pings.accuracy_m[src]
    missing = np.isnan(accuracy_m)
    last = state.last_ts[rows]
    late = ts < last
    dup = ~late & (tie | (ts == last))
    fresh = ~late & ~dup
    counters.late += int(late.sum())
    counters.duplicate += int(dup.sum())
    counters.assumed_accuracy += int((missing & fresh).sum())
    accuracy_m = np.where(missing, policy.default_accuracy_m, accuracy_m)
    inaccurate = fresh & (accuracy_m > policy.max_accuracy_m)
    counters.inaccurate += int(inaccurate.sum())
    if verdicts is not None:
        verdicts[src[late]] = Verdict.LATE
        verdicts[src[dup]] = Verdict.DUPLICATE
        verdicts[src[inaccurate]] = Verdict.INACCURATE
    return fresh, fresh & ~inaccurate, accuracy_m


def _move_clocks(
    state: PresenceState, policy: PresencePolicy, *, rows: NDArray[np.int64],
    ts: NDArray[np.float64], src: NDArray[np.intp],
    received_at: float | NDArray[np.float64] | None,
) -> None:
    """Every fresh ping (inaccurate ones too) moves the user's clock: it is the latest
    the device said, so anything older that arrives later is late. ``rows``/``ts``/``src``:
    the fresh pings, sorted by (user row, ts)."""
    group_end = np.ones(rows.shape[0], dtype=np.bool_)
    group_end[:-1] = rows[1:] != rows[:-1]
    latest_rows = rows[group_end]
    latest_ts = ts[group_end]
    state.last_ts[latest_rows] = latest_ts
    if received_at is None:
        _set_lags(state, latest_rows, None)
    else:
        arrived = np.asarray(received_at, dtype=np.float64)
        if arrived.ndim:
            arrived = arrived[src[group_end]]
        lag = arrived - latest_ts
        _set_lags(state, latest_rows, np.where(lag > policy.live_lag_s, lag, 0.0))


def _set_lags(
    state: PresenceState, rows: NDArray[np.int64], lag: NDArray[np.float64] | None
) -> None:
    """Give ``rows`` (distinct users who sent a fresh ping) their new clock lag (None:
    0 for all), moving the timers of those with open visits whose lag changed."""
    old = state.lag_s[rows]
    changed = old != 0.0 if lag is None else old != lag
    if not bool(changed.any()):  # the usual batch: live users stay live
        return
    moved = rows[changed]
    state.lag_s[moved] = 0.0 if lag is None else lag[changed]
    visits_of = state.visits
    for row in moved.tolist():
        for visit in visits_of.get(row, {}).values():
            schedule(state, row, visit, visit.scheduled_s)


def _break_ties(
    src: NDArray[np.intp],
    tie: NDArray[np.bool_],
    accuracy_m: NDArray[np.float64],
    lat: NDArray[np.float64],
    lng: NDArray[np.float64],
) -> NDArray[np.intp]:
    """Within each run of one user's pings at one ts, put first the one to keep.

    Tie-break: smallest accuracy (missing counts as worst), then smallest lat, then
    lng — properties of the pings, never their arrival order, so shuffled input
    keeps the same ping.
    """
    src = src.copy()
    start = 0
    n = src.shape[0]
    tie_l = tie.tolist()
    while start < n:
        if start + 1 < n and tie_l[start + 1]:
            end = start + 1
            while end + 1 < n and tie_l[end + 1]:
                end += 1
            group = src[start:end + 1].tolist()
            group.sort(key=lambda i: (
                math.inf if math.isnan(accuracy_m[i]) else float(accuracy_m[i]),
                float(lat[i]), float(lng[i]),
            ))
            src[start:end + 1] = group
            start = end + 1
        else:
            start += 1
    return src


def _teleports(
    state: PresenceState,
    policy: PresencePolicy,
    *,
    rows: NDArray[np.int64],
    ts: NDArray[np.float64],
    src: NDArray[np.intp],
    accuracy_m: NDArray[np.float64],
    lat_all: NDArray[np.float64],
    lng_all: NDArray[np.float64],
    verdicts: NDArray[np.int8] | None,
) -> _Accepted | None:
    """Drop pings implausibly far from the user's last accepted one; update anchors."""
    counters = state.counters
    n_pings = rows.shape[0]
    if n_pings == 0:
        return None
    lat, lng = lat_all[src], lng_all[src]
    first = np.ones(n_pings, dtype=np.bool_)
    first[1:] = rows[1:] != rows[:-1]
    one_each = bool(first.all())
    prev_ts, prev_lat, prev_lng = _previous_pings(state, rows=rows, ts=ts, lat=lat, lng=lng,
                                                  first=first, one_each=one_each)
    with np.errstate(invalid="ignore"):
        speed = _distance_m(prev_lat, prev_lng, lat, lng) / (ts - prev_ts)
        fast = speed > policy.max_speed_mps  # NaN (no anchor yet) is never fast
    accepted = np.ones(n_pings, dtype=np.bool_)
    if one_each:
        group_end = first
    else:
        group_end = np.ones(n_pings, dtype=np.bool_)
        group_end[:-1] = first[1:]
    if bool(fast.any()):
        # Rare: replay those users one ping at a time, since a rejection changes the
        # anchor every later ping of the user is measured from.
        for row in np.unique(rows[fast]).tolist():
            lo, hi = np.searchsorted(rows, [row, row + 1])
            relocated = _replay_user(state, policy, row, (int(lo), int(hi)), ts=ts, lat=lat,
                                     lng=lng, accepted=accepted, prev_ts=prev_ts)
            if verdicts is not None and relocated:
                verdicts[src[relocated]] = Verdict.RELOCATED
        clean_end = group_end & ~np.isin(rows, np.unique(rows[fast]))
    else:
        clean_end = group_end
    if clean_end is first:  # one ping per user, none too fast: every ping is an end
        end_rows, end_ts, end_lat, end_lng = rows, ts, lat, lng
    else:
        end_rows, end_ts = rows[clean_end], ts[clean_end]
        end_lat, end_lng = lat[clean_end], lng[clean_end]
    state.anchor_ts[end_rows] = end_ts
    state.anchor_lat[end_rows] = end_lat
    state.anchor_lng[end_rows] = end_lng
    state.reject_streak[end_rows] = 0
    n_accepted = int(accepted.sum())
    counters.accepted += n_accepted
    if verdicts is not None and n_accepted < n_pings:
        verdicts[src[~accepted]] = Verdict.TELEPORT
    if n_accepted == n_pings:
        return _Accepted(rows, ts, lat, lng, accuracy_m, prev_ts)
    return _Accepted(rows[accepted], ts[accepted], lat[accepted], lng[accepted],
                     accuracy_m[accepted], prev_ts[accepted])


def _previous_pings(
    state: PresenceState, *, rows: NDArray[np.int64], ts: NDArray[np.float64],
    lat: NDArray[np.float64], lng: NDArray[np.float64], first: NDArray[np.bool_],
    one_each: bool,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(ts, lat, lng) of each sorted ping's predecessor: the user's previous ping in
    the batch, or for a user's ``first`` ping the stored anchor (NaN ts: none)."""
    if one_each:
        # One ping per user (a server tick's usual shape): each ping's predecessor is
        # the user's stored anchor.
        return state.anchor_ts[rows], state.anchor_lat[rows], state.anchor_lng[rows]
    n_pings = rows.shape[0]
    prev_ts = np.empty(n_pings)
    prev_lat = np.empty(n_pings)
    prev_lng = np.empty(n_pings)
    prev_ts[1:], prev_lat[1:], prev_lng[1:] = ts[:-1], lat[:-1], lng[:-1]
    first_rows = rows[first]
    prev_ts[first] = state.anchor_ts[first_rows]
    prev_lat[first] = state.anchor_lat[first_rows]
    prev_lng[first] = state.anchor_lng[first_rows]
    return prev_ts, prev_lat, prev_lng


def _replay_user(
    state: PresenceState,
    policy: PresencePolicy,
    row: int,
    span: tuple[int, int],
    *,
    ts: NDArray[np.float64],
    lat: NDArray[np.float64],
    lng: NDArray[np.float64],
    accepted: NDArray[np.bool_],
    prev_ts: NDArray[np.float64],
) -> list[int]:
    """Replay one user's pings one at a time; returns the positions relocated."""
    counters = state.counters
    relocated: list[int] = []
    lo, hi = span
    anchor_ts = float(state.anchor_ts[row])
    anchor_lat = float(state.anchor_lat[row])
    anchor_lng = float(state.anchor_lng[row])
    streak = int(state.reject_streak[row])
    for i in range(lo, hi):
        ping_ts, ping_lat, ping_lng = float(ts[i]), float(lat[i]), float(lng[i])
        accept = True
        if not math.isnan(anchor_ts):
            distance_m = float(_distance_m(np.array(anchor_lat), np.array(anchor_lng),
                                           np.array(ping_lat), np.array(ping_lng)))
            if distance_m / (ping_ts - anchor_ts) > policy.max_speed_mps:
                streak += 1
                if streak >= policy.teleport_confirm_pings:
                    counters.relocated += 1
                    relocated.append(i)
                else:
                    accept = False
                    counters.teleport += 1
        accepted[i] = accept
        if accept:
            prev_ts[i] = anchor_ts
            anchor_ts, anchor_lat, anchor_lng, streak = ping_ts, ping_lat, ping_lng, 0
    state.anchor_ts[row] = anchor_ts
    state.anchor_lat[row] = anchor_lat
    state.anchor_lng[row] = anchor_lng
    state.reject_streak[row] = min(streak, 255)
    return relocated


def _distance_m(
    lat1: NDArray[np.float64], lng1: NDArray[np.float64],
    lat2: NDArray[np.float64], lng2: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Equirectangular distance in metres: ~0.1 % at city scale, and far distances
    (the teleports it must catch) only need to come out large."""
    dlng = lng2 - lng1
    wrap = np.abs(dlng) > 180.0  # rare: the pair straddles the antimeridian
    if bool(wrap.any()):
        dlng = np.where(wrap, (dlng + 180.0) % 360.0 - 180.0, dlng)
    x = dlng * np.cos(np.radians((lat1 + lat2) * 0.5))
    out: NDArray[np.float64] = np.hypot(x, lat2 - lat1) * _M_PER_DEG
    return out


# --------------------------------------------------------------------------- transitions


_HIGH, _MEDIUM = Confidence.HIGH, Confidence.MEDIUM
"""Module constants for the per-ping code: an enum attribute lookup costs ~0.1 µs."""
_TOUCHED, _CENTRE_INSIDE = CandidateLevel.TOUCHED, CandidateLevel.CENTRE_INSIDE


def _confidence_inside(edge_m: float, accuracy_m: float) -> Confidence:
    """The confidence of a ping whose centre is inside (``edge_m >= 0``): HIGH when its
    accuracy circle lies inside too, else MEDIUM. A NaN edge (deeper than the query's
    ``near_m``) counts as deep inside: HIGH."""
    return _MEDIUM if edge_m < accuracy_m else _HIGH


def _mark_inside(visit: Visit, ts: float, edge_m: float, accuracy_m: float) -> None:
    """A ping at ``ts`` placed the user inside the visit's venue (the "inside" rule)."""
    visit.last_inside_at = ts
    visit.out_streak = 0
    visit.confidence = _confidence_inside(edge_m, accuracy_m)


def _busy_pings(state: PresenceState, accepted: _Accepted, hits: IndexHits) -> NDArray[np.intp]:
    """Positions of the accepted pings whose user needs the state machine: an open
    visit or entry candidate, or a venue near this batch's pings (sorted)."""
    busy = np.zeros(state.n_users, dtype=np.bool_)
    if state.visits:
        busy[np.fromiter(state.visits.keys(), dtype=np.int64)] = True
    if state.candidates:
        busy[np.fromiter(state.candidates.keys(), dtype=np.int64)] = True
    near_a_venue = np.zeros(accepted.rows.shape[0], dtype=np.bool_)
    near_a_venue[hits.point] = True
    busy[accepted.rows[near_a_venue]] = True
    return np.flatnonzero(busy[accepted.rows])


def _transitions(ctx: _Ctx, index: FenceQuery, accepted: _Accepted) -> None:
    """Run the accepted pings (sorted by user, ts) through the per-user state machine:
    one index query for all of them, then :func:`_step_user` for each ping of a busy
    user (see :func:`_busy_pings`), except the two commonest cases, which update the
    state inline exactly as :func:`_step_user` would (a call per ping costs ~10 % of
    the engine's throughput at ~1M pings/s)."""
    state, policy = ctx.state, ctx.policy
    near_m = np.maximum(accepted.accuracy_m, policy.widest_exit_margin_m())
    hits = index.query(accepted.lat, accepted.lng, near_m)
    fence_ids = index.fence_ids
    busy = _busy_pings(state, accepted, hits)
    if busy.shape[0] == 0:
        return
    # Plain lists: indexing them per ping is several times cheaper than numpy scalars.
    # Ping k's hits are hit_fence[hits_from[k]:hits_to[k]] (and so on).
    hits_from = np.searchsorted(hits.point, busy, "left").tolist()
    hits_to = np.searchsorted(hits.point, busy, "right").tolist()
    hit_fence = hits.fence.tolist()
    hit_inside = hits.inside.tolist()
    hit_edge_m = hits.edge_m.tolist()
    ping_rows = accepted.rows[busy].tolist()
    ping_ts = accepted.ts[busy].tolist()
    ping_accuracy_m = accepted.accuracy_m[busy].tolist()
    ping_prev_ts = accepted.prev_ts[busy].tolist()
    visits_of = state.visits
    candidates_of = state.candidates
    for k in range(len(ping_rows)):
        row = ping_rows[k]
        first, end = hits_from[k], hits_to[k]
        if first == end and row not in visits_of and row not in candidates_of:
            continue
        if end - first == 1 and not hit_inside[first] and row not in visits_of:
            # Next commonest: no open visit, near one venue but outside it. _step_user
            # would only replace the user's candidates with this ping's touch, if any.
            candidates_of.pop(row, None)
            if hit_edge_m[first] > -ping_accuracy_m[k]:
                candidates_of[row] = {fence_ids[hit_fence[first]]: (ping_ts[k], _TOUCHED)}
            continue
        if end - first == 1 and hit_inside[first] and row not in candidates_of:
            # The commonest busy ping: a user inside the one venue of their one open
            # visit, no timer of it due yet (its live entry is not before ``ts``, and
            # its true next due is never earlier), no entry candidate. _step_user would
            # only refresh the visit; do just that.
            visits = visits_of.get(row)
            ts = ping_ts[k]
            if visits is not None and len(visits) == 1:
                visit = visits.get(fence_ids[hit_fence[first]])
                if visit is not None and visit.scheduled_s > ts:
                    _mark_inside(visit, ts, hit_edge_m[first], ping_accuracy_m[k])
                    continue
        edges = {
            fence_ids[hit_fence[j]]: (hit_edge_m[j] if hit_edge_m[j] == hit_edge_m[j]
                                      else (math.inf if hit_inside[j] else -math.inf))
            for j in range(first, end)
        }
        _step_user(ctx, row, ping_ts[k], ping_accuracy_m[k], prev_ts=ping_prev_ts[k],
                   edges=edges)


def _step_user(
    ctx: _Ctx, row: int, ts: float, accuracy_m: float, *, prev_ts: float,
    edges: dict[str, float],
) -> None:
    """One accepted ping of one user: fire due timers, then update every venue.

    ``edges``: venue id → signed edge distance (m, +inf deep inside) for the venues
    the index reported; a venue absent is at least ``near_m`` away outside.
    """
    visits = ctx.state.visits.get(row)
    if visits:
        _fire_due(ctx, row, visits, ts)
        _update_visits(ctx, row, visits, ts, accuracy_m, edges=edges)
        if not visits:
            del ctx.state.visits[row]
    _update_candidates(ctx, row, ts, accuracy_m, prev_ts=prev_ts, edges=edges)


def _update_visits(
    ctx: _Ctx, row: int, visits: dict[str, Visit], ts: float, accuracy_m: float, *,
    edges: dict[str, float],
) -> None:
    """The user's open visits after a ping at ``ts``: refreshed when inside, counted
    towards EXIT when clearly outside; those that exit are removed from ``visits``."""
    policy = ctx.policy
    for venue_id in sorted(visits):
        visit = visits[venue_id]
        edge_m = edges.get(venue_id, -math.inf)
        if edge_m >= 0.0:
            _mark_inside(visit, ts, edge_m, accuracy_m)
        elif edge_m <= -policy.exit_margin(venue_id, accuracy_m):
            visit.out_streak += 1
            if visit.out_streak >= policy.exit_confirm_pings:
                at = max(ts, visit.last_event_at)
                ctx.emit(row, visit, EventKind.EXIT, at, basis=ts, dwell_s=at - visit.enter_at,
                         confidence=_HIGH, reason=ExitReason.LEFT)
                del visits[venue_id]


def _update_candidates(
    ctx: _Ctx, row: int, ts: float, accuracy_m: float, *, prev_ts: float,
    edges: dict[str, float],
) -> None:
    """ENTER the venues this ping decides (see "Rules"), and keep as the user's new
    candidates the venues it touched without entering; venues with an open visit are
    skipped."""
    state, policy = ctx.state, ctx.policy
    visits = state.visits.get(row)
    old = state.candidates.pop(row, None)
    new: dict[str, tuple[float, int]] = {}
    no_recent_ping = math.isnan(prev_ts) or ts - prev_ts > policy.enter_pair_window_s
    for venue_id in sorted(edges):
        if visits is not None and venue_id in visits:
            continue
        edge_m = edges[venue_id]
        if edge_m < 0.0:
            if edge_m > -accuracy_m:
                new[venue_id] = (ts, _TOUCHED)
            continue
        prev = old.get(venue_id) if old else None
        prev_level = prev[1] if prev is not None and prev[0] == prev_ts else CandidateLevel.NONE
        enters = (
            (edge_m >= accuracy_m and (no_recent_ping or prev_level >= _TOUCHED))
            or (edge_m >= accuracy_m * 0.5 and prev_level == _CENTRE_INSIDE)
        )
        if not enters:
            new[venue_id] = (ts, _CENTRE_INSIDE)
            continue
        confidence = _confidence_inside(edge_m, accuracy_m)
        visit = Visit(venue_id=venue_id, visit_id=visit_id_for(ctx.user(row), venue_id, ts),
                      enter_at=ts, last_inside_at=ts, last_event_at=ts, dwell_done_s=0,
                      out_streak=0, confidence=confidence, scheduled_s=ts)
        if visits is None:
            visits = state.visits[row] = {}
        visits[venue_id] = visit
        ctx.emit(row, visit, EventKind.ENTER, ts, basis=ts, dwell_s=None,
                 confidence=confidence)
        schedule(state, row, visit, _next_due(visit, policy))
    if new:
        state.candidates[row] = new


def _next_due(visit: Visit, policy: PresencePolicy) -> float:
    return min(_dwell_due(visit, policy)[0], _silence_due(visit, policy))


def _dwell_due(visit: Visit, policy: PresencePolicy) -> tuple[float, int]:
    for threshold in policy.dwell_thresholds(visit.venue_id):
        if threshold > visit.dwell_done_s:
            return visit.enter_at + threshold, threshold
    return math.inf, 0


def _silence_due(visit: Visit, policy: PresencePolicy) -> float:
    return visit.last_inside_at + policy.silence_timeout(visit.venue_id)


def _fire_visit(ctx: _Ctx, row: int, visit: Visit, until: float) -> bool:
    """Fire the visit's timers due at or before ``until``, in time order.

    Returns False when the visit ended (silence timeout). A DWELL due at the same
    instant as the timeout fires first: the visit was still open at that instant.
    """
    policy = ctx.policy
    while True:
        dwell_at, threshold = _dwell_due(visit, policy)
        silence_at = _silence_due(visit, policy)
        if dwell_at <= silence_at and dwell_at <= until:
            visit.dwell_done_s = threshold
            ctx.emit(row, visit, EventKind.DWELL, dwell_at, basis=dwell_at, dwell_s=threshold,
                     confidence=visit.confidence)
        elif silence_at < dwell_at and silence_at <= until:
            at = max(visit.last_inside_at, visit.last_event_at)
            ctx.emit(row, visit, EventKind.EXIT, at, basis=silence_at,
                     dwell_s=at - visit.enter_at, confidence=Confidence.LOW,
                     reason=ExitReason.TIMEOUT)
            return False
        else:
            return True


def _fire_due(ctx: _Ctx, row: int, visits: dict[str, Visit], until: float) -> None:
    # Visits are independent, so each may fire on its own; sorted ids keep the order
    # of generation (and so of ties in the output) deterministic.
    for venue_id in sorted(visits):
        if not _fire_visit(ctx, row, visits[venue_id], until):
            del visits[venue_id]


def _advance(ctx: _Ctx) -> None:
    state, now = ctx.state, ctx.now
    timers = state.timers
    lag = state.lag_s
    while timers and timers[0][0] <= now:
        entry = heapq.heappop(timers)
        visit = timer_visit(state, entry)
        if visit is None:
            continue  # lazy deletion: ended, rescheduled, or its user's lag changed
        row = entry[1]
        # The user's own clock (the wall clock when live); never before the due time,
        # so rounding in ``due + lag`` cannot leave a popped timer unfired.
        until = max(now - float(lag[row]), visit.scheduled_s)
        if _fire_visit(ctx, row, visit, until):
            schedule(state, row, visit, _next_due(visit, ctx.policy))
        else:
            visits = state.visits[row]
            del visits[visit.venue_id]
            if not visits:
                del state.visits[row]


def _reconcile(ctx: _Ctx, index: FenceQuery) -> None:
    state = ctx.state
    known = set(index.fence_ids)
    for row in sorted(state.visits):
        visits = state.visits[row]
        for venue_id in sorted(visits):
            if venue_id in known:
                continue
            visit = visits.pop(venue_id)
            clock = ctx.now - float(state.lag_s[row])  # the user's own
            if _fire_visit(ctx, row, visit, clock):
                at = max(clock, visit.last_event_at)
                ctx.emit(row, visit, EventKind.EXIT, at, basis=ctx.now,
                         dwell_s=at - visit.enter_at, confidence=Confidence.HIGH,
                         reason=ExitReason.VENUE_REMOVED)
        if not visits:
            del state.visits[row]
    for row in list(state.candidates):
        kept = {v: c for v, c in state.candidates[row].items() if v in known}
        if kept:
            state.candidates[row] = kept
        else:
            del state.candidates[row]
    state.fence_ids = index.fence_ids


def _ordered(events: Sequence[PresenceEvent]) -> list[PresenceEvent]:
    # Stable: events of one instant and user keep their generation order.
    return sorted(events, key=lambda e: (e.at, e.user_id))
