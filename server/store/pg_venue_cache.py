"""The parsed venues of :class:`~server.store.postgres.PostgresStore`'s catalogue reads.

Every catalogue change rebuilds the tenant's core from a full catalogue read. Parsing
every venue's stored feature each time (JSON, then shapely from nested lists) costs
milliseconds per thousand vertices under the event loop's GIL, for venues that did not
change: a tenant re-sending one 20,000-vertex outline every second made every other
tenant's requests wait for it. :class:`VenueCache` keeps each venue parsed, keyed by its
row version (PostgreSQL's ``xmin``, which every update of the row changes), so a read
fetches and parses only the venues written since the last read, in a thread, with orjson.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
import orjson

from server.store.codec import venue_from_feature
from venues.model import Venue


class VenueCache:
    """Tenant → venue id → (row version, parsed venue), as of the last catalogue read."""

    def __init__(self) -> None:
        self._tenants: dict[str, dict[str, tuple[str, Venue]]] = {}

    async def venues(self, conn: asyncpg.Connection, tenant_id: str) -> tuple[Venue, ...]:
        """The tenant's venues by id (``COLLATE "C"``), in ``conn``'s transaction: the
        row versions first, then the features of the rows this cache does not have."""
        rows = await conn.fetch(
            "SELECT venue_id, xmin::text AS version FROM venues WHERE tenant_id = $1"
            " ORDER BY venue_id COLLATE \"C\"", tenant_id)
        known = self._tenants.get(tenant_id, {})
        stale = [r["venue_id"] for r in rows
                 if known.get(r["venue_id"], ("",))[0] != r["version"]]
        fresh: dict[str, tuple[str, Venue]] = {}
        if stale:
            changed = await conn.fetch(
                "SELECT venue_id, xmin::text AS version, feature::text AS feature"
                " FROM venues WHERE tenant_id = $1 AND venue_id = ANY($2::text[])",
                tenant_id, stale)
            fresh = await asyncio.to_thread(_parsed, changed)
        current: dict[str, tuple[str, Venue]] = {}
        for row in rows:
            vid = row["venue_id"]
            entry = fresh.get(vid) or known.get(vid)
            if entry is None:  # written between the two reads: not in this snapshot
                continue
            current[vid] = entry
        self._tenants[tenant_id] = current
        return tuple(venue for _, venue in current.values())

    def forget(self, tenant_id: str) -> None:
        self._tenants.pop(tenant_id, None)


def _parsed(rows: Sequence[asyncpg.Record]) -> dict[str, tuple[str, Venue]]:
    return {r["venue_id"]: (r["version"], venue_from_feature(orjson.loads(r["feature"])))
            for r in rows}
