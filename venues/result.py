"""The outcome of loading a venue file: the venues kept, the problems, a summary."""

from __future__ import annotations

from dataclasses import dataclass, field

from venues.model import Venue
from venues.outline import Outline
from venues.problems import Problem


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """Counts for a report.

    ``features`` were read; ``valid`` passed every check; ``rejected`` are not among the
    venues (under ``strict`` with any error that is all of them); ``repaired`` were
    kept after make_valid; ``by_kind`` counts the venues kept, by kind value.
    """

    features: int
    valid: int
    rejected: int
    repaired: int
    errors: int
    warnings: int
    by_kind: dict[str, int] = field(default_factory=dict)
    strict_rejected: bool = False


@dataclass(frozen=True, slots=True)
class VenueLoad:
    """Venues read from one source, in file order, and what was wrong with the rest.

    ``source`` names the input in messages (a path, or e.g. ``request body``);
    ``attribution`` is the FeatureCollection's ``attribution`` member, if any (keep it
    with anything derived from the data: OSM data is ODbL).
    """

    source: str
    venues: tuple[Venue, ...]
    problems: tuple[Problem, ...]
    summary: LoadSummary
    attribution: str | None = None
    outlines: tuple[Outline, ...] = ()
    """Each feature's outline for a map of the report (only when asked for:
    :func:`venues.outline.feature_outlines`)."""

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.is_error)

    @property
    def ok(self) -> bool:
        """True when nothing was rejected (warnings allowed)."""
        return not self.errors
