"""Third-party web assets shipped with geopush, so that what it writes works offline.

``vendor/`` holds each library at a pinned version with its licence; ``vendor/VERSIONS.md``
lists the versions, where they came from and their SHA-256 sums. Read them with
:func:`vendored`; nothing here fetches anything.
"""

from __future__ import annotations

import base64
import re
from importlib import resources

LEAFLET = "leaflet-1.9.4"
"""The folder of the Leaflet build in ``vendor/`` (BSD-2-Clause)."""

JQUERY = "jquery-3.7.1"
"""The folder of jQuery in ``vendor/`` (MIT): folium builds popups with it."""

_CSS_URL = re.compile(r"url\((images/[A-Za-z0-9_.-]+\.png)\)")


def vendored(path: str) -> bytes:
    """The bytes of ``vendor/<path>`` (for example ``leaflet-1.9.4/leaflet.js``)."""
    return resources.files(__name__).joinpath("vendor", path).read_bytes()


def leaflet_js() -> str:
    """Leaflet's minified script."""
    return vendored(f"{LEAFLET}/leaflet.js").decode("utf-8")


def jquery_js() -> str:
    """jQuery's minified script."""
    return vendored(f"{JQUERY}/jquery.min.js").decode("utf-8")


def leaflet_css() -> str:
    """Leaflet's stylesheet with its images inlined as ``data:`` URIs (one file, no
    relative paths to resolve)."""
    css = vendored(f"{LEAFLET}/leaflet.css").decode("utf-8")

    def inline(match: re.Match[str]) -> str:
        png = base64.b64encode(vendored(f"{LEAFLET}/{match.group(1)}")).decode("ascii")
        return f"url(data:image/png;base64,{png})"

    return _CSS_URL.sub(inline, css)
