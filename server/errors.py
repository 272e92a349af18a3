"""HTTP errors: one JSON shape for every failure, and the translation of core errors.

Every error answer is ``{"error": {"code", "message", "field"}}`` (``field`` is a path into
the request such as ``pings[3].lat``, or ``null``); a validation failure adds ``details``,
one entry per problem, so that a client fixes everything in one round trip.

The core's exception trees (:class:`geo.errors.GeoError`, :class:`venues.VenueError`,
:class:`triggers.errors.TriggerError`) are translated here and nowhere else: handlers
wrap core calls in :func:`core_errors`, which re-raises them as :class:`ApiError` with
``raise ... from exc`` (the traceback keeps the cause).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, ValidationError

from geo.errors import GeoError
from server.store.errors import (
    ConflictError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
)
from server.tenant_core import CoreBuildError
from triggers.errors import TriggerError
from venues import VenueError, VenueFileError

log = logging.getLogger("geopush.http")

JSON_ERROR_TYPE = "application/json"


class ApiError(Exception):
    """An HTTP problem answered as the JSON error shape.

    ``status`` is 4xx for a client's mistake; ``code`` a stable snake_case string
    clients match on; ``field`` the request path at fault (``None`` for the request as
    a whole); ``details`` further ``{field, code, message}`` items.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        details: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = list(details)
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "field": self.field}
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def response(self) -> web.Response:
        return error_response(self.status, self.body(), headers=self.headers)


