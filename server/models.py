"""Learned models, served: training per tenant from its stored behaviour events, visits
and push feedback, the offline evaluation against the baselines, versions and promotion,
and the promoted models held in memory as cheap scorers for the decision path.

- :func:`train_tenant`: reads the tenant's behaviour events, visits to tagged venues and
  opened or clicked pushes (:func:`read_training_data`, pages of :data:`PAGE_EVENTS`),
  fits the interest and send-time models (in a worker thread: the fit is CPU work)
  exactly as ``geopush interests|sendtime fit`` does, and stores each as a new version
  with its evaluation. :func:`~triggers.learning.promotion.verdict` decides the
  promotion: a model is promoted only when its held-out figure is at least that of every
  baseline (recall@5 against category popularity and the user's decayed
  recency-frequency counts; hit@3 against the global peak hours); otherwise the previous
  promoted version stays.
- :func:`training_loop`: :func:`train_tenant` for every tenant every
  ``model_training_interval_s`` (a setting; 0, the default, keeps it off).
- :class:`ModelCache`: the promoted model of each tenant and kind as a scorer
  (:mod:`triggers.learning.scoring`), rebuilt when the promoted version changes; the
  decision path asks it for a :class:`TenantModels` view (a dict lookup and an array
  slice per user) for the campaigns with ``audience.interests`` or ``min_open_chance``,
  and to rank campaigns of equal priority by expected value
  (:mod:`triggers.decisions.ranking`); the interest scorer also holds each held score's
  top contributing features (:mod:`triggers.learning.explain`) for the reason lines. At
  each look-up the send-time model takes in the engagement stored since its training
  (:mod:`server.models_stream`).

A stored model's blob is the model file the command line writes, so ``geopush
interests|sendtime predict`` reads an exported blob as is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import functools
import logging
import os
import tempfile
from bisect import bisect_left
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import numpy as np

from server.cli import interests as interests_file
from server.cli import sendtime as sendtime_file
from server.models_stream import SendTimeStreams
from server.store.roles.models import (
    MODEL_KINDS,
    ModelKind,
    ModelRecord,
    ModelStore,
    TrainingCursor,
    TrainingEvent,
    TrainingSignal,
)
from triggers.decisions.best_time import (
    SendTimeProfiles,
    users_with_enough_data,
)
from triggers.learning import interests, sendtime
from triggers.learning.coding import Vocabulary, kind_codes
from triggers.learning.promotion import verdict
from triggers.learning.scoring import InterestScorer, SendTimeScorer
from triggers.learning.sendtime_stream import FollowedSendTime

log = logging.getLogger("geopush.models")
_T = TypeVar("_T")

PAGE_EVENTS = 20_000
@dataclass(frozen=True)
class TrainingData:
    """A tenant's engagements as coded arrays (see :mod:`triggers.learning.coding`): its
    behaviour events, its visits to tagged venues (kind ``visit``, one row per tag) and
    its opened or clicked pushes (kinds ``open`` and ``click``, one row per category of
    the campaign, one row without a category when it has none)."""

    users: Vocabulary
    categories: Vocabulary
    user: np.ndarray[Any, np.dtype[np.int64]]
    category: np.ndarray[Any, np.dtype[np.int64]]
    kind: np.ndarray[Any, np.dtype[np.int8]]
    ts: np.ndarray[Any, np.dtype[np.float64]]
    timed: np.ndarray[Any, np.dtype[np.bool_]] | None = None
    """The rows the send-time profile counts: each engagement once, however many
    categories it is spread over (``None``: every row)."""

    @property
    def first_t(self) -> float:
        return float(self.ts.min()) if len(self.ts) else 0.0


@dataclass(frozen=True)
class Fitted:
    """One fit's model file and its offline evaluation."""

    blob: bytes
    evaluation: dict[str, Any]


Fitter = Callable[[TrainingData, float], Fitted]
_Columns = tuple[Any, ...]
_Page = Callable[..., Awaitable[Sequence[tuple[TrainingCursor, Any]]]]


async def read_training_data(store: ModelStore, tenant_id: str,
                             page: int = PAGE_EVENTS) -> TrainingData:
    """Every stored engagement of the tenant, ids numbered: its behaviour events, then
    its visits, then its push feedback, each source read a page at a time in its own
    (time, key) order (the fits take rows in any order)."""
    users, categories = Vocabulary(), Vocabulary()
    parts: list[_Columns] = []
    async for events in _pages(store.training_events, tenant_id, page):
        parts.append(_event_columns(events, users, categories))
    for source in (store.training_visits, store.training_feedback):
        async for signals in _pages(source, tenant_id, page):
            parts.append(_signal_columns(signals, users, categories))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return TrainingData(users, categories, empty, empty, np.zeros(0, np.int8),
                            np.zeros(0, np.float64), np.zeros(0, bool))
    user, category, kind, ts, timed = (np.concatenate(c) for c in zip(*parts, strict=True))
    return TrainingData(users, categories, user, category, kind, ts, timed)


