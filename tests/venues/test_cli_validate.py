"""``geopush venues validate``: every broken file gets a one-line report, never a traceback.

Each file in ``corpus/`` is broken in one way (``wrong_types`` in one way per feature);
the table says the exit status and the report lines that must name feature and field.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from server.cli import main
from server.cli import venues as cli_venues
from tests.conftest import BEIJING_VENUES, HELSINKI_VENUES
from tests.venues.builders import collection, feature, write_json

CORPUS = Path(__file__).parent / "corpus"

# file -> (exit status, fragments that must appear in the report)
BROKEN: dict[str, tuple[int, list[str]]] = {
    "not_json.geojson": (2, ["not_json.geojson:1: column 1: not valid JSON", "[invalid_json]"]),
    "truncated.geojson": (2, ["truncated.geojson:33: column 8: the file ends early",
                              "[truncated_json]"]),
    "not_utf8.geojson": (2, ["is not UTF-8", "[not_utf8]"]),
    "not_a_feature_collection.geojson": (2, ["type: type is 'Topology'",
                                             "[not_a_feature_collection]"]),
    "bare_geometry.geojson": (2, ["type: a bare Polygon geometry has no id",
                                  "[not_a_feature_collection]"]),
    "features_not_a_list.geojson": (2, ["features: features must be an array"]),
    "empty_collection.geojson": (1, ["features: the FeatureCollection has no features "
                                     "[empty_collection]"]),
    "not_a_feature.geojson": (1, ["feature 1 (no id): type: expected a GeoJSON Feature"]),
    "nan_coordinate.geojson": (1, ["feature 1 (id 'nan-1'): geometry.coordinates[0][1]: "
                                   "latitude NaN is not a finite number [non_finite_number]"]),
    "huge_coordinates.geojson": (1, ["feature 1 (id 'huge-1'): geometry.coordinates[0][1]: "
                                     "longitude 1e+308 is outside [-180, 180] "
                                     "[coordinate_out_of_range]"]),
    "swapped_axes.geojson": (1, ["feature 0 (id 'swapped-1'): geometry.coordinates: "
                                 "latitude 116.3975 is outside [-90, 90] (latitude and "
                                 "longitude swapped?"]),
    "coordinate_not_a_number.geojson": (1, ["feature 0 (id 'text-1'): "
                                            "geometry.coordinates[0][2]: longitude must be a "
                                            "number, not string '24.9430' [invalid_type]"]),
    "wrong_types.geojson": (1, [
        "feature 0 (id 'name-1'): properties.name: name must be a string, not number 42",
        "feature 1 (id 'tags-1'): properties.tags: tags must be an array of strings",
        "feature 2 (id 'tags-2'): properties.tags[1]: a tag must be a string, not number 7",
        "feature 3 (id 'dwell-1'): properties.dwell_s: dwell_s must be a whole number",
        "feature 4 (id 'dwell-2'): properties.dwell_s: dwell_s -5 is outside 1 .. 86400 s "
        "[dwell_out_of_range]",
        "feature 5 (id 'enabled-1'): properties.enabled: enabled must be true or false",
        "feature 6 (id 'metadata-1'): properties.metadata: metadata must be an object",
        "feature 7 (id 'tz-1'): properties.timezone: timezone 'Mars/Olympus_Mons' is not an "
        "IANA time zone",
        "feature 8 (id 'hours-1'): properties.opening_hours: opening_hours must be a string",
        "feature 9 (id 'radius-1'): properties.radius_m: radius_m must be a number of metres",
    ]),
    "missing_id.geojson": (1, ["feature 1 (no id): id: the venue has no id", "[missing_id]"]),
    "duplicate_id.geojson": (1, ["feature 1 (id 'kiasma'): id: id 'kiasma' is already used by "
                                 "feature 0 [duplicate_id]"]),
    "unclosed_ring.geojson": (1, ["feature 0 (id 'open-1'): geometry.coordinates[0]: ring is "
                                  "not closed", "[unclosed_ring]"]),
    "short_ring.geojson": (1, ["feature 0 (id 'short-1'): geometry.coordinates[0]: ring has 3 "
                               "positions", "[ring_too_short]"]),
    "self_intersection.geojson": (1, ["feature 0 (id 'bowtie-1'): geometry: the boundary "
                                      "crosses itself", "[self_intersection]"]),
    "hole_outside_shell.geojson": (1, ["feature 0 (id 'hole-1'): geometry: a hole lies outside",
                                       "[hole_outside_shell]"]),
    "empty_geometry.geojson": (1, ["feature 0 (id 'empty-1'): geometry.coordinates: the "
                                   "Polygon is empty [empty_geometry]"]),
    "missing_geometry.geojson": (1, ["feature 0 (id 'nogeom-1'): geometry: the feature has no "
                                     "geometry [missing_geometry]"]),
    "unsupported_geometry.geojson": (1, ["feature 0 (id 'line-1'): geometry.type: 'LineString' "
                                         "cannot be a venue", "[unsupported_geometry]"]),
    "point_without_radius.geojson": (1, ["feature 0 (id 'point-1'): properties.radius_m: a "
                                         "Point venue is a circle and needs radius_m"]),
    "radius_out_of_range.geojson": (1, ["feature 0 (id 'tiny-1'): properties.radius_m: radius "
                                        "5 m is outside 10 m .. 10 km [radius_out_of_range]"]),
    "area_too_large.geojson": (1, ["feature 0 (id 'uusimaa-1'): geometry: area 3,084.9 km² is "
                                   "above the 50 km² limit", "[area_too_large]"]),
    "unknown_kind.geojson": (1, ["feature 0 (id 'shop-1'): properties.kind: kind 'shop' is not "
                                 "one of: mall, transit_station, airport, stadium, store, "
                                 "campus, other [unknown_kind]"]),
    "unknown_parent.geojson": (1, ["feature 0 (id 'store-1'): properties.parent_id: parent_id "
                                   "'no-such-mall' names no venue in this file"]),
    "not_inside_parent.geojson": (1, ["feature 1 (id 'store-2'): properties.parent_id: only "
                                      "0.0% of the venue lies inside its parent 'mall-1'"]),
}


def _run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    status = main(["venues", "validate", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


def test_corpus_table_covers_every_corpus_file() -> None:
    assert sorted(BROKEN) == sorted(p.name for p in CORPUS.glob("*.geojson"))


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_file_is_reported_by_feature_and_field_with_exit_status(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    expected_status, fragments = BROKEN[name]
    status, out, err = _run(capsys, CORPUS / name)
    assert status == expected_status
    report = out + err
    for fragment in fragments:
        assert fragment in report
    if status == 2:  # unreadable: one error line on stderr, nothing else
        assert out == ""
        assert err.startswith(f"geopush: error: {CORPUS / name}")
        assert len(err.splitlines()) == 1
    else:
        assert err == ""
        assert f"{CORPUS / name}: " in out and " rejected" in out


@pytest.mark.parametrize("path", [BEIJING_VENUES, HELSINKI_VENUES])
def test_shipped_venue_files_pass_with_exit_status_zero(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _run(capsys, path)
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert " 0 rejected, 0 repaired; 0 errors, 0 warnings" in lines[0]
    assert "venues by kind: " in lines[1]


def test_opening_hours_that_do_not_parse_are_a_warning_line_and_exit_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_json(tmp_path / "hours.geojson", collection(
        feature("forum", opening_hours="Mo-Fr 10:00-18:00; Dec 24-26 off; PH off"),
        feature("stockmann", metadata={"opening_hours": "Mo-Fr: 10:00-18:00"})))
    status, out, _ = _run(capsys, path)
    assert status == 0
    assert ("feature 1 (id 'stockmann'): properties.metadata.opening_hours: warning: "
            "metadata.opening_hours 'Mo-Fr: 10:00-18:00' is not OSM opening_hours syntax "
            "(at column 6); campaigns will treat the venue as open "
            "[opening_hours_not_understood]") in out
    assert "0 rejected, 0 repaired; 0 errors, 1 warning" in out


def test_missing_file_exits_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _run(capsys, tmp_path / "nowhere.geojson")
    assert status == 2
    assert "nowhere.geojson: cannot read the file: No such file" in err


def test_repair_turns_the_self_intersection_into_a_warning_and_exit_zero(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = _run(capsys, CORPUS / "self_intersection.geojson", "--repair")
    assert status == 0
    assert "geometry: warning: the boundary crosses itself" in out
    assert "1 repaired" in out


def test_strict_rejects_the_whole_file(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, CORPUS / "huge_coordinates.geojson", "--strict")
    assert status == 1
    assert "2 rejected (strict: whole file rejected)" in out


def test_max_area_option_raises_the_area_limit(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, _ = _run(capsys, CORPUS / "area_too_large.geojson", "--max-area-km2", "4000")
    assert status == 0


def test_json_report_is_machine_readable(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, CORPUS / "duplicate_id.geojson", "--json")
    report = json.loads(out)
    assert status == 1
    assert report["summary"]["features"] == 2 and report["summary"]["rejected"] == 1
    assert report["venues"] == ["kiasma"]
    (problem,) = report["problems"]
    assert problem["code"] == "duplicate_id" and problem["feature_index"] == 1
    assert problem["severity"] == "error" and len(problem["at"]) == 2


def test_json_report_of_an_unreadable_file_still_parses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = _run(capsys, CORPUS / "truncated.geojson", "--json")
    assert status == 2 and "[truncated_json]" in err
    assert json.loads(out)["readable"] is False


def test_map_shows_venue_and_problem_layers_with_osm_attribution(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_html = tmp_path / "maps" / "venues.html"
    status, out, _ = _run(capsys, CORPUS / "not_inside_parent.geojson", "--map", out_html)
    assert status == 1 and f"map: {out_html}" in out
    page = out_html.read_text(encoding="utf-8")
    assert '"Venues"' in page and '"Problems"' in page  # names in the layer control
    assert "mall-1" in page  # the valid venue's popup data
    assert "not_inside_parent" in page  # the problem marker
    # folium writes the attribution as a JSON string, so "©" appears escaped
    assert "\\u00a9 OpenStreetMap contributors" in page


def test_map_of_a_shipped_file_draws_every_venue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_html = tmp_path / "helsinki.html"
    status, _, _ = _run(capsys, HELSINKI_VENUES, "--map", out_html)
    page = out_html.read_text(encoding="utf-8")
    assert status == 0
    assert page.count('"kind": "store"') == 16 and "osm:way/289767497" in page


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_shows_only_for_thousands_of_features_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with cli_venues._Progress() as progress:
        for done in range(1, 11):
            progress(done, 10)
    assert terminal.getvalue() == ""
    with cli_venues._Progress() as progress:
        for done in range(1, 2001):
            progress(done, 2000)
    assert "validating:" in terminal.getvalue() and "/2000" in terminal.getvalue()


def test_no_progress_bar_when_stderr_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    with cli_venues._Progress() as progress:
        for done in range(1, 2001):
            progress(done, 2000)
    assert pipe.getvalue() == ""
