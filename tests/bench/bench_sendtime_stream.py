"""What following the stream costs the send-time model: building the followed profiles
at a look-up, and a decision's read of the chance of opening, against the trained
scorer's read measured in the same run.

A send-time model of ``--users`` users (seeded habits, three weeks of app opens, fitted
with the service's code), then ``--recent`` of them with new opens since the training:

- **build**: :func:`triggers.learning.sendtime_stream.follow` over the recent users (what
  a model look-up does once a minute per tenant when new engagement arrived), median of
  ``--reps`` builds;
- **read**: ``TenantModels.facts(user, now).open_chance`` for a stream of users (half of
  them with recent opens), the trained scorer alone (**baseline, same run**) and with the
  followed profiles, the two interleaved round by round; CPU time per read, and the
  ratio followed over baseline (median of the rounds).

Run standalone (``.venv/bin/python tests/bench/bench_sendtime_stream.py [--quick]``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench._common import force_single_thread_env

force_single_thread_env()

import numpy as np  # noqa: E402

from server.models import TenantModels  # noqa: E402
from triggers.decisions.best_time import MIN_SENDTIME_EVENTS, users_with_enough_data  # noqa: E402
from triggers.learning.coding import APP_OPEN  # noqa: E402
from triggers.learning.scoring import SendTimeScorer  # noqa: E402
from triggers.learning.sendtime import HOURS, SendTimeAccumulator, SendTimeParams, fit  # noqa: E402
from triggers.learning.sendtime_stream import follow  # noqa: E402

DAY = 86_400.0
UNTIL = 1_796_083_200.0  # 2026-12-01 00:00 UTC


def _trained(users: int, rng: np.random.Generator) -> tuple[TenantModels, list[str]]:
    n = users * 21 * 2
    user = np.repeat(np.arange(users), 42)
    habit = (8 + 5 * user) % 24
    hour = np.where(rng.random(n) < 0.25, rng.integers(0, 24, n),
                    (habit + rng.choice([-1, 0, 0, 1], n)) % 24)
    ts = UNTIL - rng.integers(1, 22, n) * DAY + hour * 3600
    params = SendTimeParams()
    acc = SendTimeAccumulator(UNTIL, params)
    acc.add(user, hour, np.zeros(n, np.int64), np.full(n, APP_OPEN, np.int8), ts)
    model = fit(acc.trimmed(users), params)
    ids = [f"u{u}" for u in range(users)]
    scorer = SendTimeScorer.build(model, ids)
    enough = users_with_enough_data(ids, model.hour_counts.sum(axis=1).tolist())
    return TenantModels(sendtime=scorer, enough=enough), ids


def _reads(models: TenantModels, users: list[str], now: float) -> float:
    """CPU seconds for one open-chance read per user, as a decision does."""
    start = time.process_time()
    for user in users:
        _ = models.facts(user, now).open_chance
    return time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--recent", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="10,000 users, 2 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.recent, args.reads, args.reps = 10_000, 1_000, 50_000, 2
    rng = np.random.default_rng(11)
    trained, ids = _trained(args.users, rng)
    assert trained.sendtime is not None
    recent_ids = [ids[i] for i in rng.choice(len(ids), args.recent, replace=False)]
    recent = {u: np.bincount(rng.integers(0, HOURS, 6), minlength=HOURS).astype(np.float32)
              for u in recent_ids}
    builds = []
    for _ in range(args.reps):
        start = time.process_time()
        followed = follow(trained.sendtime, recent, trained.enough, MIN_SENDTIME_EVENTS)
        builds.append(time.process_time() - start)
    streamed = TenantModels(sendtime=trained.sendtime, enough=trained.enough,
                            followed=followed)
    half = args.reads // 2
    stream = [recent_ids[i % len(recent_ids)] if i % 2 else ids[i % len(ids)]
              for i in range(2 * half)]
    now = UNTIL + 0.5 * DAY
    ratios, base_us, followed_us = [], [], []
    for rep in range(args.reps):
        order = (trained, streamed) if rep % 2 == 0 else (streamed, trained)
        spent = {id(m): _reads(m, stream, now) for m in order}
        base, ours = spent[id(trained)], spent[id(streamed)]
        base_us.append(1e6 * base / len(stream))
        followed_us.append(1e6 * ours / len(stream))
        ratios.append(ours / base)
    print(f"users {args.users}, recent {args.recent}, reads {len(stream)} a round, "
          f"{args.reps} rounds")
    print(f"follow() build: median {1e3 * statistics.median(builds):.1f} ms "
          f"({', '.join(f'{1e3 * b:.1f}' for b in builds)})")
    print(f"open_chance read: trained {statistics.median(base_us):.3f} µs, followed "
          f"{statistics.median(followed_us):.3f} µs, ratio per round "
          f"{', '.join(f'{r:.3f}' for r in ratios)}, median {statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
