"""A batch's users taken out of a large state, processed, and put back: the events and the
final state are those of processing the large state itself (Helsinki, © OpenStreetMap
contributors)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.server.pipeline.builders import FORUM, T0, batch, timeline, walk_into_forum
from tests.triggers.builders import helsinki_index, helsinki_policy
from triggers.errors import TriggerError
from triggers.presence import advance, process_batch
from triggers.presence_events import PresenceEvent
from triggers.presence_state import PresenceState, new_state, snapshot
from triggers.presence_subset import (
    PresenceColumns,
    drop_users,
    due_user_ids,
    extract_users,
    from_columns,
    merge_users,
    to_columns,
)

USERS = ("ann", "bo", "cy", "dee")
WINDOWS = tuple((T0 + a, T0 + a + 140) for a in range(0, 700, 140))


def _key(e: PresenceEvent) -> tuple[str, float, str, str]:
    return e.user_id, e.at, e.kind.value, e.venue_id


def _canonical(state: PresenceState) -> str:
    """The state's users, visits and candidates by user id (rows may differ)."""
    snap = snapshot(state)
    ids = snap["users"]["ids"]
    users = {u: [snap["users"][c][i] for c in ("last_ts", "anchor_ts", "anchor_lat",
                                               "anchor_lng", "reject_streak")]
             for i, u in enumerate(ids)}
    visits = sorted([ids[r], *rest] for r, *rest in snap["visits"])
    cands = sorted([ids[r], *rest] for r, *rest in snap["candidates"])
    return json.dumps([users, visits, cands], sort_keys=True)


def _fire_due(big: PresenceState, now: float) -> list[PresenceEvent]:
    sub = extract_users(big, due_user_ids(big, now, 100))
    events = advance(sub, now, helsinki_policy())
    merge_users(big, sub)
    return events


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sets(st.sampled_from(USERS), min_size=1), min_size=len(WINDOWS),
                max_size=len(WINDOWS)))
def test_extract_process_merge_equals_processing_the_whole_state(
    chunks: list[set[str]],
) -> None:
    index, policy = helsinki_index(), helsinki_policy()
    fixes = {u: timeline(u, T0 + 9 * i) for i, u in enumerate(USERS)}
    whole, big = new_state(), new_state()
    whole_events: list[PresenceEvent] = []
    split_events: list[PresenceEvent] = []
    for (lo, hi), users in zip(WINDOWS, chunks, strict=True):
        pings = [f for u in sorted(users) for f in fixes[u] if lo <= f.ts < hi]
        if not pings:
            continue
        whole, events = process_batch(whole, index, batch(pings), policy, hi)
        whole_events += events
        sub = extract_users(big, sorted(users))
        sub, events = process_batch(sub, index, batch(pings), policy, hi)
        split_events += events
        merge_users(big, sub)
        # The service's timer loop: the other users' timers due by now fire too.
        split_events += _fire_due(big, hi)
    whole_events += advance(whole, T0 + 4000, policy)
    split_events += _fire_due(big, T0 + 4000)
    assert sorted(whole_events, key=_key) == sorted(split_events, key=_key)
    assert due_user_ids(big, T0 + 4000, 100) == []
    assert _canonical(whole) == _canonical(big)


def test_a_failed_batch_leaves_the_large_state_as_it_was() -> None:
    index, policy = helsinki_index(), helsinki_policy()
    fixes = walk_into_forum("u1")
    big = new_state()
    sub, _ = process_batch(extract_users(big, ["u1"]), index, batch(fixes[:5]), policy,
                           fixes[4].ts)
    merge_users(big, sub)
    before = _canonical(big)
    sub = extract_users(big, ["u1"])
    process_batch(sub, index, batch(fixes[5:]), policy, fixes[-1].ts)  # never merged
    assert _canonical(big) == before


def test_due_user_ids_come_earliest_first_and_skip_rescheduled_timers() -> None:
    index, policy = helsinki_index(), helsinki_policy()
    big = new_state()
    for i, user in enumerate(("late", "early", "gone")):
        fixes = walk_into_forum(user, T0 + 100 * (2 - i) if user != "gone" else T0)
        sub, events = process_batch(extract_users(big, [user]), index, batch(fixes), policy,
                                    fixes[-1].ts)
        assert any(e.kind.value == "enter" and e.venue_id == FORUM for e in events)
        merge_users(big, sub)
    assert due_user_ids(big, T0, 10) == []
    everyone = due_user_ids(big, T0 + 3600, 10)
    assert set(everyone) == {"late", "early", "gone"}
    assert everyone[0] == "gone"  # entered first, so its dwell timer is due first
    assert due_user_ids(big, T0 + 3600, 1) == everyone[:1]
    assert drop_users(big, ["gone", "nobody"]) == 1
    assert set(due_user_ids(big, T0 + 3600, 10)) == {"late", "early"}
    assert "gone" not in _canonical(big)


def test_drop_users_keeps_the_others_intact() -> None:
    index, policy = helsinki_index(), helsinki_policy()
    fixes = [f for u in USERS for f in timeline(u)]
    state, _ = process_batch(new_state(), index, batch(fixes), policy, T0 + 200)
    kept = extract_users(state, ["ann", "cy", "dee"])
    drop_users(state, ["bo"])
    assert _canonical(state) == _canonical(kept)
    # Still usable: the rest of the day gives the same events either way.
    later = [f for f in fixes if f.ts >= T0 + 200 and f.user_id != "bo"]
    _, a = process_batch(state, index, batch(later), policy, T0 + 2000)
    _, b = process_batch(kept, index, batch(later), policy, T0 + 2000)
    assert sorted(a, key=_key) == sorted(b, key=_key)


def test_columns_round_trip_exactly_through_json() -> None:
    index, policy = helsinki_index(), helsinki_policy()
    fixes = [f for u in USERS for f in timeline(u)]
    state, _ = process_batch(new_state(), index, batch(fixes), policy, T0 + 200)
    columns = to_columns(state)
    assert sum(o is not None for o in columns.open) >= 1
    assert np.isnan(columns.next_due_s).sum() == sum(
        1 for o in columns.open if o is None or not o[0])
    opened = json.loads(json.dumps(columns.open, allow_nan=False))
    again = from_columns(PresenceColumns(
        columns.user_ids, columns.last_ts, columns.anchor_ts, columns.anchor_lat,
        columns.anchor_lng, columns.reject_streak, opened, columns.next_due_s))
    assert _canonical(again) == _canonical(state)
    assert to_columns(again).user_ids == columns.user_ids


def test_malformed_columns_are_refused() -> None:
    def cols(ids: list[str], opened: list[object], streak: int = 0) -> PresenceColumns:
        n = len(ids)
        f = np.zeros(n)
        return PresenceColumns(ids, f, f, f, f, np.full(n, streak, np.int16),
                               opened, np.full(n, np.nan))  # type: ignore[arg-type]

    with pytest.raises(TriggerError, match="two presence rows"):
        from_columns(cols(["a", "a"], [None, None]))
    with pytest.raises(TriggerError, match="reject_streak"):
        from_columns(cols(["a"], [None], streak=300))
    with pytest.raises(TriggerError, match="malformed"):
        from_columns(cols(["a"], [[[["v", "x", 1.0]], []]]))
