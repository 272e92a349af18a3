"""The API under the console's session: ``/console/api/...`` answers what ``/v1/...``
answers, by the very same operation handlers, for the signed-in principal.

Each bridged operation keeps its role check and the key's rate limit; a write (anything
but GET) must carry the session's CSRF token. Pages rendered by the server read through
:func:`call_json`, the same handlers again, so the console never re-implements venue
import, campaign validation, hours, decisions or statistics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

import orjson
from aiohttp import web

from server.api import manage_routes, venue_routes
from server.api.context import BODY_LIMITS, LIMITER, SETTINGS, json_response
from server.api.registry import Operation
from server.auth import Principal, forbidden
from server.console.campaign_text import read_campaign_body
from server.console.payloads import channel_payloads
from server.console.session import CSRF_HEADER, Session, csrf_ok, current_session
from server.errors import ApiError
from triggers.decisions import ContentEngine
from triggers.decisions.preview import SampleRender, render_samples

Handler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]

BRIDGED = frozenset({
    "listVenues", "getVenue", "putVenue", "getVenueHours", "importVenues",
    "listCampaigns", "getCampaign", "createCampaign", "putCampaign", "activateCampaign",
    "pauseCampaign", "campaignStats", "getDecisions",
})
"""The operations the console's scripts call (ids of ``server.app.OPERATIONS``)."""

PREFIX = "/console/api"


def console_path(op: Operation) -> str:
    """``/v1/venues/{id}`` → ``/console/api/venues/{id}``."""
    return PREFIX + op.path.removeprefix("/v1")


async def session_principal(request: web.Request, *, write: bool) -> Session:
    """The signed-in session of a bridged call: 401 without one, 403 ``csrf_failed``
    for a write without its token."""
    session = await current_session(request)
    if session is None:
        raise ApiError(401, "unauthorized", "sign in to the console first", field="cookie")
    if write and not csrf_ok(request, session.csrf, None):
        raise ApiError(403, "csrf_failed", "this write lacks the session's CSRF token",
                       field=CSRF_HEADER)
    return session


def _bind(op: Operation) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        session = await session_principal(request, write=op.method != "GET")
        principal = session.principal
        await request.app[LIMITER].acquire(principal)
        assert op.roles is not None
        if principal.role not in op.roles:
            raise forbidden(principal.role, op.roles)
        response: web.StreamResponse = await op.handler(request, principal)
        return response

    handler.__name__ = "console_" + op.operation_id
    return handler


def add_bridge(app: web.Application, operations: list[Operation]) -> None:
    """Add ``/console/api/...`` for each of :data:`BRIDGED`, with the body limit of
    the operation it calls."""
    for op in operations:
        if op.operation_id not in BRIDGED:
            continue
        name = "console." + op.operation_id
        app.router.add_route(op.method, console_path(op), _bind(op), name=name)
        app[BODY_LIMITS][name] = min(int(getattr(app[SETTINGS], op.body_limit)),
                                     app[SETTINGS].max_body_bytes)
    app.router.add_post(PREFIX + "/campaigns/check", check_campaign, name="console.check")


async def call_json(handler: Handler, request: web.Request, principal: Principal) -> Any:
    """What an API handler answers ``request`` (path and query as given), as JSON
    data: for pages rendered by the server. Raises the handler's :class:`ApiError`."""
    response = await handler(request, principal)
    assert isinstance(response, web.Response) and response.body is not None
    body = response.body
    return orjson.loads(body if isinstance(body, bytes) else bytes(body))  # type: ignore[arg-type]


async def check_campaign(request: web.Request) -> web.Response:
    """``POST /console/api/campaigns/check``: the campaign of the body validated exactly
    as ``POST /v1/campaigns`` would (422 with the field path otherwise), not stored, and
    each variant rendered for the sample people of
    :func:`triggers.decisions.preview.render_samples`. The body is JSON, or YAML when
    its ``Content-Type`` says so; ``document`` is the body as read, the JSON the
    console saves."""
    session = await session_principal(request, write=True)
    await request.app[LIMITER].acquire(session.principal)
    body = await read_campaign_body(request)
    given = body.get("id") if isinstance(body, dict) else None
    campaign = await manage_routes.validated_campaign(
        request, body, str(given) if given not in (None, "") else "draft")
    engine = ContentEngine(request.app[SETTINGS].render_limits())
    samples = await asyncio.to_thread(render_samples, engine, campaign)
    return json_response({"document": body, "campaign": campaign.model_dump(mode="json"),
                          "previews": [_sample_json(s) for s in samples],
                          "payloads": channel_payloads(session.principal.tenant_id,
                                                       campaign, samples)})


def _sample_json(sample: SampleRender) -> dict[str, Any]:
    return {**{k: v for k, v in asdict(sample).items() if k != "rich"},
            "rich": None if sample.rich is None else sample.rich.as_json()}


list_venues = venue_routes.list_venues
get_venue = venue_routes.get_venue
get_venue_hours = venue_routes.get_venue_hours
list_campaigns = manage_routes.list_campaigns
get_campaign = manage_routes.get_campaign
campaign_stats = manage_routes.campaign_stats
get_decisions = manage_routes.get_decisions
