"""``geopush interests fit|predict``: the interest model on exported behaviour events.

- ``fit --events EVENTS.csv --out MODEL [--until T] [--period-days D]``: learns, for each
  user and category, the probability of engaging with the category in the next period,
  and prints its held-out recall@5 against the two baselines. The period is a week when
  the file holds three weeks and a day before ``until``, else the whole days that fit
  three times (``triggers.learning.coding.window_period_d``), unless ``--period-days``
  says.
- ``predict --model MODEL --at T [--users USERS.txt] [--top K] --out PRED.csv``: writes
  ``user_id,category,score,rank`` (rank 1 = most likely); users the model has never seen
  get the popular categories. ``--at`` ages the ranker's features; when a baseline serves
  (the fit says so) it changes nothing, as every count decays by the same factor and the
  shares stay. ``--explain`` adds a last column, ``features``: the score's
  three largest feature contributions in words (``triggers.learning.explain``).
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from triggers.learning.coding import IntArray
    from triggers.learning.features import Context
    from triggers.learning.interests import InterestModel


def register(parser: argparse.ArgumentParser) -> None:
    """Define the ``interests`` arguments (imports nothing heavy: see ``__main__``)."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    fit = sub.add_parser("fit", help="learn interests from an events CSV")
    fit.add_argument("--events", required=True, metavar="EVENTS.csv",
                     help="user_id,ts,kind,item_id,category[,price,event_id]; other "
                          "columns are not read")
    fit.add_argument("--out", required=True, metavar="MODEL", help="model file to write")
    fit.add_argument("--until", default=None, metavar="T",
                     help="ignore events at or after T (ISO 8601 or epoch seconds)")
    fit.add_argument("--period-days", type=float, default=None, metavar="D",
                     help="length of the 'next period' predicted (default: 7, or the "
                          "whole days that fit three times in a shorter file)")
    fit.set_defaults(func=run_fit)
    predict = sub.add_parser("predict", help="each user's likeliest categories")
    predict.add_argument("--model", required=True, metavar="MODEL")
    predict.add_argument("--at", required=True, metavar="T",
                         help="start of the period predicted (ISO 8601 or epoch seconds; "
                              "no effect when a baseline serves)")
    predict.add_argument("--users", default=None, metavar="USERS.txt",
                         help="one user id a line (default: every user of the model)")
    predict.add_argument("--top", type=int, default=10, metavar="K",
                         help="categories per user (default: 10)")
    predict.add_argument("--out", required=True, metavar="PRED.csv")
    predict.add_argument("--explain", action="store_true",
                         help="add a 'features' column: each score's largest feature "
                              "contributions (the ranker's; empty for the baseline)")
    predict.set_defaults(func=run_predict)


