"""Walks through central Helsinki (© OpenStreetMap contributors) and a tenant to run them on."""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import cache

import numpy as np

from geo.distance import haversine_m
from geo.latlng import LatLng
from server.store import Catalog, PolicyRecord, Store, TenantRecord
from server.store.roles import BatchTx, IngestStore
from tests.decisions.builders import FORUM, KLUUVI, campaign, profile
from tests.triggers.builders import helsinki_venues, inside_point, offset
from triggers.decisions import TenantPolicy
from triggers.pings import PingBatch

T0 = 1_764_320_400.0  # 2025-11-28T09:00:00Z, 11:00 in Helsinki: a Friday morning
STEP_S = 10.0
SPEED_MPS = 1.4

__all__ = ["FORUM", "KLUUVI", "T0", "Fix", "IngestForwarder", "batch", "setup_tenant", "timeline",
           "walk_into_forum"]


@dataclass(frozen=True, slots=True)
class Fix:
    user_id: str
    ts: float
    at: LatLng


def _walk(user_id: str, start: LatLng, end: LatLng, t: float) -> list[Fix]:
    steps = max(1, math.ceil(haversine_m(start.lat, start.lng, end.lat, end.lng)
                             / (SPEED_MPS * STEP_S)))
    return [Fix(user_id, t + i * STEP_S,
                LatLng(start.lat + (end.lat - start.lat) * i / steps,
                       start.lng + (end.lng - start.lng) * i / steps))
            for i in range(steps + 1)]


def _stay(user_id: str, where: LatLng, t: float, duration_s: float) -> list[Fix]:
    return [Fix(user_id, t + i * STEP_S, where) for i in range(1, int(duration_s / STEP_S) + 1)]


@cache
def forum_door() -> tuple[LatLng, LatLng]:
    """(a point 90 m west of Forum, on Mannerheimintie; a point inside Forum)."""
    inside = inside_point(FORUM)
    return offset(inside, -90.0, 0.0), inside


def walk_into_forum(user_id: str = "u1", t0: float = T0, stay_s: float = 60.0) -> list[Fix]:
    """From Mannerheimintie into Forum at 1.4 m/s with 10 s pings, then ``stay_s`` inside."""
    outside, inside = forum_door()
    fixes = _walk(user_id, outside, inside, t0)
    return fixes + _stay(user_id, inside, fixes[-1].ts, stay_s)


def timeline(user_id: str, t0: float = T0) -> list[Fix]:
    """Into Forum, a minute there, out and on to Kauppakeskus Kluuvi, a minute there."""
    first = walk_into_forum(user_id, t0)
    onward = _walk(user_id, first[-1].at, inside_point(KLUUVI), first[-1].ts + STEP_S)
    return first + onward + _stay(user_id, onward[-1].at, onward[-1].ts, 60.0)


def batch(fixes: Sequence[Fix]) -> PingBatch:
    return PingBatch.from_columns(
        np.array([f.user_id for f in fixes]), [f.ts for f in fixes],
        [f.at.lat for f in fixes], [f.at.lng for f in fixes], accuracy_m=[10.0] * len(fixes),
    )


async def setup_tenant(store: Store, tenant: str, *, users: Sequence[str] = ("u1",)) -> None:
    """Helsinki venues, a DWELL campaign at Forum (one a day per user), every global
    rule off so that only the campaign's own caps decide."""
    await store.ensure_tenant(tenant)
    await store.put_venues(tenant, list(helsinki_venues()))
    await store.put_policy(tenant, PolicyRecord(TenantPolicy(
        quiet_hours=None, max_per_day=None, min_gap_s=0, fatigue_after_ignored=None)))
    await store.create_campaign(tenant, campaign(
        "forum-dwell", trigger={"event": "dwell"}, venues={"ids": [FORUM]},
        caps={"per_user": {"count": 1, "period_s": 86_400}}, schedule={
            "respect_opening_hours": False}))
    for user_id in users:
        await store.put_profile(tenant, profile(user_id))


class IngestForwarder:
    """A test double of the :class:`~server.store.roles.IngestStore` role alone (what the
    pipeline and group commit run on): every method forwards to ``inner``; a test
    subclasses it to count or break one."""

    def __init__(self, inner: IngestStore) -> None:
        self.inner = inner

    async def catalog_version(self, tenant_id: str) -> int:
        return await self.inner.catalog_version(tenant_id)

    async def load_catalog(self, tenant_id: str) -> Catalog:
        return await self.inner.load_catalog(tenant_id)

    async def list_tenants(self) -> list[TenantRecord]:
        return await self.inner.list_tenants()

    def batch(self, tenant_id: str, user_ids: Sequence[str], *,
              skip_locked: bool = False) -> AbstractAsyncContextManager[BatchTx]:
        return self.inner.batch(tenant_id, user_ids, skip_locked=skip_locked)

    async def due_users(self, tenant_id: str, now: float, limit: int) -> list[str]:
        return await self.inner.due_users(tenant_id, now, limit)
