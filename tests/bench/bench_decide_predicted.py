"""What conditions on the promoted models cost a decision: ``decide()`` with and without
``audience.interests`` and ``min_open_chance``, scores looked up as the service does.

The decision benchmark's workload (``bench_decide``: 10,000 venues, 1,000 campaigns,
10,000 users, events over two days; seeded). Two configurations of the same events:

- **baseline**: the campaigns as generated, no learned conditions;
- **predictions on**: half the campaigns with ``audience.interests`` (one category,
  ``min`` ``--threshold``) and the other half with ``min_open_chance: --threshold``.
  With the default 0 every condition holds: both configurations make the same decisions
  and the ratio is the cost of scoring alone (the target's measure); with a threshold
  above 0 some campaigns are skipped and the decisions differ (another arbitration,
  another template rendered), so that ratio mixes in what the skips change. Per decision the
  service's work: the user's :class:`~server.models.TenantModels` facts (their top-20
  interest scores and the chance of opening at the local hour, from scorers holding
  every user: :class:`~triggers.learning.scoring.InterestScorer` and
  :class:`~triggers.learning.scoring.SendTimeScorer`), then
  :class:`~triggers.decisions.predicted.LearnedMisses` over the campaigns with learned
  conditions (listed once, as a batch does), asked by ``decide`` for its candidates.

Paired as ``bench_decide_learning`` does: every event decided in both configurations one
right after the other (which goes first alternates), each call's CPU time summed; the
ratio is predictions-on over baseline, median of ``--reps`` rounds. Target: at most 1.2
(the issue: "scoring adds at most 20 % to the decision benchmark's time per decision").

Garbage collection as the service runs it (``server/cli/serve.py``): what is alive after
set-up (venues, users, events, the scorers) frozen out of the collector's reach and the
young generation collected every 50,000 net allocations; ``--default-gc`` keeps Python's
defaults, where a full collection walks the whole set-up heap and lands on whichever
configuration happens to allocate then.

Run standalone (``.venv/bin/python tests/bench/bench_decide_predicted.py [--quick]``).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from functools import partial
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench._common import force_single_thread_env

force_single_thread_env()

import numpy as np  # noqa: E402

from server.models import TenantModels  # noqa: E402
from tests.bench._common import format_table  # noqa: E402
from tests.bench.bench_decide import (  # noqa: E402
    make_campaigns,
    make_events,
    make_profiles,
    make_venues,
)
from triggers.decisions import Campaign, CampaignIndex, InMemoryLedger, TenantPolicy, decide  # noqa: E402
from triggers.decisions.predicted import LearnedMisses, learned_campaigns  # noqa: E402
from triggers.learning.scoring import InterestScorer, SendTimeScorer  # noqa: E402

TARGET_RATIO = 1.2
CATEGORIES = [f"cat_{i}" for i in range(60)]


def with_conditions(campaigns: list[Campaign], threshold: float) -> list[Campaign]:
    out = []
    for i, c in enumerate(campaigns):
        if i % 2 == 0:
            audience = {**c.audience.model_dump(), "interests": {
                CATEGORIES[i % len(CATEGORIES)]: {"min": threshold}}}
            out.append(Campaign.model_validate({**c.model_dump(), "audience": audience}))
        else:
            out.append(c.model_copy(update={"min_open_chance": threshold}))
    return out


def make_models(user_ids: list[str], rng: np.random.Generator) -> TenantModels:
    n, top = len(user_ids), 20
    cats = np.stack([rng.choice(len(CATEGORIES), top, replace=False) for _ in range(n)])
    scores = np.sort(rng.uniform(0, 1, (n, top)), axis=1)[:, ::-1]
    interests = InterestScorer(CATEGORIES, {u: i for i, u in enumerate(user_ids)},
                               np.arange(0, (n + 1) * top, top, dtype=np.int64),
                               cats.ravel().astype(np.int32),
                               scores.ravel().astype(np.float32), {CATEGORIES[0]: 0.2})
    profiles = rng.dirichlet(np.ones(24), n).astype(np.float32)
    send = SendTimeScorer({u: i for i, u in enumerate(user_ids)}, profiles,
                          profiles.mean(axis=0))
    return TenantModels(interests, send, "UTC", frozenset(user_ids))


def serve_gc() -> None:
    """The service's collector settings: the set-up heap frozen, a young collection
    every 50,000 net allocations."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threshold", type=float, default=0.0,
                        help="min of every condition (default 0: every condition passes, "
                             "so both configurations make the same decisions and the "
                             "ratio is the scoring alone)")
    parser.add_argument("--quick", action="store_true", help="10,000 events, 2 repetitions")
    parser.add_argument("--default-gc", action="store_true",
                        help="Python's default collector settings instead of the service's")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.reps = 10_000, 2
    rng = random.Random(args.seed)
    venue_list = make_venues(10_000, rng)
    campaigns = make_campaigns(1_000, venue_list, rng)
    profile_list = make_profiles(10_000, rng)
    events = make_events(args.events, venue_list, profile_list, rng)
    venues = {v.id: v for v in venue_list}
    profiles = {p.user_id: p for p in profile_list}
    models = make_models(sorted(profiles), np.random.default_rng(args.seed))
    conditioned = with_conditions(campaigns, args.threshold)
    needing = {c.id: c for c in learned_campaigns(conditioned)}
    policy = TenantPolicy(max_per_week=10)
    if not args.default_gc:
        serve_gc()

    def round_() -> tuple[float, float, int]:
        indexes = {"baseline": CampaignIndex(campaigns), "on": CampaignIndex(conditioned)}
        ledgers = {"baseline": InMemoryLedger(), "on": InMemoryLedger()}
        cpu = {"baseline": 0.0, "on": 0.0}
        skipped = 0
        gc.collect()
        for i, (ev, now) in enumerate(events):
            profile, venue = profiles[ev.user_id], venues[ev.venue_id]
            for name in (("baseline", "on") if i % 2 == 0 else ("on", "baseline")):
                c0 = time.process_time()
                unmet = LearnedMisses(needing, partial(models.facts, ev.user_id, now)) \
                    if name == "on" else None
                decision = decide(ev, profile, indexes[name], venue, policy, ledgers[name],
                                  now, learned_unmet=unmet)
                for entry in decision.ledger_entries():
                    ledgers[name].record(entry)
                cpu[name] += time.process_time() - c0
                skipped += name == "on" and any(
                    str(c.reason) in ("interest_below_threshold", "unlikely_to_open")
                    for c in decision.considered)
        return cpu["baseline"], cpu["on"], skipped

    round_()  # warm-up
    rounds = [round_() for _ in range(args.reps)]
    ratios = [on / base for base, on, _ in rounds]
    ratio = statistics.median(ratios)
    base, on, skipped = rounds[ratios.index(min(ratios))]
    n = len(events)
    print(f"learned conditions in decide: {n:,} events, 1,000 campaigns (500 with "
          f"audience.interests, 500 with min_open_chance, min {args.threshold}), 10,000 "
          f"users; paired; {args.reps} rounds; "
          + ("default gc" if args.default_gc else "the service's gc settings"))
    print(format_table(["configuration", "cpu s", "µs / decision", "ratio"],
                       [["baseline", base, f"{base / n * 1e6:.1f}", "1.000"],
                        ["predictions on", on, f"{on / n * 1e6:.1f}", f"{on / base:.3f}"]]))
    print(f"decisions with a learned skip: {skipped:,}; ratio per round: "
          + ", ".join(f"{r:.3f}" for r in ratios) + f"; median {ratio:.3f}")
    ok = ratio <= TARGET_RATIO
    print(format_table(["target", "measured", "result"],
                       [[f"scoring adds ≤ {TARGET_RATIO - 1:.0%} per decision",
                         f"+{ratio - 1:.1%}", "PASS" if ok else "FAIL"]]))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
