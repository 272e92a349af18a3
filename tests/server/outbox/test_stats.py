"""Pure parts of the outbox: backoff timing, Wilson intervals and the lift z-test
against published numbers."""

from __future__ import annotations

import math
import random

import pytest

from server.api.stats import campaign_stats_doc, render_table
from server.outbox.backoff import Backoff
from server.store import CampaignAggregate, VariantAggregate
from triggers.decisions.stats import lift, two_proportion_z, wilson


def test_backoff_is_exponential_jittered_seedable_and_honours_retry_after() -> None:
    backoff = Backoff(base_s=2.0, factor=2.0, max_s=60.0, jitter=0.5)
    delays = [backoff.delay_s(n, random.Random(3)) for n in range(1, 8)]
    assert delays == [backoff.delay_s(n, random.Random(3)) for n in range(1, 8)]
    for n, delay in enumerate(delays, start=1):
        step = min(60.0, 2.0 * 2 ** (n - 1))
        assert step / 2 <= delay <= step
    assert backoff.delay_s(1, random.Random(3), retry_after_s=120.0) == 120.0
    assert backoff.delay_s(6, random.Random(3), retry_after_s=1.0) >= 30.0
    assert backoff.exhausted(8) and not backoff.exhausted(7)


@pytest.mark.parametrize(("x", "n", "low", "high"), [
    (10, 100, 0.0552, 0.1744),   # Newcombe (1998), Wilson score interval
    (0, 10, 0.0, 0.2775),
    (81, 263, 0.2553, 0.3662),   # Agresti & Coull (1998) example
    (10, 10, 0.7225, 1.0),
])
def test_wilson_interval_matches_published_values(x: int, n: int, low: float,
                                                  high: float) -> None:
    p = wilson(x, n)
    assert p.rate == x / n
    assert p.low == pytest.approx(low, abs=1e-4) and p.high == pytest.approx(high, abs=1e-4)


def test_wilson_of_no_trials_has_no_rate() -> None:
    assert wilson(0, 0).rate is None and wilson(0, 0).low is None


def test_two_proportion_z_test_matches_prop_test_without_correction() -> None:
    # R: prop.test(c(60, 40), c(500, 500), correct = FALSE) → X-squared 4.4444, p 0.03501
    z, p = two_proportion_z(60, 500, 40, 500) or (math.nan, math.nan)
    assert z * z == pytest.approx(4.4444, abs=1e-4) and p == pytest.approx(0.03501, abs=1e-5)
    assert two_proportion_z(0, 100, 0, 100) is None and two_proportion_z(1, 0, 1, 2) is None


def test_lift_is_relative_to_the_control_rate() -> None:
    result = lift(60, 500, 40, 500)
    assert result.lift == pytest.approx(0.5)
    assert result.p_value == pytest.approx(0.03501, abs=1e-5)
    assert lift(5, 50, 0, 50).lift is None  # no control conversions: undefined


def test_stats_document_adds_rates_intervals_and_lift() -> None:
    agg = CampaignAggregate(
        "hello", {("sent", "sent"): 120, ("skipped", "held_out_control"): 100},
        (VariantAggregate("a", 60, {"sent": 50, "dead": 10}, {"clicked": 10, "opened": 20},
                          60, 9),
         VariantAggregate("b", 60, {"sent": 60}, {"clicked": 3}, 60, 3)),
        control_users=100, control_converted=5)
    doc = campaign_stats_doc(agg)
    assert doc.deliveries == 120 and doc.sends == 110
    assert doc.by_status["sent"] == 110 and doc.by_status["pending"] == 0
    assert doc.decisions == {"sent": {"sent": 120}, "skipped": {"held_out_control": 100}}
    a = doc.variants[0]
    assert (a.ctr.successes, a.ctr.trials) == (10, 50)
    assert a.ctr.low == pytest.approx(wilson(10, 50).low)
    assert a.lift.lift == pytest.approx(0.15 / 0.05 - 1)
    assert doc.lift.treated.trials == 120 and doc.lift.control.trials == 100
    table = render_table(doc.model_dump(mode="json"))
    assert "control" in table and "lift, all variants vs control" in table
