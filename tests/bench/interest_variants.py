"""Variants of the interest fit, judged side by side on the same cutoffs.

``python -m tests.bench.interest_variants (--log FORMAT:PATH[,PATH...] | --only WORLD)
[--judge-days D] [--until T[..LAST] [--step-days N]] --variant NAME[:FIELD=VALUE,...] ...``

Each ``--variant`` is the shipped fit with some :class:`~triggers.learning.interests.InterestParams`
fields changed (``shipped``, or ``more_leaves:num_leaves=63,min_data_in_leaf=100``). At each
cutoff the events are read as ``geopush interests fit --until`` reads them (once for
every variant that aggregates alike), each variant is fitted with
:func:`~triggers.learning.interests.fit` (held-out check and promotion included) and
ranks the judged users as ``interests predict`` does, and the judged period is scored as
``tests.bench.eval_learning`` scores it (:class:`tests.learning.evaluate.JudgedInterests`):
the ``shipped`` variant's recall@5 is the one that harness prints. Printed: each
variant's recall@5, its ratio to the better baseline and its fit's CPU seconds, a row a
cutoff and a row pooling the users judged after all of them.

It is what the "tried and not kept" rows of BENCHMARKS.md need to be repeatable: a
variant that only changes parameters is one option, not a scratch script. Worlds and
logs are chosen as in ``tests.bench.eval_learning`` (same options). Not collected by
pytest.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from server.cli import learning_common as common
from server.cli.events_csv import EventChunk
from tests.bench._common import SINGLE_THREAD_ENV, format_table
from tests.bench.eval_learning import WORLDS, Judged, add_selection, log_cutoffs
from tests.learning.evaluate import JudgedInterests, judged_events
from triggers.learning import interests
from triggers.learning.coding import window_period_d

ACCUMULATOR_FIELDS = ("period_d", "min_cutoffs", "max_cutoffs", "max_train_users",
                      "user_periods")
"""Fields that change what the pass over the events gathers (the others only training)."""


@dataclass(frozen=True)
class Variant:
    name: str
    changes: dict[str, Any]
    """Field of ``InterestParams`` → its value (an int or a float, as the field is)."""

    @classmethod
    def parse(cls, text: str) -> Variant:
        """``NAME`` or ``NAME:FIELD=VALUE,...`` with fields of ``InterestParams``."""
        name, _, given = text.partition(":")
        fields = {f.name: f.type for f in dataclasses.fields(interests.InterestParams)}
        changes: dict[str, Any] = {}
        for item in filter(None, given.split(",")):
            key, eq, value = item.partition("=")
            if key not in fields or not eq:
                raise SystemExit(f"--variant {text}: {item!r} is not FIELD=VALUE with a field "
                                 f"of InterestParams ({', '.join(fields)})")
            try:
                changes[key] = int(value) if fields[key] == "int" else float(value)
            except ValueError:
                raise SystemExit(f"--variant {text}: {key} takes a number, not {value!r}") \
                    from None
        if not name:
            raise SystemExit(f"--variant {text}: a name first")
        return cls(name, changes)

    def params(self, period_d: float) -> interests.InterestParams:
        return dataclasses.replace(interests.InterestParams(period_d=period_d),
                                   **self.changes)


@dataclass(frozen=True)
class Judgement:
    """One cutoff's (or a pool's) figures: the baselines at the half-lives the first
    variant's fit tuned, each variant's recall@5 and its fit's CPU seconds."""

    users: int
    recency_frequency: float
    popularity: float
    recalls: dict[str, float]
    cpu_s: dict[str, float]


