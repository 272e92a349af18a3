"""A venue's OSM ``opening_hours``, evaluated at a local time.

The syntax is OpenStreetMap's whole specification (wiki ``Key:opening_hours/specification``),
evaluated by the ``opening-hours-py`` library (bindings of the Rust ``opening-hours``
crate), not by a parser of ours: dates (``Dec 24-26 off``), years, week numbers, public
holidays (``PH``), ``easter``, sunrise and sunset, open ends (``10:00+``), fallback rules
(``||``) and comments all work as OSM defines them.

What the library decides, and so geopush follows:

- A later rule replaces earlier ones for the days it selects (``Mo-Sa 10:00-20:00;
  Sa 10:00-16:00`` closes Saturdays at 16:00). A span past midnight (``Fr 18:00-02:00``)
  continues into the next day, unless a later rule selects that next day: with
  ``Jun-Aug: 18:00-03:00; Sep-May: 18:00-24:00`` the night of 31 August ends at midnight,
  because the ``Sep-May`` rule governs all of 1 September.
- ``PH`` days come from the library's own public-holiday calendar of the venue's country
  (see :func:`venue_hours` for which country); ``SH`` (school holidays) has no calendar,
  so ``SH`` rules never apply and :attr:`VenueHours.caveat` says so.
- The state at a time may be ``unknown`` (``Sa unknown``, an open end, a comment-only
  rule): the caller decides what unknown means (``decide`` treats it as open, with a note).

Pure: no clock, no IO. The library's holiday calendars and its coordinates-to-country
table are data compiled into it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache

import opening_hours as osm

from triggers.decisions.hours import zone
from venues.fields import opening_hours_problem
from venues.model import Venue

# The library's type stubs leave out its exception classes (opening-hours-py 2.1).
_UnknownCountryError: type[Exception] = osm.UnknownCountryError  # type: ignore[attr-defined]

_COMMENT = re.compile(r'"[^"]*"')
_SCHOOL_HOLIDAYS = re.compile(r"\bSH\b")
_PUBLIC_HOLIDAYS = re.compile(r"\bPH\b")


class HoursState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    UNKNOWN = "unknown"
    """The text says so (``unknown``, an open end, a comment-only rule)."""


_STATES = {
    osm.State.OPEN: HoursState.OPEN,
    osm.State.CLOSED: HoursState.CLOSED,
    osm.State.UNKNOWN: HoursState.UNKNOWN,
}


class OpeningHoursError(ValueError):
    """The text is not OSM ``opening_hours`` syntax; the message says where."""


@dataclass(frozen=True, slots=True, eq=False)
class VenueHours:
    """Opening hours ready to evaluate, for one venue's place (zone, country, position)."""

    text: str
    caveat: str | None
    """What the evaluation cannot honour (school holidays, public holidays of an unknown
    country), for the decision's notes; ``None`` when nothing."""
    _evaluator: osm.OpeningHours

    def state_at(self, local: datetime) -> tuple[HoursState, str]:
        """The state at ``local`` (wall-clock time in the venue's zone; an aware datetime
        is read as its wall clock) and the comment of the rule that decided it."""
        naive = datetime(local.year, local.month, local.day, local.hour, local.minute)
        state, comment = self._evaluator.state(naive)
        return _STATES[state], comment

    def intervals(
        self, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime, HoursState, str]]:
        """The spans of one state from wall-clock ``start`` to ``end`` (venue's zone), as
        (start, end, state, comment), with the zone attached."""
        return [
            (begin, until, _STATES[state], comment)
            for begin, until, state, comment in self._evaluator.intervals(start, end)
        ]

    def next_change(self, local: datetime) -> datetime | None:
        """When the state next changes after wall-clock ``local`` (aware, in the venue's
        zone); ``None`` when it never does (``off``, ``24/7``)."""
        naive = datetime(local.year, local.month, local.day, local.hour, local.minute)
        found: datetime | None = self._evaluator.next_change(naive)
        return found

    def is_open(self, local: datetime) -> bool | None:
        """``True`` / ``False``, or ``None`` when the text says the state is unknown."""
        state = self.state_at(local)[0]
        return None if state is HoursState.UNKNOWN else state is HoursState.OPEN


@lru_cache(maxsize=16_384)  # one entry per (text, place): a tenant's venues
def venue_hours(
    text: str,
    timezone: str,
    *,
    country: str | None = None,
    coords: tuple[float, float] | None = None,
) -> VenueHours:
    """Parse ``text`` for a venue in IANA zone ``timezone``.

    ``country`` (ISO 3166-1 alpha-2) selects the public-holiday calendar for ``PH``;
    without it, or when the library has no calendar for it, the library infers the country
    from ``coords`` (latitude, longitude), which also place sunrise and sunset. A text naming
    ``PH`` with neither leaves ``PH`` unapplied (see :attr:`VenueHours.caveat`). Raises
    :class:`OpeningHoursError` when the text does not parse.
    """
    problem = opening_hours_problem(text)  # the venue check's own answer, memoised
    if problem is not None:
        raise OpeningHoursError(problem)
    caveats = []
    tz = zone(timezone)
    try:
        evaluator = osm.OpeningHours(text, timezone=tz, country=country, coords=coords)
    except _UnknownCountryError:
        # A country code the library has no calendar for: the venue's position, if any.
        evaluator = osm.OpeningHours(text, timezone=tz, coords=coords)
        if _names_public_holidays(text):
            fallback = "its position's" if coords is not None else "none; PH not applied"
            caveats.append(f"no public-holiday calendar for country {country!r}; {fallback}")
    if country is None and coords is None and _names_public_holidays(text):
        caveats.append("the venue's country is unknown; PH not applied")
    if _SCHOOL_HOLIDAYS.search(_COMMENT.sub("", text)):
        caveats.append("school holidays (SH) have no calendar; SH rules not applied")
    return VenueHours(text, "; ".join(caveats) or None, evaluator)


