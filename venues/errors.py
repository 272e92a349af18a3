"""The venues layer's exception tree; the server translates these at its boundary."""

from __future__ import annotations

from venues.problems import Problem


class VenueError(ValueError):
    """A venue or venue file that cannot be used."""


class VenueFileError(VenueError):
    """A venue file (or request body) that cannot be read at all.

    Validation of a readable file never raises; it reports :class:`Problem` s. This is
    for what stops reading outright (not JSON, not a FeatureCollection, an unreadable
    GeoPackage): ``problem`` says why, and ``line`` / ``column`` (1-based) where, when
    the input is text.
    """

    def __init__(
        self, source: str, problem: Problem, *, line: int | None = None,
        column: int | None = None,
    ) -> None:
        where = f"{source}:{line}" if line is not None else source
        super().__init__(problem.describe(where))
        self.source = source
        self.problem = problem
        self.line = line
        self.column = column
