"""Held-out evaluation of the learning commands through their command-line contract.

Fit on the events before ``until``, predict at ``until``, and judge on what users did in
the following period: recall@5 of the categories they engaged with (model against the
popularity and recency-frequency baselines, with the half-lives the fit tuned), and
hit@3 of the hours they were active in (model against the global peak hours).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from server.cli.__main__ import main
from server.cli.events_csv import parse_times
from server.cli.interests import load as load_interests
from server.cli.sendtime import load as load_sendtime
from server.cli.sendtime import local_hour_weekday
from triggers.learning.baselines import (
    global_peak_hours,
    popularity_ranking,
    recency_frequency_ranking,
)
from triggers.learning.coding import ENGAGEMENT_KINDS, kind_codes
from triggers.learning.interests import InterestModel
from triggers.learning.metrics import hit_at_k, recall_at_k

DAY_S = 86_400


@dataclass(frozen=True)
class Scores:
    interest_users: int
    recall_model: float
    recall_recency_frequency: float
    recall_popularity: float
    sendtime_users: int
    hit_model: float
    hit_global_peak: float

    @property
    def interest_lift(self) -> float:
        return self.recall_model / max(self.recall_recency_frequency, self.recall_popularity)

    @property
    def sendtime_lift(self) -> float:
        return self.hit_model / self.hit_global_peak


def evaluate(events_csv: Path, until_t: int, timezone: str, work: Path,
             period_d: float = 7.0) -> Scores:
    """Runs the four commands as the contract gives them (no options beyond it: the fit
    chooses its own period) and scores their predictions on the next ``period_d`` days."""
    im, ip = work / "interests.npz", work / "interests.csv"
    sm, sp = work / "sendtime.npz", work / "sendtime.csv"
    _ok(["interests", "fit", "--events", str(events_csv), "--out", str(im),
         "--until", str(until_t)])
    _ok(["interests", "predict", "--model", str(im), "--at", str(until_t), "--top", "5",
         "--out", str(ip)])
    _ok(["sendtime", "fit", "--events", str(events_csv), "--out", str(sm),
         "--until", str(until_t), "--timezone", timezone])
    _ok(["sendtime", "predict", "--model", str(sm), "--top", "3", "--out", str(sp)])
    after = judged_events(events_csv, until_t, period_d)
    r_model, r_rf, r_pop, n_i = _interest_scores(after, im, ip)
    h_model, h_peak, n_s = _sendtime_scores(after, sm, sp, timezone)
    return Scores(n_i, r_model, r_rf, r_pop, n_s, h_model, h_peak)


def judged_events(events_csv: Path, until_t: int, period_d: float) -> pd.DataFrame:
    """The events of the judged period, ``ts`` as epoch seconds (the file is read a
    chunk at a time, so a public log of any size can be judged)."""
    parts = []
    for chunk in pd.read_csv(events_csv, dtype=str, keep_default_na=False,
                             usecols=["user_id", "ts", "kind", "category"],
                             chunksize=1_000_000):
        ts = parse_times(chunk.ts)
        keep = (ts >= until_t) & (ts < until_t + period_d * DAY_S)
        parts.append(chunk[keep].assign(ts=ts[keep]))
    return pd.concat(parts, ignore_index=True)


def _ok(argv: list[str]) -> None:
    status = main(argv)
    if status != 0:
        raise RuntimeError(f"geopush {' '.join(argv)} exited {status}")


def _predicted(path: Path, column: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["user_id"], []).append(row[column])
    return out


def _interest_scores(after: pd.DataFrame, model_path: Path,
                     pred_path: Path) -> tuple[float, float, float, int]:
    model, users = load_interests(str(model_path))
    judged = JudgedInterests.of(after, model, users)
    cat_index = {c: i for i, c in enumerate(model.categories)}
    predicted = _predicted(pred_path, "category")
    ranked = np.array([[cat_index[c] for c in predicted[u][:5]] + [-1] * (5 - len(predicted[u]))
                       for u in judged.user_ids], dtype=np.int64).reshape(len(judged.user_ids), 5)
    rf, pop = judged.baseline_recalls(model)
    return recall_at_k(ranked, judged.truth), rf, pop, len(judged.user_ids)


@dataclass(frozen=True)
class JudgedInterests:
    """The users judged on a period's categories: those the model numbers (every user of
    the fitted file) with a category in the period, their index in the model's users
    and the categories they engaged with (one the model never saw can only be missed)."""

    user_ids: list[str]
    index: npt.NDArray[np.int64]
    truth: list[set[int]]

    @classmethod
    def of(cls, after: pd.DataFrame, model: InterestModel,
           users: list[str]) -> JudgedInterests:
        cat_index = {c: i for i, c in enumerate(model.categories)}
        truth_by_user = after[after.category != ""].groupby("user_id").category.agg(set)
        user_index = {u: i for i, u in enumerate(users)}
        judged = [u for u in truth_by_user.index if u in user_index]
        truth = [{cat_index.get(c, -2 - k) for k, c in enumerate(truth_by_user[u])}
                 for u in judged]
        return cls(judged, np.array([user_index[u] for u in judged], dtype=np.int64), truth)

    def recall(self, ranked: npt.NDArray[np.int64]) -> float:
        """Recall@5 of ``ranked`` (a row per judged user, in :attr:`user_ids` order)."""
        return recall_at_k(ranked, self.truth)

    def baseline_recalls(self, model: InterestModel) -> tuple[float, float]:
        """Recall@5 of recency-frequency and of popularity, at the half-lives the fit
        tuned."""
        ctx = model.context()
        order = np.argsort(self.index)
        rf = np.empty((len(self.index), 5), dtype=np.int64)
        rf[order] = recency_frequency_ranking(ctx, self.index[order], 5, model.rf_half_life)[0]
        pop = popularity_ranking(ctx, self.index, 5, model.pop_half_life)[0]
        return self.recall(rf), self.recall(pop)


def _sendtime_scores(after: pd.DataFrame, model_path: Path, pred_path: Path,
                     timezone: str) -> tuple[float, float, int]:
    model, _ = load_sendtime(str(model_path))
    engaged = after[np.isin(kind_codes(after.kind.tolist()), ENGAGEMENT_KINDS)]
    if engaged.empty:  # a log without app opens: active hours are those with any event
        engaged = after
    hours, _ = local_hour_weekday(engaged.ts.to_numpy(dtype=float), timezone)
    truth_by_user = pd.Series(np.asarray(hours), index=engaged.user_id.to_numpy()).groupby(
        level=0).agg(set)
    predicted = _predicted(pred_path, "hour")
    judged = [u for u in truth_by_user.index if u in predicted]
    truth = [set(truth_by_user[u]) for u in judged]
    ranked = np.array([[int(h) for h in predicted[u][:3]] for u in judged], dtype=np.int64)
    peak = np.tile(global_peak_hours(model.hour_counts.astype(float), 3), (len(judged), 1))
    return hit_at_k(ranked, truth), hit_at_k(peak, truth), len(judged)
