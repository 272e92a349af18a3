"""Venue files in the formats the upload takes, written from GeoJSON-like features: KML
by hand (one Placemark each, fields as ExtendedData, as Google Earth writes them) and a
zipped Shapefile through geopandas."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import geopandas
from shapely.geometry import shape

SANLITUN = [[116.4530, 39.9340], [116.4560, 39.9340], [116.4560, 39.9365],
            [116.4530, 39.9365], [116.4530, 39.9340]]
"""Sanlitun Taikoo Li, Beijing: a plain rectangle."""
BOW_TIE = [[116.4535, 39.9345], [116.4555, 39.9360], [116.4555, 39.9345],
           [116.4535, 39.9360], [116.4535, 39.9345]]
"""Inside it, a ring that crosses itself (a bow tie): an invalid polygon."""


def polygon_feature(vid: str, name: str, kind: str, ring: list[list[float]],
                    **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"id": vid, "name": name, "kind": kind, **props},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


def kml_bytes(features: list[dict[str, Any]]) -> bytes:
    """A KML document with one Placemark per (polygon) feature, the id as the
    Placemark's own id (GDAL reads it as ``id``)."""
    marks = []
    for f in features:
        props = f["properties"]
        data = "".join(f'<Data name="{escape(k)}"><value>{escape(str(v))}</value></Data>'
                       for k, v in props.items() if k not in {"id", "name"})
        ring = " ".join(f"{lng},{lat}" for lng, lat in f["geometry"]["coordinates"][0])
        marks.append(f'<Placemark id="{escape(props["id"])}"><name>'
                     f"{escape(props['name'])}</name>"
                     f"<ExtendedData>{data}</ExtendedData><Polygon><outerBoundaryIs>"
                     f"<LinearRing><coordinates>{ring}</coordinates></LinearRing>"
                     "</outerBoundaryIs></Polygon></Placemark>")
    return ('<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2">'
            f"<Document>{''.join(marks)}</Document></kml>").encode()


def zipped_shapefile_bytes(features: list[dict[str, Any]]) -> bytes:
    """A zipped Shapefile (``.shp``, ``.dbf``, ``.shx``, ``.prj``, ...) of ``features``."""
    rows = [{**f["properties"], "geometry": shape(f["geometry"])} for f in features]
    frame = geopandas.GeoDataFrame(rows, crs="EPSG:4326")
    out = io.BytesIO()
    with tempfile.TemporaryDirectory() as folder:
        frame.to_file(Path(folder) / "venues.shp", engine="pyogrio")
        with zipfile.ZipFile(out, "w") as zipped:
            for part in sorted(Path(folder).iterdir()):
                zipped.write(part, part.name)
    return out.getvalue()
