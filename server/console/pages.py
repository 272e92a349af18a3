"""The console's pages: sign-in and out, venues (list, upload, draw, one venue with its
week of opening hours), "why (not)?" and campaigns (list, editor, results).

Pages are rendered here from what the API's own handlers answer
(:func:`server.console.bridge.call_json`); the scripts in ``static/`` then call
``/console/api/...`` (the same handlers again) for uploads, validation and writes.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from aiohttp import web

from server.api.context import CLOCK, SETTINGS, store
from server.api.delivery_routes import get_channels
from server.auth import Role, forbidden
from server.console import bridge, charts
from server.console.backtest import backtest_campaign
from server.console.i18n import language
from server.console.live import venue_live
from server.console.render import render, signed_in
from server.console.session import (
    CSRF_FIELD,
    PRE_COOKIE,
    SESSIONS,
    Session,
    SignInError,
    clear_session_cookie,
    csrf_ok,
    current_session,
    set_session_cookie,
    sign_in,
)
from server.errors import ApiError
from triggers.decisions import ContentEngine, RenderLimits
from triggers.decisions.models import CHANNELS
from venues import VenueKind

PAGE_SIZE = 25
SEARCH_SCAN = 1000
"""Venues read per store call while searching by name (the API lists by id only)."""


# --------------------------------------------------------------------------- sign-in


async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/console/venues")


async def sign_in_form(request: web.Request) -> web.StreamResponse:
    if await current_session(request) is not None:
        raise web.HTTPSeeOther("/console/venues")
    return _sign_in_page(request, error=None)


def _sign_in_page(request: web.Request, *, error: str | None, status: int = 200) -> web.Response:
    token = secrets.token_urlsafe(18)
    response = render(request, "sign_in.html", None, csrf=token, error=error, status=status)
    response.set_cookie(PRE_COOKIE, token, path="/console", httponly=True, samesite="Strict",
                        secure=request.secure, max_age=3600)
    return response


async def sign_in_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    expected = request.cookies.get(PRE_COOKIE, "")
    if not expected or not csrf_ok(request, expected, _text(form.get(CSRF_FIELD))):
        return _sign_in_page(request, error="csrf_failed", status=403)
    try:
        cookie, _ = await sign_in(request, _text(form.get("key")) or "")
    except SignInError as exc:
        return _sign_in_page(request, error=exc.code, status=403)
    response = web.HTTPSeeOther("/console/venues")
    set_session_cookie(response, request, cookie, request.app[SETTINGS].console_session_ttl_s)
    response.del_cookie(PRE_COOKIE, path="/console")
    raise response


@signed_in
async def sign_out(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    if not csrf_ok(request, session.csrf, _text(form.get(CSRF_FIELD))):
        raise ApiError(403, "csrf_failed", "this write lacks the session's CSRF token",
                       field=CSRF_FIELD)
    request.app[SESSIONS].revoke(session, request.app[CLOCK]())
    response = web.HTTPSeeOther("/console/sign-in")
    clear_session_cookie(response)
    raise response


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------- venues


@signed_in
async def venues(request: web.Request, session: Session) -> web.StreamResponse:
    kind = request.query.get("kind") or None
    if kind is not None and kind not in {k.value for k in VenueKind}:
        kind = None
    tag = (request.query.get("tag") or "").strip() or None
    query = (request.query.get("q") or "").strip()
    after = request.query.get("after") or None
    found, following = await _venue_page(request, session.principal.tenant_id, kind=kind,
                                         tag=tag, query=query.casefold(), after=after)
    return render(request, "venues.html", session, venues=found, following=following,
                  kinds=[k.value for k in VenueKind], kind=kind or "", tag=tag or "",
                  q=query, paged=after is not None)


async def _venue_page(request: web.Request, tenant: str, *, kind: str | None,
                      tag: str | None, query: str, after: str | None,
                      ) -> tuple[list[dict[str, Any]], str | None]:
    """A page of venues (by id, after ``after``) whose name or id contains ``query``;
    the id to continue after, if there is more."""
    found: list[dict[str, Any]] = []
    the_store = store(request)
    while True:
        batch = await the_store.list_venues(tenant, kind=kind, tag=tag, after=after,
                                            limit=SEARCH_SCAN if query else PAGE_SIZE + 1)
        for venue in batch:
            if query and query not in f"{venue.id} {venue.name}".casefold():
                continue
            if len(found) == PAGE_SIZE:
                return found, found[-1]["id"]
            found.append({"id": venue.id, "name": venue.name, "kind": venue.kind.value,
                          "parent_id": venue.parent_id, "tags": list(venue.tags)})
        if not query or len(batch) < SEARCH_SCAN:
            return found, None
        after = batch[-1].id


@signed_in
async def venue_upload(request: web.Request, session: Session) -> web.StreamResponse:
    return render(request, "venue_upload.html", session)


@signed_in
async def venue_draw(request: web.Request, session: Session) -> web.StreamResponse:
    return render(request, "venue_draw.html", session, kinds=[k.value for k in VenueKind])


@signed_in
async def venue(request: web.Request, session: Session) -> web.StreamResponse:
    feature = await bridge.call_json(bridge.get_venue, request, session.principal)
    hours = await bridge.call_json(bridge.get_venue_hours, request, session.principal)
    week = charts.week_view(hours["spans"])
    props = feature.get("properties") or {}
    country = props.get("addr:country") or (props.get("metadata") or {}).get("addr:country")
    if country is None:
        country = (await store(request).get_policy(session.principal.tenant_id)).policy.country
    # A holiday calendar reads its translations from disk the first time: off the loop.
    await asyncio.to_thread(_name_holidays, week, country,
                            "zh-CN" if language(request) == "zh" else "en")
    return render(request, "venue.html", session, feature=feature, hours=hours, week=week,
                  props=props)


def _name_holidays(week: list[charts.Day], country: str | None, locale: str) -> None:
    """Each day's public holiday (of ``country``, as decisions read it) first in its notes."""
    engine = ContentEngine(RenderLimits())
    for day in week:
        name = engine.holiday(country, day.day, locale)
        if name:
            day.notes.insert(0, name)