def judge(events: Path, judged: Judged, variants: list[Variant]) -> Judgement:
    """Every variant fitted until ``judged.until_t`` and scored on the period after it."""
    with contextlib.redirect_stderr(io.StringIO()):
        seen = common.first_pass(str(events), str(judged.until_t))
    period_d = window_period_d(seen.first_t, seen.until_t)
    params = {v.name: v.params(period_d) for v in variants}
    gathered: dict[tuple[object, ...], interests.InterestAccumulator] = {}
    for p in params.values():
        key = tuple(getattr(p, f) for f in ACCUMULATOR_FIELDS)
        if key not in gathered:
            gathered[key] = interests.accumulator(seen.first_t, seen.until_t,
                                                  len(seen.users), p)

    def add(chunk: EventChunk) -> None:
        for acc in gathered.values():
            acc.add(chunk.user, chunk.category, chunk.kind, chunk.ts)

    with contextlib.redirect_stderr(io.StringIO()):
        common.second_pass(str(events), seen, add)
    after = judged_events(events, judged.until_t, judged.judged_d)
    recalls, cpu_s, baselines = {}, {}, (np.nan, np.nan)
    truth: JudgedInterests | None = None
    for v in variants:
        p = params[v.name]
        acc = gathered[tuple(getattr(p, f) for f in ACCUMULATOR_FIELDS)]
        start = time.process_time()
        model = interests.fit(acc, seen.categories.ids, p)
        cpu_s[v.name] = time.process_time() - start
        truth = truth or JudgedInterests.of(after, model, seen.users.ids)
        order = np.argsort(truth.index)
        ranked = np.empty((len(truth.index), 5), dtype=np.int64)
        ranked[order] = interests.rank(model, truth.index[order], judged.until_t, 5)[0]
        recalls[v.name] = truth.recall(ranked)
        if v is variants[0]:
            baselines = truth.baseline_recalls(model)
    return Judgement(len(truth.user_ids) if truth else 0, *baselines, recalls, cpu_s)


def pooled(judgements: list[Judgement]) -> Judgement:
    """Every judged user of every cutoff as one period (user-weighted means)."""
    n = sum(j.users for j in judgements)

    def mean(values: list[float]) -> float:
        return sum(v * j.users for v, j in zip(values, judgements, strict=True)) / max(n, 1)

    names = list(judgements[0].recalls)
    return Judgement(n, mean([j.recency_frequency for j in judgements]),
                     mean([j.popularity for j in judgements]),
                     {k: mean([j.recalls[k] for j in judgements]) for k in names},
                     {k: sum(j.cpu_s[k] for j in judgements) for k in names})


def _row(name: str, j: Judgement) -> list[object]:
    better = max(j.recency_frequency, j.popularity)
    cells: list[object] = [name, j.users, f"{j.recency_frequency:.4f}", f"{j.popularity:.4f}"]
    for k, r in j.recalls.items():
        cells += [f"{r:.4f}", f"{r / better:.3f}x", f"{j.cpu_s[k]:.1f}"]
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", type=Variant.parse, required=True,
                        metavar="NAME[:FIELD=VALUE,...]")
    parser.add_argument("--dir", type=Path, default=Path("out/interest_variants"))
    add_selection(parser)
    args = parser.parse_args(argv)
    if (args.log is None) == (args.only is None):
        parser.error("one of --log and --only")
    names = [v.name for v in args.variant]
    if len(set(names)) < len(names):
        parser.error("--variant: each name once")
    os.environ.update(SINGLE_THREAD_ENV)
    if args.log is None:
        cutoffs = {k: j for k, j in WORLDS.items() if k.startswith(args.only)}
    else:
        cutoffs = log_cutoffs(args)
    args.dir.mkdir(parents=True, exist_ok=True)
    events = args.dir / "log" / "events.csv" if args.log else args.dir / "events.csv"
    headers = ["cutoff", "users", "recency-freq", "popularity"] + [
        f"{n} {c}" for n in names for c in ("recall@5", "/ best", "cpu s")]
    rows, judgements = [], []
    for name, judged in cutoffs.items():
        if args.log is None:
            judged.write(str(events))
        j = judge(events, judged, args.variant)
        judgements.append(j)
        rows.append(_row(name, j))
        if len(cutoffs) > 1:  # a long run shows each cutoff as it is judged
            print(format_table(headers, rows[-1:]), flush=True)
    if len(judgements) > 1:
        rows.append(_row(f"pooled ({len(judgements)} cutoffs)", pooled(judgements)))
    print(format_table(headers, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
