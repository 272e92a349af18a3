"""Pieces shared by the CLI subcommands."""

from __future__ import annotations

import argparse
from typing import Any


class CliError(Exception):
    """A user-facing CLI failure: printed as one line, no traceback.

    ``location`` is ``FILE`` or ``FILE:LINE`` and ``field`` the offending column or
    property, so that the message names exactly what to fix.
    """

    def __init__(
        self,
        message: str,
        *,
        location: str | None = None,
        field: str | None = None,
        exit_status: int = 2,
    ) -> None:
        parts = [p for p in (location, field) if p]
        super().__init__(": ".join([*parts, message]))
        self.location = location
        self.field = field
        self.exit_status = exit_status


FIRST_T, END_T = 0.0, 7_258_118_400.0
"""The times an event or a ping in a file may have: from 1970-01-01 to the end of the
year 2199 (UTC). A time outside is a broken export (a negative count, a value in the
wrong unit), and the calendar arithmetic (pandas' nanosecond times end in 2262) cannot
place it."""
TIME_RANGE_SAID = "outside 1970-01-01 - 2199-12-31"


def not_utf8(path: str, exc: UnicodeDecodeError) -> CliError:
    """The error for a text file that is not UTF-8, naming its first such line: a text
    reader decodes a block at a time and cannot say which line it was on, but a
    multi-byte character never spans a newline, so the lines decode one by one."""
    try:
        with open(path, "rb") as raw:
            for number, line in enumerate(raw, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as bad:
                    return CliError(f"not UTF-8 text (byte {bad.start + 1} of the line)",
                                    location=f"{path}:{number}")
    except OSError:
        pass
    return CliError(f"not UTF-8 text ({exc.reason})", location=path)


def get_json(target: str, key: str | None, path: str, *, params: dict[str, str] | None = None,
             timeout: float = 30, field: str = "--target") -> dict[str, Any]:
    """``GET target + path`` with a manager or admin ``key``, for the commands that read a
    running server (``stats``, ``model report``, ``sendtime preview``): the JSON answer,
    or a :class:`CliError` naming ``field`` with the server's own error message."""
    import httpx  # noqa: PLC0415 - only the commands that talk to a server pay for it

    if not key:
        raise CliError("--target needs --key (or GEOPUSH_API_KEY): a manager or admin key",
                       field="--key")
    if not (key.isascii() and key.isprintable()):
        # An HTTP header carries ASCII only; httpx would fail to encode it.
        raise CliError("an API key is printable ASCII (as geopush makes them)",
                       field="--key")
    try:
        response = httpx.get(f"{target.rstrip('/')}{path}", params=params,
                             headers={"Authorization": f"Bearer {key}"}, timeout=timeout)
    except httpx.InvalidURL as exc:
        raise CliError(f"not a URL: {target!r} ({exc})", field="--target") from exc
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach {target}: {exc}", field="--target") from exc
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise CliError(f"{response.status_code}: {message}", field=field)
    try:
        body = response.json()
    except ValueError as exc:
        raise CliError(f"{target} answered {path} with something other than JSON: is it "
                       "a geopush server?", field="--target") from exc
    if not isinstance(body, dict):
        raise CliError(f"{target} answered {path} with JSON that is not an object: is it "
                       "a geopush server?", field="--target")
    return body


def database_url(given: str | None) -> str:
    """``--database-url``, else ``$DATABASE_URL``, for the commands that read PostgreSQL
    or a running server (never the embedded store: it lives inside the server)."""
    import os  # noqa: PLC0415 - keeps this module's import free for `geopush --help`

    url = given or os.environ.get("DATABASE_URL")
    if not url:
        raise CliError("give --database-url (or DATABASE_URL) or --target URL --key K; "
                       "the embedded store lives only inside a running server")
    return url


DEFAULT_TENANT = "default"
"""``server.auth.DEFAULT_TENANT`` (the tenant ``geopush serve --admin-key`` makes), written
out so that defining the arguments imports no aiohttp (a test keeps the two equal)."""


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of a command that reads PostgreSQL or a running server: exactly one
    of ``--database-url`` and ``--target`` (with ``--key``), the tenant and schema for the
    database, and ``--json``."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--database-url", default=None, metavar="URL",
                        help="read PostgreSQL directly (default: $DATABASE_URL)")
    source.add_argument("--target", default=None, metavar="URL",
                        help="ask a running server (its URL)")
    parser.add_argument("--key", default=None,
                        help="API key for --target (default: $GEOPUSH_API_KEY)")
    parser.add_argument("--tenant", default=DEFAULT_TENANT,
                        help=f"tenant, with --database-url (default: {DEFAULT_TENANT})")
    parser.add_argument("--schema", default="public",
                        help="PostgreSQL schema, with --database-url (default: public)")
    parser.add_argument("--json", action="store_true", help="print the JSON document")
