"""What handlers get from the app: typed keys for the state ``create_app`` wires up,
and small helpers to read a request (JSON body, ids in the path, query values).

The keys live here rather than in ``server/app.py`` so that route modules can import
them without importing the composition root (which imports the routes).
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel

from server.auth import RateLimiter
from server.channels.inapp import StreamHub
from server.errors import ApiError, parse_json
from server.metrics import Metrics
from server.outbox.metrics import OutboxMetrics
from server.outbox.service import Outbox
from server.settings import Settings
from server.store.base import Store
from server.tenant_core import TenantCores


class Clock(Protocol):
    """Wall time as float epoch seconds (tests pass a fake one)."""

    def __call__(self) -> float: ...


SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
CORES = web.AppKey("cores", TenantCores)
CLOCK = web.AppKey[Clock]("clock")
METRICS = web.AppKey("metrics", Metrics)
LIMITER = web.AppKey("limiter", RateLimiter)
OPENAPI = web.AppKey[dict[str, Any]]("openapi")
HUB = web.AppKey("hub", StreamHub)
OUTBOX_METRICS = web.AppKey("outbox_metrics", OutboxMetrics)
OUTBOX = web.AppKey("outbox", Outbox)
"""Set while the app runs (``cleanup_ctx``); absent when ``outbox_workers`` is 0."""

ID_PATTERN = r"^[^\x00-\x1f\x7f]{1,256}$"
"""Ids (users, venues, campaigns): 1 to 256 characters, no control characters (the
pipeline joins ids with a control character to build idempotency keys)."""
_ID = re.compile(ID_PATTERN)


def store(request: web.Request) -> Store:
    return request.app[STORE]


def now(request: web.Request) -> float:
    return float(request.app[CLOCK]())


def path_id(request: web.Request, name: str = "id") -> str:
    """A path segment that names a record, checked against :data:`ID_PATTERN`."""
    value = request.match_info[name]
    if not _ID.match(value):
        raise ApiError(422, "invalid_id", f"{name} must be 1 to 256 characters without "
                                          "control characters", field=name)
    return value


async def read_body(request: web.Request) -> bytes:
    """The body (gzip / deflate already undone by aiohttp); 413 past the size limit."""
    return await request.read()


async def read_json(request: web.Request, *, allow_empty: bool = False) -> Any:
    """The body as JSON: 400 ``invalid_json`` when it is not, or empty (unless
    ``allow_empty``, which returns ``None`` for an empty body)."""
    body = await read_body(request)
    if not body.strip():
        if allow_empty:
            return None
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    return parse_json(body)


async def read_form(request: web.Request) -> Any:
    """The form (urlencoded or multipart) body; 400 ``invalid_form`` when it cannot be
    parsed (a bad boundary, broken part headers)."""
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
    return web.json_response(data, status=status)
