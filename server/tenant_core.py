"""Per-tenant compiled cores: the immutable indexes a batch runs against.

A :class:`TenantCore` is built from one :class:`~server.store.base.Catalog` read and
never changes: the geofence index of the enabled venues, venues by id, the campaign
index, the tenant policy, the presence policy (with every campaign's own dwell
threshold added to the venues it selects) and the ledger horizon.

:class:`TenantCores` caches one core per tenant by ``catalog_version``. A batch asks
for the core (one cheap version read); when the version moved, the core is rebuilt
off the event loop (``asyncio.to_thread``; the geofence index, which takes seconds for
thousands of venues and holds the GIL for much of it, in a venue worker process when
the server has them: ``index_builder``) and swapped in with a single reference
assignment, so a batch always works on one whole core, old or new,
never a mix. While a rebuild runs, batches keep using the old core (the service waits
at most ``rebuild_wait_s`` for the new one): a venue or campaign change does not pause
ingestion. The request that made the change waits for it (:meth:`TenantCores.refresh`),
so its client's next request on this node sees the change. One rebuild per tenant is
in flight at a time: changes made while it runs are compiled together by the next one
(however many requests wait for them).

Venue changes reach open visits through the pipeline: every batch reconciles the
loaded users against the current index (``triggers.presence.reconcile_venues``), so
a venue deleted or disabled ends its visits with ``venue_removed`` at the users'
next batch or next due timer, whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

import shapely

from geo.fence import Fence
from geo.index import GeofenceIndex
from server.outages import FailureLog, is_unavailable
from server.store.base import Catalog
from server.store.roles import CatalogSource
from server.venue_builds import VenueWorkersError
from triggers.decisions import (
    Campaign,
    CampaignIndex,
    CampaignStatus,
    EventKind,
    RenderLimits,
    TenantPolicy,
    history_horizon_s,
    selector_matches,
)
from triggers.decisions.predicted import (
    NO_FACTS,
    LearnedMisses,
    LearnedTerms,
    UserFacts,
    learned_conditions,
)
from triggers.decisions.ranking import MissesAndRanking, Ranker
from triggers.decisions.records import Reason
from triggers.errors import TriggerError
from triggers.learning.signals import Signals
from triggers.presence_policy import PresencePolicy
from venues.model import Venue

log = logging.getLogger("geopush.core")


class CoreBuildError(Exception):
    """A tenant's catalogue cannot be compiled (bad presence settings, duplicate
    campaign ids); the previous core, if any, stays in use."""


@dataclass(frozen=True, slots=True)
class TenantCore:
    """Everything a batch of one tenant reads; immutable, shared by concurrent batches."""

    tenant_id: str
    catalog_version: int
    index: GeofenceIndex
    """Enabled venues only: a disabled venue neither starts nor keeps visits."""
    venues: Mapping[str, Venue]
    """Every venue by id, enabled or not (a decision needs the venue of an EXIT)."""
    campaigns: CampaignIndex
    policy: TenantPolicy
    presence: PresencePolicy
    ledger_horizon_s: float
    """How far back the ledger rows a decision needs reach (``history_horizon_s``)."""
    campaign_records: tuple[Campaign, ...] = ()
    """The catalogue's campaigns ``campaigns`` was built from."""
    vertices: int = 0
    """Positions of the indexed outlines (a circle counts one): the size of a rebuild,
    charged to the tenant's venue-write budget (``server.venue_budget``)."""
    learns_per_user: bool = False
    """A campaign with ``channel_choice: auto`` or the policy's ``learned_caps``: batches
    load the deciding users' recent pushes and opens (``server.arm_stats``)."""


IndexBuilder = Callable[[Sequence[Fence], float], GeofenceIndex]
"""Builds a geofence index from fences and ``halo_m``, blocking the calling thread:
``GeofenceIndex.build`` here, or a venue worker process
(:meth:`server.venue_builds.VenueWorkers.build_index`)."""


def _build_here(fences: Sequence[Fence], halo_m: float) -> GeofenceIndex:
    return GeofenceIndex.build(fences, halo_m=halo_m)


