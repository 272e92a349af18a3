"""``geopush sendtime fit|predict``: each user's best local hours to receive a push.

- ``fit --events EVENTS.csv --out MODEL [--until T] [--timezone ZONE]``: counts each user's
  app_open, click and open events by local hour and weekday (``ZONE``: an IANA time zone,
  default UTC; a file with none of those kinds counts every event), fits the segments
  and the shrinkage, and prints the held-out hit@3 against the global peak hours (the
  held-out period: a week, or the whole days that fit three times in a shorter file).
- ``predict --model MODEL [--users USERS.txt] [--top K] --out PRED.csv``: writes
  ``user_id,hour,score,rank`` (local hour 0-23, score the probability of engaging in that
  hour); users without events get the population's profile.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from triggers.learning.sendtime import SendTimeModel


def register(parser: argparse.ArgumentParser) -> None:
    """Define the ``sendtime`` arguments (imports nothing heavy: see ``__main__``)."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    fit = sub.add_parser("fit", help="learn hour profiles from an events CSV")
    fit.add_argument("--events", required=True, metavar="EVENTS.csv",
                     help="user_id,ts,kind,item_id,category[,price,event_id]; other "
                          "columns are not read")
    fit.add_argument("--out", required=True, metavar="MODEL", help="model file to write")
    fit.add_argument("--until", default=None, metavar="T",
                     help="ignore events at or after T (ISO 8601 or epoch seconds)")
    fit.add_argument("--timezone", default="UTC", metavar="ZONE",
                     help="IANA time zone of the users' local hours (default: UTC)")
    fit.set_defaults(func=run_fit)
    predict = sub.add_parser("predict", help="each user's best local hours")
    predict.add_argument("--model", required=True, metavar="MODEL")
    predict.add_argument("--users", default=None, metavar="USERS.txt",
                         help="one user id a line (default: every user of the model)")
    predict.add_argument("--top", type=int, default=24, metavar="K",
                         help="hours per user (default: 24, the whole profile)")
    predict.add_argument("--out", required=True, metavar="PRED.csv")
    predict.set_defaults(func=run_predict)
    from server.cli import sendtime_preview  # noqa: PLC0415 - its own module, light

    sendtime_preview.register(sub)


def run_fit(args: argparse.Namespace) -> int:
    """``sendtime fit``: check the file, count local hours, fit."""
    from server.cli import learning_common as common  # noqa: PLC0415 - heavy imports run
    from server.cli.events_csv import EventChunk  # noqa: PLC0415
    from triggers.learning import sendtime  # noqa: PLC0415
    from triggers.learning.coding import ENGAGEMENT_KINDS, window_period_d  # noqa: PLC0415

    zone = _zone(args.timezone)
    seen = common.first_pass(args.events, args.until)
    params = sendtime.SendTimeParams(period_d=window_period_d(seen.first_t, seen.until_t))
    every_kind = seen.engagement_before_until == 0
    acc = sendtime.SendTimeAccumulator(seen.until_t, params,
                                       None if every_kind else ENGAGEMENT_KINDS)

    def add(chunk: EventChunk) -> None:
        hour, weekday = local_hour_weekday(chunk.ts, zone)
        acc.add(chunk.user, hour, weekday, chunk.kind, chunk.ts)

    common.second_pass(args.events, seen, add)
    model = sendtime.fit(acc.trimmed(len(seen.users)), params)
    save(args.out, model, seen.users.ids, args.timezone, seen.until_t)
    ev = model.evaluation
    counted = "events (no app_open, click or open: every kind counts)" if every_kind \
        else "engagement events"
    print(f"sendtime: {len(seen.users)} users, {int(model.hour_counts.sum())} {counted}, "
          f"time zone {args.timezone}, α {model.concentration:g}, "
          f"smoothing {model.smoothing:g}, held-out period {params.period_d:g} days")
    if "model" in ev:
        print(f"held-out hit@3: model {ev['model']:.4f}, global peak hours "
              f"{ev['global_peak']:.4f} ({ev['holdout_users']:.0f} users)")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """``sendtime predict``."""
    import numpy as np  # noqa: PLC0415 - heavy imports run

    from server.cli import learning_common as common  # noqa: PLC0415
    from triggers.learning.sendtime import HOURS  # noqa: PLC0415

    top = min(common.check_top(args.top), HOURS)
    model, model_users = load(args.model)
    user_ids, index = common.prediction_users(args.users, model_users)
    hours = np.empty((len(index), top), dtype=np.int64)
    scores = np.empty((len(index), top))
    batch = 50_000
    for lo in range(0, len(index), batch):
        profiles = model.hour_profiles(index[lo:lo + batch])
        order = np.argsort(-profiles, axis=1, kind="stable")[:, :top]
        hours[lo:lo + batch] = order
        scores[lo:lo + batch] = np.take_along_axis(profiles, order, axis=1)
    rows = common.write_predictions(args.out, "hour", user_ids, hours, labels=None,
                                    scores=scores)
    cold = int((index >= len(model_users)).sum())
    print(f"sendtime: {rows} predictions for {len(user_ids)} users ({cold} without events) "
          f"in {args.out}")
    return 0


