"""Held-out evaluation of the interest and send-time models on generated behaviour.

``python -m tests.bench.eval_learning [--dir DIR] [--only WORLD]`` writes the events of
the two worlds of tests/learning/synthetic.py and of the missions world of
tests/learning/missions.py (their assumptions are written there), runs the command-line
contract on each (fit until a week before the end, or a day for the nine-day missions
log; predict at that time) and prints recall@5 of the judged period's categories (model,
recency-frequency and popularity baselines) and hit@3 of its active hours (model, global
peak hours), with the model's ratio to the better baseline. Not collected by pytest.

``--log FORMAT:PATH[,PATH...]`` judges a public log instead (formats and where to get
them: tests/learning/public_logs.py): it is converted to the CSV contract, fitted until
the last ``--judge-days`` whole local days of its window (stray days left out) and judged
on them; ``--user-share`` keeps a share of its users (whole histories), ``--timezone``
overrides the format's zone. For example, Taobao's nine days judged on the last:
``python -m tests.bench.eval_learning --log taobao:UserBehavior.csv --user-share 0.1``.
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
from tests.learning import missions, public_logs
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


def _public_log(args: argparse.Namespace) -> Judged:
    """The log converted (once: its ``until`` depends on the converted days), judged on
    its last ``--judge-days``."""
    fmt, _, paths = args.log.partition(":")
    if fmt not in public_logs.FORMATS or not paths:
        raise SystemExit(f"--log: FORMAT:PATH with FORMAT one of "
                         f"{', '.join(public_logs.FORMATS)}")
    zone = args.timezone or public_logs.FORMATS[fmt][1]
    work = args.dir / "log"
    work.mkdir(parents=True, exist_ok=True)
    converted = public_logs.convert(fmt, paths.split(","), work / "events.csv",
                                    args.user_share)
    until_t = public_logs.judged_until(converted, args.judge_days, zone)
    return Judged(lambda path: converted.rows, zone, until_t, float(args.judge_days))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("out/eval_learning"))
    parser.add_argument("--only", default=None, metavar="WORLD",
                        help="the world whose name starts so (first, second, third, fourth)")
    parser.add_argument("--log", default=None, metavar="FORMAT:PATH[,PATH...]",
                        help=f"a public log instead ({', '.join(public_logs.FORMATS)})")
    parser.add_argument("--judge-days", type=int, default=1)
    parser.add_argument("--timezone", default=None)
    parser.add_argument("--user-share", type=float, default=1.0)
    args = parser.parse_args(argv)
    os.environ.update(SINGLE_THREAD_ENV)
    worlds = WORLDS if args.log is None else {args.log: _public_log(args)}
    rows = []
    for name, judged in worlds.items():
        if args.only and not name.startswith(args.only):
            continue
        work = args.dir / (name.split()[0] if args.log is None else "log")
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
