"""Back-test before activating: what a campaign would have done over the tenant's
recorded pings of the last N days, sending nothing.

``POST /console/api/campaigns/backtest?days=N`` takes a campaign body (JSON, or YAML
by its ``Content-Type``; checked as ``POST /v1/campaigns`` checks it) and replays the
stored pings through the simulation engine (:func:`triggers.simulation.engine.simulate`)
with the tenant's venues, profiles, policy and active campaigns: one presence pass, and
two decision worlds, without and with the candidate (:mod:`triggers.simulation.backtest`).
The answer is the engine's back-test report: pushes and users reached, suppressions by
reason, and the live pushes the candidate would have displaced (by priority, or by using
up a cap).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from server.api import manage_routes
from server.api.context import CLOCK, LIMITER, json_response, query_int, store
from server.console.bridge import session_principal
from server.console.campaign_text import read_campaign_body
from server.errors import core_errors
from server.store.roles import Store
from triggers.decisions import Campaign, CampaignStatus
from triggers.simulation.engine import simulate
from triggers.simulation.scenario import PresenceOverrides, ScenarioPolicy, ScenarioSpec, build
from triggers.simulation.stream import recorded_columns

MAX_DAYS = 30
MAX_PINGS = 500_000
"""Pings replayed at most (the most recent): a few seconds of the engine, off the loop."""


async def backtest_campaign(request: web.Request) -> web.Response:
    session = await session_principal(request, write=True)
    await request.app[LIMITER].acquire(session.principal)
    days = query_int(request, "days", default=7, minimum=1, maximum=MAX_DAYS)
    body = await read_campaign_body(request)
    given = body.get("id") if isinstance(body, dict) else None
    candidate = await manage_routes.validated_campaign(
        request, body, str(given) if given not in (None, "") else "draft")
    now = float(request.app[CLOCK]())
    since = now - days * 86_400
    report = await replay(store(request), session.principal.tenant_id, candidate,
                          since=since, until=now)
    return json_response({"days": days, "since": since, "until": now, **report})


async def replay(the_store: Store, tenant_id: str, candidate: Campaign, *, since: float,
                 until: float) -> dict[str, Any]:
    """The back-test report of ``candidate`` over the tenant's pings in [since, until],
    with the pings and users replayed."""
    pings, received = await the_store.recorded_pings(tenant_id, since=since, limit=MAX_PINGS)
    catalog = await the_store.load_catalog(tenant_id)
    users = sorted({str(u) for u in pings.user_id.tolist()})
    profiles = await the_store.get_profiles(tenant_id, users) if users else {}
    if not users:
        return {"pings": 0, "users": 0, "backtest": None}
    presence = {k: v for k, v in catalog.policy.presence.items()
                if k in PresenceOverrides.model_fields}
    spec = ScenarioSpec(
        name="console back-test",
        start=datetime.fromtimestamp(min(since, float(pings.ts.min())), UTC),
        end=datetime.fromtimestamp(max(until, float(received.max())) + 1, UTC),
        policy=ScenarioPolicy(**catalog.policy.policy.model_dump(),
                              presence=PresenceOverrides.model_validate(presence)),
        profiles=tuple(profiles.values()),
        # The live world: what is active now (the candidate's namesake included, which
        # the shadow world replaces: "what if I changed it").
        campaigns=tuple(c for c in catalog.campaigns if c.status is CampaignStatus.ACTIVE),
    )
    shadow = candidate.model_copy(update={"status": CampaignStatus.ACTIVE})
    with core_errors():
        scenario = build(spec, catalog.venues, recorded_columns(pings, received))
        result = await asyncio.to_thread(simulate, scenario, candidate=shadow,
                                         keep_records=False)
    assert result.backtest is not None  # simulate reports whenever given a candidate
    return {"pings": len(pings), "users": len(users), "backtest": result.backtest}

