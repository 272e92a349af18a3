"""The send-time profile between trainings: a promoted model's counts plus the user's
engagement seen since the model was trained, shrunk as the model shrinks. Pure.

A user's trained profile is the Dirichlet posterior mean of their engagement counts per
hour of the model's zone (:func:`triggers.learning.sendtime.posterior`). Between
trainings, new app opens, clicks and push opens are added to those counts and the same
posterior is taken, with the model's segments, concentration α and smoothing: what a
retraining on the same segments and α would give that user. A user who starts opening the
app at 21:00 moves toward 21:00 before the next training, and by as much as their
history allows (α and their count weigh the new opens).

:func:`follow` builds the profiles of the users with new engagement once (a vectorised
posterior over them); :class:`FollowedSendTime` then answers as
:class:`~triggers.learning.scoring.SendTimeScorer` does, with a dict lookup and a row read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from triggers.learning.coding import ENGAGEMENT_KINDS
from triggers.learning.scoring import SendTimeScorer, relative_to_best
from triggers.learning.sendtime import HOURS, posterior, top_hours

FEEDBACK_SETTLE_S = 3600.0
"""A push's opens and clicks join the stream this long after the push was created (most
are reported by then; the service reads each push once, in creation order)."""

HourCounts = npt.NDArray[np.float32]
"""(24,) engagement counts of one user by hour of the model's zone."""


def recent_counts(rows: Iterable[tuple[str, int, int]]) -> dict[str, HourCounts]:
    """(user id, kind code, hour of the model's zone) rows → each user's counts of the
    engagement kinds (:data:`~triggers.learning.coding.ENGAGEMENT_KINDS`) by hour."""
    counts: dict[str, HourCounts] = {}
    for user_id, kind, hour in rows:
        if kind in ENGAGEMENT_KINDS:
            own = counts.get(user_id)
            if own is None:
                own = counts[user_id] = np.zeros(HOURS, np.float32)
            own[hour] += 1.0
    return counts


def added(counts: Mapping[str, HourCounts],
          more: Mapping[str, HourCounts]) -> dict[str, HourCounts]:
    """Both sets of counts summed per user (new arrays; neither input changes)."""
    out = dict(counts)
    for user_id, row in more.items():
        old = out.get(user_id)
        out[user_id] = row.copy() if old is None else old + row
    return out


@dataclass(frozen=True)
class FollowedSendTime:
    """A promoted model's profiles with the users' engagement since its training added:
    ``recent`` users read their followed row, the others the model's own."""

    scorer: SendTimeScorer
    rows: dict[str, int]
    profiles: npt.NDArray[np.float32]
    chances: npt.NDArray[np.float32]
    enough: frozenset[str]
    """The model's users with enough data, and those who have reached it since."""

    def hour_profile(self, user_id: str) -> npt.NDArray[np.float32]:
        """Probability of engaging at each hour 0-23 of the model's zone (sums to 1)."""
        row = self.rows.get(user_id)
        return self.scorer.hour_profile(user_id) if row is None else self.profiles[row]

    def best_hours(self, user_id: str, k: int = 3) -> list[int]:
        """The ``k`` likeliest hours, best first (ties: the earlier hour)."""
        row = self.rows.get(user_id)
        if row is None:
            return self.scorer.best_hours(user_id, k)
        return [int(h) for h in top_hours(self.profiles[row:row + 1].astype(np.float64), k)[0]]

    def open_chance(self, user_id: str, hour: int) -> float:
        """The hour's weight relative to the user's best hour (as
        :meth:`SendTimeScorer.open_chance`)."""
        row = self.rows.get(user_id)
        if row is None:
            return self.scorer.open_chance(user_id, hour)
        return float(self.chances[row, hour])


def follow(scorer: SendTimeScorer, recent: Mapping[str, HourCounts],
           enough: frozenset[str], min_events: int) -> FollowedSendTime:
    """The scorer's profiles followed by ``recent`` counts (see the module docstring);
    a user reaches ``enough`` with ``min_events`` trained and recent events together."""
    model = scorer.model
    if model is None:
        raise ValueError("the scorer was built without its model")
    users = sorted(recent)
    counts = np.zeros((len(users), HOURS))
    for i, user_id in enumerate(users):
        trained = scorer.rows.get(user_id)
        if trained is not None:
            counts[i] = model.hour_counts[trained]
        counts[i] += recent[user_id]
    profiles = posterior(model.segments, counts, model.concentration,
                         model.smoothing).astype(np.float32)
    reached = {u for u, n in zip(users, counts.sum(axis=1).tolist(), strict=True)
               if n >= min_events}
    return FollowedSendTime(scorer, {u: i for i, u in enumerate(users)}, profiles,
                            relative_to_best(profiles), enough | reached)
