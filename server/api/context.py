"""What handlers get from the app: typed keys for the state ``create_app`` wires up,
and small helpers to read a request (JSON body, ids in the path, query values).

Every ``web.AppKey`` of the app is defined here, in one place: rather than in
``server/app.py`` so that route modules can import them without importing the
composition root (which imports the routes).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import parse_qsl

import orjson
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDict, MultiDictProxy
from pydantic import BaseModel

from server.api.bodies import content_codings, decode
from server.auth import Limiter
from server.behaviour_group_commit import BehaviourGroupCommitter
from server.channels.inapp import StreamFanout, StreamHub
from server.errors import NON_FINITE_NUMBER, ApiError, body_too_large, field_path, parse_json
from server.learner import ProfileLearner
from server.metrics import Metrics
from server.outbox.metrics import OutboxMetrics
from server.outbox.service import Outbox
from server.pipeline import IngestResult
from server.settings import Settings
from server.store.roles import Store
from server.tenant_core import CoreBuildError, TenantCores
from server.venue_budget import VenueWriteBudget
from server.venue_builds import VenueWorkers
from triggers.behaviour.events import BehaviourEvent
from triggers.pings import PingBatch
from venues.values import first_non_finite, first_unstorable_text

log = logging.getLogger("geopush.api")


class Clock(Protocol):
    """Wall time as float epoch seconds (tests pass a fake one)."""

    def __call__(self) -> float: ...


SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
CORES = web.AppKey("cores", TenantCores)
CLOCK = web.AppKey[Clock]("clock")
VENUE_WORKERS = web.AppKey("venue_workers", VenueWorkers)
VENUE_BUDGET = web.AppKey("venue_budget", VenueWriteBudget)
METRICS = web.AppKey("metrics", Metrics)
LIMITER = web.AppKey[Limiter]("limiter")
OPENAPI = web.AppKey[dict[str, Any]]("openapi")
HUB = web.AppKey("hub", StreamHub)
FANOUT = web.AppKey[StreamFanout]("fanout")
"""Set while the app runs (``cleanup_ctx``): where in-app frames are published."""
OUTBOX_METRICS = web.AppKey("outbox_metrics", OutboxMetrics)
BODY_LIMITS = web.AppKey("body_limits", dict[str, int])
"""Operation id → the largest request body it reads, in bytes (after gzip decoding)."""
OUTBOX = web.AppKey("outbox", Outbox)
"""Set while the app runs (``cleanup_ctx``); absent when ``outbox_workers`` is 0."""


class PingIngest(Protocol):
    """Where the ping routes hand a validated batch: the group committer (the engine,
    here), or in the partitioned mode's gateway the ping stream
    (:class:`server.cluster.gateway.StreamIngest`)."""

    async def ingest(self, tenant_id: str, pings: PingBatch, *, now: float) -> IngestResult:
        ...

    async def close(self) -> None: ...


GROUPS = web.AppKey[PingIngest]("groups")
"""The app's ingest of ping batches: a :class:`GroupCommitter` unless a gateway."""


class EventPublisher(Protocol):
    """Where a gateway of the partitioned mode hands the checked behaviour events of
    ``POST /v1/events`` (:class:`server.cluster.events.StreamEvents`): the partitions'
    owners store them."""

    async def publish(self, tenant_id: str, events: Sequence[BehaviourEvent], *,
                      now: float) -> None: ...


EVENT_STREAM = web.AppKey[EventPublisher]("event_stream")
"""Set on a gateway only: behaviour events go to the stream, not to the store."""
EVENT_GROUPS = web.AppKey("event_groups", BehaviourGroupCommitter)
"""The group commit of behaviour events (set while the app runs, on PostgreSQL and not
on a gateway)."""
LEARNER = web.AppKey("learner", ProfileLearner)
"""The app's profile learner."""

ID_PATTERN = r"^[^\x00-\x1f\x7f]{1,256}$"
"""Ids (users, venues, campaigns): 1 to 256 characters, no control characters (the
pipeline joins ids with a control character to build idempotency keys)."""
_ID = re.compile(ID_PATTERN)


def store(request: web.Request) -> Store:
    return request.app[STORE]


