"""Outlines for a report's map: the file's own geometry, valid or not, rounded, simplified
when dense, features with problems first within the report's budget."""

from __future__ import annotations

import math
from typing import Any

from venues.outline import feature_outlines

GUOMAO = (116.4605, 39.9087)


def _square(lng: float, lat: float, half: float = 0.001) -> dict[str, Any]:
    ring = [[lng - half, lat - half], [lng + half, lat - half], [lng + half, lat + half],
            [lng - half, lat + half], [lng - half, lat - half]]
    return {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon",
                                                             "coordinates": [ring]}}


def test_a_circle_venue_keeps_its_centre_and_radius() -> None:
    circle = {"type": "Feature", "properties": {"radius_m": 250},
              "geometry": {"type": "Point", "coordinates": [*GUOMAO]}}
    [outline] = feature_outlines([circle])
    assert outline.geometry == {"type": "Point", "coordinates": [116.4605, 39.9087]}
    assert outline.radius_m == 250.0


def test_coordinates_are_rounded_to_a_tenth_of_a_metre() -> None:
    [outline] = feature_outlines([_square(116.46051234567, 39.90871234567)])
    lng, lat = outline.geometry["coordinates"][0][0]
    assert (lng, lat) == (116.459512, 39.907712)


def test_unreadable_geometries_are_left_out_and_the_rest_keep_their_index() -> None:
    features: list[object] = [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": "nope"}},
        "not a feature",
        {"type": "Feature", "geometry": None},
        _square(*GUOMAO),
    ]
    assert [o.feature_index for o in feature_outlines(features)] == [3]


def test_features_with_problems_get_the_budget_first() -> None:
    squares = [_square(GUOMAO[0] + 0.01 * i, GUOMAO[1]) for i in range(4)]
    # Each square has 5 positions; a budget of 10 holds two of them.
    drawn = feature_outlines(squares, flagged=[3, 2], total=10)
    assert [o.feature_index for o in drawn] == [2, 3]


def test_a_dense_outline_is_simplified_under_the_limit() -> None:
    ring = [[GUOMAO[0] + 0.002 * math.cos(2 * math.pi * i / 3000),
             GUOMAO[1] + 0.002 * math.sin(2 * math.pi * i / 3000)] for i in range(3000)]
    dense = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [
        [*ring, ring[0]]]}}
    [outline] = feature_outlines([dense], each=200)
    assert outline.simplified
    assert 4 <= len(outline.geometry["coordinates"][0]) <= 200