async def _pages(read: _Page, tenant_id: str, page: int) -> AsyncIterator[list[Any]]:
    """The rows of one training source, a page at a time, each page after the last."""
    after: TrainingCursor | None = None
    while True:
        rows = await read(tenant_id, after=after, limit=page)
        if not rows:
            return
        yield [row for _cursor, row in rows]
        after = rows[-1][0]
        if len(rows) < page:
            return


def _event_columns(events: Sequence[TrainingEvent], users: Vocabulary,
                   categories: Vocabulary) -> _Columns:
    return (users.index([e.user_id for e in events]),
            categories.index([e.category for e in events]),
            kind_codes([e.kind for e in events]),
            np.array([e.ts for e in events], dtype=np.float64),
            np.ones(len(events), dtype=bool))


def _signal_columns(signals: Sequence[TrainingSignal], users: Vocabulary,
                    categories: Vocabulary) -> _Columns:
    """One row per category of each signal (one without a category for none); only the
    first row of a signal is timed."""
    rows = [(s, c, i == 0) for s in signals
            for i, c in enumerate(s.categories or (None,))]
    return (users.index([s.user_id for s, _c, _first in rows]),
            categories.index([c for _s, c, _first in rows]),
            kind_codes([s.kind for s, _c, _first in rows]),
            np.array([s.ts for s, _c, _first in rows], dtype=np.float64),
            np.array([first for _s, _c, first in rows], dtype=bool))


def fit_interests(data: TrainingData, now: float) -> Fitted:
    """``geopush interests fit`` on the tenant's events until ``now``; with no event of
    a category there is nothing to rank, and no model (an empty blob, never promoted)."""
    if not (data.category >= 0).any():
        return Fitted(b"", {"note": "no event with an item category"})
    params = interests.InterestParams()
    acc = interests.accumulator(data.first_t, now, len(data.users), params)
    acc.add(data.user, data.category, data.kind, data.ts)
    model = interests.fit(acc, data.categories.ids, params)
    return Fitted(_file_bytes(lambda p: interests_file.save(p, model, data.users.ids)),
                  dict(model.evaluation))


def fit_sendtime(data: TrainingData, now: float, zone: str = "UTC") -> Fitted:
    """``geopush sendtime fit`` on the tenant's events until ``now``, hours in ``zone``."""
    params = sendtime.SendTimeParams()
    acc = sendtime.SendTimeAccumulator(now, params)
    timed = np.ones(len(data.ts), dtype=bool) if data.timed is None else data.timed
    if timed.any():
        ts = data.ts[timed]
        hour, weekday = sendtime_file.local_hour_weekday(ts, zone)
        acc.add(data.user[timed], hour, weekday, data.kind[timed], ts)
    model = sendtime.fit(acc.trimmed(len(data.users)), params)
    blob = _file_bytes(lambda p: sendtime_file.save(p, model, data.users.ids, zone, now))
    return Fitted(blob, {**model.evaluation, "timezone": zone, "until_t": now})


FITTERS: dict[ModelKind, Fitter] = {"interests": fit_interests, "sendtime": fit_sendtime}


async def train_tenant(store: ModelStore, tenant_id: str, now: float, *,
                       kinds: Sequence[ModelKind] = MODEL_KINDS,
                       fitters: dict[ModelKind, Fitter] | None = None) -> list[ModelRecord]:
    """One training run: every kind fitted on the tenant's events, evaluated, stored as a
    new version (promoted or not, by :func:`verdict`). Returns the new versions."""
    chosen = fitters or FITTERS
    data = await read_training_data(store, tenant_id)
    done: list[ModelRecord] = []
    for kind in kinds:
        fitted = await asyncio.to_thread(chosen[kind], data, now)
        promote, why = verdict(kind, fitted.evaluation)
        evaluation = {**fitted.evaluation, "events": len(data.ts), "users": len(data.users),
                      "promoted": promote, "verdict": why}
        done.append(await store.add_model(tenant_id, kind, fitted.blob, evaluation,
                                          promote=promote))
    return done


