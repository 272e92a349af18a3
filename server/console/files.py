"""The console's files, read once at import (the event loop never touches the disk):
its templates, its own scripts and stylesheet, and the vendored Leaflet build
(``server/assets/vendor``, pinned with its licence)."""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

from aiohttp import web

from server.assets import LEAFLET

HERE = Path(__file__).parent
VENDOR = HERE.parent / "assets" / "vendor"


def _read_tree(root: Path, prefix: str = "") -> dict[str, bytes]:
    return {prefix + p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


TEMPLATES = {name: data.decode("utf-8")
             for name, data in _read_tree(HERE / "templates").items()}
"""Template name → source."""

STATIC = {
    **_read_tree(HERE / "static"),
    **_read_tree(VENDOR / LEAFLET, LEAFLET + "/"),
}
"""``/console/static/<name>`` → bytes: the console's own files and Leaflet's."""

_TAGS = {name: '"' + hashlib.sha256(data).hexdigest()[:20] + '"' for name, data in STATIC.items()}


async def static_file(request: web.Request) -> web.Response:
    """A file of :data:`STATIC` (404 for any other name), with an ETag."""
    name = request.match_info["name"]
    data = STATIC.get(name)
    if data is None:
        raise web.HTTPNotFound()
    tag = _TAGS[name]
    if request.headers.get("If-None-Match") == tag:
        return web.Response(status=304, headers={"ETag": tag})
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return web.Response(body=data, content_type=kind,
                        headers={"ETag": tag, "Cache-Control": "public, max-age=3600"})