async def catalog_changed(request: web.Request, tenant_id: str) -> None:
    """After a write that changed the tenant's venues, campaigns or policy: wait until
    this node's core has it (built off the loop while ingestion goes on with the
    previous one), so the caller's next request here sees the change. A catalogue that
    does not compile was logged by the rebuild and keeps the previous core; the write
    itself stands."""
    try:
        await request.app[CORES].refresh(store(request), tenant_id)
    except CoreBuildError as exc:
        log.warning("tenant %s: the changed catalogue does not compile: %s", tenant_id, exc)


def now(request: web.Request) -> float:
    return float(request.app[CLOCK]())


def path_id(request: web.Request, name: str = "id") -> str:
    """A path segment that names a record, checked against :data:`ID_PATTERN`."""
    value = request.match_info[name]
    if not _ID.match(value):
        raise ApiError(422, "invalid_id", f"{name} must be 1 to 256 characters without "
                                          "control characters", field=name)
    return value


def body_limit(request: web.Request) -> int:
    """The largest body the request's operation reads (see :data:`BODY_LIMITS`); the
    application's own limit for anything else."""
    name = request.match_info.route.name or ""
    return request.app[BODY_LIMITS].get(name, request.app[SETTINGS].max_body_bytes)


async def read_body(request: web.Request) -> bytes:
    """The body, its ``Content-Encoding`` (gzip, deflate) undone; 413
    ``payload_too_large`` past the operation's limit (:func:`body_limit`), refused from
    ``Content-Length`` before reading, else as soon as the bytes read, or inflated, pass
    it (a gzip bomb included); 400 ``invalid_body`` when it does not inflate, 415
    ``unsupported_encoding`` for other codings (see :mod:`server.api.bodies`)."""
    limit = body_limit(request)
    codings = content_codings(request.headers.get(hdrs.CONTENT_ENCODING, ""))
    if request.content_length is not None and request.content_length > limit:
        raise body_too_large(limit)
    body = bytearray()
    while chunk := await request.content.readany():
        body += chunk
        if len(body) > limit:
            raise body_too_large(limit)
    if not codings:
        return bytes(body)
    return await decode(bytes(body), codings, limit=limit)


async def read_json(
    request: web.Request, *, allow_empty: bool = False, check_whole_body: bool = True
) -> Any:
    """The body as JSON: 400 ``invalid_json`` when it is not, or empty (unless
    ``allow_empty``, which returns ``None`` for an empty body); 422 ``non_finite_number``
    for a number that overflows to infinity and 422 ``invalid_text`` for a string no
    database can store (see :func:`loads`). ``check_whole_body=False`` leaves those
    checks to the caller's per-item validation (ping batches: one bad ping must not
    sink the others)."""
    body = await read_body(request)
    if not body.strip():
        if allow_empty:
            return None
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    if len(body) > PARSE_IN_THREAD_BYTES:
        # A venue file of megabytes takes tens of milliseconds to parse: not on the loop.
        return await asyncio.to_thread(loads, body, check_values=check_whole_body)
    return loads(body, check_values=check_whole_body)


PARSE_IN_THREAD_BYTES = 256 * 1024
"""Bodies larger than this are parsed off the event loop (a ping batch is smaller)."""

# Every byte to b"0" if it is a digit, else b" ": a run of 19 digits shows as b"0" * 19.
_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_NUMBER = b"0" * 19


def loads(body: bytes, *, check_values: bool = True) -> Any:
    """:func:`~server.errors.parse_json`'s answer, orjson's speed (about 4x on a batch of
    pings). orjson refuses some JSON the standard library takes (a byte order mark, a
    lone ``\\ud800`` escape, ``1e400``) and reads an integer beyond 64 bits as a float:
    on any refusal, and when the body has a run of 19 digits, the standard library reads
    it instead, so values, and the messages of a 400, stay what they were.

    With ``check_values``, a number that overflows to infinity (``1e400``; the standard
    library reads it as ``inf``, orjson refuses it) is a 422 ``non_finite_number``
    naming it, and a string holding NUL or a lone surrogate a 422 ``invalid_text``:
    PostgreSQL's text and jsonb refuse both, no JSON writer can put an infinity back,
    and a client error must not become a 5xx."""
    if _LONG_NUMBER not in body.translate(_DIGITS):
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        else:
            # orjson reads only finite numbers: no walk for them here.
            if check_values and b"\\u0000" in body:
                _refuse_unstorable_text(value)
            return value
    value = parse_json(body)
    if check_values:
        refuse_non_finite(value)
        _refuse_unstorable_text(value)
    return value


