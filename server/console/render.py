"""How console pages are answered: Jinja templates (autoescaped) in the request's
language, the Content-Security-Policy on every ``/console`` response, and the guard
that sends a visitor without a session to the sign-in form.

The policy allows scripts and styles from this origin only (no inline script, no
``unsafe-inline``, no ``eval``), images from here and from the tile server, and
nothing framed: all behaviour lives in ``static/*.js``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web

from server.api.context import SETTINGS
from server.console.files import TEMPLATES
from server.console.i18n import LANG_COOKIE, LANGUAGES, language, translator
from server.console.session import Session, current_session
from server.errors import ApiError

_ENV = jinja2.Environment(
    loader=jinja2.DictLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(("html",)),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_ENV.filters["pretty_json"] = lambda value: json.dumps(value, ensure_ascii=False, indent=2)
"""JSON for a person to edit: indented, Chinese left as it is (``tojson`` escapes it)."""
_ENV.filters["segment"] = lambda value: quote(str(value), safe="")
"""An id as one path segment: OpenStreetMap ids hold a ``/`` (``osm:way/289767497``), which
Jinja's ``urlencode`` keeps, and a bare ``/`` in a path matches no route."""

PageHandler = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]


def csp(tile_url: str) -> str:
    """The console's Content-Security-Policy; tiles may come from ``tile_url``'s host."""
    tiles = ""
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        if parts.scheme and parts.netloc:
            tiles = f" {parts.scheme}://{parts.netloc}"
    return ("default-src 'none'; script-src 'self'; style-src 'self'; "
            f"img-src 'self' data:{tiles}; connect-src 'self'; font-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every ``/console`` answer (pages, scripts, errors) gets
    the policy, no sniffing, no framing and no referrer."""
    if not request.path.startswith("/console"):
        return
    response.headers["Content-Security-Policy"] = csp(request.app[SETTINGS].console_tile_url)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    if not request.path.startswith("/console/static"):
        response.headers["Cache-Control"] = "no-store"


def render(request: web.Request, template: str, session: Session | None, *,
           status: int = 200, **context: Any) -> web.Response:
    """``template`` rendered in the request's language for ``session`` (None: signed
    out); ``?lang=`` is remembered in a cookie."""
    lang = language(request)
    page = _ENV.get_template(template).render(
        t=translator(lang), lang=lang, languages=LANGUAGES, session=session,
        path=request.path, tile_url=request.app[SETTINGS].console_tile_url, **context)
    response = web.Response(text=page, content_type="text/html", charset="utf-8",
                            status=status)
    if request.query.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, path="/console", samesite="Strict",
                            max_age=365 * 86_400, secure=request.secure)
    return response


def signed_in(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A page for signed-in users: without a session, a redirect to the sign-in form; an
    API error (a venue that is not there, a bad query value) is a page saying so, with
    its status."""

    @wraps(handler)
    async def page(request: web.Request) -> web.StreamResponse:
        session = await current_session(request)
        if session is None:
            raise web.HTTPSeeOther("/console/sign-in")
        try:
            return await handler(request, session)
        except ApiError as exc:  # a 4xx of the API's handlers, as a page
            return render(request, "problem.html", session, status=exc.status, problem=exc)

    return page
