"""Venues: ``PUT/GET/DELETE /v1/venues/{id}``, ``GET /v1/venues``, ``POST
/v1/venues/import``, and ``GET /v1/venues/{id}/hours`` (opening hours as campaigns read them).

Every venue goes through the same validation as ``geopush venues validate``
(:func:`venues.parse_feature_collection` / :func:`venues.load_venues`), in a venue
worker process (:mod:`server.venue_jobs`; geometry checks of a big file take seconds
and would hold this process's GIL). Venue writes are budgeted per tenant
(:mod:`server.venue_budget`): one at a time, a bounded queue, a vertex budget; past
them a 429 with Retry-After. A ``parent_id`` may name a venue
already stored: its feature (and its own ancestors) join the validation, so "a store
inside its mall" is checked against the stored mall; their problems are not reported.
Multipart files (GeoPackage, zipped Shapefile, KML) must carry their parents in the file.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.web_request import FileField

from server.api.context import (
    CORES,
    SETTINGS,
    VENUE_BUDGET,
    VENUE_WORKERS,
    catalog_changed,
    json_response,
    now,
    path_id,
    query_bool,
    query_int,
    read_body,
    read_form,
    store,
)
from server.api.pages import decode_cursor, encode_cursor, page_limit, page_params
from server.api.registry import MANAGE, Body, Operation, Param, not_found
from server.api.schemas import (
    MAX_IMPORT_FEATURES,
    HoursSpan,
    ImportReport,
    VenueCollection,
    VenueDeleted,
    VenueFeature,
    VenueHoursOut,
    VenuePage,
)
from server.auth import Principal
from server.errors import ApiError
from server.store.base import BBox
from server.store.errors import LimitExceededError, VenueHasChildrenError
from server.venue_builds import VenueWorkersError
from server.venue_jobs import (
    ImportJob,
    ImportValidated,
    NeedsParents,
    PutJob,
    PutValidated,
    Rejected,
    outline_json,
    problem_json,
    validate_import,
    validate_put,
)
from triggers.decisions.hours import local_time
from triggers.decisions.venue_hours import hours_report
from venues import Problem, VenueKind, VenueLimits, VenueLoad, venue_to_feature
from venues.model import Venue

MAX_PARENT_DEPTH = 16
"""Ancestors fetched for a parent check: malls hold stores, not 16 levels of nesting."""
_SUFFIXES = (".gpkg", ".zip", ".shp.zip", ".kml", ".kmz", ".geojson", ".json")


def _limits(request: web.Request) -> VenueLimits:
    """The venue limits of the settings; ``?simplify=true`` simplifies an outline over
    the vertex limit within ``venue_simplify_m`` instead of refusing it."""
    settings = request.app[SETTINGS]
    simplify = query_bool(request, "simplify")
    return VenueLimits(max_vertices=settings.max_venue_vertices,
                       simplify_m=settings.venue_simplify_m if simplify else None)


async def _ancestors(request: web.Request, tenant: str, parent_ids: Sequence[str],
                     known: set[str]) -> list[Venue]:
    """Stored venues named as parents (and their parents), not already in ``known``."""
    found: list[Venue] = []
    todo = [p for p in parent_ids if p not in known]
    depth = 0
    while todo and depth < MAX_PARENT_DEPTH:
        depth += 1
        nxt: list[str] = []
        for pid in dict.fromkeys(todo):
            if pid in known:
                continue
            known.add(pid)
            venue = await store(request).get_venue(tenant, pid)
            if venue is not None:
                found.append(venue)
                if venue.parent_id is not None:
                    nxt.append(venue.parent_id)
        todo = nxt
    return found


J = TypeVar("J", PutJob, ImportJob)
R = TypeVar("R", PutValidated, ImportValidated)


async def _validated(request: web.Request, tenant: str, job: J,
                     validate: Callable[[J], R | NeedsParents | Rejected]) -> R:
    """``validate(job)`` in a venue worker; when the features name parents, again with
    the stored ancestors. A client's mistake is raised as its :class:`ApiError`."""
    workers = request.app[VENUE_WORKERS]
    try:
        outcome = await workers.run(validate, job)
        if isinstance(outcome, NeedsParents):
            parents = await _ancestors(request, tenant, outcome.parent_ids,
                                       set(outcome.own_ids))
            outcome = await workers.run(validate, replace(job, parents=tuple(parents)))
    except VenueWorkersError as exc:
        raise ApiError(503, "venue_workers_unavailable",
                       "a venue worker process stopped during this request; retry",
                       headers={"Retry-After": "1"}) from exc
    if isinstance(outcome, Rejected):
        raise outcome.error()
    if isinstance(outcome, NeedsParents):  # the second run has its parents
        raise AssertionError("a venue job asked for parents twice")
    return outcome