def refuse_non_finite(value: Any, prefix: tuple[int | str, ...] = ()) -> None:
    """422 ``non_finite_number`` naming the first NaN or infinity in ``value`` (a parsed
    JSON document), if there is one."""
    where = first_non_finite(value)
    if where is not None:
        field = field_path(where, prefix)
        raise ApiError(422, NON_FINITE_NUMBER,
                       f"{field or 'the body'} is not a finite number (it overflows a "
                       "64-bit float); numbers must be finite", field=field)


def _refuse_unstorable_text(value: Any) -> None:
    """422 ``invalid_text`` naming the first string (value or key) that no database text
    column can hold: one with a NUL character, or a lone UTF-16 surrogate (``\\ud800``
    escaped alone) that has no UTF-8 form. Valid JSON, so the parser let it through."""
    where = first_unstorable_text(value)
    if where is not None:
        raise ApiError(422, "invalid_text",
                       "text must not contain NUL characters or lone surrogates",
                       field=field_path(where))


async def read_form(request: web.Request) -> Any:
    """The form (urlencoded or multipart) body; 400 ``invalid_form`` when it cannot be
    parsed (a bad boundary, broken part headers). A compressed urlencoded form is
    inflated as :func:`read_body` does; a compressed multipart body is a 415: upload
    the file as it is (GeoPackage, zipped Shapefile and KMZ are compressed already)."""
    limit = body_limit(request)
    if request.content_length is not None and request.content_length > limit:
        raise body_too_large(limit)
    if content_codings(request.headers.get(hdrs.CONTENT_ENCODING, "")):
        if request.content_type != "application/x-www-form-urlencoded":
            raise ApiError(415, "unsupported_encoding",
                           "a compressed multipart body is not supported; send it "
                           "without Content-Encoding")
        text = (await read_body(request)).rstrip().decode(request.charset or "utf-8",
                                                          errors="replace")
        return MultiDictProxy(MultiDict(parse_qsl(text, keep_blank_values=True)))
    try:
        return await request.post()
    except web.HTTPException:
        raise  # 413 and friends keep their status
    except (ValueError, HttpProcessingError) as exc:
        raise ApiError(400, "invalid_form", f"the form body cannot be parsed: {exc}") from exc


def query_int(
    request: web.Request, name: str, *, default: int, minimum: int, maximum: int
) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(422, "validation_error", f"{name} must be an integer",
                       field=name) from None
    if not minimum <= value <= maximum:
        raise ApiError(422, "validation_error", f"{name} must be between {minimum} and "
                                                f"{maximum}", field=name)
    return value


def query_bool(request: web.Request, name: str, *, default: bool = False) -> bool:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    lowered = text.lower()
    if lowered in {"true", "1", "yes"}:
        return True
    if lowered in {"false", "0", "no"}:
        return False
    raise ApiError(422, "validation_error", f"{name} must be true or false", field=name)


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """``data`` (already JSON-ready, or a pydantic model) as a JSON answer."""
    if isinstance(data, BaseModel):
        return web.Response(status=status, text=data.model_dump_json(),
                            content_type="application/json")
    return web.Response(status=status, body=dumps(data), content_type="application/json",
                        charset="utf-8")


def dumps(data: Any) -> bytes:
    """``data`` as JSON, by orjson (about 10x the standard library's speed). A NaN or an
    infinity is written as ``null``: ``NaN`` and ``Infinity`` are not JSON, and no
    client's parser reads them. orjson refuses keys that are not strings and integers
    beyond 64 bits: for those the standard library writes the answer."""
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(_nulled(data), allow_nan=False).encode()


def _nulled(data: Any) -> Any:
    """``data`` with every NaN and infinity replaced by ``None`` (as orjson writes them)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _nulled(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_nulled(v) for v in data]
    return data
