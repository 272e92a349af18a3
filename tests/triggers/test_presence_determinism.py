"""Same input, same events — byte for byte, whatever the delivery order or batching."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.triggers.builders import (
    CENTER,
    FORUM,
    T0,
    CircleIndex,
    helsinki_index,
    helsinki_policy,
    inside_point,
    offset,
)
from triggers.pings import PingBatch
from triggers.presence import process_batch
from triggers.presence_events import EventKind, PresenceEvent
from triggers.presence_policy import PresencePolicy
from triggers.presence_state import new_state, restore, snapshot
from triggers.trajectory import Go, PingColumns, TrajectorySpec, Wait, generate_many


def _mall_day(seed: int) -> PingColumns:
    forum = inside_point(FORUM)
    start = offset(forum, -300, -200)
    specs = [
        TrajectorySpec(f"user-{i}", start, (Go(forum), Wait(400 + 100 * i), Go(start)),
                       start_ts=T0 + 37 * i, noise_m=6, accuracy_m=(5, 25),
                       teleport_rate=0.01, mock_rate=0.01)
        for i in range(6)
    ]
    return generate_many(specs, seed)


def _json(events: list[PresenceEvent]) -> str:
    return json.dumps([e.to_dict() for e in events], sort_keys=True)


def _one_batch(pings: PingBatch, now: float) -> list[PresenceEvent]:
    return process_batch(new_state(), helsinki_index(), pings, helsinki_policy(), now)[1]


def test_same_input_gives_the_same_events_byte_for_byte() -> None:
    cols = _mall_day(7)
    now = float(cols.ts.max())
    first = _json(_one_batch(cols.to_batch(), now))
    assert first == _json(_one_batch(_mall_day(7).to_batch(), now))
    assert '"kind": "dwell"' in first


def test_shuffled_and_duplicated_pings_give_the_events_of_the_sorted_stream() -> None:
    cols = _mall_day(3)
    now = float(cols.ts.max())
    rng = np.random.default_rng(0)
    messy = np.concatenate([rng.permutation(len(cols)), rng.integers(0, len(cols), 50)])
    assert _json(_one_batch(cols.to_batch().take(messy), now)) == \
        _json(_one_batch(cols.to_batch(), now))


def test_snapshot_and_restore_mid_stream_changes_nothing() -> None:
    pings = _mall_day(5).to_batch()
    order = np.argsort(pings.ts, kind="stable")
    cuts = np.array_split(order, 8)
    policy, index = helsinki_policy(), helsinki_index()

    def replay(reload: bool) -> list[PresenceEvent]:
        state, out = new_state(), []
        for part in cuts:
            now = float(pings.ts[part].max())
            state, events = process_batch(state, index, pings.take(part), policy, now)
            out += events
            if reload:
                state = restore(json.loads(json.dumps(snapshot(state))))
        return out

    plain = replay(False)
    assert _json(plain) == _json(replay(True))
    assert any(e.kind is EventKind.EXIT for e in plain)


_WORLD = CircleIndex({"a": (CENTER, 60.0), "b": (offset(CENTER, 30, 0), 20.0),
                      "c": (offset(CENTER, 200, 0), 40.0)})
_PLACES = [CENTER, offset(CENTER, 30, 0), offset(CENTER, 200, 0), offset(CENTER, -150, 90),
           offset(CENTER, 100, 0)]


@st.composite
def _trajectories(draw: st.DrawFn) -> tuple[PingColumns, list[int]]:
    specs = []
    for u in range(draw(st.integers(1, 3))):
        legs: list[Go | Wait] = []
        for _ in range(draw(st.integers(1, 5))):
            if draw(st.booleans()):
                legs.append(Wait(draw(st.integers(0, 1200))))
            else:
                legs.append(Go(_PLACES[draw(st.integers(0, len(_PLACES) - 1))],
                               draw(st.sampled_from([None, 1.4, 20.0]))))
        specs.append(TrajectorySpec(
            f"u{u}", _PLACES[draw(st.integers(0, len(_PLACES) - 1))], tuple(legs),
            start_ts=T0, interval_s=draw(st.sampled_from([5.0, 10.0, 60.0])),
            noise_m=draw(st.sampled_from([0.0, 5.0, 15.0])), accuracy_m=(5.0, 60.0),
            gaps=((draw(st.integers(0, 600)), draw(st.integers(0, 1200))),),
            teleport_rate=0.02, burst_rate=0.02, mock_rate=0.02))
    cols = generate_many(specs, draw(st.integers(0, 2**16)))
    n_batches = draw(st.integers(1, 4))
    return cols, [n_batches]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trajectories())
def test_events_per_user_and_venue_read_enter_dwell_exit(
    case: tuple[PingColumns, list[int]],
) -> None:
    cols, (n_batches,) = case
    if len(cols) == 0:
        return
    policy = PresencePolicy().with_venues([("a", 120)], {"a": (30, 600), "b": (60,)})
    order = cols.delivery_order()
    state, events = new_state(), []
    for part in np.array_split(order, n_batches):
        if part.shape[0] == 0:
            continue
        now = float(cols.delivery_ts[part].max())
        state, out = process_batch(state, _WORLD, cols.take(part).to_batch(), policy, now)
        events += out
    per_pair: dict[tuple[str, str], list[PresenceEvent]] = {}
    for e in events:
        per_pair.setdefault((e.user_id, e.venue_id), []).append(e)
    for seq in per_pair.values():
        open_visit: str | None = None
        last_dwell = 0.0
        for prev, e in zip([None, *seq], seq, strict=False):
            if prev is not None:
                assert e.at >= prev.at
            if e.kind is EventKind.ENTER:
                assert open_visit is None
                open_visit, last_dwell = e.visit_id, 0.0
            else:
                assert e.visit_id == open_visit
                if e.kind is EventKind.DWELL:
                    assert e.dwell_s is not None and e.dwell_s > last_dwell
                    last_dwell = e.dwell_s
                else:
                    open_visit = None
