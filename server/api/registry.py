"""The operations of the API as data: path, method, who may call it, what goes in and
out. ``create_app`` adds a route per operation (wrapped with authentication, role check
and rate limiting) and ``server/openapi.py`` documents the same list — one source for
both, so the document cannot drift from the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from server.api.context import LIMITER, STORE
from server.auth import (
    Principal,
    Role,
    basic_credentials,
    bearer_key,
    forbidden,
    hash_key,
    unauthorized,
)
from server.errors import ApiError

Handler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]
PublicHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ALL_ROLES = frozenset(Role)
ADMIN = frozenset({Role.ADMIN})
MANAGE = frozenset({Role.ADMIN, Role.MANAGER})
INGEST = frozenset({Role.ADMIN, Role.SDK})

BEARER = "bearerAuth"
BASIC = "basicAuth"
QUERY_KEY = "queryKey"


@dataclass(frozen=True, slots=True)
class Param:
    """A query parameter for the document (its check lives in the handler)."""

    name: str
    schema: Mapping[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True, slots=True)
class Body:
    """A request body: a model (JSON) or raw media types with their schemas."""

    model: type[BaseModel] | None = None
    media: Mapping[str, Mapping[str, Any] | type[BaseModel]] = field(default_factory=dict)
    """Media types → a raw JSON schema or a model (documented as a component)."""
    required: bool = True
    description: str = ""


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    handler: Any
    roles: frozenset[Role] | None
    """``None``: public (no key needed)."""
    body: Body | None = None
    responses: Mapping[int, type[BaseModel] | Mapping[str, Any] | None] = field(
        default_factory=dict)
    """Success statuses → model (JSON), a raw schema, or None (no body documented)."""
    params: tuple[Param, ...] = ()
    schemes: tuple[str, ...] = (BEARER,)
    errors: tuple[int, ...] = ()
    """Error statuses beyond the ones every protected operation has (401, 403, 429)."""
    description: str = ""
    body_limit: str = "max_json_body_bytes"
    """The setting that caps this operation's request body (bytes): ``max_body_bytes``
    (venue files), ``max_pings_body_bytes`` (ping batches) or the default
    ``max_json_body_bytes``."""


async def authenticate(request: web.Request, op: Operation) -> Principal:
    """The caller of ``op``: its key from the schemes ``op`` accepts, looked up by
    hash. 401 without a usable key, 403 when the role may not call ``op``, 429 past
    the key's rate."""
    key = bearer_key(request)
    if key is None and BASIC in op.schemes:
        creds = basic_credentials(request)
        key = creds[1] if creds else None
    if key is None and QUERY_KEY in op.schemes:
        key = request.query.get("key") or None
    if key is None:
        raise unauthorized("send an API key: Authorization: Bearer <key>")
    computed = hash_key(key)
    record = await request.app[STORE].find_key(computed)
    if record is None or record.revoked:
        raise unauthorized("unknown or revoked API key")
    principal = Principal(key_id=record.key_id, tenant_id=record.tenant_id,
                          role=Role(record.role))
    await request.app[LIMITER].acquire(principal)
    assert op.roles is not None
    if principal.role not in op.roles:
        raise forbidden(principal.role, op.roles)
    return principal


def bind(op: Operation) -> PublicHandler:
    """The aiohttp handler of ``op``: authentication first, then the operation."""
    if op.roles is None:
        public: PublicHandler = op.handler
        return public

    async def handler(request: web.Request) -> web.StreamResponse:
        principal = await authenticate(request, op)
        response: web.StreamResponse = await op.handler(request, principal)
        return response

    handler.__name__ = op.operation_id
    return handler


def _check_unique(ops: list[Operation]) -> None:
    seen: set[tuple[str, str]] = set()
    for op in ops:
        key = (op.method, op.path)
        if key in seen:
            raise ValueError(f"operation {op.method} {op.path} is declared twice")
        seen.add(key)


def add_routes(app: web.Application, ops: list[Operation]) -> None:
    _check_unique(ops)
    for op in ops:
        app.router.add_route(op.method, op.path, bind(op), name=op.operation_id)


def not_found(what: str, ident: str) -> ApiError:
    """404 for a record this tenant does not have (another tenant's id included:
    ids are never confirmed across tenants)."""
    return ApiError(404, "not_found", f"no {what} {ident!r}", field="id")
