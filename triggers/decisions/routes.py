"""Route tips for transit venues: the station's lines and the user's usual next station.

Lines come from venue metadata, as the venue files carry them
(``metadata.lines = [{id, name, local_name, termini}]``). The usual next station is learned
from the user's visit history by :func:`learn_next_stops` and kept on the profile
(``Profile.next_stops``), so the hot path needs no visit history and no other venue.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from triggers.decisions.models import NextStop
from triggers.decisions.segments import Visit
from venues.model import Venue, VenueKind

MAX_TRIP_GAP_S = 90 * 60.0
"""Leaving one station and entering another within 90 minutes is one trip: the longest
Beijing subway rides (end to end, with transfers) take about that long."""
MIN_TRIPS = 2
"""A destination seen once is an errand; twice from the same station starts a routine."""


@dataclass(frozen=True, slots=True)
class Line:
    id: str
    name: str
    local_name: str | None
    termini: tuple[str, ...]

    def as_context(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "local_name": self.local_name,
            "termini": list(self.termini),
        }


def lines_of(venue: Venue) -> tuple[Line, ...]:
    """The lines serving a transit venue, from ``metadata.lines``; malformed entries are
    skipped (venue metadata is free JSON and must not break a decision)."""
    raw = venue.metadata.get("lines")
    if not isinstance(raw, list):
        return ()
    lines = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        name = item.get("name")
        local = item.get("local_name")
        termini = item.get("termini")
        lines.append(
            Line(
                id=item["id"],
                name=name if isinstance(name, str) else item["id"],
                local_name=local if isinstance(local, str) else None,
                termini=tuple(t for t in termini if isinstance(t, str))
                if isinstance(termini, list)
                else (),
            )
        )
    return tuple(lines)


def learn_next_stops(
    visits: Sequence[Visit],
    venues: Mapping[str, Venue],
    *,
    max_gap_s: float = MAX_TRIP_GAP_S,
    min_trips: int = MIN_TRIPS,
) -> dict[str, NextStop]:
    """For each station the user leaves, the station they usually enter next.

    A trip is a visit to a transit station followed (next visit in time) by a visit to a
    different transit station starting at most ``max_gap_s`` after the first ended. The
    usual next station is the most frequent destination with at least ``min_trips``
    trips; ties go to the smaller venue id so the result is deterministic. Stations not in
    ``venues`` are skipped (their names and lines are unknown).
    """
    ordered = sorted(visits, key=lambda v: (v.start, v.venue_id))
    trips: dict[str, Counter[str]] = {}
    for origin, destination in pairwise(ordered):
        if (
            origin.venue_kind == VenueKind.TRANSIT_STATION
            and destination.venue_kind == VenueKind.TRANSIT_STATION
            and destination.venue_id != origin.venue_id
            and 0 <= destination.start - origin.end <= max_gap_s
            and destination.venue_id in venues
        ):
            trips.setdefault(origin.venue_id, Counter())[destination.venue_id] += 1
    result: dict[str, NextStop] = {}
    for origin_id, counts in sorted(trips.items()):
        best_id, best_count = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        if best_count < min_trips:
            continue
        destination_venue = venues[best_id]
        result[origin_id] = NextStop(
            venue_id=best_id,
            name=destination_venue.name,
            line_ids=tuple(line.id for line in lines_of(destination_venue)),
            trips=best_count,
        )
    return result


@dataclass(frozen=True, slots=True)
class RouteTip:
    """What a route-tip template can say at a station."""

    station: str
    lines: tuple[Line, ...]
    next_station: NextStop | None
    line: Line | None
    """A line serving both this station and the next one; ``None`` when a transfer is
    needed or the next station is unknown. The first such line in the station's order."""

    def as_context(self) -> dict[str, Any]:
        """The template's ``route``: plain dicts and lists only."""
        return {
            "station": self.station,
            "lines": [line.as_context() for line in self.lines],
            "next_station": None
            if self.next_station is None
            else {"venue_id": self.next_station.venue_id, "name": self.next_station.name},
            "line": None if self.line is None else self.line.as_context(),
            "transfer": self.next_station is not None and self.line is None,
        }


def route_tip(station: Venue, next_stop: NextStop | None) -> RouteTip | None:
    """The tip for a user at ``station``; ``None`` unless it is a transit venue with lines."""
    if station.kind != VenueKind.TRANSIT_STATION:
        return None
    lines = lines_of(station)
    if not lines:
        return None
    shared = None
    if next_stop is not None:
        shared = next((line for line in lines if line.id in next_stop.line_ids), None)
    return RouteTip(station=station.name, lines=lines, next_station=next_stop, line=shared)
