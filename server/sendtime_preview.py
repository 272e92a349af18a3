"""The send-time preview of a ``best_time`` campaign: over the tenant's profiles, how many
users have enough send-time data for their own hour, and how many would be sent at each
local time (their best hour in the window, else the fallback) — what ``GET
/v1/campaigns/{id}/sendtime-preview`` and ``geopush sendtime preview`` show. Profiles are
read a keyset page at a time, zone group by zone group."""

from __future__ import annotations

from collections import Counter
from typing import Any

from server.scheduler import ScheduleStore
from server.tenant_core import LearnedView
from triggers.decisions.best_time import choose_time
from triggers.decisions.models import BestTime, TenantPolicy
from triggers.decisions.slots import user_zone

PAGE_PROFILES = 1000


async def sendtime_preview(store: ScheduleStore, tenant_id: str, best: BestTime, *,
                           policy: TenantPolicy, view: LearnedView | None,
                           now: float) -> dict[str, Any]:
    """``{users, with_data, fallback, times: {"HH:MM": users}}`` at ``now``."""
    times: Counter[str] = Counter()
    users = with_data = 0
    for zone in await store.profile_zones(tenant_id):
        tz = user_zone(zone, policy)
        after: str | None = None
        while True:
            page = await store.profiles_page(tenant_id, timezone=zone, after=after,
                                             limit=PAGE_PROFILES)
            for profile in page:
                local = view.local_profile(profile.user_id, tz, now) if view else None
                times[choose_time(best, local).local_time] += 1
                users += 1
                with_data += local is not None
            if len(page) < PAGE_PROFILES:
                break
            after = page[-1].user_id
    return {"users": users, "with_data": with_data, "fallback": users - with_data,
            "fallback_time": best.fallback, "window": best.window,
            "times": dict(sorted(times.items()))}
