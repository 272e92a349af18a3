"""An uploaded venue file is read from a temporary file, and GDAL names the file it
could not read in its messages: those reached the client (``ERROR parsing kml
/tmp/geopush-import-….kml``). Messages name the upload, never a server path."""

from __future__ import annotations

import tempfile
import zipfile
from io import BytesIO

import aiohttp
import pytest

from tests.server.api.conftest import Api

pytestmark = pytest.mark.asyncio(loop_scope="session")

BROKEN_KML = (b'<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
              b"<Placemark><name>Kamppi</name><Polygon><outerBoundaryIs><LinearRing>"
              b"<coordinates>24.93,60.16 24.94,60.16")


def _zipped(name: str, data: bytes) -> bytes:
    out = BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(name, data)
    return out.getvalue()


SERVER_PATHS = (tempfile.gettempdir(), "/tmp", "geopush-import-")


@pytest.mark.parametrize(("filename", "data"), [
    ("helsinki.kml", BROKEN_KML),
    ("helsinki.kmz", _zipped("doc.kml", BROKEN_KML)),
    ("helsinki.gpkg", b"SQLite format 3\x00 but not really"),
    ("helsinki.zip", _zipped("venues.shp", b"not a shapefile")),
    ("helsinki.zip", b"PK\x03\x04 a broken archive"),
])
async def test_an_unreadable_upload_is_named_by_its_file_name_only(
    api: Api, filename: str, data: bytes,
) -> None:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=filename)
    resp = await api.client.post("/v1/venues/import", data=form, headers=api.auth())
    body = await resp.json()
    assert resp.status == 422, body
    assert body["error"]["code"] == "unreadable_file"
    assert body["error"]["field"] == "file"
    text = await resp.text()
    for path in SERVER_PATHS:
        assert path not in text, body