def build_core(
    catalog: Catalog,
    *,
    render_limits: RenderLimits | None = None,
    render_clock: Callable[[], float] | None = None,
    index_builder: IndexBuilder = _build_here,
    previous: TenantCore | None = None,
) -> TenantCore:
    """Compile ``catalog``. CPU-bound (the geofence index): call it off the loop.

    ``render_limits`` / ``render_clock`` bound the campaigns' template renders (see
    :class:`~triggers.decisions.CampaignIndex`); ``index_builder`` builds the geofence
    index (in this thread by default). ``previous``: the tenant's core in use, whose
    campaign index is kept when the campaigns did not change (a venue or policy change):
    its content engine keeps what it learnt, the compiled templates and the renders that
    spent their budget, so a venue re-sent every second does not give a hostile template
    a fresh budget every second.
    Raises :class:`CoreBuildError` when the catalogue cannot be compiled.
    """
    try:
        settings: dict[str, Any] = dict(catalog.policy.presence)
        presence = PresencePolicy(**settings)
    except (TypeError, TriggerError) as exc:
        raise CoreBuildError(f"tenant {catalog.tenant_id}: presence policy: {exc}") from exc
    enabled = [v for v in catalog.venues if v.enabled]
    presence = presence.with_venues(
        ((v.id, v.dwell_s) for v in enabled), _campaign_dwell_thresholds(catalog, enabled)
    )
    if previous is not None and previous.campaign_records == catalog.campaigns:
        campaigns = previous.campaigns
    else:
        try:
            campaigns = CampaignIndex(catalog.campaigns, render_limits=render_limits,
                                      render_clock=render_clock)
        except ValueError as exc:
            raise CoreBuildError(f"tenant {catalog.tenant_id}: {exc}") from exc
    # The index must answer every near_m the engine asks: the widest exit margin, or the
    # accuracy of the least accurate ping still used for transitions.
    halo_m = max(presence.max_accuracy_m, presence.widest_exit_margin_m())
    index = index_builder([v.fence() for v in enabled], halo_m)
    learns_per_user = catalog.policy.policy.learned_caps or any(
        c.channel_choice == "auto" for c in catalog.campaigns)
    return TenantCore(
        learns_per_user=learns_per_user,
        tenant_id=catalog.tenant_id,
        catalog_version=catalog.version,
        index=index,
        venues=MappingProxyType({v.id: v for v in catalog.venues}),
        campaigns=campaigns,
        policy=catalog.policy.policy,
        presence=presence,
        ledger_horizon_s=history_horizon_s(catalog.policy.policy, catalog.campaigns),
        campaign_records=catalog.campaigns,
        vertices=_vertices(enabled),
    )


def _vertices(venues: Sequence[Venue]) -> int:
    shapes = [v.shape for v in venues if v.shape is not None]
    circles = len(venues) - len(shapes)
    return circles + (int(shapely.get_num_coordinates(shapes).sum()) if shapes else 0)


def _campaign_dwell_thresholds(
    catalog: Catalog, venues: list[Venue]
) -> dict[str, tuple[int, ...]]:
    """Venue id → the dwell thresholds of the active DWELL campaigns selecting it, so
    the engine fires a DWELL at each (a campaign asking 600 s at a 300 s venue)."""
    wanted: dict[str, set[int]] = {}
    for campaign in catalog.campaigns:
        trigger = campaign.trigger
        if (campaign.status is not CampaignStatus.ACTIVE or trigger.event is not EventKind.DWELL
                or trigger.dwell_s is None):
            continue
        # Rounded up: the campaign matches a DWELL whose dwell_s is at least its own.
        threshold = math.ceil(trigger.dwell_s)
        for venue in venues:
            if selector_matches(campaign.venues, venue):
                wanted.setdefault(venue.id, set()).add(threshold)
    return {vid: tuple(sorted(t)) for vid, t in wanted.items()}


class LearnedView(Protocol):
    """What a tenant's promoted models predict for a user at a time (a snapshot)."""

    def facts(self, user_id: str, now: float) -> UserFacts:
        """The user's predictions at ``now``: made for every decision with learned
        conditions, so it should read nothing until a check asks."""
        ...

    def local_profile(self, user_id: str, tz: str, at: float) -> Sequence[float] | None:
        """The user's engagement at each local hour 0-23 of ``tz`` around ``at``, or
        ``None`` without a send-time model or enough of the user's data."""
        ...


class LearnedSource(Protocol):
    """Where the decision path finds the promoted models (``server.models.ModelCache``)."""

    async def view(self, tenant_id: str, now: float) -> LearnedView: ...


Learned = tuple[Mapping[str, LearnedTerms], "LearnedView | None"]
"""The tenant's campaigns with conditions on learned predictions (id → those conditions,
flat: :class:`~triggers.decisions.predicted.LearnedTerms`), and the promoted
models' view (``None``: no campaign needs it — none has learned conditions or
``categories`` to be ranked by — or the service holds no models)."""
NO_LEARNED: Learned = (MappingProxyType({}), None)