def error_response(
    status: int, body: Mapping[str, Any], *, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(status=status, text=json.dumps(body, ensure_ascii=False),
                        content_type=JSON_ERROR_TYPE, headers=headers)


def field_path(loc: Sequence[int | str], prefix: Sequence[int | str] = ()) -> str | None:
    """``("pings", 3, "lat")`` → ``pings[3].lat``; an empty key → ``[""]``
    (``audience.interests[""]``); an empty path → ``None``."""
    out = ""
    for part in (*prefix, *loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "":
            out += '[""]'
        else:
            out += f".{part}" if out else str(part)
    return out or None


NON_FINITE_NUMBER = "non_finite_number"
"""The code of a number that is NaN or infinite (``1e400`` overflows to infinity), in a
JSON body, a venue file or a scenario; pydantic calls it ``finite_number``."""

_CODES = {"finite_number": NON_FINITE_NUMBER}
"""pydantic error types answered under the project's own code."""


def validation_details(
    exc: ValidationError, prefix: Sequence[int | str] = (),
    rename: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """pydantic's errors as ``{field, code, message}`` items (``code`` is pydantic's
    error type, e.g. ``missing``, ``greater_than_equal``, ``extra_forbidden``).
    ``rename`` maps model field names to the names the client sent."""
    details = []
    for error in exc.errors(include_url=False):
        loc = [p for p in error["loc"] if not _is_union_tag(p)]
        if rename:
            loc = [rename.get(p, p) if isinstance(p, str) else p for p in loc]
        code = str(error["type"])
        details.append({"field": field_path(loc, prefix), "code": _CODES.get(code, code),
                        "message": str(error["msg"])})
    return details


def _is_union_tag(part: int | str) -> bool:
    # pydantic puts the member type of a union (``float``, ``function-before[...]``,
    # a model class name) into the location; clients want the field, not the type
    # that was tried. Our field names are snake_case, so a capital marks a type.
    return isinstance(part, str) and (
        "[" in part or part in {"float", "int", "str", "bool"} or part[:1].isupper())


def from_validation_error(
    exc: ValidationError, prefix: Sequence[int | str] = (), *, status: int = 422,
    rename: Mapping[str, str] | None = None,
) -> ApiError:
    """One :class:`ApiError` for a whole pydantic failure: the first problem up front,
    every problem in ``details``."""
    details = validation_details(exc, prefix, rename)
    first = details[0] if details else {"field": None, "message": "invalid request"}
    field = first["field"]
    message = f"{field}: {first['message']}" if field else str(first["message"])
    return ApiError(status, "validation_error", message, field=field, details=details)


M = TypeVar("M", bound=BaseModel)


def validate_body(model: type[M], data: Any) -> M:
    """``model.model_validate(data)``, with one guard: some core validators (time
    windows, time-zone names) raise ``TypeError`` for a non-string value, which pydantic
    does not turn into a ValidationError. Until the core checks types first, such
    input is answered 422 here instead of crashing the request."""
    try:
        return model.model_validate(data)
    except TypeError as exc:
        raise ApiError(422, "validation_error",
                       f"a value has the wrong type (expected text): {exc}") from exc


@contextmanager
def core_errors(field: str | None = None) -> Iterator[None]:
    """Translate the core's exceptions raised inside the block into 422 answers."""
    try:
        yield
    except VenueFileError as exc:
        problem = exc.problem
        raise ApiError(422, problem.code, problem.message, field=problem.field or field) from exc
    except VenueError as exc:
        raise ApiError(422, "invalid_venue", str(exc), field=field) from exc
    except GeoError as exc:
        raise ApiError(422, "invalid_geometry", str(exc), field=field) from exc
    except TriggerError as exc:
        raise ApiError(422, "invalid_request", str(exc), field=field) from exc


STORE_RETRY_AFTER_S = 5


def store_error(request: web.Request, exc: StoreError) -> ApiError:
    """The store's exception tree as answers: missing → 404, a create meeting an
    existing id → 409, the backend down → 503 with Retry-After. Anything else from the
    store is a bug of ours: 500, logged."""
    if isinstance(exc, NotFoundError):
        return ApiError(404, "not_found", str(exc) or "no such resource")
    if isinstance(exc, ConflictError):
        return ApiError(409, "conflict", str(exc) or "it exists already")
    if isinstance(exc, StoreUnavailableError):
        log.warning("store unavailable in %s %s: %s", request.method, request.path, exc)
        return ApiError(503, "store_unavailable", "storage is unavailable; retry shortly",
                        headers={"Retry-After": str(STORE_RETRY_AFTER_S)})
    log.error("store error in %s %s", request.method, request.path, exc_info=exc)
    return ApiError(500, "internal_error",
                    "the server failed to handle this request; it has been logged")


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def body_too_large(limit_bytes: int) -> ApiError:
    """413 ``payload_too_large`` stating the limit, which counts the body after gzip or
    deflate decoding, whatever its size on the wire."""
    return ApiError(413, "payload_too_large",
                    f"request body too large: the limit is {limit_bytes:,} bytes, "
                    "counted after gzip or deflate decoding")


def http_exception_error(exc: web.HTTPException, request: web.Request) -> ApiError:
    """aiohttp's own exceptions (no route, wrong method, body too large) as API errors.

    A 404 that an id with an unencoded ``/`` explains says so (:func:`unencoded_id_hint`);
    a 413 states the limit, in bytes of the decoded body."""
    code = _HTTP_CODES.get(exc.status, "http_error")
    if exc.status == 404:
        hint = unencoded_id_hint(request)
        if hint is not None:
            return ApiError(404, code, hint[1], field=hint[0])
    if exc.status == 413:
        # aiohttp's own cap (the largest route limit); each route's is in read_body.
        return body_too_large(request.client_max_size)
    message = {
        404: "no such resource",
        405: "method not allowed; allowed: "
             + ", ".join(sorted(getattr(exc, "allowed_methods", ()))),
    }.get(exc.status, exc.reason)
    headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
    return ApiError(exc.status, code, message, headers=headers)


def unencoded_id_hint(request: web.Request) -> tuple[str, str] | None:
    """For a path no route matches: when reading some of its segments as one id would
    match a route of this method (``/v1/venues/osm:way/289767497`` against
    ``/v1/venues/{id}``), the field and a message that says to percent-encode the id,
    with the path that works. ``None`` when no route would match that way either.

    Venue ids from OpenStreetMap (``osm:way/289767497``) and OwnTracks user ids hold
    ``/``; the router splits the path at every ``/`` the client did not encode."""
    path = request.rel_url.path_safe  # %2F stays encoded: what the router matched on
    best: tuple[_LooseTemplate, dict[str, str]] | None = None
    for resource in request.app.router.resources():
        if "{" not in resource.canonical or not any(
                route.method in (request.method, "*") for route in resource):
            continue
        loose = _loose_template(resource.canonical)
        match = loose.pattern.match(path)
        if match is None:
            continue
        values = {name: _unquote_safe(v) for name, v in match.groupdict().items()}
        if not any(_is_id_with_slash(v) for v in values.values()):
            continue
        if best is None or loose.literal_chars > best[0].literal_chars:
            best = (loose, values)  # the most specific template wins: ".../{id}/hours"
    if best is None:
        return None
    loose, values = best
    fixed = "".join(lit + (quote(values[loose.names[i]], safe="") if i < len(loose.names)
                           else "") for i, lit in enumerate(loose.literals))
    name, value = next((n, v) for n, v in values.items() if "/" in v)
    return name, (
        f"no route matches this path: an id that contains '/' must be percent-encoded "
        f"in the path ('/' as %2F); for {name} {value!r}: {request.method} {fixed}")


def _unquote_safe(value: str) -> str:
    # What yarl's path_safe left encoded, decoded the way aiohttp decodes a path value.
    return value.replace("%2F", "/").replace("%25", "%")


def _is_id_with_slash(value: str) -> bool:
    return "/" in value and "" not in value.split("/")


@dataclass(frozen=True, slots=True)
class _LooseTemplate:
    pattern: re.Pattern[str]
    """The route's template with placeholders that also span ``/``."""
    literals: tuple[str, ...]
    names: tuple[str, ...]
    literal_chars: int
    """More literal text: a more specific template."""


@functools.lru_cache(maxsize=256)
def _loose_template(template: str) -> _LooseTemplate:
    parts = re.split(r"\{(\w+)(?::[^}]*)?\}", template)
    literals, names = tuple(parts[0::2]), tuple(parts[1::2])
    pattern = "".join(re.escape(lit) + (f"(?P<{names[i]}>.+)" if i < len(names) else "")
                      for i, lit in enumerate(literals))
    return _LooseTemplate(re.compile(pattern + r"\Z"), literals, names,
                          sum(len(lit) for lit in literals))


def parse_json(text: str | bytes, *, field: str | None = None) -> Any:
    """``json.loads`` with the error shape: 400 ``invalid_json`` naming line and column.
    ``NaN`` / ``Infinity`` are not JSON and are refused too."""
    try:
        return json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json",
                       f"body is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}",
                       field=field) from exc
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_json", "body is not UTF-8", field=field) from exc
    except RecursionError as exc:
        raise ApiError(400, "invalid_json", "body nests too deeply", field=field) from exc


def _no_constants(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not valid JSON", name, 0)


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every failure leaves as the JSON error shape; a 500 is logged with its traceback
    and answers ``internal_error`` without internals."""
    try:
        response: web.StreamResponse = await handler(request)
    except ApiError as exc:
        return exc.response()
    except ValidationError as exc:
        return from_validation_error(exc).response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects are answers, not errors
        return http_exception_error(exc, request).response()
    except StoreError as exc:
        return store_error(request, exc).response()
    except CoreBuildError:
        log.exception("tenant catalogue does not compile in %s %s", request.method,
                      request.path)
        return ApiError(503, "catalog_unavailable",
                        "this tenant's venues and campaigns cannot be compiled; fix the "
                        "last change", headers={"Retry-After": "5"}).response()
    except (GeoError, VenueError, TriggerError) as exc:
        # A handler forgot core_errors(); still a client problem, not a crash.
        try:
            with core_errors():
                raise exc
        except ApiError as api_error:
            return api_error.response()
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return ApiError(500, "internal_error",
                        "the server failed to handle this request; it has been logged").response()
    return response
