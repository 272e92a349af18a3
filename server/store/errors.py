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


class StoreUnavailableError(StoreError):
    """The backend could not be reached or failed; the operation did not happen
    (a batch transaction is rolled back whole)."""


class OutsideBatchError(StoreError):
    """A batch transaction was asked to write a user it did not lock: a bug in the
    caller, refused so that no row escapes the per-user serialisation."""