def _zone(name: str) -> str:
    import zoneinfo  # noqa: PLC0415

    from server.cli.common import CliError  # noqa: PLC0415

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise CliError(f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai)",
                       field="--timezone") from exc
    return name


def local_hour_weekday(ts: npt.NDArray[np.float64],
                       zone: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Local hour (0-23) and weekday (Monday = 0) of epoch seconds in ``zone``."""
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    local = pd.to_datetime(np.asarray(ts), unit="s", utc=True).tz_convert(zone)
    return (np.asarray(local.hour, dtype=np.int64), np.asarray(local.day_of_week, dtype=np.int64))


def save(path: str, model: SendTimeModel, users: list[str], zone: str, until_t: float) -> None:
    """Write a send-time model file (see :mod:`server.cli.model_files`)."""
    import dataclasses  # noqa: PLC0415

    from server.cli.model_files import write_model  # noqa: PLC0415

    header = {"params": dataclasses.asdict(model.params), "timezone": zone, "until_t": until_t,
              "concentration": model.concentration, "smoothing": model.smoothing,
              "evaluation": model.evaluation}
    write_model(path, "sendtime", header,
                {"segment_profiles": model.segments.profiles,
                 "segment_weights": model.segments.weights,
                 "hour_counts": model.hour_counts, "weekday_counts": model.weekday_counts},
                {"users": users})


def load(path: str) -> tuple[SendTimeModel, list[str]]:
    """Read a send-time model file: the model and its user ids (index order)."""
    from server.cli.model_files import FINITE, damaged, read_model  # noqa: PLC0415
    from triggers.learning.sendtime import (  # noqa: PLC0415
        HOURS,
        Segments,
        SendTimeModel,
        SendTimeParams,
    )

    loaded = read_model(path, "sendtime")
    h, a = loaded.header, loaded.arrays
    with damaged(path, "sendtime"):
        loaded.check({"segment_profiles": (FINITE, "segments", HOURS),
                      "segment_weights": (FINITE, "segments"),
                      "hour_counts": (FINITE, "users", HOURS),
                      "weekday_counts": (FINITE, "users", 7)})
        users = loaded.strings("users")
        if len(users) != len(a["hour_counts"]):
            raise ValueError(f"{len(users)} user ids for {len(a['hour_counts'])} users")
        params = dict(h["params"])
        params["concentrations"] = tuple(params["concentrations"])
        params["smoothing"] = tuple(params["smoothing"])
        model = SendTimeModel(SendTimeParams(**params),
                              Segments(a["segment_profiles"], a["segment_weights"]),
                              float(h["concentration"]), float(h["smoothing"]),
                              a["hour_counts"], a["weekday_counts"], h["evaluation"])
        return model, users
