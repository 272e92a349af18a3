"""Per-ping verdicts: each ping's verdict is what the hygiene counters counted it as
(Helsinki, © OpenStreetMap contributors)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.triggers.builders import FORUM, T0, Ping, batch, helsinki_index, inside_point
from triggers.presence import Verdict, process_batch
from triggers.presence_policy import PresencePolicy
from triggers.presence_state import new_state

_CENTRE = inside_point(FORUM)

_ping = st.builds(
    Ping,
    user_id=st.sampled_from(("ann", "bo", "cy")),
    ts=st.sampled_from([T0 + s for s in (0, 10, 10, 20, 30, 60, 400)]),
    lat=st.one_of(st.just(_CENTRE.lat), st.just(_CENTRE.lat + 0.5), st.just(95.0),
                  st.floats(60.16, 60.18)),
    lng=st.one_of(st.just(_CENTRE.lng), st.floats(24.92, 24.96)),
    accuracy_m=st.sampled_from((5.0, 10.0, 80.0, 500.0, math.nan, -1.0)),
    mock=st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_ping, max_size=12), min_size=1, max_size=3))
def test_verdict_counts_equal_the_counters(batches: list[list[Ping]]) -> None:
    policy = PresencePolicy(teleport_confirm_pings=2)
    state = new_state()
    for pings in batches:
        before = state.counters.as_dict()
        verdicts = np.zeros(len(pings), dtype=np.int8)
        state, _ = process_batch(state, helsinki_index(), batch(pings), policy, T0 + 300,
                                 verdicts=verdicts)
        after = state.counters.as_dict()
        got = {v.name.lower(): int((verdicts == v).sum()) for v in Verdict}
        delta = {k: after[k] - before[k] for k in after}
        for name in ("invalid", "future", "mock", "duplicate", "late", "inaccurate",
                     "teleport", "relocated"):
            assert got[name] == delta[name], (name, got, delta)
        assert got["accepted"] + got["relocated"] == delta["accepted"]


def test_a_batch_split_by_verdict_names_each_rejected_ping() -> None:
    pings = [Ping("u1", T0, _CENTRE.lat, _CENTRE.lng),
             Ping("u1", T0, _CENTRE.lat, _CENTRE.lng, accuracy_m=20.0),  # same ts: duplicate
             Ping("u1", T0 + 10, _CENTRE.lat, _CENTRE.lng, mock=True),
             Ping("u1", T0 + 20, _CENTRE.lat, _CENTRE.lng, accuracy_m=900.0),
             Ping("u2", T0 + 20, 91.0, _CENTRE.lng)]
    verdicts = np.zeros(len(pings), dtype=np.int8)
    process_batch(new_state(), helsinki_index(), batch(pings), PresencePolicy(), T0 + 30,
                  verdicts=verdicts)
    assert [Verdict(int(v)) for v in verdicts] == [
        Verdict.ACCEPTED, Verdict.DUPLICATE, Verdict.MOCK, Verdict.INACCURATE,
        Verdict.INVALID]
