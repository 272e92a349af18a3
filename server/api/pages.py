"""Paging of list endpoints: ``?limit=`` and an opaque ``?cursor=``, answered with
``next_cursor`` beside the list (``null`` on the last page).

A cursor is the position of the last row of a page in the list's stable order (an id,
or a time and an id), base64url-encoded JSON tagged with the list it belongs to, so a
page never repeats or skips a row that shares a time with another. Clients treat it as
opaque; a cursor that does not decode, or belongs to another list, is a 422
``invalid_cursor`` naming ``cursor``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from server.api.context import query_int
from server.api.registry import Param
from server.errors import ApiError

MAX_CURSOR_CHARS = 1024


def encode_cursor(kind: str, key: Sequence[Any]) -> str:
    """The cursor after the row at ``key`` of list ``kind``."""
    raw = json.dumps([kind, *key], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(request: web.Request, kind: str, types: Sequence[type]) -> list[Any] | None:
    """The key in ``?cursor=`` (its parts of ``types``), or ``None`` without one."""
    text = request.query.get("cursor")
    if not text:
        return None
    try:
        if len(text) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        value = None
    if (not isinstance(value, list) or len(value) != len(types) + 1 or value[0] != kind
            or not all(_is(part, t) for part, t in zip(value[1:], types, strict=True))):
        raise ApiError(422, "invalid_cursor", "cursor is not one this list gave out; "
                       "start again without it", field="cursor")
    return [float(part) if t is float else part for part, t in zip(value[1:], types,
                                                                   strict=True)]


def _is(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, kind)


def page_limit(request: web.Request, *, default: int, maximum: int) -> int:
    """``?limit=``: 1 to ``maximum``, ``default`` when absent."""
    return query_int(request, "limit", default=default, minimum=1, maximum=maximum)


def page_params(default: int, maximum: int) -> tuple[Param, Param]:
    """The documented ``limit`` and ``cursor`` parameters of a list."""
    return (Param("limit", {"type": "integer", "minimum": 1, "maximum": maximum,
                            "default": default}, f"rows per page (default {default}, "
                                                 f"at most {maximum})"),
            Param("cursor", {"type": "string", "maxLength": MAX_CURSOR_CHARS},
                  "next_cursor of the previous page (opaque)"))
