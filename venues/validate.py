"""Validating venue features: one report per file, valid venues kept, the rest explained.

Pure: takes already-parsed GeoJSON-like objects (from a file, a request body or rows
read by GDAL) and returns a :class:`~venues.result.VenueLoad`; it never raises for bad
venues. Only a body that is not a FeatureCollection at all raises
:class:`~venues.errors.VenueFileError`.

Rules beyond single features:

- **ids**: the first feature with an id owns it; later ones are rejected
  (``duplicate_id``), whether or not the first is valid.
- **parents**: ``parent_id`` must name a venue in the same file that was kept, must not
  form a cycle, and must contain the child: at least :data:`MIN_INSIDE_PARENT` of the
  child's geodesic area lies inside the parent.
- **strict**: any error rejects the whole file (``venues`` is empty).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from shapely.geometry.base import BaseGeometry

from venues.errors import VenueFileError
from venues.fields import KNOWN_PROPERTIES, check_fields, feature_id
from venues.geometry import (
    DEFAULT_MAX_AREA_KM2,
    check_geometry,
    circle_polygon,
    geodesic_area_m2,
    polygonal_part,
)
from venues.limits import VenueLimits
from venues.model import Venue, VenueKind
from venues.outline import feature_outlines
from venues.problems import FILE_LEVEL, Code, Findings, Problem, Severity
from venues.result import LoadSummary, VenueLoad
from venues.values import show, type_name

ProgressHook = Callable[[int, int], None]
"""Called as ``hook(done, total)`` after each feature is checked."""

MIN_INSIDE_PARENT = 0.99
"""Share of a child's area that must lie inside its parent. Not 1.0: a store and its
mall are often digitised separately, and their shared walls disagree by a metre or so."""

_GEOMETRY_TYPES = frozenset({
    "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
    "GeometryCollection",
})


class _Checked:
    """One feature while the file is being checked (mutable until the report is built)."""

    __slots__ = ("findings", "repaired", "venue", "vid")

    def __init__(self, vid: str | None, findings: Findings, venue: Venue | None,
                 repaired: bool) -> None:
        self.vid = vid
        self.findings = findings
        self.venue = venue
        self.repaired = repaired

    def reject(self, field: str, code: Code, message: str) -> None:
        self.findings.error(field, code, message)
        self.venue = None


def parse_feature_collection(
    obj: object,
    *,
    source: str,
    strict: bool = False,
    repair: bool = False,
    max_area_km2: float = DEFAULT_MAX_AREA_KM2,
    progress: ProgressHook | None = None,
    limits: VenueLimits | None = None,
    outlines: bool = False,
) -> VenueLoad:
    """Validate an already-parsed GeoJSON object (e.g. an HTTP request body).

    A FeatureCollection is the normal input; a single Feature is read as a collection
    of one (with a warning). Anything else raises :class:`VenueFileError`.
    ``max_area_km2`` caps polygon areas; ``repair`` fixes invalid polygons with
    make_valid instead of rejecting them; ``limits`` caps vertices (and may simplify).
    """
    if not isinstance(obj, Mapping):
        raise _file_error(source, "", f"expected a GeoJSON FeatureCollection object, "
                                      f"found {type_name(obj)}")
    kind = obj.get("type")
    attribution = obj.get("attribution")
    def validate(features: Sequence[object], file_problems: Sequence[Problem]) -> VenueLoad:
        return validate_features(
            features, source=source, strict=strict, repair=repair, max_area_km2=max_area_km2,
            progress=progress, file_problems=file_problems,
            attribution=attribution if isinstance(attribution, str) else None, limits=limits,
            outlines=outlines,
        )

    if kind == "Feature":
        note = Problem(FILE_LEVEL, None, "type", Code.NOT_A_FEATURE_COLLECTION.value,
                       "a single Feature, not a FeatureCollection: read as one venue",
                       Severity.WARNING)
        return validate([obj], [note])
    if kind in _GEOMETRY_TYPES:
        raise _file_error(source, "type", f"a bare {kind} geometry has no id or properties: "
                                          "wrap it in a Feature inside a FeatureCollection")
    if kind != "FeatureCollection":
        raise _file_error(source, "type", f"type is {show(kind)}, expected 'FeatureCollection'")
    features = obj.get("features")
    if not isinstance(features, list):
        raise _file_error(source, "features", f"features must be an array of Features, "
                                              f"not {type_name(features)}")
    if not is_wgs84_crs_member(obj.get("crs")):
        raise VenueFileError(source, Problem(
            FILE_LEVEL, None, "crs", Code.UNSUPPORTED_CRS.value,
            f"coordinates in {_named_crs(obj.get('crs'))} are not WGS84 longitude/latitude; "
            "load the file with load_venues (which reprojects) or convert it to EPSG:4326"))
    file_problems = []
    if not features:
        file_problems.append(Problem(FILE_LEVEL, None, "features", Code.EMPTY_COLLECTION.value,
                                     "the FeatureCollection has no features"))
    return validate(features, file_problems)


def validate_features(
    features: Sequence[object],
    *,
    source: str,
    strict: bool = False,
    repair: bool = False,
    max_area_km2: float = DEFAULT_MAX_AREA_KM2,
    progress: ProgressHook | None = None,
    file_problems: Sequence[Problem] = (),
    attribution: str | None = None,
    ignored_properties: frozenset[str] = frozenset(),
    limits: VenueLimits | None = None,
    outlines: bool = False,
) -> VenueLoad:
    """Check GeoJSON-like Feature objects and keep the valid ones as venues.

    ``file_problems`` come from reading (they are reported first and count under
    ``strict``); ``ignored_properties`` are format noise (KML's ``description`` ...)
    left out of the unused-property warning. ``outlines``: add each feature's outline
    for a map of the report (:func:`~venues.outline.feature_outlines`, features with
    problems first).
    """
    checked: list[_Checked] = []
    unused: Counter[str] = Counter()
    for index, feature in enumerate(features):
        item, extra = _check_feature(feature, repair=repair, max_area_km2=max_area_km2,
                                     limits=limits)
        checked.append(item)
        unused.update(extra - ignored_properties)
        if progress is not None:
            progress(index + 1, len(features))
    owner = _claim_ids(checked)
    _check_parents(checked, owner)

    problems = list(file_problems)
    if unused:
        listed = ", ".join(f"{name!r} ({n} feature{'s' if n > 1 else ''})"
                           for name, n in sorted(unused.items()))
        problems.append(Problem(FILE_LEVEL, None, "properties", Code.UNKNOWN_PROPERTY.value,
                                f"not used by geopush (a typo?): {listed}", Severity.WARNING))
    for index, item in enumerate(checked):
        problems.extend(item.findings.problems(index, item.vid))
    valid = [item.venue for item in checked if item.venue is not None]
    errors = sum(p.is_error for p in problems)
    strict_rejected = strict and errors > 0
    if strict_rejected:
        problems.append(Problem(FILE_LEVEL, None, "", Code.STRICT_REJECTED.value,
                                f"strict: {errors} error{'s' if errors > 1 else ''}, so no "
                                "venue of this file is kept"))
        errors += 1
    venues = () if strict_rejected else tuple(valid)
    by_kind = Counter(v.kind for v in venues)
    summary = LoadSummary(
        features=len(checked),
        valid=len(valid),
        rejected=len(checked) - len(venues),
        repaired=sum(item.repaired and item.venue is not None for item in checked),
        errors=errors,
        warnings=len(problems) - errors,
        by_kind={k.value: by_kind[k] for k in VenueKind if by_kind[k]},
        strict_rejected=strict_rejected,
    )
    drawn = feature_outlines(features, (p.feature_index for p in problems)) if outlines else ()
    return VenueLoad(source, venues, tuple(problems), summary, attribution, drawn)


def _check_feature(
    feature: object, *, repair: bool, max_area_km2: float, limits: VenueLimits | None
) -> tuple[_Checked, set[str]]:
    findings = Findings()
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        what = (f"type {show(feature.get('type'))}" if isinstance(feature, Mapping)
                else type_name(feature))
        findings.error("type", Code.NOT_A_FEATURE, f"expected a GeoJSON Feature, found {what}")
        return _Checked(None, findings, None, False), set()
    props: Mapping[str, object] = {}
    raw_props = feature.get("properties")
    if isinstance(raw_props, Mapping):
        props = raw_props
    elif raw_props is not None:
        findings.error("properties", Code.INVALID_TYPE,
                       f"properties must be an object, not {type_name(raw_props)}")
    vid = feature_id(feature, props, findings)
    fields = check_fields(props, findings)
    geometry = check_geometry(feature.get("geometry"), props.get("radius_m"), findings,
                              repair=repair, max_area_km2=max_area_km2, limits=limits)
    unused = {str(k) for k in props} - KNOWN_PROPERTIES
    if findings.has_errors or geometry is None or vid is None:
        return _Checked(vid, findings, None, False), unused
    venue = Venue(
        id=vid,
        name=fields.name if fields.name is not None else vid,
        kind=fields.kind,
        shape=geometry.shape,
        center=geometry.center,
        radius_m=geometry.radius_m,
        tags=fields.tags,
        parent_id=fields.parent_id,
        dwell_s=fields.dwell_s,
        opening_hours=fields.opening_hours,
        timezone=fields.timezone,
        metadata=fields.metadata,
        enabled=fields.enabled,
    )
    return _Checked(vid, findings, venue, geometry.repaired), unused


def _claim_ids(checked: list[_Checked]) -> dict[str, int]:
    """Map each id to the first feature that carries it; reject the later ones."""
    owner: dict[str, int] = {}
    for index, item in enumerate(checked):
        if item.vid is None:
            continue
        first = owner.setdefault(item.vid, index)
        if first != index:
            item.reject("id", Code.DUPLICATE_ID,
                        f"id {item.vid!r} is already used by feature {first}")
    return owner


def _check_parents(checked: list[_Checked], owner: Mapping[str, int]) -> None:
    """Reject venues whose parent is unknown, rejected, cyclic or does not contain them.

    Walks each parent chain once, iteratively (a long chain must not hit the recursion
    limit), and decides from the top of the chain down, so a rejected parent rejects its
    children and grandchildren.
    """
    kept: dict[int, bool] = {}
    for start in range(len(checked)):
        path: list[int] = []
        cur = start
        while cur not in kept:
            item = checked[cur]
            if item.venue is None or item.venue.parent_id is None:
                kept[cur] = item.venue is not None
                break
            pid = item.venue.parent_id
            if cur in path:
                cycle = path[path.index(cur):]
                chain = " -> ".join(repr(checked[n].vid) for n in [*cycle, cur])
                for n in cycle:
                    checked[n].reject("properties.parent_id", Code.PARENT_CYCLE,
                                      f"parent_id forms a cycle: {chain}")
                    kept[n] = False
                break
            if pid == item.vid:
                item.reject("properties.parent_id", Code.PARENT_CYCLE,
                            "the venue names itself as its parent")
                kept[cur] = False
                break
            if pid not in owner:
                item.reject("properties.parent_id", Code.UNKNOWN_PARENT,
                            f"parent_id {pid!r} names no venue in this file")
                kept[cur] = False
                break
            path.append(cur)
            cur = owner[pid]
        for node in reversed(path):
            if node in kept:
                continue
            item = checked[node]
            assert item.venue is not None and item.venue.parent_id is not None
            parent_index = owner[item.venue.parent_id]
            parent = checked[parent_index].venue
            if not kept[parent_index] or parent is None:
                item.reject("properties.parent_id", Code.PARENT_REJECTED,
                            f"parent {item.venue.parent_id!r} (feature {parent_index}) "
                            "was rejected, so this venue cannot be placed in it")
                kept[node] = False
                continue
            share = _share_inside(item.venue, parent)
            if share < MIN_INSIDE_PARENT:
                item.reject("properties.parent_id", Code.NOT_INSIDE_PARENT,
                            f"only {share:.1%} of the venue lies inside its parent "
                            f"{parent.id!r} (at least {MIN_INSIDE_PARENT:.0%} must)")
                kept[node] = False
                continue
            kept[node] = True


def _share_inside(child: Venue, parent: Venue) -> float:
    """Share of ``child``'s geodesic area inside ``parent``, in [0, 1]."""
    child_shape = _area_shape(child)
    inside = polygonal_part(child_shape.intersection(_area_shape(parent)))
    if inside is None:
        return 0.0
    return min(1.0, geodesic_area_m2(inside) / geodesic_area_m2(child_shape))


def _area_shape(venue: Venue) -> BaseGeometry:
    if venue.shape is not None:
        return venue.shape
    assert venue.center is not None and venue.radius_m is not None
    return circle_polygon(venue.center, venue.radius_m)


def _named_crs(crs: object) -> str | None:
    """The name in a 2008-GeoJSON ``crs`` member (RFC 7946 dropped it), if any."""
    if not isinstance(crs, Mapping):
        return None
    props = crs.get("properties")
    name = props.get("name") if isinstance(props, Mapping) else None
    return name if isinstance(name, str) else None


def is_wgs84_crs_member(crs: object) -> bool:
    """True unless a 2008-GeoJSON ``crs`` member names a CRS other than WGS84 lon/lat."""
    name = _named_crs(crs)
    if name is None:
        return True
    upper = name.upper()
    return "CRS84" in upper or upper.replace("::", ":").endswith(":4326")


def _file_error(source: str, field: str, message: str) -> VenueFileError:
    return VenueFileError(source, Problem(FILE_LEVEL, None, field,
                                          Code.NOT_A_FEATURE_COLLECTION.value, message))
