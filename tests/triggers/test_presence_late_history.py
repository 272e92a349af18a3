"""History uploaded late runs on its user's own clock (pure core).

A user whose latest ping reached the engine more than ``live_lag_s`` after its ts has a
clock ``lag`` behind the wall clock; their timers (DWELL, silence EXIT) fire on it. Live
users — everyone in every other test of the engine — keep the wall clock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.triggers.builders import (
    FORUM,
    T0,
    helsinki_index,
    helsinki_policy,
    inside_point,
    offset,
)
from triggers.pings import PingBatch
from triggers.presence import advance, catch_up, process_batch
from triggers.presence_events import EventKind, PresenceEvent
from triggers.presence_state import PresenceState, new_state, restore, snapshot
from triggers.presence_subset import extract_users, from_columns, merge_users, to_columns
from triggers.trajectory import Go, PingColumns, TrajectorySpec, Wait, generate_many

HOUR_S = 3600.0
SILENCE_S = 900.0


def _shoppers(seed: int, *, interval_s: float = 10.0) -> PingColumns:
    """Four shoppers walking into Forum, staying 5-20 min and walking out: noise,
    varying accuracy, a few teleports and mock fixes (as in the determinism tests)."""
    forum = inside_point(FORUM)
    start = offset(forum, -300, -200)
    specs = [TrajectorySpec(f"shopper-{i}", start, (Go(forum), Wait(300 + 300 * i), Go(start)),
                            start_ts=T0 + 41 * i, interval_s=interval_s, noise_m=6,
                            accuracy_m=(5, 25), teleport_rate=0.01, mock_rate=0.01,
                            latency_s=0.0)
             for i in range(4)]
    return generate_many(specs, seed)


def _per_user(events: Sequence[PresenceEvent]) -> list[str]:
    # Stable by user: each user's events in the order they were generated.
    return [json.dumps(e.to_dict(), sort_keys=True)
            for e in sorted(events, key=lambda e: e.user_id)]


def _finish(state: PresenceState, wall: float, step_s: float = 60.0) -> list[PresenceEvent]:
    """The timer loop after the upload: every ``step_s`` until nothing is left open."""
    out: list[PresenceEvent] = []
    policy = helsinki_policy()
    while state.visits:
        wall += step_s
        out += advance(state, wall, policy)
    return out


def _upload(cols: PingColumns, cuts: Sequence[int], gaps_s: Sequence[float],
            timers: Sequence[bool], arrive: float) -> list[PresenceEvent]:
    """The pings (in ts order) sent from wall time ``arrive`` in batches cut before
    ``cuts``, the wall clock moving ``gaps_s[k]`` after batch k, the timer loop
    running then when ``timers[k]``; then silence until everything is closed."""
    policy, index = helsinki_policy(), helsinki_index()
    pings = cols.to_batch().take(np.argsort(cols.ts, kind="stable"))
    state, out, wall = new_state(), [], arrive
    bounds = [0, *cuts, len(pings)]
    for k in range(len(bounds) - 1):
        part = pings.take(np.arange(bounds[k], bounds[k + 1]))
        state, events = process_batch(state, index, part, policy, wall, received_at=wall)
        out += events
        if k < len(gaps_s):
            wall += gaps_s[k]
            if timers[k]:
                out += advance(state, wall, policy)
    return out + _finish(state, wall)


@st.composite
def _late_uploads(draw: st.DrawFn) -> tuple[int, list[int], list[float], list[bool], float]:
    seed = draw(st.integers(0, 2**16))
    n = len(_shoppers(seed))
    cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=40)))
    # A phone emptying its buffer sends request after request: the wall time between two
    # stays within the history's own spacing (10 s), so its clock never overtakes
    # history it has not sent yet (no server could know what that history holds).
    gaps = draw(st.lists(st.floats(0.0, 10.0), min_size=len(cuts), max_size=len(cuts)))
    timers = draw(st.lists(st.booleans(), min_size=len(cuts), max_size=len(cuts)))
    late_s = draw(st.floats(1200.0, 7 * 86_400.0))
    return seed, cuts, gaps, timers, late_s


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_late_uploads())
def test_late_history_in_any_batches_gives_the_events_of_one_batch(
    case: tuple[int, list[int], list[float], list[bool], float],
) -> None:
    seed, cuts, gaps, timers, late_s = case
    cols = _shoppers(seed)
    arrive = float(cols.ts.max()) + late_s
    whole = _upload(cols, [], [], [], arrive)
    split = _upload(cols, cuts, gaps, timers, arrive)
    assert _per_user(split) == _per_user(whole)
    assert all(e.stale for e in whole)
    assert sum(e.kind is EventKind.ENTER for e in whole) >= 4


def test_late_history_sent_ping_by_ping_gives_one_visit_each() -> None:
    cols = _shoppers(11)
    n = len(cols)
    arrive = float(cols.ts.max()) + HOUR_S
    split = _upload(cols, list(range(1, n)), [0.5] * (n - 1), [True] * (n - 1), arrive)
    assert _per_user(split) == _per_user(_upload(cols, [], [], [], arrive))
    enters = [e for e in split if e.kind is EventKind.ENTER]
    assert sorted(e.user_id for e in enters) == [f"shopper-{i}" for i in range(4)]


@pytest.mark.parametrize("latency_s", [0.0, 1.0, 45.0, 120.0])
def test_live_latency_keeps_the_wall_clock(latency_s: float) -> None:
    """Pings arriving within live_lag_s of their ts give, at the same ``now``s, the very
    events of pings given no arrival time at all (every caller before lags existed)."""
    cols = _shoppers(5)
    policy, index = helsinki_policy(), helsinki_index()
    order = np.argsort(cols.ts, kind="stable")
    runs: list[list[str]] = []
    for received in (False, True):
        state, out = new_state(), []
        for part in np.array_split(order, 30):
            now = float(cols.ts[part].max()) + latency_s
            state, events = process_batch(
                state, index, cols.take(part).to_batch(), policy, now,
                received_at=cols.ts[part] + latency_s if received else None)
            out += events
        out += _finish(state, now)
        runs.append(_per_user(out))
        assert not state.lag_s[: state.n_users].any()
    assert runs[0] == runs[1]
    assert any('"dwell"' in e for e in runs[0])


def _forum_history(user: str, t0: float, n: int = 40) -> PingBatch:
    """``n`` still pings 10 s apart inside Forum from ``t0``."""
    forum = inside_point(FORUM)
    return PingBatch.from_columns(np.full(n, user), t0 + 10.0 * np.arange(n),
                                  np.full(n, forum.lat), np.full(n, forum.lng),
                                  accuracy_m=np.full(n, 10.0))


def test_silence_exit_of_late_history_comes_900_s_after_the_upload_stops() -> None:
    policy, index = helsinki_policy(), helsinki_index()
    sent = T0 + HOUR_S
    state, events = process_batch(new_state(), index, _forum_history("u", T0), policy, sent,
                                  received_at=sent)
    last = T0 + 390.0
    assert [(e.kind, e.at, e.stale) for e in events] == [
        (EventKind.ENTER, T0, True), (EventKind.DWELL, T0 + 300, True)]
    assert float(state.lag_s[0]) == sent - last
    assert advance(state, sent + SILENCE_S - 1.0, policy) == []
    [exit_] = advance(state, sent + SILENCE_S, policy)
    assert (exit_.kind, exit_.at, exit_.reason is not None and exit_.reason.value) == (
        EventKind.EXIT, last, "timeout")
    assert exit_.stale


def test_late_dwell_waits_for_the_history_or_the_wall_time_to_reach_it() -> None:
    policy, index = helsinki_policy(), helsinki_index()
    sent = T0 + HOUR_S
    state, events = process_batch(new_state(), index, _forum_history("u", T0, n=12), policy,
                                  sent, received_at=sent)
    assert [e.kind for e in events] == [EventKind.ENTER]  # the history stops at 110 s
    assert advance(state, sent + 189.0, policy) == []
    [dwell] = advance(state, sent + 190.0, policy)
    assert (dwell.kind, dwell.at, dwell.stale) == (EventKind.DWELL, T0 + 300, True)


def test_a_user_catching_up_fires_what_is_due_on_the_wall_clock() -> None:
    """Late history, then a live ping from far away: the user's clock joins the wall
    clock and the history's visit ends as its timers say, before the live ping."""
    policy, index = helsinki_policy(), helsinki_index()
    sent = T0 + HOUR_S
    state, _ = process_batch(new_state(), index, _forum_history("u", T0), policy, sent,
                             received_at=sent)
    away = offset(inside_point(FORUM), 3000, 0)
    now = sent + 60.0
    live = PingBatch.from_columns(["u"], [now - 1.0], [away.lat], [away.lng],
                                  accuracy_m=[10.0])
    state, events = process_batch(state, index, live, policy, now, received_at=now)
    assert [(e.kind, e.at) for e in events] == [(EventKind.EXIT, T0 + 390.0)]
    assert float(state.lag_s[0]) == 0.0 and not state.visits