async def _put_venues(request: web.Request, tenant: str, venues: Sequence[Venue],
                      field: str) -> int:
    """Store ``venues`` within the tenant's venue limit (422 ``too_many_venues`` naming
    ``field`` past it)."""
    try:
        return await store(request).put_venues(
            tenant, venues, max_venues=request.app[SETTINGS].max_venues_per_tenant)
    except LimitExceededError as exc:
        raise ApiError(422, "too_many_venues", f"{exc} (GEOPUSH_MAX_VENUES_PER_TENANT)",
                       field=field) from exc


async def _rebuilt(request: web.Request, tenant: str) -> None:
    """Wait for this node's core to have the change (its client's next request sees it)
    and charge the rebuild's vertices to the tenant's venue-write budget."""
    await catalog_changed(request, tenant)
    core = request.app[CORES].cached(tenant)
    request.app[VENUE_BUDGET].charge(tenant, core.vertices if core is not None else 0)


# --------------------------------------------------------------------------- one venue


async def put_venue(request: web.Request, principal: Principal) -> web.Response:
    vid = path_id(request)
    tenant = principal.tenant_id
    budget = request.app[VENUE_BUDGET]
    async with budget.write(tenant):
        body = await read_body(request)
        job = PutJob(body, vid, _limits(request), query_bool(request, "repair"))
        done = await _validated(request, tenant, job, validate_put)
        budget.charge(tenant, done.positions)
        created = await _put_venues(request, tenant, [done.venue], "id") == 1
    await _rebuilt(request, tenant)
    return web.Response(status=201 if created else 200, body=done.body,
                        content_type="application/json", charset="utf-8")


async def get_venue(request: web.Request, principal: Principal) -> web.Response:
    vid = path_id(request)
    venue = await store(request).get_venue(principal.tenant_id, vid)
    if venue is None:
        raise not_found("venue", vid)
    return json_response(venue_to_feature(venue))


async def delete_venue(request: web.Request, principal: Principal) -> web.Response:
    vid = path_id(request)
    cascade = query_bool(request, "cascade")
    async with request.app[VENUE_BUDGET].write(principal.tenant_id):
        try:
            gone = await store(request).delete_venue(principal.tenant_id, vid,
                                                     cascade=cascade)
        except VenueHasChildrenError as exc:
            raise ApiError(409, "venue_has_children", str(exc), field="id") from exc
    if not gone:
        raise not_found("venue", vid)
    await _rebuilt(request, principal.tenant_id)
    return json_response(VenueDeleted(id=vid, also=list(gone[1:])))


MAX_HOURS_DAYS = 31


async def get_venue_hours(request: web.Request, principal: Principal) -> web.Response:
    """The venue's opening hours from local midnight of ``from`` for ``days`` days, as
    ``decide`` reads them (the same evaluation, zone and holiday calendar)."""
    vid = path_id(request)
    days = query_int(request, "days", default=7, minimum=1, maximum=MAX_HOURS_DAYS)
    the_store = store(request)
    venue = await the_store.get_venue(principal.tenant_id, vid)
    if venue is None:
        raise not_found("venue", vid)
    policy = (await the_store.get_policy(principal.tenant_id)).policy
    tz = venue.timezone or policy.default_timezone
    first = _query_date(request, "from") or local_time(now(request), tz).date()
    found = hours_report(venue, tz, policy.country, first, days)
    report = VenueHoursOut(
        venue_id=vid, opening_hours=found.text, timezone=tz, understood=found.understood,
        problem=found.problem, caveat=found.caveat,
        spans=[HoursSpan(start=span.start, end=span.end, state=span.state.value,
                         comment=span.comment) for span in found.spans])
    return json_response(report)


def _query_date(request: web.Request, name: str) -> date | None:
    text = request.query.get(name)
    if text is None or text == "":
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ApiError(422, "validation_error", f"{name} must be a date, YYYY-MM-DD",
                       field=name) from None


# --------------------------------------------------------------------------- listing