def _names_public_holidays(text: str) -> bool:
    return _PUBLIC_HOLIDAYS.search(_COMMENT.sub("", text)) is not None


def venue_country(venue: Venue) -> str | None:
    """The venue's ISO 3166-1 alpha-2 country from its metadata (OSM's ``addr:country``,
    or ``country``), for its public holidays; ``None`` when it has none."""
    for key in ("addr:country", "country"):
        value = venue.metadata.get(key)
        if isinstance(value, str) and len(value.strip()) == 2:
            return value.strip().upper()
    return None


_HOURS: dict[str, tuple[Venue, str, str | None, VenueHours | str | None]] = {}
"""Each venue's evaluable opening hours, for the venue object, zone and fallback country
it was made for (the service passes the same venue object until the venue changes)."""
MAX_VENUE_HOURS = 1 << 15


def hours_of_venue(
    venue: Venue, tz: str, fallback_country: str | None
) -> VenueHours | str | None:
    """The venue's opening hours (``None``: it has none; a text: why they do not parse).

    The text is :func:`opening_hours_text`. Public holidays (``PH``) are those of the venue's
    ``addr:country``, else of ``fallback_country`` (the tenant's), else of the country the
    venue's position is in (the library looks it up: ~2 ms, once per venue).
    """
    hit = _HOURS.get(venue.id)
    if hit is not None and hit[0] is venue and hit[1] == tz and hit[2] == fallback_country:
        return hit[3]
    text = opening_hours_text(venue)
    found: VenueHours | str | None = None
    if text is not None:
        coords = venue_position(venue)
        country = venue_country(venue) or fallback_country
        try:
            found = venue_hours(text, tz, country=country, coords=coords)
        except OpeningHoursError as exc:
            found = str(exc)
    if len(_HOURS) >= MAX_VENUE_HOURS:
        _HOURS.clear()
    _HOURS[venue.id] = (venue, tz, fallback_country, found)
    return found


def opening_hours_text(venue: Venue) -> str | None:
    """The opening hours campaigns read: ``opening_hours``, else ``metadata.opening_hours``
    (OSM venue files often keep it there only)."""
    text = venue.opening_hours
    if text is None and isinstance(venue.metadata.get("opening_hours"), str):
        text = venue.metadata["opening_hours"]
    return text


def venue_position(venue: Venue) -> tuple[float, float] | None:
    """(latitude, longitude) of the venue (its centre, else a point inside its shape), to
    4 decimals (~10 m: sunrise and the country do not move in that); ``None`` without
    either."""
    if venue.center is not None:
        return round(venue.center.lat, 4), round(venue.center.lng, 4)
    if venue.shape is None or venue.shape.is_empty:
        return None
    point = venue.shape.representative_point()
    return round(point.y, 4), round(point.x, 4)


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of one state, in the venue's local time (aware)."""

    start: datetime
    end: datetime
    state: HoursState
    comment: str | None
    """The deciding rule's comment, or why a venue counts as open."""


@dataclass(frozen=True, slots=True)
class HoursReport:
    """A venue's opening hours over some days, as campaigns read them (the API's
    ``GET /v1/venues/{id}/hours`` and ``geopush venues hours``)."""

    text: str | None
    """:func:`opening_hours_text`."""
    timezone: str
    problem: str | None
    """Why the text does not parse (the venue then counts as open)."""
    caveat: str | None
    spans: tuple[Span, ...]

    @property
    def understood(self) -> bool:
        return self.problem is None


def hours_report(
    venue: Venue, tz: str, fallback_country: str | None, first: date, days: int
) -> HoursReport:
    """The venue's spans from local midnight of ``first`` for ``days`` days, in ``tz``
    (the venue's zone; for one without, the caller's choice), as :func:`hours_of_venue`
    evaluates them for ``fallback_country``."""
    start = datetime(first.year, first.month, first.day)
    end = start + timedelta(days=days)
    hours = hours_of_venue(venue, tz, fallback_country)
    if hours is None or isinstance(hours, str):
        why = "no opening hours" if hours is None else "not understood; treated as open"
        spans: tuple[Span, ...] = (Span(start.replace(tzinfo=zone(tz)),
                                        end.replace(tzinfo=zone(tz)), HoursState.OPEN, why),)
        return HoursReport(opening_hours_text(venue), tz, hours, None, spans)
    spans = tuple(Span(begin, until, state, comment or None)
                  for begin, until, state, comment in hours.intervals(start, end))
    return HoursReport(opening_hours_text(venue), tz, None, hours.caveat, spans)