# --------------------------------------------------------------------------- why (not)?


@signed_in
async def why(request: web.Request, session: Session) -> web.StreamResponse:
    user = (request.query.get("user") or "").strip()
    decisions: list[dict[str, Any]] = []
    error, status = None, 200
    if user:
        request.match_info["id"] = user
        try:
            found = await bridge.call_json(bridge.get_decisions, request, session.principal)
            decisions = found["decisions"]
        except ApiError as exc:
            error, status = exc.message, exc.status
    return render(request, "why.html", session, user=user, decisions=decisions,
                  error=error, when=charts.when, status=status)


# --------------------------------------------------------------------------- live


@signed_in
async def live(request: web.Request, session: Session) -> web.StreamResponse:
    choices = await store(request).list_venues(session.principal.tenant_id, limit=500)
    chosen = request.query.get("venue") or (choices[0].id if choices else "")
    return render(request, "live.html", session, venues=choices, chosen=chosen)


# --------------------------------------------------------------------------- campaigns


@signed_in
async def campaigns(request: web.Request, session: Session) -> web.StreamResponse:
    found = await bridge.call_json(bridge.list_campaigns, request, session.principal)
    return render(request, "campaigns.html", session, campaigns=found["campaigns"],
                  following=found.get("next_cursor"))


NEW_CAMPAIGN = {
    "id": "", "name": "", "trigger": {"event": "enter"}, "venues": {"kinds": ["mall"]},
    "variants": [{"id": "a", "title": "Welcome, {{ user.first_name or 'friend' }}",
                  "body": "Something for you at {{ venue.name }}.", "weight": 1}],
}


