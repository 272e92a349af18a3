"""Variants that learn: Thompson sampling over a campaign's arms, the control group fixed."""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter

import pytest

from tests.decisions.builders import FORUM, at, campaign, event, policy, profile, run, venue
from triggers.decisions import Campaign, CampaignIndex, InMemoryLedger, Outcome, decide
from triggers.decisions.experiments import in_control
from triggers.learning.signals import Counts, FeedbackBook
from triggers.learning.thompson import Draws, posterior, seed_of, thompson_arm

SATURDAY_NOON = at("2026-11-28 12:00")
ARMS = (("calm", 1.0), ("bold", 1.0))
TRUE_CTR = {"calm": 0.04, "bold": 0.12}


def _thompson_campaign(control_pct: float = 10.0) -> Campaign:
    return campaign(
        "forum-sale", optimize="thompson", control_pct=control_pct,
        variants=[{"id": "calm", "title": "Forum sale", "body": "20 % off today"},
                  {"id": "bold", "title": "FORUM SALE NOW", "body": "20 % off, today only!"}],
    )


def _run_population(
    users: int, book: FeedbackBook, *, learn: bool, seed: int = 7
) -> tuple[list[str], set[str]]:
    """Each user enters Forum once, a minute apart; treated users click with the arm's
    true CTR, and the click is fed back when ``learn``. Returns (arm per treated user in
    order, held-out users)."""
    clicks = random.Random(seed)
    forum, index = venue(FORUM), CampaignIndex([_thompson_campaign()])
    rules, ledger = policy(max_per_day=None, quiet_hours=None), InMemoryLedger()
    arms: list[str] = []
    held_out: set[str] = set()
    for n in range(users):
        user_id = f"shopper-{n:04d}"
        when = SATURDAY_NOON + 60.0 * n
        decision = decide(event(FORUM, when, user_id=user_id), profile(user_id), index, forum,
                          rules, ledger, when, signals=book)
        line = decision.considered[0]
        if line.outcome is Outcome.HELD_OUT:
            held_out.add(user_id)
            continue
        assert decision.chosen is not None
        arm = decision.chosen.variant_id
        arms.append(arm)
        if learn:
            push = book.record_send(user_id, "forum-sale", arm, "inbox", when)
            if clicks.random() < TRUE_CTR[arm]:
                book.record_click(push)
    return arms, held_out


def test_allocation_converges_to_the_arm_with_more_clicks() -> None:
    arms, _ = _run_population(1500, FeedbackBook(), learn=True)
    first, last = Counter(arms[:30]), Counter(arms[-300:])
    # At first both arms share the traffic; by the end the better arm has most of it.
    assert first["calm"] >= 5 and first["bold"] >= 5
    assert last["bold"] / 300 >= 0.8


def test_control_group_is_the_same_users_whatever_the_arm_counts() -> None:
    favour_calm, favour_bold = FeedbackBook(), FeedbackBook()
    favour_calm.set_arm_counts("forum-sale", {"calm": Counts(500, 100), "bold": Counts(500, 5)})
    favour_bold.set_arm_counts("forum-sale", {"calm": Counts(500, 5), "bold": Counts(500, 100)})
    arms_calm, held_calm = _run_population(400, favour_calm, learn=False)
    arms_bold, held_bold = _run_population(400, favour_bold, learn=False)
    expected = {f"shopper-{n:04d}" for n in range(400)
                if in_control("forum-sale", f"shopper-{n:04d}", 10.0)}
    assert held_calm == held_bold == expected
    assert 20 <= len(expected) <= 60
    # The counts did steer the treated users' arms.
    assert Counter(arms_calm)["calm"] > 0.9 * len(arms_calm)
    assert Counter(arms_bold)["bold"] > 0.9 * len(arms_bold)


def test_a_replay_of_the_same_event_and_counts_picks_the_same_arm() -> None:
    counts = {"calm": Counts(40, 4), "bold": Counts(40, 5)}
    picks = [thompson_arm("forum-sale", "aino", SATURDAY_NOON, ARMS, counts) for _ in range(5)]
    assert len(set(picks)) == 1
    # Another event time is another draw: over many events both arms are still tried.
    spread = Counter(thompson_arm("forum-sale", "aino", SATURDAY_NOON + k, ARMS, counts)
                     for k in range(400))
    assert spread["calm"] > 60 and spread["bold"] > 60


def test_seed_depends_on_campaign_user_and_event_time() -> None:
    base = seed_of("forum-sale", "aino", SATURDAY_NOON)
    assert base == seed_of("forum-sale", "aino", SATURDAY_NOON)
    assert len({base, seed_of("forum-sale", "mikko", SATURDAY_NOON),
                seed_of("kluuvi-sale", "aino", SATURDAY_NOON),
                seed_of("forum-sale", "aino", SATURDAY_NOON + 1)}) == 4


def test_a_switched_off_arm_is_never_sampled() -> None:
    arms = (("calm", 0.0), ("bold", 1.0), ("loud", 1.0))
    counts = {"calm": Counts(10, 10)}  # perfect record, but weight 0 switches it off
    picked = {thompson_arm("c", f"u{n}", SATURDAY_NOON, arms, counts) for n in range(200)}
    assert picked == {"bold", "loud"}


def test_posterior_is_uniform_prior_plus_clicks_and_misses() -> None:
    assert posterior(Counts(0, 0)) == (1.0, 1.0)
    assert posterior(Counts(12, 3)) == (4.0, 10.0)


def test_fixed_campaigns_keep_the_weighted_hash_arm() -> None:
    offer = campaign("forum-sale", variants=[{"id": "calm", "title": "t", "body": "b"},
                                             {"id": "bold", "title": "t", "body": "b"}])
    book = FeedbackBook()
    book.set_arm_counts("forum-sale", {"calm": Counts(1000, 0), "bold": Counts(1000, 900)})
    with_signals = run(event(FORUM, SATURDAY_NOON), profile(), [offer], venue(FORUM),
                       signals=book)
    without = run(event(FORUM, SATURDAY_NOON), profile(), [offer], venue(FORUM))
    assert with_signals.to_json() == without.to_json()


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 1.0), (3.0, 12.0), (31.0, 201.0)])
def test_beta_draws_have_the_posterior_mean_and_variance(alpha: float, beta: float) -> None:
    draws = Draws(b"forum-sale\x1faino")
    sample = [draws.beta(alpha, beta) for _ in range(20_000)]
    total = alpha + beta
    mean, variance = alpha / total, alpha * beta / (total * total * (total + 1))
    assert statistics.fmean(sample) == pytest.approx(mean, abs=4 * math.sqrt(variance / 20_000))
    assert statistics.variance(sample) == pytest.approx(variance, rel=0.05)
    assert all(0.0 <= x <= 1.0 for x in sample)


def test_the_same_key_gives_the_same_draws() -> None:
    first, second = Draws(b"k"), Draws(b"k")
    assert [first.uniform() for _ in range(20)] == [second.uniform() for _ in range(20)]
