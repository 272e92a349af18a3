"""GeoPackage, zipped Shapefile, KML and projected files read back as the same venues.

Each file is written from the Helsinki fixture with geopandas/pyogrio; lists and objects
travel as JSON text, as they must in tabular formats.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas
import pytest
from shapely.geometry import shape

from tests.conftest import HELSINKI_VENUES
from venues import VenueFileError, VenueLoad, load_venues


@pytest.fixture(scope="module")
def helsinki_frame() -> geopandas.GeoDataFrame:
    collection = json.loads(HELSINKI_VENUES.read_text(encoding="utf-8"))
    rows = [{
        "id": f["id"],
        "name": f["properties"]["name"],
        "kind": f["properties"]["kind"],
        "tags": json.dumps(f["properties"]["tags"]),
        "parent_id": f["properties"]["parent_id"],
        "timezone": f["properties"]["timezone"],
        "dwell_s": 300,
        "geometry": shape(f["geometry"]),
    } for f in collection["features"]]
    return geopandas.GeoDataFrame(rows, crs="EPSG:4326")


@pytest.fixture(scope="module")
def helsinki() -> VenueLoad:
    return load_venues(HELSINKI_VENUES)


def _assert_same_venues(load: VenueLoad, expected: VenueLoad, tolerance: float = 1e-9) -> None:
    assert load.problems == ()
    assert [v.id for v in load.venues] == [v.id for v in expected.venues]
    for got, want in zip(load.venues, expected.venues, strict=True):
        assert (got.name, got.kind, got.tags, got.parent_id) == (
            want.name, want.kind, want.tags, want.parent_id)
        assert got.shape is not None and want.shape is not None
        # Shapefiles reorient rings, so compare normalised shapes.
        assert got.shape.normalize().equals_exact(want.shape.normalize(), tolerance)


def test_geopackage_reads_back_the_same_venues(
    tmp_path: Path, helsinki_frame: geopandas.GeoDataFrame, helsinki: VenueLoad
) -> None:
    path = tmp_path / "helsinki.gpkg"
    helsinki_frame.to_file(path, engine="pyogrio")
    _assert_same_venues(load_venues(path), helsinki)


@pytest.mark.parametrize("name", ["helsinki.zip", "helsinki.shp.zip"])
def test_zipped_shapefile_reads_back_the_same_venues(
    name: str, tmp_path: Path, helsinki_frame: geopandas.GeoDataFrame, helsinki: VenueLoad
) -> None:
    folder = tmp_path / "shp"
    folder.mkdir()
    helsinki_frame.to_file(folder / "helsinki.shp", engine="pyogrio")
    archive = tmp_path / name
    with zipfile.ZipFile(archive, "w") as zipped:
        for part in sorted(folder.iterdir()):
            zipped.write(part, part.name)
    _assert_same_venues(load_venues(archive), helsinki)


def test_kml_reads_back_the_same_venues(
    tmp_path: Path, helsinki_frame: geopandas.GeoDataFrame, helsinki: VenueLoad
) -> None:
    path = tmp_path / "helsinki.kml"
    # LIBKML keeps the id as the Placemark id and the other fields as ExtendedData.
    helsinki_frame.to_file(path, driver="LIBKML", engine="pyogrio")
    _assert_same_venues(load_venues(path), helsinki)


def test_geopackage_in_finnish_grid_is_reprojected_to_wgs84(
    tmp_path: Path, helsinki_frame: geopandas.GeoDataFrame, helsinki: VenueLoad
) -> None:
    path = tmp_path / "helsinki_3067.gpkg"
    helsinki_frame.to_crs("EPSG:3067").to_file(path, engine="pyogrio")
    # ETRS-TM35FIN metres and back: a round trip through two projections keeps ~1e-10°.
    _assert_same_venues(load_venues(path), helsinki, tolerance=1e-8)


def test_geojson_with_a_projected_crs_member_is_reprojected(
    tmp_path: Path, helsinki_frame: geopandas.GeoDataFrame, helsinki: VenueLoad
) -> None:
    path = tmp_path / "helsinki_3067.geojson"
    helsinki_frame.to_crs("EPSG:3067").to_file(path, driver="GeoJSON", engine="pyogrio")
    assert "EPSG::3067" in path.read_text(encoding="utf-8")
    _assert_same_venues(load_venues(path), helsinki, tolerance=1e-8)


def test_shapefile_rows_with_broken_fields_are_reported_by_field(
    tmp_path: Path, helsinki_frame: geopandas.GeoDataFrame
) -> None:
    frame = helsinki_frame.head(3).copy()
    frame.loc[frame.index[1], "kind"] = "shop"
    frame.loc[frame.index[2], "tags"] = "not json"
    path = tmp_path / "broken.gpkg"
    frame.to_file(path, engine="pyogrio")
    load = load_venues(path)
    assert [(p.feature_index, p.field, p.code) for p in load.problems] == [
        (1, "properties.kind", "unknown_kind"), (2, "properties.tags", "invalid_type")]


def test_a_file_gdal_cannot_read_raises_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "venues.gpkg"
    path.write_text("not a database", encoding="utf-8")
    with pytest.raises(VenueFileError) as exc:
        load_venues(path)
    assert exc.value.problem.code == "unreadable_file"


BROKEN_KML = (b'<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
              b"<Placemark><name>Kamppi</name><Polygon><outerBoundaryIs><LinearRing>"
              b"<coordinates>24.93,60.16 24.94,60.16")


def test_the_reader_names_the_file_as_told_and_hides_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "upload-1234.kml"
    path.write_bytes(BROKEN_KML)
    with pytest.raises(VenueFileError) as caught:
        load_venues(path, name="helsinki.kml")
    assert "helsinki.kml" in str(caught.value)
    assert str(tmp_path) not in str(caught.value)
    assert "upload-1234" not in caught.value.problem.message


def test_without_a_name_the_reader_names_the_path_it_was_given(tmp_path: Path) -> None:
    """The command line reads the user's own files: the path helps there."""
    path = tmp_path / "helsinki.kml"
    path.write_bytes(BROKEN_KML)
    with pytest.raises(VenueFileError) as caught:
        load_venues(path)
    assert str(path) in str(caught.value)
