"""Map files that work offline: a folium map saved as one self-contained HTML file.

folium links Leaflet, jQuery, Bootstrap, Font Awesome and more from CDNs, so with no
network its page is blank. Here the map loads Leaflet and jQuery (folium builds popups
with it) only, inlined from the vendored copies (:mod:`server.assets`); the maps use
nothing else (pushes are ``L.DivIcon`` markers styled by :data:`PUSH_ICON_CSS`, no icon
fonts). The OpenStreetMap tiles stay online: without them
venues, tracks and pushes show on a plain background. A map that would still link an
outside script or stylesheet is refused rather than written half-working.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from server.assets import jquery_js, leaflet_css, leaflet_js

if TYPE_CHECKING:
    import folium

_JS = "geopush-vendored:leaflet.js"
_JQUERY = "geopush-vendored:jquery.js"
_CSS = "geopush-vendored:leaflet.css"

PUSH_ICON_CLASS = "geopush-push"
"""CSS class of a push marker (a red bell-like dot), for :func:`push_icon`."""

PUSH_ICON_CSS = (
    f".{PUSH_ICON_CLASS}{{background:#d62728;border:2px solid #fff;border-radius:50%;"
    "box-shadow:0 0 0 1px #333;color:#fff;font:bold 11px/14px sans-serif;"
    "height:14px;text-align:center;width:14px}"
)
_PAGE_CSS = (
    # Where tiles cannot load, a light plain ground keeps outlines and tracks readable.
    ".leaflet-container{background:#eef0f2}" + PUSH_ICON_CSS
)
_OUTSIDE = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)=\"(?!data:)([^\"]+)\"")


class OutsideAssetError(RuntimeError):
    """The map would load a script or stylesheet from outside its own file."""


def self_contained_html(fmap: folium.Map) -> str:
    """The HTML of ``fmap`` with Leaflet and jQuery inlined, no other script or stylesheet.

    Raises :class:`OutsideAssetError` naming what would still be fetched (a folium
    plugin with assets of its own: vendor them first).
    """
    fmap.default_js = [("leaflet", _JS), ("jquery", _JQUERY)]
    fmap.default_css = [("leaflet_css", _CSS)]
    page = fmap.get_root().render()
    page = page.replace(f'<script src="{_JS}"></script>', f"<script>{leaflet_js()}</script>", 1)
    page = page.replace(f'<script src="{_JQUERY}"></script>', f"<script>{jquery_js()}</script>",
                        1)
    page = page.replace(f'<link rel="stylesheet" href="{_CSS}"/>',
                        f"<style>{leaflet_css()}{_PAGE_CSS}</style>", 1)
    outside = _OUTSIDE.findall(page)
    if outside:
        raise OutsideAssetError(f"the map would load {', '.join(outside)}")
    return page


def save_map(fmap: folium.Map, path: Path) -> None:
    """Write ``fmap`` to ``path`` as one file that opens offline (UTF-8)."""
    path.write_text(self_contained_html(fmap), encoding="utf-8")


def push_icon(label: str = "!") -> folium.DivIcon:
    """A marker icon for a push: a red dot drawn by the page's own CSS (no icon font)."""
    import folium  # noqa: PLC0415 - only when a map is drawn

    return folium.DivIcon(html=f'<div class="{PUSH_ICON_CLASS}">{label}</div>',
                          icon_size=(18, 18), icon_anchor=(9, 9), class_name="")