def _bbox(text: str | None) -> BBox | None:
    if text is None or text == "":
        return None
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ApiError(422, "validation_error",
                       "bbox must be min_lng,min_lat,max_lng,max_lat in degrees", field="bbox")
    min_lng, min_lat, max_lng, max_lat = values
    if not (-180 <= min_lng <= max_lng <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise ApiError(422, "validation_error",
                       "bbox must satisfy -180 <= min_lng <= max_lng <= 180 and "
                       "-90 <= min_lat <= max_lat <= 90", field="bbox")
    return BBox(min_lng, min_lat, max_lng, max_lat)


async def list_venues(request: web.Request, principal: Principal) -> web.Response:
    bbox = _bbox(request.query.get("bbox"))
    kind = request.query.get("kind") or None
    if kind is not None and kind not in {k.value for k in VenueKind}:
        raise ApiError(422, "validation_error",
                       f"kind must be one of {sorted(k.value for k in VenueKind)}", field="kind")
    tag = request.query.get("tag") or None
    cursor = decode_cursor(request, "venues", (str,))
    after = cursor[0] if cursor is not None else request.query.get("after") or None
    limit = page_limit(request, default=100, maximum=1000)
    venues = await store(request).list_venues(principal.tenant_id, bbox=bbox, kind=kind,
                                              tag=tag, after=after, limit=limit + 1)
    page = venues[:limit]
    more = len(venues) > limit
    return json_response({
        "type": "FeatureCollection",
        "features": [venue_to_feature(v) for v in page],
        "next_cursor": encode_cursor("venues", [page[-1].id]) if more else None,
        "next_after": page[-1].id if more else None,
    })


# --------------------------------------------------------------------------- import


async def import_venues(request: web.Request, principal: Principal) -> web.Response:
    dry_run = query_bool(request, "dry_run")
    tenant = principal.tenant_id
    budget = request.app[VENUE_BUDGET]
    venues: list[Venue] = []
    async with budget.write(tenant):
        job = replace(await _import_job(request), outlines=dry_run)
        done = await _validated(request, tenant, job, validate_import)
        budget.charge(tenant, done.positions)
        problems, venues, summary = _trimmed(done.load, done.own_features, done.appended)
        outlines = [outline_json(o) for o in done.load.outlines
                    if o.feature_index < done.own_features]
        if not dry_run and venues:
            await _put_venues(request, tenant, venues, "features")
    imported = 0
    if not dry_run and venues:
        await _rebuilt(request, tenant)
        imported = len(venues)
    report = ImportReport.model_validate({
        "dry_run": dry_run, "imported": imported, "summary": summary,
        "problems": [problem_json(p) for p in problems], "venues": [v.id for v in venues],
        "outlines": outlines})
    return json_response(report)


async def _import_job(request: web.Request) -> ImportJob:
    """The import's body (a JSON collection, or the uploaded file) as a venue job."""
    job = ImportJob(b"", _limits(request), strict=query_bool(request, "strict"),
                    repair=query_bool(request, "repair"), max_features=MAX_IMPORT_FEATURES)
    if not request.content_type.startswith("multipart/"):
        return replace(job, body=await read_body(request))
    form = await read_form(request)
    upload = form.get("file")
    if not isinstance(upload, FileField):
        raise ApiError(422, "validation_error",
                       "send the venue file as the multipart field 'file'", field="file")
    shown = Path(upload.filename or "upload").name or "upload"
    name = shown.lower()
    suffix = next((s for s in sorted(_SUFFIXES, key=len, reverse=True) if name.endswith(s)),
                  "")
    if not suffix:
        raise ApiError(422, "unsupported_format",
                       f"file {name!r}: expected .gpkg, .zip (Shapefile), .kml, .kmz or "
                       ".geojson", field="file")
    data = await asyncio.to_thread(upload.file.read)
    return replace(job, body=data, upload_name=shown, upload_suffix=suffix)


def _summary(load: VenueLoad) -> dict[str, Any]:
    s = load.summary
    return {"features": s.features, "valid": s.valid, "rejected": s.rejected,
            "repaired": s.repaired, "errors": s.errors, "warnings": s.warnings,
            "by_kind": dict(s.by_kind), "strict_rejected": s.strict_rejected}


def _trimmed(
    load: VenueLoad, n: int, appended: frozenset[str]
) -> tuple[list[Problem], list[Venue], dict[str, Any]]:
    """Problems, venues and summary of the request's own ``n`` features, leaving out
    the stored ancestors appended for the parent check."""
    if not appended:
        return list(load.problems), list(load.venues), _summary(load)
    problems = [p for p in load.problems if p.feature_index < n]
    venues = [v for v in load.venues if v.id not in appended]
    with_any = {p.feature_index for p in problems if p.feature_index >= 0}
    return problems, venues, {
        "features": n,
        "valid": n - len(with_any),
        "rejected": n - len(venues),
        "repaired": load.summary.repaired,
        "errors": sum(p.is_error for p in problems),
        "warnings": sum(not p.is_error for p in problems),
        "by_kind": dict(Counter(v.kind.value for v in venues)),
        "strict_rejected": load.summary.strict_rejected,
    }


# --------------------------------------------------------------------------- operations

_ID_PARAM_DOC = "venue id"
_SIMPLIFY = Param("simplify", {"type": "boolean"},
                  "an outline over the vertex limit (GEOPUSH_MAX_VENUE_VERTICES, 20,000) is "
                  "simplified so that no point moves more than GEOPUSH_VENUE_SIMPLIFY_M "
                  "(1 m), instead of refused (too_many_vertices)")
_BUDGET_DOC = ("A tenant's venue writes run one at a time (two more may wait: past that "
               "429 venue_writes_busy) and within a vertex budget (GEOPUSH_VENUE_WRITE_"
               "VERTICES_PER_S: positions sent plus the vertices of the index rebuilt; "
               "past it 429 venue_budget_exceeded); both with Retry-After.")
_FEATURE_MEDIA = {"application/geo+json": VenueFeature}

OPERATIONS = [
    Operation("PUT", "/v1/venues/{id}", "putVenue", "Create or replace a venue", "venues",
              put_venue, MANAGE,
              body=Body(VenueFeature, media=_FEATURE_MEDIA,
                        description="a GeoJSON Feature; the path's id wins"),
              params=(Param("repair", {"type": "boolean"}, "repair invalid polygons"),
                      _SIMPLIFY),
              responses={200: VenueFeature, 201: VenueFeature}, errors=(400, 413, 422),
              body_limit="max_venue_body_bytes",
              description=_BUDGET_DOC),
    Operation("GET", "/v1/venues/{id}", "getVenue", "A venue as a GeoJSON Feature", "venues",
              get_venue, MANAGE, responses={200: VenueFeature}, errors=(404, 422)),
    Operation("GET", "/v1/venues/{id}/hours", "getVenueHours",
              "The venue's opening hours as campaigns read them, day by day", "venues",
              get_venue_hours, MANAGE,
              params=(Param("from", {"type": "string", "format": "date", "maxLength": 10},
                            "first local day (YYYY-MM-DD); default today in the venue's zone"),
                      Param("days", {"type": "integer", "minimum": 1,
                                     "maximum": MAX_HOURS_DAYS}, "how many days (default 7)")),
              responses={200: VenueHoursOut}, errors=(404, 422),
              description="Open, closed and unknown spans in the venue's local time, from "
                          "the same evaluation campaigns use: its zone (else the tenant's "
                          "default), public holidays of its addr:country, else the "
                          "tenant's country, else where it stands."),
    Operation("DELETE", "/v1/venues/{id}", "deleteVenue", "Delete a venue (open visits end "
              "with venue_removed); a parent only with cascade=true, which deletes every "
              "venue below it too", "venues", delete_venue, MANAGE,
              params=(Param("cascade", {"type": "boolean"},
                            "also delete the venues whose parent_id leads to this one "
                            "(without it, deleting a parent answers 409 venue_has_children)"),),
              responses={200: VenueDeleted}, errors=(404, 409, 422)),
    Operation("GET", "/v1/venues", "listVenues", "List venues", "venues", list_venues, MANAGE,
              params=(
                  Param("bbox", {"type": "string", "maxLength": 128},
                        "min_lng,min_lat,max_lng,max_lat"),
                  Param("kind", {"type": "string", "enum": [k.value for k in VenueKind]}),
                  Param("tag", {"type": "string", "maxLength": 64}),
                  Param("after", {"type": "string", "maxLength": 256},
                        "page after this venue id (older clients; cursor is the same)"),
                  *page_params(100, 1000),
              ),
              responses={200: VenuePage}, errors=(422,),
              description="Ordered by id; next_cursor (and next_after, its older form) "
                          "is null on the last page."),
    Operation("POST", "/v1/venues/import", "importVenues",
              "Validate (and unless dry_run, import) a venue file", "venues",
              import_venues, MANAGE,
              body=Body(media={
                  "application/json": VenueCollection,
                  "application/geo+json": VenueCollection,
                  "multipart/form-data": {"type": "object", "properties": {
                      "file": {"type": "string", "format": "binary"}}, "required": ["file"]},
              }),
              params=(Param("dry_run", {"type": "boolean"}, "validate only"),
                      Param("strict", {"type": "boolean"}, "any error rejects the file"),
                      Param("repair", {"type": "boolean"}, "repair invalid polygons"),
                      _SIMPLIFY),
              responses={200: ImportReport}, errors=(400, 413, 422),
              body_limit="max_body_bytes",
              description="Answers the validation report: problems with feature index, "
                          "id, field and code. Valid venues are imported unless dry_run. "
                          + _BUDGET_DOC),
]

__all__ = ["OPERATIONS", "VenueCollection"]
