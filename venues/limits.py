"""How big one venue may be: vertices, text fields, tags, metadata.

A venue is tenant input that the service keeps in memory, indexes and answers on every
list: one 600,000-vertex polygon (15 MB) took the service 3.5 s to take in, and every
rebuild of its tenant's index after it. The limits here are checked by validation, for
the HTTP API and ``geopush venues validate`` alike, and reported as problems naming the
field (``geometry``, ``properties.name``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

DEFAULT_MAX_VERTICES: Final = 20_000
"""Vertices of one venue's geometry, every ring and part counted. A hundred times the
most detailed outline in the fixtures (Lasipalatsinaukio, Helsinki: 174); detailed OSM
outlines of airports have a few thousand. Indexing a venue this size takes ~150 ms
(600,000 vertices took seconds)."""

SIMPLIFY_INPUT_FACTOR: Final = 25
"""Simplification is tried on at most this many times ``max_vertices`` (building the
shape of more would itself cost seconds); bigger is refused outright."""

METRES_PER_DEGREE: Final = 111_320.0
"""Metres per degree of latitude (and of longitude at the equator, fewer elsewhere), so
a tolerance of ``m / METRES_PER_DEGREE`` degrees never moves a point more than ``m``."""

MAX_NAME_CHARS: Final = 256
MAX_ID_CHARS: Final = 256
"""Ids as the API takes them (``server.api.context.ID_PATTERN``)."""
MAX_TAGS: Final = 64
MAX_TAG_CHARS: Final = 64
MAX_OPENING_HOURS_CHARS: Final = 1024
"""OSM's longest real ``opening_hours`` values are a few hundred characters."""
MAX_TIMEZONE_CHARS: Final = 64
MAX_METADATA_BYTES: Final = 16 * 1024
"""``metadata`` as compact JSON: room for a station's lines, exits and directions."""


@dataclass(frozen=True, slots=True)
class VenueLimits:
    """Geometry limits of one validation run (text limits are the constants above).

    ``simplify_m``: when a geometry has more than ``max_vertices``, simplify it (GEOS
    Douglas-Peucker, topology preserved) so that no point moves more than this many
    metres, and keep it, with a warning, when that brings it within the limit. ``None``:
    refuse it (``too_many_vertices``).
    """

    max_vertices: int = DEFAULT_MAX_VERTICES
    simplify_m: float | None = None