@signed_in
async def campaign_edit(request: web.Request, session: Session) -> web.StreamResponse:
    cid = request.match_info.get("id")
    campaign: dict[str, Any] = dict(NEW_CAMPAIGN)
    if cid is not None:
        campaign = await bridge.call_json(bridge.get_campaign, request, session.principal)
    return render(request, "campaign.html", session, campaign=campaign, cid=cid,
                  channels=CHANNELS,
                  editable={k: v for k, v in campaign.items()
                            if k not in {"status", "created_at", "updated_at"}})


@signed_in
async def campaign_results(request: web.Request, session: Session) -> web.StreamResponse:
    stats = await bridge.call_json(bridge.campaign_stats, request, session.principal)
    bucket_s = charts.DAY_S if request.query.get("bucket") == "day" else 3600.0
    tenant, cid = session.principal.tenant_id, stats["campaign_id"]
    rows = await store(request).delivery_timeline(tenant, cid, bucket_s=bucket_s)
    if charts.buckets_needed(rows, bucket_s) > charts.MAX_COLUMNS:
        bucket_s = charts.DAY_S
        rows = await store(request).delivery_timeline(tenant, cid, bucket_s=bucket_s)
    return render(request, "results.html", session, stats=stats,
                  ctr_chart=charts.ctr_chart(stats["variants"]),
                  status_chart=charts.bar_chart(stats["by_status"]),
                  by_status=charts.stacked_over_time(rows, by="status", bucket_s=bucket_s),
                  by_channel=charts.stacked_over_time(rows, by="channel", bucket_s=bucket_s),
                  bucket="day" if bucket_s == charts.DAY_S else "hour",
                  busiest=charts.busiest)


@signed_in
async def campaign_results_csv(request: web.Request, session: Session) -> web.StreamResponse:
    stats = await bridge.call_json(bridge.campaign_stats, request, session.principal)
    cid = stats["campaign_id"]
    return web.Response(text=charts.stats_csv(stats), content_type="text/csv",
                        charset="utf-8", headers={
                            "Content-Disposition": f'attachment; filename="{cid}-results.csv"'})


# --------------------------------------------------------------------------- admin


@signed_in
async def admin(request: web.Request, session: Session) -> web.StreamResponse:
    """An admin's page: the tenant's keys (ids, roles, names; never secrets) and its
    channel settings as ``GET /v1/channels`` answers them (secrets masked)."""
    if session.principal.role is not Role.ADMIN:
        raise forbidden(session.principal.role, frozenset({Role.ADMIN}))
    keys = await store(request).list_keys(session.principal.tenant_id)
    channels = await bridge.call_json(get_channels, request, session.principal)
    return render(request, "admin.html", session, keys=keys, channels=channels,
                  when=charts.when)


def add_pages(app: web.Application) -> None:
    router = app.router
    router.add_get("/console", home)
    router.add_get("/console/", home)
    router.add_get("/console/sign-in", sign_in_form)
    router.add_post("/console/sign-in", sign_in_submit)
    router.add_post("/console/sign-out", sign_out)
    router.add_get("/console/venues", venues)
    router.add_get("/console/venues/upload", venue_upload)
    router.add_get("/console/venues/draw", venue_draw)
    router.add_get("/console/venues/{id}", venue)
    router.add_get("/console/why", why)
    router.add_get("/console/admin", admin)
    router.add_get("/console/live", live)
    router.add_get("/console/api/live/{id}", venue_live)
    router.add_post("/console/api/campaigns/backtest", backtest_campaign)
    router.add_get("/console/campaigns", campaigns)
    router.add_get("/console/campaigns/new", campaign_edit)
    router.add_get("/console/campaigns/{id}", campaign_edit)
    router.add_get("/console/campaigns/{id}/results", campaign_results)
    router.add_get("/console/campaigns/{id}/results.csv", campaign_results_csv)