async def training_loop(store: ModelStore, clock: Callable[[], float], interval_s: float,
                        on_trained: Callable[[str], Awaitable[None]] | None = None) -> None:
    """Train every tenant every ``interval_s`` seconds; a tenant that fails is logged and
    retried at the next round, the others still train."""
    while True:
        await asyncio.sleep(interval_s)
        for tenant in await store.list_tenants():
            try:
                await train_tenant(store, tenant.tenant_id, clock())
            except Exception:
                log.exception("training tenant %s failed", tenant.tenant_id)
                continue
            if on_trained is not None:
                await on_trained(tenant.tenant_id)


REFRESH_S = 60.0
"""How often the decision path looks for a newly promoted version (one listing, no blob)."""


@dataclass(frozen=True)
class TenantModels:
    """One tenant's promoted models as scorers: what the decision path reads."""

    interests: InterestScorer | None = None
    sendtime: SendTimeScorer | None = None
    zone: str = "UTC"
    """The zone of the send-time model's hours."""
    enough: frozenset[str] = frozenset()
    """Users with enough engagement events for ``best_time``
    (:data:`triggers.decisions.best_time.MIN_SENDTIME_EVENTS`)."""
    followed: FollowedSendTime | None = None
    """The send-time model with the engagement stored since its training added
    (:mod:`server.models_stream`): read in its place when set."""

    def local_profile(self, user_id: str, tz: str, at: float) -> list[float] | None:
        """The user's send-time profile by local hour of ``tz`` (the model's hours
        shifted by the zones' offsets at ``at``, to the whole hour)."""
        if self.followed is not None:
            return SendTimeProfiles(self.followed, self.followed.enough,
                                    self.zone).local_profile(user_id, tz, at)
        if self.sendtime is None:
            return None
        return SendTimeProfiles(self.sendtime, self.enough, self.zone).local_profile(
            user_id, tz, at)

    def facts(self, user_id: str, now: float) -> _UserPredictions:
        """The user's predicted interests and chance of opening at ``now``, each looked
        up when read."""
        return _UserPredictions(self, user_id, now)


_UNREAD = -1
"""``_UserPredictions``' row before the user is looked up (a held row is 0 or more)."""