def run_fit(args: argparse.Namespace) -> int:
    """``interests fit``: two passes over the file (check, then aggregate), then training."""
    from server.cli import learning_common as common  # noqa: PLC0415 - heavy imports run
    from triggers.learning import interests  # noqa: PLC0415
    from triggers.learning.coding import window_period_d  # noqa: PLC0415

    if args.period_days is not None and args.period_days <= 0:
        from server.cli.common import CliError  # noqa: PLC0415

        raise CliError("must be more than 0", field="--period-days")
    seen = common.first_pass(args.events, args.until)
    period_d = args.period_days or window_period_d(seen.first_t, seen.until_t)
    params = interests.InterestParams(period_d=period_d)
    acc = interests.accumulator(seen.first_t, seen.until_t, len(seen.users), params)
    common.second_pass(args.events, seen,
                       lambda c: acc.add(c.user, c.category, c.kind, c.ts))
    model = interests.fit(acc, seen.categories.ids, params, progress=common.say)
    save(args.out, model, seen.users.ids)
    ev = model.evaluation
    print(f"interests: {acc.events} events, {len(seen.users)} users, "
          f"{len(seen.categories)} categories, until "
          f"{dt.datetime.fromtimestamp(seen.until_t, dt.UTC):%Y-%m-%dT%H:%M:%SZ}, "
          f"period {period_d:g} days")
    serves = ("ranker promoted" if model.booster else
              f"the {model.serving.replace('_', '-')} baseline serves")
    if "model" in ev:
        print(f"held-out recall@5: model {ev['model']:.4f}, "
              f"recency-frequency {ev['recency_frequency']:.4f}, "
              f"popularity {ev['popularity']:.4f} ({ev['holdout_users']:.0f} users); "
              f"{serves}")
    else:
        print("too little history to train a ranker and judge it on held-out time (two "
              f"periods and a day, or {params.min_holdout_users} held-out users): {serves}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """``interests predict``."""
    import numpy as np  # noqa: PLC0415 - heavy imports run

    from server.cli import learning_common as common  # noqa: PLC0415
    from server.cli.events_csv import parse_time_option  # noqa: PLC0415
    from triggers.learning import interests  # noqa: PLC0415

    top = common.check_top(args.top)
    at_t = parse_time_option(args.at, "--at")
    model, model_users = load(args.model)
    user_ids, index = common.prediction_users(args.users, model_users)
    ctx = model.context()
    known = np.unique(index[index < len(model_users)])
    cats = np.full((len(index), top), -1, dtype=np.int64)
    scores = np.full((len(index), top), np.nan)
    if len(known):
        c, s = interests.rank(model, known, at_t, top, ctx)
        row = np.searchsorted(known, index)
        found = index < len(model_users)
        cats[found], scores[found] = c[row[found]], s[row[found]]
    cold = index >= len(model_users)
    if cold.any():
        c, s = interests.rank(model, np.array([len(model_users)]), at_t, top, ctx)
        cats[cold], scores[cold] = c[0], s[0]
    features = _features(model, ctx, index, cats, at_t) if args.explain else None
    rows = common.write_predictions(args.out, "category", user_ids, cats,
                                    labels=model.categories, scores=scores, features=features)
    print(f"interests: {rows} predictions for {len(user_ids)} users "
          f"({int(cold.sum())} without history) in {args.out}")
    return 0


def _features(model: InterestModel, ctx: Context, index: IntArray, cats: IntArray,
              at_t: float) -> list[list[str]]:
    """Per user and rank, the score's largest feature contributions in words ("" without
    a ranker); a user without history has the popular categories, and it says so."""
    import numpy as np  # noqa: PLC0415

    from triggers.learning.explain import explain_pairs  # noqa: PLC0415
    from triggers.learning.scoring import POPULAR_REASON  # noqa: PLC0415

    if model.booster is None:
        return [[""] * cats.shape[1] for _ in index]
    users = np.repeat(index, cats.shape[1])
    flat = cats.ravel()
    explained = explain_pairs(model.booster, ctx, users, np.maximum(flat, 0), at_t)
    said = [explained.describe(i) or POPULAR_REASON for i in range(len(flat))]
    return [said[u * cats.shape[1]:(u + 1) * cats.shape[1]] for u in range(len(index))]


def save(path: str, model: InterestModel, users: list[str]) -> None:
    """Write an interest model file (see :mod:`server.cli.model_files`)."""
    import dataclasses  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from server.cli.model_files import write_model  # noqa: PLC0415

    header = {"params": dataclasses.asdict(model.params), "until_t": model.until_t,
              "rf_half_life": model.rf_half_life, "pop_half_life": model.pop_half_life,
              "evaluation": model.evaluation}
    booster = np.frombuffer((model.booster or "").encode(), dtype=np.uint8)
    write_model(path, "interests", header,
                {"state_keys": model.state.keys, "state_values": model.state.values,
                 "booster": booster},
                {"users": users, "categories": model.categories})


def load(path: str) -> tuple[InterestModel, list[str]]:
    """Read an interest model file: the model and its user ids (index order)."""
    import lightgbm as lgb  # noqa: PLC0415

    from server.cli.model_files import (  # noqa: PLC0415
        BYTES,
        INTEGERS,
        NUMBERS,
        damaged,
        read_model,
    )
    from triggers.learning.features import FEATURES  # noqa: PLC0415
    from triggers.learning.interests import InterestModel, InterestParams  # noqa: PLC0415
    from triggers.learning.pairs import COLUMNS, PairTable  # noqa: PLC0415

    loaded = read_model(path, "interests")
    h, a = loaded.header, loaded.arrays
    with damaged(path, "interests"):
        loaded.check({"state_keys": (INTEGERS, "pairs"),
                      "state_values": (NUMBERS, "pairs", len(COLUMNS)),
                      "booster": (BYTES, "")})
        booster = a["booster"].tobytes().decode()
        state = PairTable(float(h["until_t"]), a["state_keys"], a["state_values"])
        model = InterestModel(InterestParams(**h["params"]), loaded.strings("categories"),
                              state, booster or None, int(h["rf_half_life"]),
                              int(h["pop_half_life"]), h["evaluation"])
        try:  # parsed here, once, for every ranking: a garbled ranker fails here
            ranker = model.ranker
        except lgb.basic.LightGBMError as exc:
            raise ValueError(f"its ranker does not load: {exc}") from exc
        names = ranker.feature_name() if ranker is not None else []
        if names != list(FEATURES[:len(names)]):
            raise ValueError("its ranker reads features this geopush does not compute "
                             "(fit it again)")
        return model, loaded.strings("users")
