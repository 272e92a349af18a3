"""Validation behaviour: what is kept, what is rejected, and how it is reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import MultiPolygon, Point

from tests.conftest import BEIJING_VENUES, HELSINKI_VENUES
from tests.venues.builders import (
    HELSINKI_BOX,
    TIANANMEN,
    box_ring,
    collection,
    feature,
    point,
    polygon,
)
from venues import (
    Code,
    Severity,
    VenueFileError,
    VenueKind,
    VenueLoad,
    load_venues,
    parse_feature_collection,
)
from venues.geometry import geodesic_area_m2


def _load(*features: dict[str, Any], **options: Any) -> VenueLoad:
    return parse_feature_collection(collection(*features), source="test.geojson", **options)


def _codes(load: VenueLoad) -> list[str]:
    return [p.code for p in load.problems]


# A bow tie over the Helsinki box: its boundary crosses itself in the middle.
W, S, E, N = HELSINKI_BOX
BOW_TIE = polygon([[W, S], [E, N], [E, S], [W, N], [W, S]])

# Taveuni, Fiji: the 180th meridian crosses the island at Waiyevo; a venue about a
# kilometre across straddles it (lng 179.994 .. -179.995).
TAVEUNI = polygon([
    [179.994, -16.790], [-179.996, -16.789], [-179.995, -16.797], [-179.998, -16.800],
    [179.996, -16.799], [179.994, -16.790],
])


@pytest.mark.parametrize(("path", "count"), [(BEIJING_VENUES, 372), (HELSINKI_VENUES, 74)])
def test_shipped_venue_files_validate_without_a_single_problem(path: Path, count: int) -> None:
    load = load_venues(path)
    assert load.problems == ()
    assert len(load.venues) == count
    assert load.summary.valid == count and load.summary.rejected == 0


def test_helsinki_stores_nested_in_malls_are_kept_with_their_parents() -> None:
    load = load_venues(HELSINKI_VENUES)
    by_id = {v.id: v for v in load.venues}
    nested = [v for v in load.venues if v.parent_id is not None]
    assert len(nested) == 14
    assert {by_id[v.parent_id].kind for v in nested if v.parent_id} == {VenueKind.MALL}


def test_missing_fields_take_the_documented_defaults_silently() -> None:
    load = _load({"type": "Feature", "id": "kiasma", "properties": {},
                  "geometry": polygon(box_ring(*HELSINKI_BOX))})
    (venue,) = load.venues
    assert load.problems == ()
    assert (venue.kind, venue.dwell_s, venue.name, venue.enabled) == (
        VenueKind.OTHER, 300, "kiasma", True)
    assert (venue.tags, venue.metadata, venue.parent_id) == ((), {}, None)


def test_point_with_radius_stays_a_circle() -> None:
    load = _load(feature("tiananmen", point(*TIANANMEN), radius_m=250, kind="other",
                         timezone="Asia/Shanghai"))
    (venue,) = load.venues
    assert venue.shape is None and venue.center is not None
    assert (venue.center.lat, venue.center.lng, venue.radius_m) == (39.9055, 116.3975, 250.0)
    assert venue.fence().is_circle


def test_rejects_self_intersecting_polygon_unless_repair_asked() -> None:
    rejected = _load(feature("bowtie", BOW_TIE))
    assert rejected.venues == ()
    (problem,) = rejected.problems
    assert (problem.code, problem.severity, problem.field) == (
        "self_intersection", Severity.ERROR, "geometry")
    assert problem.at is not None and abs(problem.at.lng - 24.942) < 1e-9

    repaired = _load(feature("bowtie", BOW_TIE), repair=True)
    (venue,) = repaired.venues
    (warning,) = repaired.problems
    assert (warning.code, warning.severity) == ("self_intersection", Severity.WARNING)
    assert isinstance(venue.shape, MultiPolygon) and len(venue.shape.geoms) == 2
    assert venue.shape.is_valid
    assert repaired.summary.repaired == 1


def test_polygon_across_the_antimeridian_is_split_into_two_parts_at_180() -> None:
    load = _load(feature("taveuni", TAVEUNI, timezone="Pacific/Fiji"))
    (venue,) = load.venues
    assert _codes(load) == ["antimeridian_split"]
    assert isinstance(venue.shape, MultiPolygon) and len(venue.shape.geoms) == 2
    west, _, east, _ = venue.shape.bounds
    assert (west, east) == (-180.0, 180.0)
    assert venue.shape.covers(Point(179.998, -16.795))
    assert venue.shape.covers(Point(-179.998, -16.795))
    assert not venue.shape.covers(Point(0.0, -16.795))  # not the whole band round the globe
    # ~ 1.1 km x 1.1 km: about a square kilometre, not half the planet
    assert 0.8e6 < geodesic_area_m2(venue.shape) < 1.5e6


def test_antimeridian_polygon_counts_against_the_area_limit_by_its_real_area() -> None:
    load = _load(feature("taveuni", TAVEUNI), max_area_km2=0.5)
    assert "area_too_large" in _codes(load)


def test_second_and_later_uses_of_an_id_are_rejected_and_the_first_kept() -> None:
    load = _load(feature("forum", name="first"), feature("forum", name="second"),
                 feature("forum", name="third"))
    assert [v.name for v in load.venues] == ["first"]
    assert [(p.feature_index, p.code) for p in load.problems] == [
        (1, "duplicate_id"), (2, "duplicate_id")]


def test_feature_id_and_properties_id_must_agree() -> None:
    f = feature("forum")
    f["id"] = "kamppi"
    load = _load(f)
    assert _codes(load) == ["conflicting_id"]


def test_numeric_feature_id_is_read_as_text() -> None:
    f = feature(None)
    f["id"] = 42
    (venue,) = _load(f).venues
    assert venue.id == "42"


def test_unknown_kind_lists_the_kinds_and_suggests_the_close_one() -> None:
    (problem,) = _load(feature("forum", kind="Mall")).problems
    assert problem.code == "unknown_kind" and problem.field == "properties.kind"
    assert "mall, transit_station, airport, stadium, store, campus, other" in problem.message
    assert "did you mean 'mall'?" in problem.message


def test_polygon_with_a_hole_inside_is_accepted_and_keeps_its_hole() -> None:
    hole = box_ring(24.9415, 60.1703, 24.9420, 60.1706)
    (venue,) = _load(feature("courtyard", polygon(box_ring(*HELSINKI_BOX), hole))).venues
    assert venue.shape is not None
    assert len(venue.shape.interiors) == 1
    assert not venue.shape.covers(Point(24.94175, 60.17045))


def test_strict_rejects_the_whole_file_when_any_feature_has_an_error() -> None:
    load = _load(feature("good"), feature("bad", kind="shop"), strict=True)
    assert load.venues == ()
    assert _codes(load) == ["unknown_kind", "strict_rejected"]
    assert load.summary.strict_rejected and load.summary.rejected == 2


def test_strict_keeps_a_file_that_has_only_warnings() -> None:
    load = _load(feature("taveuni", TAVEUNI), strict=True)
    assert len(load.venues) == 1


def test_store_slightly_over_the_mall_wall_is_kept_but_one_mostly_outside_is_not() -> None:
    mall = feature("mall", kind="mall")
    # 1 m ≈ 0.000018° of longitude at 60° N: 0.5 m over the wall of an 80 m store is 0.6 %
    slight = feature("slight", polygon(box_ring(24.9410 - 0.000009, 60.1702,
                                                24.9410 + 0.000018 * 80, 60.1706)),
                     kind="store", parent_id="mall")
    outside = feature("outside", polygon(box_ring(24.9405, 60.1702, 24.9415, 60.1706)),
                      kind="store", parent_id="mall")
    load = _load(mall, slight, outside)
    assert [v.id for v in load.venues] == ["mall", "slight"]
    (problem,) = load.problems
    assert (problem.feature_id, problem.code) == ("outside", "not_inside_parent")


def test_circle_store_inside_a_polygon_mall_is_kept() -> None:
    load = _load(feature("mall", kind="mall"),
                 feature("kiosk", point(24.9420, 60.1705), radius_m=15, kind="store",
                         parent_id="mall"))
    assert len(load.venues) == 2


def test_children_of_a_rejected_parent_are_rejected_too() -> None:
    load = _load(feature("mall", BOW_TIE, kind="mall"),
                 feature("store", point(24.9420, 60.1701), radius_m=10, kind="store",
                         parent_id="mall"))
    assert _codes(load) == ["self_intersection", "parent_rejected"]


def test_parent_cycles_and_self_parents_are_rejected() -> None:
    load = _load(feature("a", parent_id="b"), feature("b", parent_id="a"),
                 feature("c", parent_id="c"))
    assert _codes(load) == ["parent_cycle", "parent_cycle", "parent_cycle"]
    assert load.venues == ()


def test_area_limit_is_configurable() -> None:
    big = feature("uusimaa", polygon(box_ring(24.0, 60.0, 25.0, 60.5)))
    assert _codes(_load(big)) == ["area_too_large"]
    assert _codes(_load(big, max_area_km2=5_000)) == []


def test_properties_geopush_does_not_use_are_reported_once_per_file() -> None:
    load = _load(feature("a", colour="red"), feature("b", colour="blue", dwel_s=60))
    (problem,) = load.problems
    assert (problem.code, problem.severity, problem.feature_index) == (
        "unknown_property", Severity.WARNING, -1)
    assert "'colour' (2 features)" in problem.message and "'dwel_s' (1 feature)" in problem.message


def test_a_single_feature_reads_as_one_venue_with_a_warning() -> None:
    load = parse_feature_collection(feature("forum"), source="body")
    assert [v.id for v in load.venues] == ["forum"]
    assert _codes(load) == ["not_a_feature_collection"]
    assert load.problems[0].severity is Severity.WARNING


@pytest.mark.parametrize("body", [[feature("forum")], {"type": "Polygon"}, {"type": "Topology"}])
def test_body_that_is_not_a_feature_collection_raises_a_file_error(body: object) -> None:
    with pytest.raises(VenueFileError) as exc:
        parse_feature_collection(body, source="body")
    assert exc.value.problem.code == Code.NOT_A_FEATURE_COLLECTION


def test_radius_on_a_polygon_is_ignored_with_a_warning() -> None:
    load = _load(feature("forum", radius_m=50))
    assert len(load.venues) == 1
    assert _codes(load) == ["radius_ignored"]


def test_multipolygon_with_holes_is_accepted() -> None:
    hole = box_ring(24.9415, 60.1703, 24.9420, 60.1706)
    multi = {"type": "MultiPolygon", "coordinates": [
        [box_ring(*HELSINKI_BOX), hole], [box_ring(24.9440, 60.1700, 24.9450, 60.1705)]]}
    (venue,) = _load(feature("campus", multi, kind="campus")).venues
    assert isinstance(venue.shape, MultiPolygon) and len(venue.shape.geoms) == 2


OSM_HOURS = "Mo-Fr 10:00-18:00; Dec 24-26 off; PH off"


@pytest.mark.parametrize("where", ["top level", "metadata"])
def test_real_osm_opening_hours_pass_without_a_warning(where: str) -> None:
    props: dict[str, Any] = (
        {"opening_hours": OSM_HOURS} if where == "top level"
        else {"metadata": {"opening_hours": OSM_HOURS, "shop": "clothes"}})
    load = _load(feature("forum", kind="store", timezone="Europe/Helsinki", **props))
    assert load.problems == ()
    assert len(load.venues) == 1


def test_opening_hours_that_do_not_parse_warn_and_the_venue_is_kept_as_written() -> None:
    load = _load(feature("forum", kind="store", timezone="Europe/Helsinki",
                         opening_hours="Mo-Fr: 10:00-18:00"))
    (venue,) = load.venues
    assert venue.opening_hours == "Mo-Fr: 10:00-18:00"
    (problem,) = load.problems
    assert (problem.code, problem.severity, problem.field, problem.feature_id) == (
        Code.OPENING_HOURS_NOT_UNDERSTOOD, Severity.WARNING, "properties.opening_hours",
        "forum")
    assert problem.code == "opening_hours_not_understood"
    assert problem.message == (
        "opening_hours 'Mo-Fr: 10:00-18:00' is not OSM opening_hours syntax (at column 6); "
        "campaigns will treat the venue as open")
    assert load.summary.valid == 1 and load.summary.rejected == 0


def test_metadata_only_opening_hours_that_do_not_parse_warn_on_the_metadata_field() -> None:
    load = _load(feature("tiananmen", point(*TIANANMEN), radius_m=250,
                         timezone="Asia/Shanghai",
                         metadata={"opening_hours": "Mo-Fr: 10:00-18:00", "tourism": "attraction"}))
    (venue,) = load.venues
    assert venue.opening_hours is None
    assert venue.metadata["opening_hours"] == "Mo-Fr: 10:00-18:00"
    (problem,) = load.problems
    assert (problem.code, problem.severity, problem.field) == (
        "opening_hours_not_understood", Severity.WARNING, "properties.metadata.opening_hours")
    assert problem.message.startswith(
        "metadata.opening_hours 'Mo-Fr: 10:00-18:00' is not OSM opening_hours syntax "
        "(at column 6)")
    assert problem.at is not None and abs(problem.at.lat - 39.9055) < 1e-9


def test_metadata_opening_hours_are_not_checked_when_the_top_level_ones_are_given() -> None:
    # Campaigns read the top-level text; the metadata copy is then only metadata.
    load = _load(feature("forum", opening_hours=OSM_HOURS,
                         metadata={"opening_hours": "Mo-Fr: 10:00-18:00"}))
    assert load.problems == ()


def test_strict_keeps_a_venue_whose_opening_hours_do_not_parse() -> None:
    load = _load(feature("forum", opening_hours="Mo-Fr: 10:00-18:00"), strict=True)
    assert [v.id for v in load.venues] == ["forum"]
    assert _codes(load) == ["opening_hours_not_understood"]
