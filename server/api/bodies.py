"""Request bodies as clients compress them: ``Content-Encoding`` undone by the app.

aiohttp can inflate gzip and deflate bodies itself, but a body that does not inflate
then fails inside its parser, past every middleware: the handler sees an exception (a
500), the connection is dropped and aiohttp logs a traceback; and ``br`` / ``zstd``,
whose decoders are optional packages, end in a plain-text 400 before any handler runs.
So :func:`server.app.create_app` turns aiohttp's decoding off (``auto_decompress``) and
the body readers in :mod:`server.api.context` call :func:`decode` here, which answers
every case with the JSON error shape:

- ``gzip`` (``x-gzip``) and ``deflate`` (the zlib format, or raw deflate as some clients
  send it) are inflated, one coding after another when several are listed;
- a body that does not inflate, or stops early: 400 ``invalid_body``;
- a body that inflates past the request size limit: 413 ``payload_too_large``, without
  inflating more than the limit (a small bomb cannot fill the memory);
- any other coding: 415 ``unsupported_encoding`` with ``Accept-Encoding: gzip, deflate``
  (RFC 7694), before the body is read.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence

from server.errors import ApiError, body_too_large

SUPPORTED = ("gzip", "deflate")
"""The content codings request bodies may use, as ``Accept-Encoding`` lists them."""

_ALIASES = {"x-gzip": "gzip"}  # RFC 9110 8.4.1.3: x-gzip is gzip
_INLINE_BYTES = 64 * 1024
"""Compressed bodies up to this size are inflated in the event loop (well under a
millisecond); larger ones in a worker thread (zlib releases the GIL)."""


def content_codings(header: str) -> tuple[str, ...]:
    """The codings of a ``Content-Encoding`` header, in the order they were applied,
    ``identity`` left out; 415 ``unsupported_encoding`` for one we cannot undo."""
    codings = []
    for part in header.split(","):
        name = part.strip().lower()
        if not name or name == "identity":
            continue
        name = _ALIASES.get(name, name)
        if name not in SUPPORTED:
            shown = part.strip()[:40]
            raise ApiError(415, "unsupported_encoding",
                           f"Content-Encoding {shown!r} is not supported; send the body "
                           f"uncompressed or with {' or '.join(SUPPORTED)}",
                           headers={"Accept-Encoding": ", ".join(SUPPORTED)})
        codings.append(name)
    return tuple(codings)


async def decode(raw: bytes, codings: Sequence[str], *, limit: int) -> bytes:
    """``raw`` with ``codings`` undone (the last applied first); at most ``limit`` bytes
    come out (413 beyond), a body that does not inflate is a 400. An empty body stays
    empty: there is nothing to inflate."""
    body = raw
    for coding in reversed(codings):
        if not body:
            break
        if len(body) > _INLINE_BYTES:
            body = await asyncio.to_thread(inflate, body, coding, limit)
        else:
            body = inflate(body, coding, limit)
    return body


def inflate(data: bytes, coding: str, limit: int) -> bytes:
    """One ``gzip`` or ``deflate`` layer undone, at most ``limit`` bytes of it."""
    if coding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    else:
        # RFC 9110's deflate is the zlib format (its first byte names method 8); raw
        # deflate without the zlib header is a common mistake, read as aiohttp reads it.
        wbits = zlib.MAX_WBITS if data[0] & 0x0F == 8 else -zlib.MAX_WBITS
    out = bytearray()
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise _invalid(coding, f"it does not inflate ({exc})") from exc
        if len(out) > limit or inflater.unconsumed_tail:
            raise body_too_large(limit)
        if not inflater.eof:
            raise _invalid(coding, "it ends before the compressed stream does")
        data = inflater.unused_data
        if not data:
            return bytes(out)
        if coding != "gzip":
            raise _invalid(coding, "there are bytes after the compressed stream")
        # A gzip body may be several members one after another (RFC 1952 2.2).


def _invalid(coding: str, why: str) -> ApiError:
    return ApiError(400, "invalid_body", f"the body is not valid {coding}: {why}")
