"""Held-out evaluation of the interest and send-time models on generated behaviour.

``python -m tests.bench.eval_learning [--dir DIR] [--only WORLD]`` writes the events of
the two worlds of tests/learning/synthetic.py, the two missions worlds of
tests/learning/missions.py and the two life-stage worlds of tests/learning/lifestages.py
(their assumptions are written there), runs the command-line contract on each (fit until
a week before the end, or a day or two for the short missions logs; predict at that
time) and prints recall@5 of the judged period's categories (model,
recency-frequency and popularity baselines) and hit@3 of its active hours (model, global
peak hours), with the model's ratio to the better baseline. Not collected by pytest.

``--log FORMAT:PATH[,PATH...]`` judges a public log instead (formats and where to get
them: tests/learning/public_logs.py): it is converted to the CSV contract, fitted until
the last ``--judge-days`` whole local days of its window (stray days left out), or until
``--until T`` (or each cutoff of ``--until T..LAST``, every ``--step-days``, with a row
pooling the users judged after all of them), and judged on the days that follow;
``--user-share`` keeps a share of its users (whole histories), ``--timezone`` overrides
the format's zone. For example, Taobao's nine days judged on the last:
``python -m tests.bench.eval_learning --log taobao:UserBehavior.csv --user-share 0.1``;
MovieLens 1M judged on the week after each of 32 cutoffs a month apart:
``--log movielens:ratings.dat,movies.dat --judge-days 7 --until 2000-07-01..2003-02-01
--step-days 30``; the Complete Journey's groceries judged on the week after each of 7
cutoffs four weeks apart: ``--log completejourney:transactions.parquet,products.parquet
--judge-days 7 --until 2017-06-05..2017-12-04 --step-days 28``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from server.cli.events_csv import parse_times
from tests.bench._common import SINGLE_THREAD_ENV, format_table
from tests.learning import lifestages, missions, public_logs
from tests.learning.evaluate import Scores, evaluate
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


def _stages(world: lifestages.LifeStageWorld, zone: str) -> Judged:
    return Judged(lambda path: lifestages.write_csv(world, path), zone,
                  lifestages.START_T + (world.days - 7) * DAY_S, 7.0)


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
    "fifth (life stages, 16 weeks, 12 tracks, UTC+8)": _stages(lifestages.LifeStageWorld(),
                                                              "Asia/Shanghai"),
    "sixth (life stages held back, 12 weeks, 30 tracks, UTC-5)": _stages(
        lifestages.HELD_BACK_LIFE_STAGES, "America/New_York"),
}


def log_cutoffs(args: argparse.Namespace) -> dict[str, Judged]:
    """The log converted (once: its ``until`` depends on the converted days), judged on
    its last ``--judge-days``, or after each cutoff of ``--until``."""
    fmt, _, paths = args.log.partition(":")
    if fmt not in public_logs.FORMATS or not paths:
        raise SystemExit(f"--log: FORMAT:PATH with FORMAT one of "
                         f"{', '.join(public_logs.FORMATS)}")
    zone = args.timezone or public_logs.FORMATS[fmt][1]
    work = args.dir / "log"
    work.mkdir(parents=True, exist_ok=True)
    converted = public_logs.convert(fmt, paths.split(","), work / "events.csv",
                                    args.user_share)
    if args.until is None:
        cutoffs = [public_logs.judged_until(converted, args.judge_days, zone)]
    else:
        first, _, last = args.until.partition("..")
        start, end = (int(t) for t in parse_times(pd.Series([first, last or first])))
        step = (args.step_days or args.judge_days) * DAY_S
        cutoffs = list(range(start, end + 1, step))
    return {f"{fmt} until {dt.datetime.fromtimestamp(t, dt.UTC):%Y-%m-%dT%H:%MZ}":
            Judged(lambda path: converted.rows, zone, t, float(args.judge_days))
            for t in cutoffs}


def add_selection(parser: argparse.ArgumentParser) -> None:
    """The options that choose what is judged: a generated world, or a public log and its
    cutoffs (:func:`log_cutoffs`)."""
    parser.add_argument("--only", default=None, metavar="WORLD",
                        help="the world whose name starts so (first, ..., sixth)")
    parser.add_argument("--log", default=None, metavar="FORMAT:PATH[,PATH...]",
                        help=f"a public log instead ({', '.join(public_logs.FORMATS)})")
    parser.add_argument("--judge-days", type=int, default=1)
    parser.add_argument("--until", default=None, metavar="T[..LAST]",
                        help="with --log: fit until T (ISO 8601 or epoch seconds) and judge "
                             "the days after it; with ..LAST, every --step-days up to LAST, "
                             "pooled (default: the log's last --judge-days)")
    parser.add_argument("--step-days", type=int, default=None,
                        help="days between cutoffs of --until T..LAST (default: --judge-days)")
    parser.add_argument("--timezone", default=None)
    parser.add_argument("--user-share", type=float, default=1.0)


def pooled(scores: list[Scores]) -> Scores:
    """Several judged periods as one: each metric averaged over all the users judged."""
    n_i = sum(s.interest_users for s in scores)
    n_s = sum(s.sendtime_users for s in scores)

    def mean(metric: str, users: str, n: int) -> float:
        return float(sum(getattr(s, metric) * getattr(s, users) for s in scores)) / max(n, 1)

    return Scores(n_i, mean("recall_model", "interest_users", n_i),
                  mean("recall_recency_frequency", "interest_users", n_i),
                  mean("recall_popularity", "interest_users", n_i),
                  n_s, mean("hit_model", "sendtime_users", n_s),
                  mean("hit_global_peak", "sendtime_users", n_s))


def _row(name: str, events: int | str, s: Scores) -> list[object]:
    return [name, events, s.interest_users, f"{s.recall_model:.4f}",
            f"{s.recall_recency_frequency:.4f}", f"{s.recall_popularity:.4f}",
            f"{s.interest_lift:.3f}x", s.sendtime_users, f"{s.hit_model:.4f}",
            f"{s.hit_global_peak:.4f}", f"{s.sendtime_lift:.3f}x"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("out/eval_learning"))
    add_selection(parser)
    args = parser.parse_args(argv)
    os.environ.update(SINGLE_THREAD_ENV)
    worlds = WORLDS if args.log is None else log_cutoffs(args)
    rows, judged_logs = [], []
    for name, judged in worlds.items():
        if args.only and not name.startswith(args.only):
            continue
        work = args.dir / (name.split()[0] if args.log is None else "log")
        work.mkdir(parents=True, exist_ok=True)
        events = work / "events.csv"
        n = judged.write(str(events))
        with contextlib.redirect_stdout(io.StringIO()):
            s = evaluate(events, judged.until_t, judged.zone, work, judged.judged_d)
        rows.append(_row(name, n, s))
        judged_logs.append(s)
    if args.log is not None and len(judged_logs) > 1:
        rows.append(_row(f"pooled ({len(judged_logs)} cutoffs)", "", pooled(judged_logs)))
    print(format_table(["world", "events", "users", "recall@5 model", "recency-freq",
                        "popularity", "model / best", "users", "hit@3 model", "global peak",
                        "model / peak"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
