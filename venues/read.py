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
from venues.values import NonFinite, json_int

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
    name: str | None = None,
    limits: VenueLimits | None = None,
    outlines: bool = False,
) -> VenueLoad:
    """Read and validate a venue file; ``.venues`` holds the valid venues in file order.

    Formats: GeoJSON (FeatureCollection, or a single Feature), GeoPackage, Shapefile
    (``.shp``, or zipped as ``.zip`` / ``.shp.zip``) and KML. Problems with single
    features are reported in ``.problems``; a file that cannot be read at all (missing,
    not JSON, not a FeatureCollection, not a GDAL dataset) raises
    :class:`~venues.errors.VenueFileError`, so that callers which only want
    ``.venues`` never mistake a broken file for an empty one.

    ``name``: what messages call the file (default: its path). A server reading an
    upload from a temporary file passes the upload's name: then no message, GDAL's
    included, shows the path or the folder of the file it read.
    """
    file = _File(os.fspath(path), name)
    options: dict[str, Any] = {"strict": strict, "repair": repair,
                               "max_area_km2": max_area_km2, "progress": progress,
                               "limits": limits, "outlines": outlines}
    if file.path.lower().endswith(GDAL_SUFFIXES):
        return _load_with_gdal(file, **options)
    try:
        data = Path(file.path).read_bytes()
    except OSError as exc:
        raise _unreadable(file, exc.strerror or str(exc)) from exc
    if data[:4] == b"PK\x03\x04" or data[:16] == b"SQLite format 3\x00":
        return _load_with_gdal(file, **options)  # a zip or GeoPackage with an odd name
    obj = _parse_json(file.shown, data)
    if isinstance(obj, Mapping) and not is_wgs84_crs_member(obj.get("crs")):
        return _load_with_gdal(file, **options)  # GDAL honours the old crs member
    return parse_feature_collection(obj, source=file.shown, **options)


class _File:
    """A file being read: its ``path``, and the name messages call it (``shown``)."""

    def __init__(self, path: str, name: str | None) -> None:
        self.path = path
        self.shown = name or path
        self._hidden = () if name is None else tuple(sorted(
            {path, os.path.abspath(path), os.path.realpath(path)}, key=len, reverse=True))
        self._folders = () if name is None else tuple(sorted(
            {os.path.dirname(p) for p in self._hidden} - {"", os.sep}, key=len,
            reverse=True))

    def scrubbed(self, text: str) -> str:
        """``text`` (a GDAL message) with the file's path replaced by its name and any
        other mention of its folder left out."""
        for form in self._hidden:
            text = text.replace(form, self.shown)
        for folder in self._folders:
            text = text.replace(folder + os.sep, "").replace(folder, "")
        return text


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
        return json.loads(text, parse_constant=NonFinite, parse_int=json_int)
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
    file: _File, *, strict: bool, repair: bool, max_area_km2: float,
    progress: ProgressHook | None, limits: VenueLimits | None, outlines: bool,
) -> VenueLoad:
    # GDAL comes in only for the formats that need it: GeoJSON (what `geopush locate`
    # and the scenarios read) loads without importing geopandas (~0.3 s).
    import pyogrio  # noqa: PLC0415
    from pyogrio.errors import DataSourceError  # noqa: PLC0415

    if not Path(file.path).exists():
        raise _unreadable(file, "No such file or directory")
    try:
        info = pyogrio.list_layers(file.path)
        driver = str(pyogrio.read_info(file.path, layer=str(info[0][0]))["driver"]) if len(
            info) else ""
    except (DataSourceError, OSError, ValueError) as exc:
        raise _unreadable(file, f"not a GeoPackage, Shapefile or KML file GDAL can read "
                                f"({exc})") from exc
    features: list[dict[str, Any]] = []
    file_problems: list[Problem] = []
    for layer_name, geometry_type in info:
        if geometry_type is None:
            continue  # an attribute-only table (GeoPackage allows them)
        layer_features, problem = _read_layer(file, str(layer_name), driver)
        features.extend(layer_features)
        if problem is not None:
            file_problems.append(problem)
    if not features:
        file_problems.append(Problem(FILE_LEVEL, None, "", Code.EMPTY_COLLECTION.value,
                                     "the file has no features with geometry"))
    return validate_features(
        features, source=file.shown, strict=strict, repair=repair,
        max_area_km2=max_area_km2, progress=progress, file_problems=file_problems,
        ignored_properties=_KML_NOISE if "KML" in driver else frozenset(), limits=limits,
        outlines=outlines,
    )


def _read_layer(
    file: _File, layer: str, driver: str
) -> tuple[list[dict[str, Any]], Problem | None]:
    import geopandas  # noqa: PLC0415 - see _load_with_gdal
    from pyogrio.errors import DataSourceError  # noqa: PLC0415

    try:
        frame = geopandas.read_file(file.path, layer=layer, engine="pyogrio")
    except (DataSourceError, OSError, ValueError) as exc:
        raise _unreadable(file, f"layer {layer!r} cannot be read ({exc})") from exc
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
                props[key] = json.loads(value, parse_constant=NonFinite, parse_int=json_int)
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


def _unreadable(file: _File, why: str) -> VenueFileError:
    return VenueFileError(file.shown, Problem(
        FILE_LEVEL, None, "", Code.UNREADABLE_FILE.value,
        f"cannot read the file: {file.scrubbed(why)}"))
