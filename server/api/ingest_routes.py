"""Location in: ``POST /v1/pings``, ``POST /v1/owntracks``, ``GET``/``POST /v1/osmand``.

All three screen their pings one by one (:func:`server.ingest.pings.screen`), hand the
good ones to the one pipeline (:func:`server.pipeline.ingest`, one transaction), and
count what happened in the metrics.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from server.api.context import (
    CORES,
    GROUPS,
    LEARNER,
    METRICS,
    OUTBOX,
    SETTINGS,
    json_response,
    now,
    read_body,
    read_form,
    read_json,
    store,
)
from server.api.registry import BASIC, BEARER, INGEST, QUERY_KEY, Body, Operation, Param
from server.api.schemas import (
    OsmAndResponse,
    PingIn,
    PingsRequest,
    PingsResponse,
    RejectedPing,
)
from server.auth import Principal, basic_credentials
from server.errors import ApiError, parse_json
from server.ingest.osmand import TraccarJson, parse_osmand_params, parse_traccar_json
from server.ingest.owntracks import parse_owntracks
from server.ingest.pings import Screened, screen, to_batch
from server.learner import ended_visits
from server.pipeline import IngestResult
from server.store.base import DeliveryRecord

_ENGINE_REJECTIONS = ("invalid", "future", "mock", "duplicate", "late", "inaccurate",
                      "teleport")
"""The engine's hygiene counters that mean "this ping changed nothing"."""


async def _ingest(
    request: web.Request, principal: Principal, items: Sequence[Any], *, source: str,
    prefix: str = "pings",
) -> tuple[Screened, IngestResult]:
    app = request.app
    metrics = app[METRICS]
    at = now(request)
    core = await app[CORES].get(store(request), principal.tenant_id)
    screened = screen(items, now=at, max_future_s=core.presence.max_future_s, prefix=prefix)
    metrics.count_rejections(_count(r.code for r in screened.rejected))
    if not screened.pings:
        return screened, IngestResult()
    started = time.perf_counter()
    result = await app[GROUPS].ingest(principal.tenant_id, to_batch(screened.pings), now=at)
    metrics.batch_latency.labels(source=source).observe(time.perf_counter() - started)
    counters = result.counters.as_dict()
    metrics.pings_accepted.labels(source=source).inc(len(screened.pings))
    metrics.count_rejections({f"engine_{k}": counters.get(k, 0) for k in _ENGINE_REJECTIONS})
    metrics.count_result(result)
    if result.deliveries and OUTBOX in app:
        app[OUTBOX].wake()  # send now rather than after the dispatcher's poll interval
    if LEARNER in app:
        app[LEARNER].visits_ended(principal.tenant_id, ended_visits(result.events))
    return screened, result


