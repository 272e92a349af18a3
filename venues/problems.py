"""What validation found wrong with a venue file: one :class:`Problem` per finding.

Validation never raises for bad venues; it returns problems, so that one upload gets
one complete report. Codes are stable snake_case strings (clients and tests match on
them); messages are for people and may change.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from geo.latlng import LatLng

FILE_LEVEL = -1
"""``feature_index`` of a problem about the whole file rather than one feature."""


class Severity(StrEnum):
    """An ``error`` rejects the feature (or, under ``strict``, the file); a
    ``warning`` keeps it and says what was assumed or repaired."""

    ERROR = "error"
    WARNING = "warning"


class Code(StrEnum):
    """The stable problem codes. Add new ones; never rename one."""

    # the file as a whole
    UNREADABLE_FILE = "unreadable_file"
    NOT_UTF8 = "not_utf8"
    INVALID_JSON = "invalid_json"
    TRUNCATED_JSON = "truncated_json"
    NOT_A_FEATURE_COLLECTION = "not_a_feature_collection"
    EMPTY_COLLECTION = "empty_collection"
    UNKNOWN_PROPERTY = "unknown_property"
    MISSING_CRS = "missing_crs"
    UNSUPPORTED_CRS = "unsupported_crs"
    STRICT_REJECTED = "strict_rejected"
    # one feature: structure and types
    NOT_A_FEATURE = "not_a_feature"
    INVALID_TYPE = "invalid_type"
    NON_FINITE_NUMBER = "non_finite_number"
    # identity and hierarchy
    MISSING_ID = "missing_id"
    CONFLICTING_ID = "conflicting_id"
    DUPLICATE_ID = "duplicate_id"
    UNKNOWN_PARENT = "unknown_parent"
    PARENT_REJECTED = "parent_rejected"
    PARENT_CYCLE = "parent_cycle"
    NOT_INSIDE_PARENT = "not_inside_parent"
    # business fields
    UNKNOWN_KIND = "unknown_kind"
    UNKNOWN_TIMEZONE = "unknown_timezone"
    DWELL_OUT_OF_RANGE = "dwell_out_of_range"
    OPENING_HOURS_NOT_UNDERSTOOD = "opening_hours_not_understood"
    # geometry
    MISSING_GEOMETRY = "missing_geometry"
    EMPTY_GEOMETRY = "empty_geometry"
    UNSUPPORTED_GEOMETRY = "unsupported_geometry"
    COORDINATE_OUT_OF_RANGE = "coordinate_out_of_range"
    UNCLOSED_RING = "unclosed_ring"
    RING_TOO_SHORT = "ring_too_short"
    SELF_INTERSECTION = "self_intersection"
    HOLE_OUTSIDE_SHELL = "hole_outside_shell"
    INVALID_GEOMETRY = "invalid_geometry"
    DEGENERATE_POLYGON = "degenerate_polygon"
    MISSING_RADIUS = "missing_radius"
    RADIUS_OUT_OF_RANGE = "radius_out_of_range"
    RADIUS_IGNORED = "radius_ignored"
    AREA_TOO_LARGE = "area_too_large"
    ANTIMERIDIAN_SPLIT = "antimeridian_split"
    TOO_MANY_VERTICES = "too_many_vertices"
    SIMPLIFIED = "simplified"
    # sizes
    TEXT_TOO_LONG = "text_too_long"
    TOO_MANY_ITEMS = "too_many_items"
    METADATA_TOO_LARGE = "metadata_too_large"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding about a venue file.

    ``feature_index`` is the 0-based position in the file's feature list (for a
    GeoJSON file, ``features[i]``; for other formats, the row across all layers), or
    :data:`FILE_LEVEL`. ``field`` is a path into the feature such as ``id``,
    ``properties.radius_m`` or ``geometry.coordinates[0][3]``. ``at`` is where the
    problem lies on a map when the feature has a usable coordinate, else ``None``.
    """

    feature_index: int
    feature_id: str | None
    field: str
    code: str
    message: str
    severity: Severity = Severity.ERROR
    at: LatLng | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def describe(self, source: str) -> str:
        """One line for people: ``FILE: feature 12 (id 'x'): field: message [code]``."""
        parts = [source]
        if self.feature_index != FILE_LEVEL:
            ident = f"id {self.feature_id!r}" if self.feature_id is not None else "no id"
            parts.append(f"feature {self.feature_index} ({ident})")
        if self.field:
            parts.append(self.field)
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        return ": ".join(parts) + f": {prefix}{self.message} [{self.code}]"


class Findings:
    """Collects one feature's problems while it is checked.

    The feature's id and map position are often known only after its fields are
    checked, so findings are plain tuples until :meth:`problems` stamps them.
    """

    __slots__ = ("_items", "at")

    def __init__(self) -> None:
        self._items: list[tuple[str, Code, str, Severity]] = []
        self.at: LatLng | None = None
        """Where the feature is on a map, once a usable position is known."""

    def error(self, field: str, code: Code, message: str) -> None:
        self._items.append((field, code, message, Severity.ERROR))

    def warning(self, field: str, code: Code, message: str) -> None:
        self._items.append((field, code, message, Severity.WARNING))

    @property
    def has_errors(self) -> bool:
        return any(sev is Severity.ERROR for *_, sev in self._items)

    def error_count(self) -> int:
        return sum(sev is Severity.ERROR for *_, sev in self._items)

    def problems(self, feature_index: int, feature_id: str | None) -> list[Problem]:
        return [
            Problem(feature_index, feature_id, field, code.value, message, sev, self.at)
            for field, code, message, sev in self._items
        ]