async def learned_for(cores: TenantCores, core: TenantCore, now: float) -> Learned:
    """What a round of decisions needs of the learned models: read before the round's
    transaction (the view may load a newly promoted model)."""
    campaigns = learned_conditions(core.campaigns.campaigns)
    ranked = any(c.categories for c in core.campaigns.campaigns)
    if not (campaigns or ranked) or cores.learned is None:
        return campaigns, None
    return campaigns, await cores.learned.view(core.tenant_id, now)


def learned_unmet_of(learned: Learned, user_id: str,
                     now: float) -> Mapping[str, tuple[Reason, str]] | None:
    """``decide``'s ``learned_unmet`` for one user (``None`` when no campaign asks),
    computed for the campaigns ``decide`` asks about only."""
    campaigns, view = learned
    if not campaigns:
        return None
    if view is None:
        return LearnedMisses(campaigns, NO_FACTS)
    return LearnedMisses(campaigns, view.facts(user_id, now))


def predictions_of(learned: Learned, user_id: str, now: float) -> tuple[
        Mapping[str, tuple[Reason, str]] | None, Ranker | None]:
    """``decide``'s ``learned_unmet`` and ``ranking`` for one user of a location event,
    reading one view of the user's predictions (it looks each up only when asked)."""
    campaigns, view = learned
    if view is None:
        return learned_unmet_of(learned, user_id, now), None
    facts = view.facts(user_id, now)
    both = MissesAndRanking(campaigns, facts)
    return (both if campaigns else None), both