def _count(codes: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for code in codes:
        out[code] = out.get(code, 0) + 1
    return out


def delivery_json(d: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": d.delivery_id, "user_id": d.user_id, "campaign_id": d.campaign_id,
        "variant_id": d.variant_id, "venue_id": d.venue_id, "visit_id": d.visit_id,
        "event": d.event, "channel": d.channel, "title": d.title, "body": d.body,
        "locale": d.locale, "status": d.status.value, "created_at": d.created_at,
        "expires_at": d.expires_at,
    }


# --------------------------------------------------------------------------- /v1/pings


async def post_pings(request: web.Request, principal: Principal) -> web.Response:
    body = await read_json(request, check_whole_body=False)
    if not isinstance(body, dict):
        raise ApiError(422, "validation_error", "the body must be an object {\"pings\": [...]}",
                       field=None)
    unknown = sorted(set(body) - {"pings"})
    if unknown:
        raise ApiError(422, "validation_error", f"unknown field {unknown[0]!r}",
                       field=unknown[0])
    items = body.get("pings")
    if not isinstance(items, list):
        raise ApiError(422, "validation_error", "pings must be an array of pings",
                       field="pings")
    limit = request.app[SETTINGS].max_batch
    if len(items) > limit:
        raise ApiError(422, "batch_too_large",
                       f"{len(items)} pings in one batch; at most {limit}", field="pings")
    screened, result = await _ingest(request, principal, items, source="json")
    counters = result.counters.as_dict()
    return json_response({
        "accepted": len(screened.pings),
        "rejected": [r.model_dump() for r in screened.rejected],
        "ignored": {k: counters[k] for k in _ENGINE_REJECTIONS if counters.get(k)},
        "events": [e.to_dict() for e in result.events],
        "deliveries": [delivery_json(d) for d in result.deliveries],
    })


# --------------------------------------------------------------------------- OwnTracks


async def post_owntracks(request: web.Request, principal: Principal) -> web.Response:
    payload = await read_json(request, allow_empty=True, check_whole_body=False)
    creds = basic_credentials(request)
    pings = parse_owntracks(
        payload,
        header_user=request.headers.get("X-Limit-U"),
        header_device=request.headers.get("X-Limit-D"),
        basic_user=creds[0] if creds else None,
    )
    if pings:
        await _ingest(request, principal, pings, source="owntracks", prefix="")
    # OwnTracks expects an array of messages for the app (cards, friends' locations,
    # commands); we have none to give.
    return web.json_response([])


# --------------------------------------------------------------------------- OsmAnd


async def osmand(request: web.Request, principal: Principal) -> web.Response:
    at = now(request)
    params: dict[str, str] = dict(request.query)
    pings: list[PingIn]
    rejected: list[RejectedPing] = []
    if request.method == "POST" and request.can_read_body:
        content_type = request.content_type
        if content_type == "application/json":
            pings = parse_traccar_json(parse_json(await read_body(request)), now=at)
            return await _osmand_answer(request, principal, pings, rejected)
        if content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
            form = await read_form(request)
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        else:
            body = (await read_body(request)).strip()
            if body.startswith(b"{"):
                pings = parse_traccar_json(parse_json(body), now=at)
                return await _osmand_answer(request, principal, pings, rejected)
    params.pop("key", None)
    pings, rejected = parse_osmand_params(params, now=at)
    return await _osmand_answer(request, principal, pings, rejected)


async def _osmand_answer(
    request: web.Request, principal: Principal, pings: list[PingIn],
    rejected: list[RejectedPing],
) -> web.Response:
    accepted = 0
    if pings:
        screened, _ = await _ingest(request, principal, pings, source="osmand",
                                    prefix="location")
        accepted = len(screened.pings)
        rejected = [*rejected, *screened.rejected]
    request.app[METRICS].count_rejections(_count(r.code for r in rejected
                                                 if r.code == "invalid_fix"))
    return json_response(OsmAndResponse(accepted=accepted, rejected=rejected))


# --------------------------------------------------------------------------- operations

_PINGS_DOC = {"type": "object", "description": "OwnTracks message (_type location, "
              "transition, waypoint, lwt, ...)", "properties": {
                  "_type": {"type": "string", "maxLength": 32}, "lat": {"type": "number"},
                  "lon": {"type": "number"}, "tst": {"type": "integer"},
                  "acc": {"type": "number"}, "vel": {"type": "number"},
                  "cog": {"type": "number"}, "alt": {"type": "number"},
                  "tid": {"type": "string", "maxLength": 64},
                  "topic": {"type": "string", "maxLength": 1024}},
              "required": ["_type"]}

_OSMAND_PARAMS = (
    Param("id", {"type": "string", "maxLength": 256}, "device id (or deviceid); the user id"),
    Param("deviceid", {"type": "string", "maxLength": 256}),
    Param("lat", {"type": "number", "minimum": -90, "maximum": 90}),
    Param("lon", {"type": "number", "minimum": -180, "maximum": 180}),
    Param("timestamp", {"type": "string", "maxLength": 64}, "epoch s, epoch ms or ISO-8601"),
    Param("speed", {"type": "number", "minimum": 0}, "knots"),
    Param("bearing", {"type": "number"}, "degrees"),
    Param("altitude", {"type": "number"}, "metres"),
    Param("accuracy", {"type": "number", "minimum": 0}, "metres"),
    Param("batt", {"type": "number"}),
    Param("mock", {"type": "boolean"}),
    Param("key", {"type": "string", "maxLength": 256},
          "API key (alternative to the Authorization header)"),
)

OPERATIONS = [
    Operation(
        "POST", "/v1/pings", "postPings", "Post a batch of location pings", "ingest",
        post_pings, INGEST,
        body=Body(PingsRequest, description="at most 1000 pings; gzip (Content-Encoding) ok"),
        responses={200: PingsResponse}, errors=(400, 413, 422),
        body_limit="max_pings_body_bytes",
        description="Each ping is checked on its own: the good ones are processed, the "
                    "bad ones are listed in `rejected` with their index. `ignored` counts "
                    "pings the engine took but that changed nothing (duplicate, late, "
                    "inaccurate, mock, teleport).",
    ),
    Operation(
        "POST", "/v1/owntracks", "postOwnTracks", "OwnTracks HTTP mode", "ingest",
        post_owntracks, INGEST, body=Body(media={"application/json": _PINGS_DOC},
                                          required=False),
        responses={200: {"type": "array", "items": {}}},
        schemes=(BEARER, BASIC), errors=(400, 413, 422), body_limit="max_pings_body_bytes",
        description="The user comes from X-Limit-U, else the topic owntracks/<user>/"
                    "<device>, else the Basic user name; vel is km/h.",
    ),
    Operation(
        "GET", "/v1/osmand", "getOsmAnd", "OsmAnd / Traccar Client (query string)",
        "ingest", osmand, INGEST, params=_OSMAND_PARAMS, responses={200: OsmAndResponse},
        schemes=(BEARER, QUERY_KEY), errors=(422,),
    ),
    Operation(
        "POST", "/v1/osmand", "postOsmAnd", "OsmAnd / Traccar Client (form or JSON)",
        "ingest", osmand, INGEST, params=_OSMAND_PARAMS,
        body=Body(media={
            "application/x-www-form-urlencoded": {"type": "object", "properties": {
                p.name: p.schema for p in _OSMAND_PARAMS}},
            "application/json": TraccarJson,
        }, required=False),
        responses={200: OsmAndResponse}, schemes=(BEARER, QUERY_KEY), errors=(400, 413, 422),
        body_limit="max_pings_body_bytes",
    ),
]

__all__ = ["OPERATIONS", "delivery_json"]
