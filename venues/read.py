"""Reading venue files: GeoJSON directly, GeoPackage / zipped Shapefile / KML through GDAL.

Every format ends in the same validation (:func:`venues.validate.validate_features`).
GeoJSON is parsed with the json module, so a broken file is reported with its line and
column; ``NaN`` / ``Infinity`` literals (not JSON) are kept as markers and rejected at
the field that holds them. GDAL formats are read with geopandas/pyogrio, every layer
that has geometry, reprojected to EPSG:4326.

Tabular formats cannot hold arrays or objects, and KML keeps every value as text, so
their rows are eased into GeoJSON shape first: ``tags`` / ``metadata`` given as JSON
text are decoded, numeric text in ``dwell_s`` / ``radius_m`` is read as a number, and
``true`` / ``false`` / ``1`` / ``0`` in ``enabled`` as a boolean. A Shapefile's
10-character field names are mapped back (``opening_ho`` -> ``opening_hours``).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas
import pyogrio
from pyogrio.errors import DataSourceError

from venues.errors import VenueFileError
from venues.geometry import DEFAULT_MAX_AREA_KM2
from venues.limits import VenueLimits
from venues.problems import FILE_LEVEL, Code, Problem, Severity
from venues.result import VenueLoad
from venues.validate import (
    ProgressHook,
    is_wgs84_crs_member,
    parse_feature_collection,
    validate_features,
)
from venues.values import NonFinite

GDAL_SUFFIXES = (".gpkg", ".zip", ".shp", ".kml", ".kmz")
"""File name endings read through GDAL; anything else is tried as GeoJSON."""

_KML_NOISE = frozenset({
    "Name", "description", "timestamp", "begin", "end", "altitudeMode", "tessellate",
    "extrude", "visibility", "drawOrder", "icon", "snippet",
})
_SHAPEFILE_NAMES = {"opening_ho": "opening_hours"}
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def load_venues(
    path: str | os.PathLike[str],
    *,
    strict: bool = False,
    repair: bool = False,
    max_area_km2: float = DEFAULT_MAX_AREA_KM2,
    progress: ProgressHook | None = None,
    limits: VenueLimits | None = None,
) -> VenueLoad:
    """Read and validate a venue file; ``.venues`` holds the valid venues in file order.

    Formats: GeoJSON (FeatureCollection, or a single Feature), GeoPackage, Shapefile
    (``.shp``, or zipped as ``.zip`` / ``.shp.zip``) and KML. Problems with single
    features are reported in ``.problems``; a file that cannot be read at all (missing,
    not JSON, not a FeatureCollection, not a GDAL dataset) raises
    :class:`~venues.errors.VenueFileError`, so that callers which only want
    ``.venues`` never mistake a broken file for an empty one.
    """
    source = os.fspath(path)
    options: dict[str, Any] = {"strict": strict, "repair": repair,
                               "max_area_km2": max_area_km2, "progress": progress,
                               "limits": limits}
    if source.lower().endswith(GDAL_SUFFIXES):
        return _load_with_gdal(source, **options)
    try:
        data = Path(source).read_bytes()
    except OSError as exc:
        raise _unreadable(source, exc.strerror or str(exc)) from exc
    if data[:4] == b"PK\x03\x04" or data[:16] == b"SQLite format 3\x00":
        return _load_with_gdal(source, **options)  # a zip or GeoPackage with an odd name
    obj = _parse_json(source, data)
    if isinstance(obj, Mapping) and not is_wgs84_crs_member(obj.get("crs")):
        return _load_with_gdal(source, **options)  # GDAL honours the old crs member
    return parse_feature_collection(obj, source=source, **options)


def _parse_json(source: str, data: bytes) -> object:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise VenueFileError(
            source, Problem(FILE_LEVEL, None, "", Code.NOT_UTF8.value,
                            f"byte {exc.start} is not UTF-8 (GeoJSON must be UTF-8)"),
            line=line,
        ) from exc
    try:
        return json.loads(text, parse_constant=NonFinite)
    except json.JSONDecodeError as exc:
        truncated = not text[exc.pos:].strip()
        code = Code.TRUNCATED_JSON if truncated else Code.INVALID_JSON
        what = "the file ends early (truncated?)" if truncated else "not valid JSON"
        raise VenueFileError(
            source, Problem(FILE_LEVEL, None, "", code.value,
                            f"column {exc.colno}: {what}: {exc.msg}"),
            line=exc.lineno, column=exc.colno,
        ) from exc


def _load_with_gdal(
    source: str, *, strict: bool, repair: bool, max_area_km2: float,
    progress: ProgressHook | None, limits: VenueLimits | None,
) -> VenueLoad:
    if not Path(source).exists():
        raise _unreadable(source, "No such file or directory")
    try:
        info = pyogrio.list_layers(source)
        driver = str(pyogrio.read_info(source, layer=str(info[0][0]))["driver"]) if len(
            info) else ""
    except (DataSourceError, OSError, ValueError) as exc:
        raise _unreadable(source, f"not a GeoPackage, Shapefile or KML file GDAL can read "
                                  f"({exc})") from exc
    features: list[dict[str, Any]] = []
    file_problems: list[Problem] = []
    for layer_name, geometry_type in info:
        if geometry_type is None:
            continue  # an attribute-only table (GeoPackage allows them)
        layer_features, problem = _read_layer(source, str(layer_name), driver)
        features.extend(layer_features)
        if problem is not None:
            file_problems.append(problem)
    if not features:
        file_problems.append(Problem(FILE_LEVEL, None, "", Code.EMPTY_COLLECTION.value,
                                     "the file has no features with geometry"))
    return validate_features(
        features, source=source, strict=strict, repair=repair, max_area_km2=max_area_km2,
        progress=progress, file_problems=file_problems,
        ignored_properties=_KML_NOISE if "KML" in driver else frozenset(), limits=limits,
    )


def _read_layer(
    source: str, layer: str, driver: str
) -> tuple[list[dict[str, Any]], Problem | None]:
    try:
        frame = geopandas.read_file(source, layer=layer, engine="pyogrio")
    except (DataSourceError, OSError, ValueError) as exc:
        raise _unreadable(source, f"layer {layer!r} cannot be read ({exc})") from exc
    problem = None
    if frame.crs is None:
        problem = Problem(FILE_LEVEL, None, "crs", Code.MISSING_CRS.value,
                          f"layer {layer!r} names no CRS; read as WGS84 longitude/latitude",
                          Severity.WARNING)
    elif not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs("EPSG:4326")
    collection = frame.to_geo_dict(na="null", drop_id=True)
    features = [_eased(f, driver) for f in collection["features"]]
    return features, problem


def _eased(feature: dict[str, Any], driver: str) -> dict[str, Any]:
    """A GDAL row as a GeoJSON Feature with venue-shaped properties (see module doc)."""
    props: dict[str, Any] = {}
    for key, value in feature["properties"].items():
        name = _SHAPEFILE_NAMES.get(key, key) if driver == "ESRI Shapefile" else key
        # GDAL hands list fields (e.g. GeoJSON string arrays) over as numpy arrays.
        props[name] = value.tolist() if hasattr(value, "tolist") else value
    if "KML" in driver and props.get("name") is None and isinstance(props.get("Name"), str):
        props["name"] = props["Name"]
    for key, opener in (("tags", "["), ("metadata", "{")):
        value = props.get(key)
        if isinstance(value, str) and value.lstrip().startswith(opener):
            # Text that is not JSON stays text: validation then names the field.
            with contextlib.suppress(json.JSONDecodeError):
                props[key] = json.loads(value, parse_constant=NonFinite)
    for key in ("dwell_s", "radius_m"):
        value = props.get(key)
        if isinstance(value, str) and value.strip():
            props[key] = _number(value)
    enabled = props.get("enabled")
    if isinstance(enabled, str) and enabled.strip().lower() in _TRUE | _FALSE:
        props["enabled"] = enabled.strip().lower() in _TRUE
    elif isinstance(enabled, int) and not isinstance(enabled, bool) and enabled in (0, 1):
        props["enabled"] = bool(enabled)
    return {"type": "Feature", "properties": props, "geometry": feature["geometry"]}


def _number(text: str) -> object:
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            continue
    return text


def _unreadable(source: str, why: str) -> VenueFileError:
    return VenueFileError(source, Problem(FILE_LEVEL, None, "", Code.UNREADABLE_FILE.value,
                                          f"cannot read the file: {why}"))
