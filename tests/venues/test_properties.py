"""Property tests: any reasonable venue validates, and venues survive a GeoJSON round trip."""

from __future__ import annotations

import json

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPoint, Polygon, mapping

from tests.conftest import HELSINKI_VENUES
from tests.venues.builders import collection, feature, point
from venues import Venue, VenueKind, load_venues, parse_feature_collection, to_feature_collection

# Real places to build venues around: Helsinki Central, Tiananmen, Taveuni (the 180th
# meridian is 0.05° east of this point), Ushuaia, Reykjavik.
PLACES = [(24.9414, 60.1719), (116.3975, 39.9055), (179.95, -16.80), (-68.30, -54.80),
          (-21.94, 64.15)]
_OFFSET = st.floats(min_value=-0.01, max_value=0.01, allow_nan=False)


@st.composite
def hull_polygons(draw: st.DrawFn) -> Polygon:
    """The convex hull of 3..12 points within ~1 km of a real place, at least ~100 m²."""
    lng, lat = draw(st.sampled_from(PLACES))
    offsets = draw(st.lists(st.tuples(_OFFSET, _OFFSET), min_size=3, max_size=12))
    hull = MultiPoint([(lng + dx, lat + dy) for dx, dy in offsets]).convex_hull
    assume(isinstance(hull, Polygon) and hull.area > 1e-8)
    return hull


def _venue(v: Venue) -> tuple[object, ...]:
    return (v.id, v.name, v.kind, v.tags, v.parent_id, v.dwell_s, v.opening_hours,
            v.timezone, v.metadata, v.enabled, v.center, v.radius_m)


def _round_trip(venues: tuple[Venue, ...]) -> tuple[Venue, ...]:
    text = json.dumps(to_feature_collection(venues), allow_nan=False)
    again = parse_feature_collection(json.loads(text), source="round trip")
    assert again.errors == ()
    return again.venues


@settings(max_examples=60, deadline=None)
@given(shape=hull_polygons(), kind=st.sampled_from(list(VenueKind)),
       dwell_s=st.integers(min_value=1, max_value=86_400),
       tags=st.lists(st.text(max_size=8), max_size=3))
def test_any_convex_venue_near_a_real_place_validates_and_round_trips(
    shape: Polygon, kind: VenueKind, dwell_s: int, tags: list[str]
) -> None:
    load = parse_feature_collection(
        collection(feature("v", dict(mapping(shape)), kind=kind.value, dwell_s=dwell_s,
                           tags=tags, metadata={"lines": ["M1"]})),
        source="generated")
    assert load.errors == ()
    (venue,) = load.venues
    assert venue.shape is not None and venue.shape.is_valid
    (again,) = _round_trip(load.venues)
    assert _venue(again) == _venue(venue)
    assert again.shape is not None and again.shape.equals_exact(venue.shape, 0.0)


@settings(max_examples=30, deadline=None)
@given(place=st.sampled_from(PLACES), radius_m=st.floats(min_value=10.0, max_value=10_000.0))
def test_any_circle_in_range_validates_and_round_trips(
    place: tuple[float, float], radius_m: float
) -> None:
    load = parse_feature_collection(collection(feature("c", point(*place), radius_m=radius_m)),
                                    source="generated")
    (venue,) = load.venues
    assert (venue.center is not None and venue.radius_m == radius_m and venue.shape is None)
    (again,) = _round_trip(load.venues)
    assert _venue(again) == _venue(venue)


def test_the_helsinki_fixture_round_trips_through_geojson() -> None:
    load = load_venues(HELSINKI_VENUES)
    again = _round_trip(load.venues)
    assert [_venue(v) for v in again] == [_venue(v) for v in load.venues]
    assert all(a.shape is not None and b.shape is not None and a.shape.equals_exact(b.shape, 0.0)
               for a, b in zip(again, load.venues, strict=True))
