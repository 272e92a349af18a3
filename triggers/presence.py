"""The presence engine: pings and time in, ENTER / DWELL / EXIT out. Pure.

``process_batch(state, index, pings, policy, now) -> (state, events)`` and
``advance(state, now, policy) -> events`` are the only ways time moves; nothing here
reads a clock. The state is updated in place and returned (copying the per-user
columns on every batch would cost more than the batch); :func:`snapshot` copies.

**Pipeline of a batch** (vectorised until the last step):

1. hygiene (:mod:`triggers.presence_hygiene`): invalid / future / mock pings are
   dropped, the rest sorted by (user, ts); duplicates and late pings are counted and
   skipped; inaccurate pings only advance the user's clock; a ping faster than
   ``max_speed_mps`` from the user's last accepted ping is a teleport (a per-user replay
   settles streaks exactly);
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
from typing import Protocol

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
from triggers.presence_hygiene import Accepted, Verdict, hygiene
from triggers.presence_policy import PresencePolicy
from triggers.presence_state import (
    CandidateLevel,
    PresenceState,
    Visit,
    schedule,
    timer_entries,
    timer_visit,
)

__all__ = ["FenceQuery", "Verdict", "advance", "catch_up", "process_batch", "reconcile_venues"]


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
    accepted = hygiene(state, pings, policy, now, received_at=received_at,
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


def _busy_pings(state: PresenceState, accepted: Accepted, hits: IndexHits) -> NDArray[np.intp]:
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


def _transitions(ctx: _Ctx, index: FenceQuery, accepted: Accepted) -> None:
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
