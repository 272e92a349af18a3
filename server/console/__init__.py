"""The web console at ``/console``: venue managers and marketers in a browser.

Served by the service's own process beside the API: pages rendered from Jinja
templates (:mod:`server.console.pages`), signed session cookies with CSRF tokens
(:mod:`server.console.session`), the API's handlers under the session
(:mod:`server.console.bridge`), English and Chinese (:mod:`server.console.i18n`), and
static scripts and vendored assets (no CDN; only map tiles come from elsewhere).
"""

from __future__ import annotations

from aiohttp import web

from server.api.context import SETTINGS
from server.api.registry import Operation
from server.console.bridge import add_bridge
from server.console.files import static_file
from server.console.pages import add_pages
from server.console.render import add_security_headers
from server.console.session import SESSIONS, sessions_for


def add_console(app: web.Application, operations: list[Operation]) -> None:
    """Wire the console into ``app``: its pages, ``/console/api/...`` over
    ``operations``, static files and the security headers of every answer."""
    app[SESSIONS] = sessions_for(app[SETTINGS].console_secret)
    add_pages(app)
    add_bridge(app, operations)
    app.router.add_get("/console/static/{name:.+}", static_file)
    app.on_response_prepare.append(add_security_headers)
