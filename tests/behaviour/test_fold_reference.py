"""The features fold on the ingest path agrees with the plain reference fold
(tests/behaviour/reference_fold.py) on any sequence of events, batch by batch."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.behaviour.builders import DAY, MONDAY_NOON, event
from tests.behaviour.reference_fold import reference_fold
from triggers.behaviour.events import BehaviourEvent
from triggers.behaviour.features import EMPTY, fold

_KINDS = ("view", "view", "purchase", "add_to_cart", "app_open", "listen.track")
_CATEGORIES = (None, "sports", "baby", "food_delivery", "books")


@st.composite
def events(draw: st.DrawFn) -> BehaviourEvent:
    kind = draw(st.sampled_from(_KINDS))
    # Days spread past the 90-day horizon, so trims and late events both happen.
    at = MONDAY_NOON + draw(st.integers(-120, 30)) * DAY + draw(st.integers(0, 86_399))
    if kind == "app_open":
        return event(kind, at=float(at))
    sku = draw(st.integers(0, 12))
    return event(kind, at=float(at), item=f"sku-{sku}",
                 category=draw(st.sampled_from(_CATEGORIES)), name=f"Item {sku}",
                 price=9.5)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(events(), max_size=12), max_size=8))
def test_the_ingest_fold_matches_the_reference_batch_by_batch(
        batches: list[list[BehaviourEvent]]) -> None:
    fast, plain = EMPTY, EMPTY
    for batch in batches:
        fast, plain = fold(fast, batch), reference_fold(plain, batch)
        assert fast.to_json() == plain.to_json()


def test_a_counter_on_an_earlier_day_is_rebuilt_in_day_order() -> None:
    late = event("view", at=MONDAY_NOON, item="racket-7", category="sports")
    early = event("view", at=MONDAY_NOON - 3 * DAY, item="racket-7", category="sports")
    folded = fold(fold(EMPTY, [late]), [early])
    assert folded.to_json() == reference_fold(reference_fold(EMPTY, [late]), [early]).to_json()
    assert folded.counters["view|sports"][1:] == [20_511, 1, 20_514, 1]