def test_lag_survives_snapshot_columns_and_the_stores_subset_round_trips() -> None:
    policy, index = helsinki_policy(), helsinki_index()
    sent = T0 + HOUR_S
    state, _ = process_batch(new_state(), index, _forum_history("u", T0), policy, sent,
                             received_at=sent)
    columns = to_columns(state)
    assert columns.lag_s is not None and columns.lag_s.tolist() == [sent - (T0 + 390.0)]
    # The wall time the store's due-user query compares with: 900 s after the upload.
    assert columns.next_due_s.tolist() == [sent + SILENCE_S]
    copies = [restore(json.loads(json.dumps(snapshot(state)))), from_columns(columns)]
    big = new_state()
    merge_users(big, extract_users(state, ["u"]))
    copies.append(big)
    expected = _per_user(_finish(state, sent))
    for copy in copies:
        assert _per_user(_finish(copy, sent)) == expected


def test_catch_up_closes_a_lagging_user_as_the_time_sorted_replay_would() -> None:
    policy, index = helsinki_policy(), helsinki_index()
    history = _forum_history("u", T0)
    end = T0 + 2 * HOUR_S
    sorted_state, sorted_events = process_batch(new_state(), index, history, policy,
                                                float(history.ts.max()))
    sorted_events += advance(sorted_state, end, policy)
    late_state, late_events = process_batch(new_state(), index, history, policy, end,
                                            received_at=end)
    late_events += catch_up(late_state, end, policy)
    assert [e.stale for e in late_events] == [True] * 3
    strip = [[{**json.loads(e), "stale": None} for e in _per_user(r)]
             for r in (sorted_events, late_events)]
    assert strip[0] == strip[1]
    assert [e.kind for e in late_events] == [EventKind.ENTER, EventKind.DWELL, EventKind.EXIT]
