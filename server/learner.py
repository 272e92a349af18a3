"""Profile learning in the background: when a user's visit ends, their profile learns
from their visit history (:mod:`triggers.decisions.learning`: first_seen, last_active,
scene tags, usual next stops).

It runs after the batch that ended the visit committed, off the request's path: the
profile is derived data (recomputed whole from the stored events each time), so a
learning step that is lost (a crash, a failing store) is made good by the user's next
finished visit, and a batch never waits for it. A JSON merge patch changes the learned
fields only, so an API update of other fields meanwhile is kept; a user with no profile
gets one (if the API creates it in the same instant, the later write wins).

Users queue per process, each at most once at a time, and at most :data:`MAX_QUEUED` of
them; a user beyond is dropped with a log line (and learns at their next visit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from server.outages import FailureLog
from server.store.errors import NotFoundError, StoreError
from server.store.roles import CatalogSource, ProfileStore
from server.tenant_core import CoreBuildError, TenantCores
from triggers.decisions import Profile
from triggers.decisions.learning import HISTORY_EVENTS, learn_profile, visits_from_events
from triggers.presence_events import EventKind, PresenceEvent

log = logging.getLogger("geopush.learner")

MAX_QUEUED = 10_000


class LearnerStore(ProfileStore, CatalogSource, Protocol):
    """Profiles and event history to learn from, and the catalogue the venues come from."""


class ProfileLearner:
    """The per-process learning queue and its worker (see the module docstring)."""

    def __init__(self, store: LearnerStore, cores: TenantCores, clock: Callable[[], float]) -> None:
        self._store = store
        self._cores = cores
        self._clock = clock
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(MAX_QUEUED)
        self._queued: set[tuple[str, str]] = set()
        self._worker: asyncio.Task[None] | None = None
        self.learned = 0
        """Profiles changed so far (for tests and metrics)."""
        self._failures = FailureLog(log, "learner")

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="geopush-learner")

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    def visits_ended(self, tenant_id: str, user_ids: Iterable[str]) -> None:
        """Queue the users (whose visits just ended, committed) for learning."""
        for user_id in user_ids:
            key = (tenant_id, user_id)
            if key in self._queued:
                continue
            try:
                self._queue.put_nowait(key)
            except asyncio.QueueFull:
                log.warning("learner queue full; %s of tenant %s learns next time",
                            user_id, tenant_id)
                return
            self._queued.add(key)

    async def drain(self) -> None:
        """Wait until every queued user has been learned (tests)."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            tenant_id, user_id = await self._queue.get()
            self._queued.discard((tenant_id, user_id))
            try:
                if await self.learn(tenant_id, user_id):
                    self.learned += 1
            except (StoreError, CoreBuildError) as exc:
                # The user learns at the next visit; logged once while the store fails.
                self._failures.failed("learning profiles", exc)
            except Exception:  # the loop must not die of one user
                log.exception("learning the profile of %s (tenant %s) failed", user_id, tenant_id)
            else:
                self._failures.succeeded("learning profiles")
            finally:
                self._queue.task_done()

    async def learn(self, tenant_id: str, user_id: str) -> bool:
        """Learn one user's profile now; True when it changed."""
        core = await self._cores.get(self._store, tenant_id)
        records = await self._store.list_events(tenant_id, user_id, limit=HISTORY_EVENTS)
        visits = visits_from_events((r.event for r in records), core.venues)
        if not visits:
            return False
        profile = await self._store.get_profile(tenant_id, user_id)
        base = profile or Profile(user_id=user_id)
        last_venue = core.venues.get(visits[-1].venue_id)
        tz = (base.attributes.timezone or (last_venue.timezone if last_venue else None)
              or core.policy.default_timezone)
        learned = learn_profile(base, visits, core.venues, now=self._clock(), tz=tz)
        if profile is not None and learned is profile:
            return False
        patch = learned.model_dump(mode="json", include={
            "first_seen", "last_active", "scene_tags", "next_stops"})
        if profile is None:
            await self._store.put_profile(tenant_id, learned)
            return True
        try:
            await self._store.patch_profile(tenant_id, user_id, patch)
        except NotFoundError:  # erased in the meantime: nothing to learn into
            return False
        return True


def ended_visits(events: Iterable[PresenceEvent]) -> list[str]:
    """Users with an EXIT among ``events``, sorted, once each."""
    return sorted({e.user_id for e in events if e.kind is EventKind.EXIT})