class TenantCores:
    """The per-tenant core cache of one process. Runs in the event loop.

    ``rebuild_wait_s``: how long :meth:`get` waits for a rebuild when an older core of
    the tenant exists, before answering with that older core (``None``: until the
    rebuild is done, the behaviour a single-threaded caller such as a test or a tool
    wants). ``render_limits`` / ``render_clock`` / ``index_builder`` go to every
    :func:`build_core`.
    """

    def __init__(
        self,
        *,
        rebuild_wait_s: float | None = None,
        render_limits: RenderLimits | None = None,
        render_clock: Callable[[], float] | None = None,
        index_builder: IndexBuilder = _build_here,
    ) -> None:
        self._cores: dict[str, TenantCore] = {}
        self._builds: dict[str, asyncio.Task[TenantCore]] = {}
        self._outages = FailureLog(log, "core rebuild")
        """A rebuild that cannot read the catalogue (the database is down) is one line
        when the first fails and one when a rebuild of that tenant works again."""
        self._failed: dict[str, int] = {}
        """Tenant → the catalogue version that did not compile: not retried until it moves."""
        self._wait_s = rebuild_wait_s
        self._render_limits = render_limits
        self._render_clock = render_clock
        self._index_builder = index_builder
        self.builds = 0
        """Cores compiled so far (successive changes coalesce into fewer builds)."""
        self.learned: LearnedSource | None = None
        """The promoted models, when the service holds them: campaigns with conditions
        on learned predictions read them (without, those conditions see no model)."""
        self._signals: dict[str, Signals] = {}
        """Tenant → the feedback counts its decisions read (``server.arm_stats``)."""

    def tenant_ids(self) -> list[str]:
        """The tenants with a core in this process."""
        return sorted(self._cores)

    def signals(self, tenant_id: str) -> Signals | None:
        """The tenant's feedback counts for the learning options, if any were loaded."""
        return self._signals.get(tenant_id)

    def set_signals(self, tenant_id: str, signals: Signals | None) -> None:
        """Swap in the tenant's feedback counts (one reference assignment, as for cores)."""
        if signals is None:
            self._signals.pop(tenant_id, None)
        else:
            self._signals[tenant_id] = signals

    def cached(self, tenant_id: str) -> TenantCore | None:
        """The core in use for the tenant, without checking its version."""
        return self._cores.get(tenant_id)

    async def get(self, store: CatalogSource, tenant_id: str) -> TenantCore:
        """The tenant's core: the one of its current catalogue version, or, while that
        is being rebuilt, the older one (after waiting up to ``rebuild_wait_s``).

        Concurrent callers of one tenant share one rebuild, which goes on in the
        background when they stop waiting. Raises ``NotFoundError`` for an unknown
        tenant and :class:`CoreBuildError` when the catalogue does not compile and no
        older core exists to keep serving.
        """
        version = await store.catalog_version(tenant_id)
        core = self._current(tenant_id, version)
        if core is not None:
            return core
        older = self._cores.get(tenant_id)
        build = self._build(store, tenant_id)
        if older is None or self._wait_s is None:
            return await self._until_built(store, tenant_id, version)
        if self._wait_s > 0:
            done, _ = await asyncio.wait({build}, timeout=self._wait_s)
            if done and not build.cancelled() and build.exception() is None:
                return build.result()
        return older

    async def refresh(self, store: CatalogSource, tenant_id: str) -> TenantCore:
        """The core of the tenant's catalogue version now, waiting for its build (for
        the request that changed the catalogue: its next request sees the change)."""
        return await self._until_built(store, tenant_id, await store.catalog_version(tenant_id))

    async def aclose(self) -> None:
        """Cancel rebuilds in flight (shutdown); a thread already compiling finishes
        on its own and its result is dropped."""
        builds = [b for b in self._builds.values() if not b.done()]
        for build in builds:
            build.cancel()
        for build in builds:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await build
        self._builds.clear()

    def forget(self, tenant_id: str) -> None:
        """Drop the tenant's core (it is rebuilt on the next :meth:`get`)."""
        self._cores.pop(tenant_id, None)

    def _current(self, tenant_id: str, version: int) -> TenantCore | None:
        """The cached core if it serves ``version`` (or ``version`` did not compile)."""
        core = self._cores.get(tenant_id)
        if core is not None and (core.catalog_version >= version
                                 or self._failed.get(tenant_id, -1) >= version):
            return core
        return None

    async def _until_built(self, store: CatalogSource, tenant_id: str, version: int) -> TenantCore:
        # A build that started before ``version`` was written compiles an older
        # catalogue: wait for it, then for the next one.
        while True:
            core = self._current(tenant_id, version)
            if core is not None:
                return core
            # Shielded: a caller that goes away (a client hung up) does not cancel
            # the build other callers wait for.
            await asyncio.shield(self._build(store, tenant_id))

    def _build(self, store: CatalogSource, tenant_id: str) -> asyncio.Task[TenantCore]:
        """The tenant's rebuild in flight, or a new one."""
        build = self._builds.get(tenant_id)
        if build is None or build.done():
            build = asyncio.ensure_future(self._rebuild(store, tenant_id))
            build.add_done_callback(_retrieve)
            self._builds[tenant_id] = build
        return build

    async def _rebuild(self, store: CatalogSource, tenant_id: str) -> TenantCore:
        try:
            built = await self._rebuilt(store, tenant_id)
        except Exception as exc:
            if is_unavailable(exc):
                self._outages.failed(f"tenant {tenant_id}", exc)
            raise
        self._outages.succeeded(f"tenant {tenant_id}")
        return built

    async def _rebuilt(self, store: CatalogSource, tenant_id: str) -> TenantCore:
        catalog = await store.load_catalog(tenant_id)
        core = self._cores.get(tenant_id)
        if core is not None and core.catalog_version >= catalog.version:
            return core
        try:
            built = await self._compiled(catalog)
        except CoreBuildError:
            if core is None:
                raise
            self._failed[tenant_id] = catalog.version
            log.exception("tenant %s: catalogue v%d does not compile; keeping v%d",
                          tenant_id, catalog.version, core.catalog_version)
            return core
        current = self._cores.get(tenant_id)
        if current is None or current.catalog_version < built.catalog_version:
            self._cores[tenant_id] = built  # the atomic swap: one reference assignment
        self._failed.pop(tenant_id, None)
        return built

    async def _compiled(self, catalog: Catalog) -> TenantCore:
        """``build_core`` in a thread; the index in a worker process if so configured
        (tried twice: a worker that died is replaced by a fresh pool)."""
        for attempt in (1, 2):
            try:
                built = await asyncio.to_thread(
                    build_core, catalog, render_limits=self._render_limits,
                    render_clock=self._render_clock, index_builder=self._index_builder,
                    previous=self._cores.get(catalog.tenant_id))
            except VenueWorkersError:
                if attempt == 2:
                    raise
                continue
            self.builds += 1
            return built
        raise AssertionError("unreachable")


def _retrieve(build: asyncio.Task[TenantCore]) -> None:
    """Consume a rebuild's outcome, so a rebuild nobody waited for to the end (its
    callers went on with the older core) does not log "exception never retrieved";
    a failure is logged here instead, with its traceback: a bug. (An unreachable
    database was logged as an outage by the rebuild; a catalogue that does not compile
    is the caller's error.)"""
    if build.cancelled():
        return
    exc = build.exception()
    if exc is not None and not isinstance(exc, CoreBuildError) and not is_unavailable(exc):
        log.error("core rebuild failed: %s", exc, exc_info=exc)