class _UserPredictions:
    """One user's predictions at one time, each read when asked: an interest is one
    score read from the scorer's arrays, the chance of opening is computed once (a
    float); neither allocates an object the cyclic collector counts. The user's row in
    the interest scorer is looked up at the first read and kept for the others (a
    decision reads one to a few scores, explanations and a base rate)."""

    __slots__ = ("_at", "_chance", "_models", "_row", "_said", "_said_of", "_scorer", "_user")

    def __init__(self, models: TenantModels, user_id: str, at: float) -> None:
        self._models, self._user, self._at = models, user_id, at
        self._scorer = models.interests
        self._row: int | None = _UNREAD
        """The user's row in ``_scorer``, ``None`` for a user it does not hold."""
        self._chance: float | bool | None = False
        self._said_of: str | None = None
        self._said: str | None = None
        """The last category explained and its words: the sent line and a met
        threshold's note may both ask for the same one (one slot, not a dict)."""

    def interest(self, category: str) -> float | None:
        scorer = self._scorer
        if scorer is None:
            return None
        row = self._row
        if row == _UNREAD:
            row = self._row = scorer.rows.get(self._user)
        if row is None:
            return scorer.cold.get(category, 0.0)
        # InterestScorer.row_score's bisect, inline: the decision path reads a few scores
        # per decision (conditions, then ranking), each without score's and row_score's
        # two calls.
        index = scorer.category_ids.get(category)
        if index is None:
            return 0.0
        bounds, held = scorer.row_bounds, scorer.sorted_index
        hi = bounds[row + 1]
        at = bisect_left(held, index, bounds[row], hi)
        if at == hi or held[at] != index:
            return 0.0  # outside the user's top: below every kept score
        return scorer.sorted_scores[at]

    @property
    def open_chance(self) -> float | None:
        if self._chance is False:
            send = self._models.followed or self._models.sendtime
            self._chance = None if send is None else send.open_chance(
                self._user, _local_hour(self._models.zone, int(self._at) // 900))
        return self._chance if not isinstance(self._chance, bool) else None

    @property
    def interest_base_rate(self) -> float:
        scorer = self._scorer
        return 0.0 if scorer is None else scorer.row_base_rate(self._row_in(scorer))

    def why_interest(self, category: str) -> str | None:
        """The user's score of ``category``: its top contributing features in words."""
        scorer = self._scorer
        if scorer is None:
            return None
        if category != self._said_of:
            self._said_of = category
            self._said = scorer.row_explain(self._row_in(scorer), category)
        return self._said

    def _row_in(self, scorer: InterestScorer) -> int | None:
        """The user's row in ``scorer`` (looked up once; :meth:`interest` does the same
        inline, saving this call on the path that reads most)."""
        row = self._row
        if row == _UNREAD:
            row = self._row = scorer.rows.get(self._user)
        return row


class ModelCache:
    """The promoted models of each tenant, as scorers built once per promoted version
    (:class:`server.tenant_core.LearnedSource`)."""

    def __init__(self, store: ModelStore) -> None:
        self._store = store
        self._held: dict[str, TenantModels] = {}
        self._versions: dict[tuple[str, str], int] = {}
        self._checked: dict[str, float] = {}
        self._streams = SendTimeStreams(store)

    async def view(self, tenant_id: str, now: float) -> TenantModels:
        """The tenant's models, looked up again when the last look is over
        :data:`REFRESH_S` old."""
        checked = self._checked.get(tenant_id)
        if checked is None or not 0 <= now - checked < REFRESH_S:
            await self.refresh(tenant_id, now)
        return self._held.get(tenant_id) or TenantModels()

    async def refresh(self, tenant_id: str, now: float) -> None:
        """Load the tenant's promoted versions that differ from those held."""
        self._checked[tenant_id] = now
        promoted = {m.kind: m for m in await self._store.list_models(tenant_id) if m.promoted}
        held = self._held.get(tenant_id) or TenantModels()
        for kind, listed in promoted.items():
            if self._versions.get((tenant_id, kind)) == listed.version:
                continue
            record = await self._store.promoted_model(tenant_id, kind)
            if record is None:
                continue
            if kind == "interests":
                scorer = await asyncio.to_thread(_interest_scorer, record.blob, now)
                held = dataclasses.replace(held, interests=scorer)
            else:
                send, enough = await asyncio.to_thread(_sendtime_scorer, record.blob)
                held = dataclasses.replace(held, sendtime=send, enough=enough,
                                           zone=str(record.evaluation.get("timezone", "UTC")))
            self._versions[(tenant_id, kind)] = record.version
        self._held[tenant_id] = await self._followed(tenant_id, held, promoted.get("sendtime"),
                                                     now)

    async def _followed(self, tenant_id: str, held: TenantModels,
                        listed: ModelRecord | None, now: float) -> TenantModels:
        """``held`` with its send-time model following the stream since its training."""
        if held.sendtime is None or listed is None:
            self._streams.forget(tenant_id)
            return held
        until_t = float(listed.evaluation.get("until_t", listed.created_at))
        followed = await self._streams.follow(
            tenant_id, held.sendtime, version=listed.version, until_t=until_t,
            zone=held.zone, enough=held.enough, now=now)
        return dataclasses.replace(held, followed=followed)

    def interests(self, tenant_id: str) -> InterestScorer | None:
        return (self._held.get(tenant_id) or TenantModels()).interests

    def sendtime(self, tenant_id: str) -> SendTimeScorer | None:
        return (self._held.get(tenant_id) or TenantModels()).sendtime


def _interest_scorer(blob: bytes, now: float) -> InterestScorer:
    model, users = _from_bytes(blob, interests_file.load)
    return InterestScorer.build(model, users, now)


def _sendtime_scorer(blob: bytes) -> tuple[SendTimeScorer, frozenset[str]]:
    model, users = _from_bytes(blob, sendtime_file.load)
    enough = users_with_enough_data(users, model.hour_counts.sum(axis=1).tolist())
    return SendTimeScorer.build(model, users), enough


@functools.lru_cache(maxsize=4096)
def _local_hour(zone: str, quarter: int) -> int:
    """The hour in ``zone`` of the quarter hour ``quarter`` (epoch seconds // 900): zone
    offsets are whole quarter hours, so one lookup serves a quarter of an hour."""
    return datetime.datetime.fromtimestamp(quarter * 900, ZoneInfo(zone)).hour


def _file_bytes(write: Callable[[str], None]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="geopush-model-") as tmp:
        path = os.path.join(tmp, "model.npz")
        write(path)
        with open(path, "rb") as f:
            return f.read()


def _from_bytes(blob: bytes, load: Callable[[str], _T]) -> _T:
    with tempfile.TemporaryDirectory(prefix="geopush-model-") as tmp:
        path = os.path.join(tmp, "model.npz")
        with open(path, "wb") as f:
            f.write(blob)
        return load(path)
