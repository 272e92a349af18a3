"""The presence rules one by one, in a world of circle venues (exact distances)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.triggers.builders import (
    CENTER,
    T0,
    CircleIndex,
    Ping,
    batch,
    kinds,
    offset,
    ping,
    run,
)
from triggers.presence import process_batch, reconcile_venues
from triggers.presence_events import Confidence, EventKind, ExitReason
from triggers.presence_policy import PresencePolicy, VenueRules
from triggers.presence_state import new_state

MALL = CircleIndex({"mall": (CENTER, 100.0)})
NESTED = CircleIndex({"mall": (CENTER, 100.0), "store": (offset(CENTER, 40, 0), 15.0)})
IN = CENTER
OUT = offset(CENTER, 0, 400)


def test_fires_enter_on_a_clear_first_ping_inside() -> None:
    _, events = run(MALL, [ping(0, IN)])
    assert [(e.kind, e.confidence) for e in events] == [(EventKind.ENTER, Confidence.HIGH)]


def test_low_confidence_touch_never_enters() -> None:
    touch = offset(CENTER, 0, 105)  # 5 m outside, 30 m accuracy: the circle touches
    _, events = run(MALL, [ping(t, touch, accuracy_m=30) for t in range(0, 600, 10)])
    assert events == []


def test_centre_just_inside_needs_a_second_ping() -> None:
    near_edge = offset(CENTER, 0, 92)  # 8 m inside, 10 m accuracy: medium
    _, first = run(MALL, [ping(0, offset(CENTER, 0, 300)), ping(10, near_edge)])
    assert first == []
    _, both = run(MALL, [ping(0, offset(CENTER, 0, 300)), ping(10, near_edge),
                         ping(20, near_edge)])
    assert [(e.kind, e.at, e.confidence) for e in both] == [
        (EventKind.ENTER, T0 + 20, Confidence.MEDIUM)]


def test_no_exit_without_enter() -> None:
    _, events = run(MALL, [ping(t, OUT) for t in range(0, 100, 10)], now=5000)
    assert events == []


def test_one_clearly_outside_ping_does_not_end_the_visit() -> None:
    pings = [ping(0, IN), ping(10, OUT), ping(20, IN)]
    _, events = run(MALL, pings)
    assert kinds(events) == ["enter:mall"]


def test_two_clearly_outside_pings_end_the_visit_and_pair_the_visit_id() -> None:
    pings = [ping(0, IN), ping(400, IN), ping(410, OUT), ping(420, OUT)]
    _, events = run(MALL, pings)
    assert [e.kind for e in events] == [EventKind.ENTER, EventKind.DWELL, EventKind.EXIT]
    assert len({e.visit_id for e in events}) == 1
    assert events[-1].reason is ExitReason.LEFT
    assert events[-1].at == T0 + 420 and events[-1].dwell_s == 420


def test_silence_ends_the_visit_dated_at_the_last_inside_ping() -> None:
    policy = PresencePolicy(dwell_s=3600)
    _, events = run(MALL, [ping(0, IN), ping(100, IN)], now=100 + 900, policy=policy)
    assert [(e.kind, e.at, e.reason) for e in events] == [
        (EventKind.ENTER, T0, None), (EventKind.EXIT, T0 + 100, ExitReason.TIMEOUT)]


def test_dwell_thresholds_from_campaigns_fire_once_each_in_order() -> None:
    policy = PresencePolicy().with_venues([("mall", 300)], {"mall": (60, 300, 900)})
    pings = [ping(t, IN) for t in range(0, 1000, 30)]
    _, events = run(MALL, pings, policy=policy)
    assert [e.dwell_s for e in events if e.kind is EventKind.DWELL] == [60, 300, 900]


def test_per_venue_silence_timeout_overrides_the_tenant_one() -> None:
    policy = PresencePolicy(venues={"mall": VenueRules(silence_timeout_s=120)})
    _, events = run(MALL, [ping(0, IN)], now=121, policy=policy)
    assert [e.kind for e in events] == [EventKind.ENTER, EventKind.EXIT]


def test_nested_store_and_mall_are_tracked_independently() -> None:
    store = offset(CENTER, 40, 0)
    mall_only = offset(CENTER, -40, 0)  # 65 m from the store's edge, 60 m inside the mall
    pings = [ping(0, store, accuracy_m=5), ping(10, store, accuracy_m=5),
             ping(20, mall_only, accuracy_m=5), ping(30, mall_only, accuracy_m=5)]
    _, events = run(NESTED, pings)
    assert kinds(events) == ["enter:mall", "enter:store", "exit:store"]


def test_removed_venue_ends_its_visits_with_venue_removed() -> None:
    state, _ = run(NESTED, [ping(0, offset(CENTER, 40, 0), accuracy_m=5)])
    events = reconcile_venues(state, MALL, T0 + 60, PresencePolicy())
    assert [(e.venue_id, e.reason, e.at) for e in events] == [
        ("store", ExitReason.VENUE_REMOVED, T0 + 60)]
    assert [v.venue_id for _, v in state.open_visits()] == ["mall"]


def test_swapping_the_index_in_a_batch_ends_visits_of_vanished_venues() -> None:
    state, _ = run(MALL, [ping(0, IN)])
    empty = CircleIndex({})
    state, events = process_batch(state, empty, batch([ping(10, IN)]), PresencePolicy(), T0 + 10)
    assert [(e.kind, e.reason) for e in events] == [(EventKind.EXIT, ExitReason.VENUE_REMOVED)]


def test_burst_of_six_pings_across_the_edge_gives_one_enter() -> None:
    path = [offset(CENTER, 0, 140 - 14 * k) for k in range(6)]  # 140 m out → 70 m in
    shuffled = [ping(10 * k, p) for k, p in enumerate(path)][::-1]
    _, events = run(MALL, shuffled, now=60)
    assert [(e.kind, e.at) for e in events] == [(EventKind.ENTER, T0 + 40)]


def _hygiene_case(rule: str) -> tuple[list[Ping], float]:
    base = [ping(0, OUT), ping(10, OUT)]
    extra = {
        "future": ping(300, IN),
        "mock": ping(20, IN, mock=True),
        "duplicate": ping(10, IN),
        "late": ping(5, IN),
        "inaccurate": ping(20, IN, accuracy_m=250),
        "teleport": ping(20, offset(CENTER, 0, -5000)),
    }[rule]
    return base, extra.ts - T0 if rule == "future" else 20


@pytest.mark.parametrize("rule", ["future", "mock", "duplicate", "late", "inaccurate",
                                  "teleport"])
def test_hygiene_rule_rejects_the_ping_and_counts_it(rule: str) -> None:
    base, _ = _hygiene_case(rule)
    state, _ = run(MALL, base, now=10)
    bad = {
        "future": ping(300, IN),  # 290 s past now: beyond 120 s
        "mock": ping(20, IN, mock=True),
        "duplicate": ping(10, IN),  # same user, same ts as a processed ping
        "late": ping(5, IN),  # older than the last processed ping
        "inaccurate": ping(20, IN, accuracy_m=250),
        "teleport": ping(11, IN),  # 400 m in 1 s
    }[rule]
    state, events = run(MALL, [bad], now=20, state=state)
    assert events == []
    assert getattr(state.counters, rule) == 1
    assert state.counters.accepted == 2


def test_missing_accuracy_is_assumed_30m_and_counted() -> None:
    touch = offset(CENTER, 0, 120)  # 20 m outside: touches a 30 m circle
    state, events = run(MALL, [Ping("u1", T0, touch.lat, touch.lng, float("nan"))])
    assert events == [] and state.counters.assumed_accuracy == 1
    assert state.candidates  # the touch was remembered as a 30 m circle would


def test_three_consecutive_teleports_are_a_relocation() -> None:
    far = offset(CENTER, 0, -20_000)
    pings = [ping(0, OUT)] + [ping(10 * k, far) for k in (1, 2, 3)]
    state, _ = run(MALL, pings)
    assert (state.counters.teleport, state.counters.relocated) == (2, 1)


def test_stale_events_are_recorded_but_flagged() -> None:
    state, events = run(MALL, [ping(0, IN)], now=601)
    # The ENTER's ping is 601 s old; the DWELL's timer was due only 301 s ago.
    assert [(e.kind, e.stale) for e in events] == [(EventKind.ENTER, True),
                                                    (EventKind.DWELL, False)]
    assert state.counters.stale_events == 1


def test_rejects_pings_with_bad_coordinates_as_invalid() -> None:
    pings = batch([ping(0, IN)])
    bad = type(pings)(pings.user_id, pings.ts, np.array([95.0]), pings.lng, pings.accuracy_m,
                      pings.speed_mps, pings.heading_deg, pings.mock)
    state, events = process_batch(new_state(), MALL, bad, PresencePolicy(), T0)
    assert events == [] and state.counters.invalid == 1
