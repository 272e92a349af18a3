"""Held-out evaluation of the interest and send-time models on generated behaviour.

``python -m tests.bench.eval_learning [--dir DIR]`` writes the events of the two worlds of
tests/learning/synthetic.py (their assumptions are written there), runs the command-line
contract on each (fit until a week before the end, predict at that time) and prints
recall@5 of the next week's categories (model, recency-frequency and popularity
baselines) and hit@3 of the next week's active hours (model, global peak hours), with the
model's ratio to the better baseline. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from pathlib import Path

from tests.bench._common import SINGLE_THREAD_ENV, format_table
from tests.learning.evaluate import evaluate
from tests.learning.synthetic import DAY_S, SECOND_WORLD, START_T, World, write_csv

WORLDS = {
    "first (seed 1, 60 categories, UTC+8)": (World(users=6_000), "Asia/Shanghai"),
    "second (seed 7, 200 categories, UTC-5)": (SECOND_WORLD, "America/New_York"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("out/eval_learning"))
    args = parser.parse_args(argv)
    os.environ.update(SINGLE_THREAD_ENV)
    rows = []
    for name, (world, zone) in WORLDS.items():
        work = args.dir / name.split()[0]
        work.mkdir(parents=True, exist_ok=True)
        events = work / "events.csv"
        n = write_csv(world, str(events))
        with contextlib.redirect_stdout(io.StringIO()):
            s = evaluate(events, START_T + (world.days - 7) * DAY_S, zone, work)
        rows.append([name, n, s.interest_users, f"{s.recall_model:.4f}",
                     f"{s.recall_recency_frequency:.4f}", f"{s.recall_popularity:.4f}",
                     f"{s.interest_lift:.3f}x", s.sendtime_users, f"{s.hit_model:.4f}",
                     f"{s.hit_global_peak:.4f}", f"{s.sendtime_lift:.3f}x"])
    print(format_table(["world", "events", "users", "recall@5 model", "recency-freq",
                        "popularity", "model / best", "users", "hit@3 model", "global peak",
                        "model / peak"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
