"""The in-memory ledger and the snapshot horizon."""

from __future__ import annotations

import math

from tests.decisions.builders import campaign, policy
from triggers.decisions import FeedbackKind, InMemoryLedger, LedgerEntry, history_horizon_s


def _e(campaign_id: str, at: float, venue_id: str = "v", control: bool = False) -> LedgerEntry:
    return LedgerEntry(user_id="u", campaign_id=campaign_id, venue_id=venue_id,
                       variant_id="a", at=at, control=control)


def test_counts_are_half_open_ranges_and_skip_control_entries() -> None:
    ledger = InMemoryLedger([_e("a", 10.0), _e("b", 20.0), _e("a", 30.0, control=True)])
    assert ledger.count_pushes("u", 10.0, 30.0) == 2
    assert ledger.count_pushes("u", 10.0, 20.0) == 1
    assert ledger.count_pushes("u", 0.0, math.inf) == 2
    assert ledger.count_pushes("u", 0.0, math.inf, campaign_id="a") == 2
    assert ledger.count_pushes("other", 0.0, math.inf) == 0


def test_last_push_per_user_and_per_campaign_venue() -> None:
    ledger = InMemoryLedger([_e("a", 10.0, "v1"), _e("a", 20.0, "v2"),
                             _e("b", 30.0, "v1", control=True)])
    assert ledger.last_push_at("u") == 20.0
    assert ledger.last_push_at("u", campaign_id="a", venue_id="v1") == 10.0
    assert ledger.last_push_at("u", campaign_id="b", venue_id="v1") == 30.0
    assert ledger.last_push_at("nobody") is None


def test_ignored_streak_grows_on_ignores_and_resets_on_click() -> None:
    ledger = InMemoryLedger()
    for kind in (FeedbackKind.IGNORED, FeedbackKind.DISMISSED, FeedbackKind.DELIVERED,
                 FeedbackKind.OPENED):
        ledger.record_feedback("u", kind)
    assert ledger.ignored_streak("u") == 2
    ledger.record_feedback("u", FeedbackKind.CONVERTED)
    assert ledger.ignored_streak("u") == 0


def test_history_horizon_covers_the_longest_rule() -> None:
    assert history_horizon_s(policy(), []) == 2 * 86_400
    assert history_horizon_s(policy(max_per_week=5), []) == 7 * 86_400
    long_cap = campaign(caps={"per_user": {"count": 1, "period_s": 30 * 86_400}})
    assert history_horizon_s(policy(), [long_cap]) == 30 * 86_400
