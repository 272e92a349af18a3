"""Held-out evaluation of the interest and send-time models on generated behaviour.

``python -m tests.bench.eval_learning [--dir DIR] [--only WORLD]`` writes the events of
the two worlds of tests/learning/synthetic.py and of the missions world of
tests/learning/missions.py (their assumptions are written there), runs the command-line
contract on each (fit until a week before the end, or a day for the nine-day missions
log; predict at that time) and prints recall@5 of the judged period's categories (model,
recency-frequency and popularity baselines) and hit@3 of its active hours (model, global
peak hours), with the model's ratio to the better baseline. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.bench._common import SINGLE_THREAD_ENV, format_table
from tests.learning import missions
from tests.learning.evaluate import evaluate
from tests.learning.synthetic import DAY_S, SECOND_WORLD, START_T, World, write_csv


@dataclass(frozen=True)
class Judged:
    """A world, its users' zone, and when the fit stops and for how long it is judged."""

    write: Callable[[str], int]
    zone: str
    until_t: int
    judged_d: float


def _weekly(world: World, zone: str) -> Judged:
    return Judged(lambda path: write_csv(world, path), zone,
                  START_T + (world.days - 7) * DAY_S, 7.0)


_MISSIONS = missions.MissionWorld()
WORLDS = {
    "first (seed 1, 60 categories, UTC+8)": _weekly(World(users=6_000), "Asia/Shanghai"),
    "second (seed 7, 200 categories, UTC-5)": _weekly(SECOND_WORLD, "America/New_York"),
    "third (missions, 9 days, 1,000 categories, next day)": Judged(
        lambda path: missions.write_csv(_MISSIONS, path), "Asia/Shanghai",
        missions.START_T + (_MISSIONS.days - 1) * missions.DAY_S, 1.0),
    "fourth (missions held back, 14 days, 3,000 categories, next two days)": Judged(
        lambda path: missions.write_csv(missions.HELD_BACK_WORLD, path), "America/New_York",
        missions.START_T + (missions.HELD_BACK_WORLD.days - 2) * missions.DAY_S, 2.0),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("out/eval_learning"))
    parser.add_argument("--only", default=None, metavar="WORLD",
                        help="the world whose name starts so (first, second, third)")
    args = parser.parse_args(argv)
    os.environ.update(SINGLE_THREAD_ENV)
    rows = []
    for name, judged in WORLDS.items():
        if args.only and not name.startswith(args.only):
            continue
        work = args.dir / name.split()[0]
        work.mkdir(parents=True, exist_ok=True)
        events = work / "events.csv"
        n = judged.write(str(events))
        with contextlib.redirect_stdout(io.StringIO()):
            s = evaluate(events, judged.until_t, judged.zone, work, judged.judged_d)
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
