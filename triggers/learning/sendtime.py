"""The send-time model: each user's hour-of-day and weekday engagement profile, in the
user's local time, shrunk toward the profile of the user's segment when data are thin.

Counts of engagement events (app_open, click, open) per user and local hour are the
data. Segments are a mixture of multinomials over the 24 hours, fitted by EM on the users
with enough events; a user's prior is the mixture of segment profiles weighted by how well
each explains the user's own hours (for a user with no events: the population's profile).
The profile is the Dirichlet posterior mean ``(counts + α · prior) / (n + α)`` after a
light circular smoothing of the counts over neighbouring hours; ``α`` and the smoothing are
chosen by hit@3 on the last period of the fit window (fitted on what came before), which
is also where the model is compared with the global peak hours.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from triggers.learning.baselines import global_peak_hours
from triggers.learning.coding import (
    DAY_S,
    DEFAULT_PERIOD_D,
    ENGAGEMENT_KINDS,
    FloatArray,
    IntArray,
)
from triggers.learning.metrics import hit_at_k

HOURS = 24
WEEKDAYS = 7
EVAL_K = 3
"""hit@3: one of the three chosen hours is an hour the user was active in the next period."""


@dataclass(frozen=True)
class SendTimeParams:
    """Everything that shapes a fit; recorded in the model file."""

    period_d: float = DEFAULT_PERIOD_D
    segments: int = 6
    min_events_for_segments: int = 5
    max_segment_users: int = 50_000
    em_iterations: int = 40
    concentrations: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0)
    """Candidate α: at least 1, so one event never outweighs the segment's profile."""
    smoothing: tuple[float, ...] = (0.0, 0.15, 0.3)
    seed: int = 0


