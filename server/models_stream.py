"""The promoted send-time model followed in the stream between trainings.

Per tenant, :class:`SendTimeStreams` counts the engagement stored since the promoted
send-time model was trained (its ``until_t``): app opens and clicks from the behaviour
events, and the opens and clicks of pushes (their feedback times). Each
:meth:`SendTimeStreams.follow` reads only what is new since the last one (a cursor per
source, in the training readers' order) and returns the model's profiles with those
counts added (:func:`triggers.learning.sendtime_stream.follow`, in a worker thread, only
when something new came); the decision path reads that view. A new promoted version
starts the counts again from its own ``until_t``.

Approximations, all made good by the next training: a behaviour event stored with a
time before the events cursor is not counted; a push joins the stream
:data:`FEEDBACK_SETTLE_S` after it was created (most opens are reported by then), and a
report later than that waits for the next training.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np

from server.cli import sendtime as sendtime_file
from server.store.roles.models import ModelStore, TrainingCursor
from triggers.decisions.best_time import MIN_SENDTIME_EVENTS
from triggers.learning.coding import kind_codes
from triggers.learning.scoring import SendTimeScorer
from triggers.learning.sendtime_stream import (
    FEEDBACK_SETTLE_S,
    FollowedSendTime,
    HourCounts,
    added,
    follow,
    recent_counts,
)

PAGE_ROWS = 20_000


@dataclass
class _Stream:
    """What one tenant's stream has counted so far, for one promoted version."""

    version: int
    until_t: float
    events_after: TrainingCursor
    feedback_after: TrainingCursor
    counts: dict[str, HourCounts] = field(default_factory=dict)
    followed: FollowedSendTime | None = None


class SendTimeStreams:
    """The per-tenant streams of one process (see the module docstring)."""

    def __init__(self, store: ModelStore, page: int = PAGE_ROWS) -> None:
        self._store = store
        self._page = page
        self._streams: dict[str, _Stream] = {}

    async def follow(self, tenant_id: str, scorer: SendTimeScorer, *, version: int,
                     until_t: float, zone: str, enough: frozenset[str],
                     now: float) -> FollowedSendTime | None:
        """The promoted ``version`` (trained until ``until_t``, hours in ``zone``) with
        the engagement stored since; ``None`` while there is none."""
        stream = self._streams.get(tenant_id)
        if stream is None or stream.version != version:
            stream = self._streams[tenant_id] = _Stream(
                version, until_t, (until_t, ""), (until_t - FEEDBACK_SETTLE_S, ""))
        new = await self._new_rows(tenant_id, stream, now)
        if new:
            hours = sendtime_file.local_hour_weekday(
                np.array([ts for _u, _k, ts in new], dtype=np.float64), zone)[0]
            codes = kind_codes([k for _u, k, _ts in new])
            stream.counts = added(stream.counts, recent_counts(zip(
                [u for u, _k, _ts in new], codes.tolist(), hours.tolist(), strict=True)))
            if stream.counts:  # a posterior per user with new engagement: CPU work
                stream.followed = await asyncio.to_thread(
                    follow, scorer, stream.counts, enough, MIN_SENDTIME_EVENTS)
        return stream.followed

    def forget(self, tenant_id: str) -> None:
        """Drop the tenant's stream (its model is no longer served)."""
        self._streams.pop(tenant_id, None)

    async def _new_rows(self, tenant_id: str, stream: _Stream,
                        now: float) -> list[tuple[str, str, float]]:
        """(user id, kind, time) of the engagement stored since the last call; the
        cursors move past what was read."""
        rows: list[tuple[str, str, float]] = []
        while True:
            events = await self._store.training_events(
                tenant_id, after=stream.events_after, limit=self._page)
            rows += [(e.user_id, e.kind, e.ts) for _c, e in events]
            if events:
                stream.events_after = events[-1][0]
            if len(events) < self._page:
                break
        settled_before = now - FEEDBACK_SETTLE_S
        while True:
            feedback = await self._store.training_feedback(
                tenant_id, after=stream.feedback_after, limit=self._page)
            settled = [(c, s) for c, s in feedback if c[0] < settled_before]
            rows += [(s.user_id, s.kind, s.ts) for _c, s in settled if s.ts >= stream.until_t]
            if settled:
                stream.feedback_after = settled[-1][0]
            if len(settled) < self._page:
                break
        return rows
