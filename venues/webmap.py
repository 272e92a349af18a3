"""A Leaflet map (via folium) of a venue load: the valid venues and the problems.

Two overlay layers, ``Venues`` and ``Problems``, with a layer control: venues coloured
by kind with a popup (id, name, kind, parent), problems as markers where the feature
has a usable position. Builds the map only; the caller saves it (``m.save(path)``).
"""

from __future__ import annotations

import html
from typing import Any

import folium

from venues.geojson import venue_to_feature
from venues.model import Venue, VenueKind
from venues.problems import Problem, Severity
from venues.result import VenueLoad

OSM_ATTRIBUTION = "© OpenStreetMap contributors"
"""Tiles and the shipped venue data are OpenStreetMap's (ODbL): this must show on maps."""

VENUES_LAYER = "Venues"
PROBLEMS_LAYER = "Problems"

KIND_COLOURS: dict[VenueKind, str] = {
    VenueKind.MALL: "#d62728",
    VenueKind.TRANSIT_STATION: "#1f77b4",
    VenueKind.AIRPORT: "#9467bd",
    VenueKind.STADIUM: "#ff7f0e",
    VenueKind.STORE: "#e377c2",
    VenueKind.CAMPUS: "#2ca02c",
    VenueKind.OTHER: "#7f7f7f",
}
_SEVERITY_COLOURS = {Severity.ERROR: "#b00020", Severity.WARNING: "#e69500"}
_WORLD = [[-60.0, -170.0], [75.0, 170.0]]


def venue_map(load: VenueLoad) -> folium.Map:
    """The map of ``load``; fitted to its venues and problem markers."""
    fmap = folium.Map(tiles=None, control_scale=True)
    attribution = (f'{OSM_ATTRIBUTION} '
                   '(<a href="https://www.openstreetmap.org/copyright">ODbL</a>)')
    if load.attribution:
        attribution += f" — venue data: {html.escape(load.attribution)}"
    folium.TileLayer("OpenStreetMap", attr=attribution, name="OpenStreetMap").add_to(fmap)

    venues_layer = folium.FeatureGroup(name=VENUES_LAYER, show=True)
    polygons = [v for v in load.venues if v.shape is not None]
    if polygons:
        folium.GeoJson(
            {"type": "FeatureCollection", "features": [_slim(v) for v in polygons]},
            name=VENUES_LAYER,
            style_function=_style,
            popup=folium.GeoJsonPopup(fields=["id", "name", "kind", "parent_id"]),
            tooltip=folium.GeoJsonTooltip(fields=["name"]),
        ).add_to(venues_layer)
    for venue in load.venues:
        if venue.center is not None and venue.radius_m is not None:
            colour = KIND_COLOURS[venue.kind]
            folium.Circle(
                location=[venue.center.lat, venue.center.lng], radius=venue.radius_m,
                color=colour, fill=True, fill_color=colour, fill_opacity=0.3, weight=2,
                popup=folium.Popup(_venue_html(venue), max_width=300),
                tooltip=html.escape(venue.name),
            ).add_to(venues_layer)
    venues_layer.add_to(fmap)

    problems_layer = folium.FeatureGroup(name=PROBLEMS_LAYER, show=True)
    for problem in load.problems:
        if problem.at is None:
            continue
        folium.CircleMarker(
            location=[problem.at.lat, problem.at.lng], radius=7,
            color=_SEVERITY_COLOURS[problem.severity], fill=True, fill_opacity=0.8,
            popup=folium.Popup(_problem_html(problem, load.source), max_width=400),
            tooltip=html.escape(problem.code),
        ).add_to(problems_layer)
    problems_layer.add_to(fmap)

    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.fit_bounds(_bounds(load))
    return fmap


def _slim(venue: Venue) -> dict[str, Any]:
    """The feature without metadata: the map needs names, not transit timetables."""
    feature = venue_to_feature(venue)
    props = feature["properties"]
    feature["properties"] = {k: props[k] for k in ("id", "name", "kind", "parent_id")}
    return feature


def _style(feature: dict[str, Any]) -> dict[str, Any]:
    colour = KIND_COLOURS.get(VenueKind(feature["properties"]["kind"]), "#7f7f7f")
    return {"color": colour, "fillColor": colour, "weight": 2, "fillOpacity": 0.3}


def _venue_html(venue: Venue) -> str:
    rows = [("id", venue.id), ("name", venue.name), ("kind", venue.kind.value)]
    if venue.parent_id:
        rows.append(("parent", venue.parent_id))
    return "<br>".join(f"<b>{k}</b>: {html.escape(v)}" for k, v in rows)


def _problem_html(problem: Problem, source: str) -> str:
    return html.escape(problem.describe(source))


def _bounds(load: VenueLoad) -> list[list[float]]:
    """[[south, west], [north, east]] around venues and problem markers (degrees)."""
    lats: list[float] = []
    lngs: list[float] = []
    for venue in load.venues:
        if venue.shape is not None:
            west, south, east, north = venue.shape.bounds
            lats += [south, north]
            lngs += [west, east]
        elif venue.center is not None:
            lats.append(venue.center.lat)
            lngs.append(venue.center.lng)
    for problem in load.problems:
        if problem.at is not None:
            lats.append(problem.at.lat)
            lngs.append(problem.at.lng)
    if not lats:
        return _WORLD
    return [[min(lats), min(lngs)], [max(lats), max(lngs)]]
