"""The send-time model on the simulator's virtual clock, for ``best_time`` campaigns. Pure.

A world with a ``best_time`` campaign learns its users' send times as the service does,
from events only (never from the latent traits):

- the engagement events it sees are the scenario's ``app_open``, ``click`` and ``open``
  behaviour events, and the opens and clicks the response model draws for the world's own
  pushes (an app reports them as ``open`` and ``click`` events at the push's time);
- every ``model_training_interval_s`` of virtual time from the run's start, the model is
  fitted on the events before that instant with the service's code
  (:func:`triggers.learning.sendtime.fit`, hours in UTC as the service fits them), judged
  by the service's promotion rule (:func:`triggers.learning.promotion.verdict`), and a
  promoted model replaces the one in use;
- between trainings the promoted model follows the stream as the service's does
  (:mod:`triggers.learning.sendtime_stream`): at an instant, the engagement events since
  the model's training, and the push responses since then that are at least
  :data:`~triggers.learning.sendtime_stream.FEEDBACK_SETTLE_S` old, are added to the
  trained counts;
- a slot's send time is then chosen by :func:`triggers.decisions.best_time.time_choice`,
  the service's own choice, through the followed model's
  :class:`~triggers.decisions.best_time.SendTimeProfiles`; before a model is promoted,
  every user gets the fallback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from triggers.behaviour.events import BehaviourEvent
from triggers.decisions.best_time import (
    MIN_SENDTIME_EVENTS,
    SendTimeProfiles,
    users_with_enough_data,
)
from triggers.learning import sendtime
from triggers.learning.coding import (
    CLICK,
    DAY_S,
    ENGAGEMENT_KINDS,
    OPEN,
    FloatArray,
    IntArray,
    Vocabulary,
    kind_code,
)
from triggers.learning.promotion import verdict
from triggers.learning.scoring import SendTimeScorer
from triggers.learning.sendtime_stream import FEEDBACK_SETTLE_S, follow, recent_counts

MODEL_ZONE = "UTC"
"""The zone of the model's hours: the service fits send-time models in UTC."""
_HOUR_S = 3600.0
_EPOCH_WEEKDAY = 3
"""1 January 1970 was a Thursday (Monday = 0)."""


@dataclass(frozen=True, slots=True)
class Training:
    """One training of a world's send-time model: when, on how many events, and whether
    it was promoted (the verdict in words)."""

    at: float
    events: int
    promoted: bool
    verdict: str


@dataclass
class SendTimeLearner:
    """One world's send-time model, trained on the virtual clock (see the module
    docstring). Feed it with :meth:`observe_events` and :meth:`observe_feedback`; ask
    :meth:`view_at` for the model in use at an instant."""

    interval_s: float
    next_training_at: float
    params: sendtime.SendTimeParams = field(default_factory=sendtime.SendTimeParams)
    users: Vocabulary = field(default_factory=Vocabulary)
    trainings: list[Training] = field(default_factory=list)
    _user: list[int] = field(default_factory=list)
    _ts: list[float] = field(default_factory=list)
    _kind: list[int] = field(default_factory=list)
    _response: list[bool] = field(default_factory=list)
    _promoted: tuple[float, SendTimeScorer, frozenset[str]] | None = None
    """The promoted model: its training instant, profiles and users with enough data."""
    _view: tuple[float, SendTimeProfiles] | None = None
    """The last view asked for, and its instant."""

    def observe_events(self, events: Iterable[BehaviourEvent]) -> None:
        """Keep the engagement events among ``events`` (a training counts only those
        before its instant, so the scenario's whole list may be given at once)."""
        for event in events:
            code = kind_code(event.kind)
            if code in ENGAGEMENT_KINDS:
                self._add(event.user_id, event.ts, code, response=False)

    def observe_feedback(self, user_id: str, at: float, *, opened: bool,
                         clicked: bool) -> None:
        """A push at ``at`` drew this response: an ``open`` event when it was opened, and
        a ``click`` event as well when it was clicked."""
        if opened:
            self._add(user_id, at, OPEN, response=True)
        if clicked:
            self._add(user_id, at, CLICK, response=True)

    def view_at(self, now: float) -> SendTimeProfiles | None:
        """The promoted model at ``now``, followed by the stream since its training
        (``None``: none promoted yet), after the trainings due up to ``now``, each at its
        own instant."""
        while self.next_training_at <= now:
            self._train(self.next_training_at)
            self.next_training_at += self.interval_s
        if self._promoted is None:
            return None
        if self._view is None or self._view[0] != now:
            self._view = (now, self._followed(now, *self._promoted))
        return self._view[1]

    def _add(self, user_id: str, ts: float, kind: int, *, response: bool) -> None:
        self._user.append(int(self.users.index([user_id])[0]))
        self._ts.append(ts)
        self._kind.append(kind)
        self._response.append(response)

    def _followed(self, now: float, trained_at: float, scorer: SendTimeScorer,
                  enough: frozenset[str]) -> SendTimeProfiles:
        """The promoted profiles with what the service's stream would hold at ``now``:
        engagement events from the training on, push responses settled by ``now``."""
        ts = np.asarray(self._ts, dtype=np.float64)
        response = np.asarray(self._response, dtype=bool)
        since = (ts >= trained_at) & np.where(response, ts < now - FEEDBACK_SETTLE_S, ts < now)
        picked = np.flatnonzero(since)
        if len(picked) == 0:
            return SendTimeProfiles(scorer, enough, MODEL_ZONE)
        hour, _ = utc_hour_weekday(ts[picked])
        ids = self.users.ids
        counts = recent_counts(zip([ids[self._user[i]] for i in picked],
                                   [self._kind[i] for i in picked], hour.tolist(),
                                   strict=True))
        followed = follow(scorer, counts, enough, MIN_SENDTIME_EVENTS)
        return SendTimeProfiles(followed, followed.enough, MODEL_ZONE)

    def _train(self, at: float) -> None:
        ts = np.asarray(self._ts, dtype=np.float64)
        acc = sendtime.SendTimeAccumulator(at, self.params)
        if len(ts):
            hour, weekday = utc_hour_weekday(ts)
            acc.add(np.asarray(self._user, dtype=np.int64), hour, weekday,
                    np.asarray(self._kind, dtype=np.int8), ts)
        model = sendtime.fit(acc.trimmed(len(self.users)), self.params)
        promoted, why = verdict("sendtime", model.evaluation)
        self.trainings.append(Training(at, int((ts < at).sum()), promoted, why))
        if promoted:
            ids = list(self.users.ids)
            self._promoted = (at, SendTimeScorer.build(model, ids), users_with_enough_data(
                ids, model.hour_counts.sum(axis=1).tolist()))
            self._view = None


def utc_hour_weekday(ts: FloatArray) -> tuple[IntArray, IntArray]:
    """UTC hour (0-23) and weekday (Monday = 0) of epoch seconds."""
    whole = np.floor(ts)
    hour = ((whole // _HOUR_S) % 24).astype(np.int64)
    weekday = ((whole // DAY_S + _EPOCH_WEEKDAY) % 7).astype(np.int64)
    return hour, weekday