class SendTimeAccumulator:
    """Per-user counts of engagement by local hour (before and inside the last period of
    the fit window) and by local weekday; feed chunks with :meth:`add`.

    ``kinds``: the kinds counted, the engagement kinds by default; ``None`` counts every
    kind, for a log that has no app opens, clicks or push opens (a shop's export of
    page views and purchases): then being active in the app is what there is to learn,
    and each hour a user was active counts once, however many pages they viewed in it
    (a visit of twelve page views is one visit, not twelve). An hour's events are
    counted once when they come in one chunk or in consecutive chunks, as they do in a
    file in time order or grouped by user."""

    def __init__(self, until_t: float, params: SendTimeParams,
                 kinds: tuple[int, ...] | None = ENGAGEMENT_KINDS) -> None:
        self.until_t = until_t
        self.kinds = kinds
        self.holdout_t = until_t - params.period_d * DAY_S
        self.early = np.zeros((0, HOURS), np.float32)
        self.late = np.zeros((0, HOURS), np.float32)
        self.weekday = np.zeros((0, WEEKDAYS), np.float32)
        self._last_hour = np.full(0, -1, np.int64)
        """Per user, the last hour (epoch hours) counted, when hours count once."""

    def add(self, user: IntArray, local_hour: IntArray, local_weekday: IntArray,
            kind: npt.NDArray[np.int8], ts: FloatArray) -> None:
        """Count one chunk; events at or after ``until`` and other kinds are ignored."""
        keep = ts < self.until_t
        if self.kinds is not None:
            keep &= np.isin(kind, self.kinds)
        user, hour, day, ts = user[keep], local_hour[keep], local_weekday[keep], ts[keep]
        if len(user):
            self._grow(int(user.max()) + 1)
        if self.kinds is None and len(user):
            user, hour, day, ts = self._first_of_each_hour(user, hour, day, ts)
        late = ts >= self.holdout_t
        np.add.at(self.early, (user[~late], hour[~late]), 1.0)
        np.add.at(self.late, (user[late], hour[late]), 1.0)
        np.add.at(self.weekday, (user, day), 1.0)

    def _first_of_each_hour(self, user: IntArray, hour: IntArray, day: IntArray,
                            ts: FloatArray) -> tuple[IntArray, IntArray, IntArray, FloatArray]:
        """One event per user and clock hour: those not counted already."""
        epoch_hour = (ts // 3600).astype(np.int64)
        order = np.lexsort((epoch_hour, user))
        u, h = user[order], epoch_hour[order]
        first = np.ones(len(u), bool)
        first[1:] = (u[1:] != u[:-1]) | (h[1:] != h[:-1])
        first &= h != self._last_hour[u]
        last = np.ones(len(u), bool)
        last[:-1] = u[1:] != u[:-1]
        self._last_hour[u[last]] = h[last]
        pick = order[first]
        return user[pick], hour[pick], day[pick], ts[pick]

    def _grow(self, users: int) -> None:
        if users <= len(self.early):
            return
        size = max(users, 2 * len(self.early))
        for name in ("early", "late", "weekday"):
            old = getattr(self, name)
            new = np.zeros((size, old.shape[1]), np.float32)
            new[:len(old)] = old
            setattr(self, name, new)
        last = np.full(size, -1, np.int64)
        last[:len(self._last_hour)] = self._last_hour
        self._last_hour = last

    def trimmed(self, users: int) -> SendTimeAccumulator:
        """The same counts for exactly ``users`` users (the vocabulary's size)."""
        self._grow(users)
        for name in ("early", "late", "weekday"):
            setattr(self, name, getattr(self, name)[:users])
        return self


@dataclass(frozen=True)
class Segments:
    """A mixture of hour profiles: ``profiles`` (S, 24) and their ``weights`` (S,)."""

    profiles: FloatArray
    weights: FloatArray

    def prior(self, counts: FloatArray) -> FloatArray:
        """Each user's prior profile: the segment profiles weighted by their posterior
        probability given the user's counts (the population's profile for no counts)."""
        log_r = np.log(self.weights)[None, :] + counts @ np.log(self.profiles).T
        log_r -= log_r.max(axis=1, keepdims=True)
        r = np.exp(log_r)
        r /= r.sum(axis=1, keepdims=True)
        return np.asarray(r @ self.profiles, dtype=np.float64)


@dataclass(frozen=True)
class SendTimeModel:
    """A fitted send-time model (counts are kept: profiles are cheap to recompute)."""

    params: SendTimeParams
    segments: Segments
    concentration: float
    smoothing: float
    hour_counts: npt.NDArray[np.float32]
    weekday_counts: npt.NDArray[np.float32]
    evaluation: dict[str, float] = field(default_factory=dict)

    def hour_profiles(self, users: IntArray) -> FloatArray:
        """(n, 24) probabilities of engaging at each local hour; an index beyond the
        model's users is a user with no events (the population's profile)."""
        counts = np.zeros((len(users), HOURS))
        known = users < len(self.hour_counts)
        counts[known] = self.hour_counts[users[known]]
        return posterior(self.segments, counts, self.concentration, self.smoothing)

    def weekday_profiles(self, users: IntArray) -> FloatArray:
        """(n, 7) probabilities by local weekday (Monday = 0), shrunk toward the
        population's weekday profile with the same α."""
        counts = np.zeros((len(users), WEEKDAYS))
        known = users < len(self.weekday_counts)
        counts[known] = self.weekday_counts[users[known]]
        total = self.weekday_counts.sum(axis=0).astype(np.float64)
        prior = (total + 1.0) / (total.sum() + WEEKDAYS)
        alpha = self.concentration
        return np.asarray((counts + alpha * prior) / (counts.sum(axis=1, keepdims=True) + alpha),
                          dtype=np.float64)


def smooth(counts: FloatArray, amount: float) -> FloatArray:
    """Moves ``amount`` of each hour's count to each neighbouring hour (circular)."""
    if amount == 0.0:
        return counts
    return np.asarray((1 - 2 * amount) * counts + amount * np.roll(counts, 1, axis=1)
                      + amount * np.roll(counts, -1, axis=1), dtype=np.float64)


def posterior(segments: Segments, counts: FloatArray, alpha: float,
              smoothing: float) -> FloatArray:
    """The Dirichlet posterior mean profile of each row of counts."""
    prior = segments.prior(counts)
    smoothed = smooth(counts, smoothing)
    return np.asarray((smoothed + alpha * prior) / (counts.sum(axis=1, keepdims=True) + alpha),
                      dtype=np.float64)


def fit_segments(counts: FloatArray, params: SendTimeParams) -> Segments:
    """EM for a mixture of multinomials over the users with enough events (a fixed-seed
    sample of at most ``max_segment_users``); deterministic."""
    rng = np.random.default_rng(params.seed)
    enough = counts[counts.sum(axis=1) >= params.min_events_for_segments].astype(np.float64)
    total = counts.sum(axis=0).astype(np.float64) + 1.0
    population = total / total.sum()
    if len(enough) < params.segments:
        return Segments(population[None, :], np.ones(1))
    if len(enough) > params.max_segment_users:
        enough = enough[rng.choice(len(enough), params.max_segment_users, replace=False)]
    shares = enough / enough.sum(axis=1, keepdims=True)
    start = rng.choice(len(enough), params.segments, replace=False)
    profiles = 0.5 * shares[start] + 0.5 * population
    weights = np.full(params.segments, 1.0 / params.segments)
    for _ in range(params.em_iterations):
        log_r = np.log(weights)[None, :] + enough @ np.log(profiles).T
        log_r -= log_r.max(axis=1, keepdims=True)
        r = np.exp(log_r)
        r /= r.sum(axis=1, keepdims=True)
        mass = r.T @ enough + 0.1
        profiles = mass / mass.sum(axis=1, keepdims=True)
        weights = (r.sum(axis=0) + 1.0) / (len(enough) + params.segments)
    return Segments(profiles, weights)


def top_hours(profiles: FloatArray, k: int) -> IntArray:
    """The ``k`` likeliest hours of each profile, best first (ties: earlier hour)."""
    return np.argsort(-profiles, axis=1, kind="stable")[:, :k].astype(np.int64)


def fit(acc: SendTimeAccumulator, params: SendTimeParams) -> SendTimeModel:
    """Tune α and the smoothing on the last period, then fit on everything."""
    early = acc.early.astype(np.float64)
    late = acc.late
    judged = np.flatnonzero(late.sum(axis=1) > 0)
    truth = [set(np.flatnonzero(late[u]).tolist()) for u in judged]
    evaluation: dict[str, float] = {"holdout_users": float(len(judged))}
    alpha, amount = params.concentrations[len(params.concentrations) // 2], 0.0
    if len(judged):
        segments = fit_segments(early, params)
        peak = np.tile(global_peak_hours(early, EVAL_K), (len(judged), 1))
        evaluation["global_peak"] = hit_at_k(peak, truth)
        scores = {(a, s): hit_at_k(top_hours(posterior(segments, early[judged], a, s), EVAL_K),
                                   truth)
                  for a in params.concentrations for s in params.smoothing}
        alpha, amount = max(scores, key=lambda key: (scores[key], key[0], -key[1]))
        evaluation["model"] = scores[(alpha, amount)]
    counts = acc.early + acc.late
    return SendTimeModel(params, fit_segments(counts.astype(np.float64), params), alpha,
                         amount, counts, acc.weekday, evaluation)
