"""Per-user presence records: what the service loads per batch is what one state would hold."""

from __future__ import annotations

import json

import pytest

from tests.server.pipeline.builders import FORUM, T0, batch, timeline, walk_into_forum
from tests.triggers.builders import helsinki_index, helsinki_policy
from triggers.errors import TriggerError
from triggers.presence import advance, process_batch
from triggers.presence_events import PresenceEvent
from triggers.presence_records import UserRecord, split_state, state_from_records
from triggers.presence_state import new_state

USERS = ("ann", "bo", "cy")


def _chunks() -> list[list[str]]:
    """Batches of different user subsets, so each batch loads only some users."""
    return [["ann", "bo"], ["bo", "cy"], ["ann", "cy"], ["ann", "bo", "cy"]]


def test_split_then_merge_then_process_gives_the_events_of_one_state() -> None:
    index, policy = helsinki_index(), helsinki_policy()
    fixes = {u: timeline(u, T0 + 7 * i) for i, u in enumerate(USERS)}
    windows = [(T0 + a, T0 + b) for a, b in ((0, 120), (120, 260), (260, 400), (400, 700))]

    whole = new_state()
    whole_events: list[PresenceEvent] = []
    records: dict[str, UserRecord] = {}
    split_events: list[PresenceEvent] = []
    for (lo, hi), users in zip(windows, _chunks(), strict=True):
        pings = [f for u in users for f in fixes[u] if lo <= f.ts < hi]
        whole, events = process_batch(whole, index, batch(pings), policy, hi)
        whole_events += events
        # The service's way: only this batch's users, from their records.
        state = state_from_records(records[u].data for u in users if u in records)
        state, events = process_batch(state, index, batch(pings), policy, hi)
        split_events += events
        records.update(split_state(state))
    # Then every timer still pending, in both.
    whole_events += advance(whole, T0 + 3000, policy)
    state = state_from_records(r.data for r in records.values())
    split_events += advance(state, T0 + 3000, policy)

    def key(e: PresenceEvent) -> tuple[str, float, str]:
        return e.user_id, e.at, e.kind.value

    assert sorted(whole_events, key=key) == sorted(split_events, key=key)
    assert {e.kind.value for e in split_events} == {"enter", "dwell", "exit"}


def test_records_survive_json_and_carry_the_next_timer() -> None:
    fixes = walk_into_forum("u1") + walk_into_forum("u2", stay_s=0.0)
    state, events = process_batch(new_state(), helsinki_index(), batch(fixes),
                                  helsinki_policy(), max(f.ts for f in fixes))
    assert {(e.user_id, e.kind.value, e.venue_id) for e in events} >= {("u1", "enter", FORUM)}
    records = split_state(state)
    enter_at = next(e.at for e in events if e.user_id == "u1" and e.venue_id == FORUM)
    assert records["u1"].next_due_s == enter_at + 300  # Forum's dwell threshold
    text = json.dumps({u: r.data for u, r in records.items()}, allow_nan=False)
    again = split_state(state_from_records(json.loads(text).values()))
    assert again == records


def test_a_user_with_nothing_open_has_no_timer() -> None:
    outside = walk_into_forum("u1")[:1]
    state, _ = process_batch(new_state(), helsinki_index(), batch(outside),
                             helsinki_policy(), outside[0].ts)
    assert split_state(state)["u1"].next_due_s is None


def test_malformed_or_duplicate_records_are_refused() -> None:
    fixes = walk_into_forum("u1")
    state, _ = process_batch(new_state(), helsinki_index(), batch(fixes), helsinki_policy(),
                             fixes[-1].ts)
    data = split_state(state)["u1"].data
    with pytest.raises(TriggerError, match="two presence records"):
        state_from_records([data, data])
    with pytest.raises(TriggerError):
        state_from_records([{k: v for k, v in data.items() if k != "visits"}])
    with pytest.raises(TriggerError, match="version"):
        state_from_records([{**data, "version": 99}])
