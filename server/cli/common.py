"""Pieces shared by the CLI subcommands."""

from __future__ import annotations


class CliError(Exception):
    """A user-facing CLI failure: printed as one line, no traceback.

    ``location`` is ``FILE`` or ``FILE:LINE`` and ``field`` the offending column or
    property, so that the message names exactly what to fix.
    """

    def __init__(
        self,
        message: str,
        *,
        location: str | None = None,
        field: str | None = None,
        exit_status: int = 2,
    ) -> None:
        parts = [p for p in (location, field) if p]
        super().__init__(": ".join([*parts, message]))
        self.location = location
        self.field = field
        self.exit_status = exit_status
