"""The storage layer's exceptions: one small tree, translated to HTTP by ``server.errors``.

Backend exceptions (asyncpg's, OSError of a file store) never leave a :class:`Store`
method undressed: they become :class:`StoreUnavailableError` (``raise ... from exc``), so
callers need to know one tree whatever the backend.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every storage failure."""


class NotFoundError(StoreError):
    """The tenant (or the row a write needs) does not exist — for this tenant.

    A row of another tenant is "not found" too: ids are never confirmed across tenants.
    """


class ConflictError(StoreError):
    """A create met an existing row with the same id (campaign, key, tenant)."""


class VenueHasChildrenError(ConflictError):
    """A venue asked to be deleted is the ``parent_id`` of others (stores of a mall):
    deleting it alone would leave them naming a parent that does not exist."""

    def __init__(self, venue_id: str, children: tuple[str, ...]) -> None:
        shown = ", ".join(children[:10]) + (" ..." if len(children) > 10 else "")
        super().__init__(f"venue {venue_id!r} is the parent of {len(children)} venue(s): "
                         f"{shown}; delete them first, or delete with cascade")
        self.venue_id = venue_id
        self.children = children


class LimitExceededError(StoreError):
    """A write would take the tenant past a limit it was given (venues per tenant);
    nothing was written."""

    def __init__(self, what: str, limit: int, would_be: int) -> None:
        super().__init__(f"the tenant would have {would_be:,} {what}, more than the limit "
                         f"of {limit:,}")
        self.what = what
        self.limit = limit
        self.would_be = would_be


class StoreUnavailableError(StoreError):
    """The backend could not be reached or failed; the operation did not happen
    (a batch transaction is rolled back whole)."""


class OutsideBatchError(StoreError):
    """A batch transaction was asked to write a user it did not lock: a bug in the
    caller, refused so that no row escapes the per-user serialisation."""
