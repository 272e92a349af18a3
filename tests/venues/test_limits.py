"""Size limits of one venue: vertices (refused, or simplified within a tolerance that
keeps the fence faithful), text fields, tags and metadata; each problem names its field."""

from __future__ import annotations

import math
from typing import Any

import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import shape

from tests.venues.builders import collection, feature, polygon
from venues import Code, Severity, VenueLimits, VenueLoad, parse_feature_collection
from venues.limits import MAX_METADATA_BYTES, MAX_NAME_CHARS, MAX_TAGS, METRES_PER_DEGREE

SENATE_SQUARE = (60.1694, 24.9522)  # Helsinki


def dense_outline(vertices: int, radius_m: float = 120.0, lat: float = SENATE_SQUARE[0],
                  lng: float = SENATE_SQUARE[1]) -> dict[str, Any]:
    """A round plaza traced with ``vertices`` points (a GPS survey's worth of detail)."""
    m_lng = METRES_PER_DEGREE * math.cos(math.radians(lat))
    ring = [[lng + radius_m * math.cos(2 * math.pi * i / vertices) / m_lng,
             lat + radius_m * math.sin(2 * math.pi * i / vertices) / METRES_PER_DEGREE]
            for i in range(vertices)]
    return polygon([*ring, ring[0]])


def _load(*features: dict[str, Any], limits: VenueLimits | None = None) -> VenueLoad:
    return parse_feature_collection(collection(*features), source="plaza.geojson",
                                    limits=limits)


def _problems(load: VenueLoad) -> list[tuple[int, str, str, Severity]]:
    return [(p.feature_index, p.field, p.code, p.severity) for p in load.problems]


def test_a_venue_over_the_vertex_limit_is_refused_naming_its_geometry() -> None:
    load = _load(feature("ok"), feature("plaza", dense_outline(30_000)))
    assert _problems(load) == [(1, "geometry", Code.TOO_MANY_VERTICES.value, Severity.ERROR)]
    assert "30,001 vertices, more than the limit of 20,000" in load.problems[0].message
    assert [v.id for v in load.venues] == ["ok"]


def test_simplify_keeps_a_dense_outline_within_the_limit_and_says_so() -> None:
    load = _load(feature("plaza", dense_outline(30_000)),
                 limits=VenueLimits(max_vertices=20_000, simplify_m=1.0))
    [venue] = load.venues
    assert venue.shape is not None and shapely.get_num_coordinates(venue.shape) < 100
    assert _problems(load) == [(0, "geometry", Code.SIMPLIFIED.value, Severity.WARNING)]
    assert "from 30,001 to" in load.problems[0].message


@settings(max_examples=25, deadline=None)
@given(vertices=st.integers(2_000, 6_000), radius_m=st.floats(30.0, 800.0),
       lat=st.floats(-65.0, 65.0), tolerance_m=st.sampled_from([0.5, 1.0, 5.0]))
def test_a_simplified_outline_is_within_the_tolerance_of_the_original(
    vertices: int, radius_m: float, lat: float, tolerance_m: float,
) -> None:
    geometry = dense_outline(vertices, radius_m, lat=lat, lng=24.95)
    load = _load(feature("plaza", geometry),
                 limits=VenueLimits(max_vertices=1_000, simplify_m=tolerance_m))
    [venue] = load.venues
    assert venue.shape is not None
    assert shapely.get_num_coordinates(venue.shape) <= 1_000
    # Hausdorff distance in degrees, at most METRES_PER_DEGREE metres each (a degree of
    # longitude is shorter away from the equator).
    moved_m = shapely.hausdorff_distance(shape(geometry), venue.shape) * METRES_PER_DEGREE
    assert moved_m <= tolerance_m * 1.001


def test_an_outline_still_too_dense_when_simplified_is_refused() -> None:
    # A 3 km circle needs ~170 vertices to stay within half a metre.
    load = _load(feature("plaza", dense_outline(3_000, radius_m=3_000)),
                 limits=VenueLimits(max_vertices=130, simplify_m=0.5))
    assert _problems(load) == [(0, "geometry", Code.TOO_MANY_VERTICES.value, Severity.ERROR)]
    assert "when simplified within 0.5 m" in load.problems[0].message


def test_far_too_many_vertices_are_refused_without_trying_to_simplify() -> None:
    load = _load(feature("plaza", dense_outline(30_000)),
                 limits=VenueLimits(max_vertices=1_000, simplify_m=1.0))
    assert "30,001 vertices, more than the limit of 1,000" in load.problems[0].message


def test_a_five_megabyte_name_is_refused_naming_the_field() -> None:
    load = _load(feature("plaza", name="x" * 5_000_000))
    assert _problems(load) == [(0, "properties.name", Code.TEXT_TOO_LONG.value,
                                Severity.ERROR)]
    assert f"more than {MAX_NAME_CHARS}" in load.problems[0].message


def test_tags_and_metadata_have_limits() -> None:
    load = _load(feature("many", tags=[f"t{i}" for i in range(MAX_TAGS + 1)]),
                 feature("long", tags=["ok", "y" * 65]),
                 feature("meta", metadata={"exits": ["A" * 100] * 200}),
                 feature("fine", tags=["mall"], metadata={"exits": ["A", "B"]}))
    assert _problems(load) == [
        (0, "properties.tags", Code.TOO_MANY_ITEMS.value, Severity.ERROR),
        (1, "properties.tags[1]", Code.TEXT_TOO_LONG.value, Severity.ERROR),
        (2, "properties.metadata", Code.METADATA_TOO_LARGE.value, Severity.ERROR),
    ]
    assert f"more than {MAX_METADATA_BYTES:,}" in load.problems[2].message
    assert [v.id for v in load.venues] == ["fine"]
