"""Integer user codes are the same users as their decimal text, whatever the mix, the
order of arrival or a snapshot in between; the batch shape never changes the events."""

from __future__ import annotations

import json

import numpy as np

from tests.triggers.builders import FORUM, T0, helsinki_index, helsinki_policy, inside_point, offset
from triggers.pings import PingBatch
from triggers.presence import process_batch
from triggers.presence_events import PresenceEvent
from triggers.presence_state import PresenceState, new_state, restore, snapshot
from triggers.trajectory import Go, PingColumns, TrajectorySpec, Wait, generate_many


def _crowd(seed: int, n_users: int = 40) -> PingColumns:
    """Users with decimal ids (some far from int64's range ends, one negative) walking
    into Forum, waiting, and out again; with teleports, mock fixes and bursts."""
    forum = inside_point(FORUM)
    start = offset(forum, -250, -150)
    ids = [str(7 + 1_000_003 * i) for i in range(n_users - 2)] + [str(2**62 + 5), "-12"]
    specs = [
        TrajectorySpec(uid, start, (Go(forum), Wait(200 + 60 * (i % 9)), Go(start)),
                       start_ts=T0 + 11 * i, noise_m=8, accuracy_m=(5, 40),
                       teleport_rate=0.02, mock_rate=0.01, burst_rate=0.02)
        for i, uid in enumerate(ids)
    ]
    return generate_many(specs, seed)


def _replay(cols: PingColumns, n_batches: int, id_form: str) -> tuple[str, PresenceState]:
    """Events (as JSON) and the final state; ``id_form``: text, codes, or alternating."""
    state, events = new_state(), []
    order = cols.delivery_order()
    for k, part in enumerate(np.array_split(order, n_batches)):
        if not part.size:
            continue
        batch = cols.take(part).to_batch()
        as_codes = id_form == "codes" or (id_form == "mixed" and k % 2 == 1)
        if as_codes:
            batch = PingBatch.from_columns(
                batch.user_id.astype(np.int64), batch.ts, batch.lat, batch.lng,
                accuracy_m=batch.accuracy_m, mock=batch.mock)
        if k == n_batches // 2:
            state = restore(json.loads(json.dumps(snapshot(state))))
        now = float(cols.delivery_ts[part].max())
        state, out = process_batch(state, helsinki_index(), batch, helsinki_policy(), now)
        events += out
    return _json(events), state


def _json(events: list[PresenceEvent]) -> str:
    return json.dumps([e.to_dict() for e in events], sort_keys=True)


def test_integer_codes_give_the_events_and_snapshot_of_their_decimal_text() -> None:
    cols = _crowd(5)
    text, state_t = _replay(cols, 12, "text")
    assert '"kind": "enter"' in text and '"kind": "dwell"' in text
    for form in ("codes", "mixed"):
        events, state = _replay(cols, 12, form)
        assert events == text, form
        assert snapshot(state) == snapshot(state_t), form


def test_a_user_first_seen_as_text_then_as_a_code_keeps_one_row() -> None:
    forum = inside_point(FORUM)
    state = new_state()
    first = PingBatch.from_columns(np.array(["42", "0042"]), [T0, T0], [forum.lat] * 2,
                                   [forum.lng] * 2, accuracy_m=[10.0, 10.0])
    state, _ = process_batch(state, helsinki_index(), first, helsinki_policy(), T0)
    later = PingBatch.from_columns(np.array([42], dtype=np.int64), [T0 + 10], [forum.lat],
                                   [forum.lng], accuracy_m=[10.0])
    state, _ = process_batch(state, helsinki_index(), later, helsinki_policy(), T0 + 10)
    # "0042" is another id (a code is written without leading zeros); 42 is "42".
    users = snapshot(state)["users"]
    assert dict(zip(users["ids"], users["last_ts"], strict=True)) == {"42": T0 + 10, "0042": T0}


def test_a_code_seen_before_a_restore_maps_to_its_row_after_it() -> None:
    forum = inside_point(FORUM)
    codes = np.array([5, 3, 9], dtype=np.int64)
    state = new_state()
    one = PingBatch.from_columns(codes, [T0] * 3, [forum.lat] * 3, [forum.lng] * 3)
    state, _ = process_batch(state, helsinki_index(), one, helsinki_policy(), T0)
    state = restore(snapshot(state))
    two = PingBatch.from_columns(codes[::-1].copy(), [T0 + 10] * 3, [forum.lat] * 3,
                                 [forum.lng] * 3)
    state, _ = process_batch(state, helsinki_index(), two, helsinki_policy(), T0 + 10)
    assert snapshot(state)["users"]["ids"] == ["3", "5", "9"]
    assert state.n_users == 3


def test_a_tick_of_one_ping_per_user_gives_the_events_of_the_general_path() -> None:
    """A batch holding each user once is grouped by a linear-time scatter; the same
    batch with one ping repeated (a duplicate, ignored) takes the general sort. Same
    events, and the same state but for the hygiene counters of the repeated pings."""
    cols = _crowd(9, n_users=25)
    ticks: list[list[int]] = [[]]
    seen: set[str] = set()
    for i in cols.delivery_order().tolist():
        uid = str(cols.user_id[i])
        if uid in seen:
            ticks.append([])
            seen = set()
        seen.add(uid)
        ticks[-1].append(i)
    assert len(ticks) > 50

    def run(with_duplicate: bool) -> tuple[str, dict[str, object]]:
        state, events = new_state(), []
        for part in ticks:
            idx = np.array(part + part[:1] if with_duplicate else part)
            now = float(cols.delivery_ts[idx].max())
            state, out = process_batch(state, helsinki_index(), cols.take(idx).to_batch(),
                                       helsinki_policy(), now)
            events += out
        snap = snapshot(state)
        counters = snap.pop("counters")
        snap["accepted"] = (counters["accepted"], counters["teleport"])
        return _json(events), snap

    assert run(False) == run(True)
