"""The PostgreSQL store (production): asyncpg pool, SQL migrations, typed presence rows.

- **Schema** from ordered migrations (:mod:`server.store.migrate`) applied at
  :meth:`PostgresStore.open` under an advisory lock; every connection of the pool has
  ``search_path`` set to the store's schema (``public`` unless told otherwise; tests
  use one schema per session).
- **Statements** are parameterised and prepared once per connection (asyncpg's
  statement cache); batch writes are one round trip each (``INSERT … SELECT FROM
  unnest(arrays) ON CONFLICT DO NOTHING`` for the keyed rows and for pings, unique per
  (user, ts); the count tells how many rows were new).
- **Presence** is one row per user of typed columns (migrations 0003, 0007), moved in and out
  as whole-batch arrays through :func:`triggers.presence_subset.to_columns` /
  ``from_columns``; only the users with an open visit or candidate carry JSON (``open``).
- **Batch locks**: ``pg_advisory_xact_lock`` on a 64-bit hash of (tenant, user)
  (``geopush_lock_key``) for every user of a batch, in ascending key order, released
  by the commit or rollback; ``geopush_lock_load_presence`` takes them and then reads
  the users' presence, in one round trip. The timer loop's claim tries each lock
  (``pg_try_advisory_xact_lock``) and takes only the free users. See
  :mod:`server.pipeline` for why this is enough for "nothing doubled". Each lock is an
  entry of PostgreSQL's shared lock table, which holds about
  ``max_locks_per_transaction`` × ``max_connections`` entries for all sessions
  together (12,800 with the defaults) and fails any session's lock when full: the users
  of the batches in flight at once must stay well below it.
- **Notifications**: :meth:`PostgresStore.notify` sends on a pool connection;
  :meth:`PostgresStore.connect` opens a connection outside the pool for ``LISTEN``
  (the live stream fan-out, :mod:`server.channels.pg_fanout`).
- **Stream presence** (migration 0005): each node's rows of the users with a live
  stream open there, expiring by the database's clock unless refreshed
  (:mod:`server.channels.pg_presence` writes them, the dispatcher reads them).
- **Clocks**: what this store stamps (``created_at``, ``updated_at``) is the injected
  clock's. Stream presence and rate buckets use the database's clock on purpose: every
  node writes and compares them, and the database's is the one clock all nodes share.
- **Errors**: asyncpg and socket errors leave as
  :class:`~server.store.errors.StoreUnavailableError`; integrity errors as ``NotFoundError`` /
  ``ConflictError`` where a method documents them.

Runs in the event loop; nothing blocks it.
"""

from __future__ import annotations

import functools
import json
import math
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from typing import Any, ParamSpec, TypeVar

import asyncpg
import numpy as np
import orjson
from numpy.typing import NDArray

from server.store import postgres_behaviour, postgres_models
from server.store.base import (
    OPENED_KINDS,
    BBox,
    CampaignAggregate,
    Catalog,
    DecisionPageKey,
    DecisionRecord,
    DeliveryOutcome,
    DeliveryRecord,
    DeliveryStatus,
    EventRecord,
    ExpirySweep,
    InboxPageKey,
    KeyedEntry,
    KeyRecord,
    LedgerSnapshot,
    NewDelivery,
    PolicyRecord,
    PushFeedback,
    Readiness,
    Role,
    SlotCursor,
    TenantRecord,
    VariantAggregate,
    token_user_key,
)
from server.store.codec import (
    EncodedVenue,
    event_from_row,
    expired_reason,
    ledger_from_row,
    merge_patch,
    policy_from_json,
    policy_json,
    stored_form,
    venue_bbox,
    venue_feature,
    venue_from_feature,
    without_contact,
)
from server.store.errors import (
    ConflictError,
    LimitExceededError,
    NotFoundError,
    OutsideBatchError,
    StoreError,
    StoreUnavailableError,
    VenueHasChildrenError,
)
from server.store.migrate import migrate, pending
from server.store.pg_venue_cache import VenueCache
from server.store.roles.behaviour import BehaviourRecord
from server.store.roles.models import (
    ModelKind,
    ModelRecord,
    TrainingCursor,
    TrainingEvent,
    TrainingSignal,
)
from triggers.behaviour.features import UserFeatures
from triggers.behaviour.rules import TagRules
from triggers.behaviour.triggers import PendingTrigger
from triggers.decisions import Campaign, CampaignStatus, Decision, FeedbackKind, Profile
from triggers.decisions.ledger import ENGAGED_KINDS, IGNORED_KINDS
from triggers.decisions.models import STORED
from triggers.decisions.rich import RichContent
from triggers.pings import PingBatch
from triggers.presence_state import PresenceState
from triggers.presence_subset import PresenceColumns, from_columns, to_columns
from venues.model import Venue

P = ParamSpec("P")
R = TypeVar("R")
_T = TypeVar("_T")

_ERASE_TABLES = ("profiles", "pings", "presence", "events", "decisions", "ledger",
                 "user_streaks", "deliveries", "conversions", "behaviour_events",
                 "behaviour_features", "behaviour_triggers")
"""Every table with a user_id column; erase_user deletes the user from each."""

_STREAK_KEY = {"user_streaks": "streaks"}
_DELIVERY_FIELDS = tuple(f.name for f in fields(DeliveryRecord))


def _translated(
    method: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """Backend errors leave as StoreUnavailableError (the caller knows one tree)."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise StoreUnavailableError(f"PostgreSQL: {exc}") from exc

    return wrapper


def _count(status: str) -> int:
    """Rows affected, from a command status such as ``INSERT 0 3`` or ``DELETE 2``."""
    return int(status.rsplit(" ", 1)[-1])


def _keyed_insert(table: str, columns: str, *, conflict: str = "", returning: str = "") -> str:
    """One keyed insert: ``columns`` (``"key type, user_id text, ..."``: the key first,
    the user second) after ``tenant_id`` (``$1``), each one array parameter (``jsonb``
    travels as text). Rows go in the order given (a key given twice keeps its first row;
    a serial column keeps the order); a key stored already is skipped. Returns
    ``returning`` of the new rows (default: the key)."""
    pairs = [c.split() for c in columns.split(",")]
    names = [n for n, _ in pairs]
    params = ", ".join(f"${i}::{'text' if t == 'jsonb' else t}[]"
                       for i, (_, t) in enumerate(pairs, start=2))
    values = ", ".join(f"{n}::jsonb" if t == "jsonb" else n for n, t in pairs)
    sql = (f"INSERT INTO {table} (tenant_id, {', '.join(names)}) SELECT $1, {values}"
           f" FROM unnest({params}) WITH ORDINALITY AS x({', '.join(names)}, n) ORDER BY n"
           f" ON CONFLICT {conflict} DO NOTHING RETURNING {returning or names[0]}")
    return sql.replace("  ", " ")


_INSERT_EVENTS = _keyed_insert("events", "event_key text, user_id text, venue_id text,"
                               " kind text, at float8, visit_id text, dwell_s float8,"
                               " confidence text, reason text, stale bool, recorded_at float8")
_INSERT_DECISIONS = _keyed_insert("decisions", "decision_key text, user_id text,"
                                  " decided_at float8, at float8, body jsonb")
_INSERT_LEDGER = _keyed_insert("ledger", "entry_key text, user_id text, campaign_id text,"
                               " venue_id text, variant_id text, at float8, channel text,"
                               " control bool")
_INSERT_DELIVERIES = _keyed_insert(
    "deliveries", "idempotency_key text, user_id text, delivery_id text, campaign_id text,"
    " variant_id text, venue_id text, visit_id text, event text, channel text, title text,"
    " body text, locale text, created_at float8, expires_at float8, updated_at float8,"
    " rich jsonb",
    conflict="(tenant_id, idempotency_key)", returning="*")


async def _bump_user_epoch(conn: asyncpg.Connection, tenant_id: str, user_id: str) -> int:
    """Revoke the user's stream tokens (see ``Store.revoke_stream_tokens``); 0 for an
    unknown tenant (nothing to revoke, no row written)."""
    epoch = await conn.fetchval(
        "INSERT INTO stream_token_epochs (tenant_id, user_key, epoch)"
        " SELECT tenant_id, $2, 1 FROM tenants WHERE tenant_id = $1"
        " ON CONFLICT (tenant_id, user_key)"
        " DO UPDATE SET epoch = stream_token_epochs.epoch + 1 RETURNING epoch",
        tenant_id, token_user_key(user_id))
    return 0 if epoch is None else int(epoch)


async def _upsert_stream_presence(
    conn: asyncpg.Connection, node_id: str, online: Sequence[tuple[str, str]], ttl_s: float
) -> None:
    """Rows of ``node_id`` for ``online``, live ``ttl_s`` from now (database clock)."""
    if not online:
        return
    await conn.execute(
        "INSERT INTO stream_presence (tenant_id, user_id, node_id, expires_at)"
        " SELECT t, u, $3, now() + make_interval(secs => $4)"
        " FROM unnest($1::text[], $2::text[]) AS x(t, u)"
        " ON CONFLICT (tenant_id, node_id, user_id)"
        " DO UPDATE SET expires_at = EXCLUDED.expires_at",
        [t for t, _ in online], [u for _, u in online], node_id, ttl_s)


_NO_PRESENCE = PresenceColumns([], np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0),
                               np.zeros(0, np.int16), [], np.zeros(0))


def _presence_state(row: Mapping[str, Any]) -> PresenceState:
    """A state from one row of presence arrays (NULL arrays: no user has presence)."""
    users = row["user_ids"]
    if users is None:
        return from_columns(_NO_PRESENCE)
    n = len(users)
    return from_columns(PresenceColumns(
        user_ids=users,
        last_ts=np.array(row["last_ts"], dtype=np.float64),
        anchor_ts=np.array(row["anchor_ts"], dtype=np.float64),
        anchor_lat=np.array(row["anchor_lat"], dtype=np.float64),
        anchor_lng=np.array(row["anchor_lng"], dtype=np.float64),
        reject_streak=np.array(row["reject_streak"], dtype=np.int16),
        open=[None if o is None else orjson.loads(o) for o in row["open"]],
        # Not read back: from_columns rebuilds the timers from the open visits.
        next_due_s=np.full(n, np.nan),
        lag_s=np.array(row["lag_s"], dtype=np.float64),
    ))


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads,
                              schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing beyond asyncpg's own (which rolls back an
    open transaction). The default sends ``pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`` — a round trip per acquire, for session state this store
    never leaves behind: locks are transaction-scoped (migrate unlocks its own), cursors
    live in transactions, nothing listens (``LISTEN`` gets a connection of its own,
    :meth:`PostgresStore.connect`), settings are SET LOCAL or connect-time."""


class PostgresStore:
    """The :class:`~server.store.roles.Store` on PostgreSQL. Build with :meth:`open`."""

    def __init__(self, pool: asyncpg.Pool, schema: str, url: str | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        """Private: use :meth:`open`."""
        self._pool = pool
        self.schema = schema
        self._url = url
        self._clock = clock
        self._venues = VenueCache()

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        schema: str = "public",
        min_size: int = 1,
        max_size: int = 10,
        apply_migrations: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> PostgresStore:
        """Connect a pool to ``url`` and (by default) apply pending migrations.
        ``clock``: what ``created_at`` / ``updated_at`` are stamped with (epoch seconds).

        Raises :class:`StoreUnavailableError` when the server cannot be reached and
        :class:`~server.store.migrate.MigrationError` on a diverged history.
        """
        try:
            pool = await asyncpg.create_pool(
                url, min_size=min_size, max_size=max_size, init=_init_connection,
                reset=_keep_session,
                server_settings={"search_path": schema, "application_name": "geopush"},
            )
        except (asyncpg.PostgresError, OSError) as exc:
            raise StoreUnavailableError(f"cannot connect to PostgreSQL: {exc}") from exc
        except asyncpg.ClientConfigurationError as exc:  # a URL asyncpg cannot read
            raise StoreUnavailableError(f"cannot connect to PostgreSQL: {exc}") from exc
        assert pool is not None
        store = cls(pool, schema, url, clock=clock)
        if apply_migrations:
            try:
                async with pool.acquire() as conn:
                    await migrate(conn, schema)
            except BaseException:
                await pool.close()
                raise
        return store

    # -- lifecycle -------------------------------------------------------------------

    async def ready(self) -> Readiness:
        try:
            async with self._pool.acquire(timeout=5.0) as conn:
                missing = await pending(conn, self.schema)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            return Readiness(False, f"PostgreSQL unreachable: {exc}")
        if missing:
            return Readiness(False, f"migrations not applied: {missing}")
        return Readiness(True, f"PostgreSQL, schema {self.schema}, migrations applied")

    async def close(self) -> None:
        await self._pool.close()

    # -- notifications ---------------------------------------------------------------

    @_translated
    async def connect(self, *, application_name: str = "geopush") -> asyncpg.Connection:
        """A connection of its own, outside the pool, to the store's database: for a
        session that outlives any query (``LISTEN``). The caller closes it."""
        if self._url is None:
            raise StoreUnavailableError("this store was not opened from a URL")
        conn: asyncpg.Connection = await asyncpg.connect(
            self._url, server_settings={"search_path": self.schema,
                                        "application_name": application_name})
        return conn

    @_translated
    async def notify(self, channel: str, payload: str) -> None:
        """``pg_notify(channel, payload)`` on a pool connection, outside any transaction
        (so it is sent at once). ``payload`` must be shorter than 8000 bytes."""
        await self._pool.execute("SELECT pg_notify($1, $2)", channel, payload)

    # -- live stream presence (migration 0005) ----------------------------------------

    @_translated
    async def write_stream_presence(
        self, node_id: str, online: Sequence[tuple[str, str]],
        offline: Sequence[tuple[str, str]], *, ttl_s: float,
    ) -> None:
        """Record that the (tenant, user) pairs of ``online`` have a stream open on
        ``node_id`` until ``ttl_s`` from now (database clock), and that those of
        ``offline`` have none there any more; one transaction, two statements."""
        async with self._pool.acquire() as conn, conn.transaction():
            await _upsert_stream_presence(conn, node_id, online, ttl_s)
            if offline:
                await conn.execute(
                    "DELETE FROM stream_presence p USING unnest($1::text[], $2::text[])"
                    " AS x(t, u) WHERE p.node_id = $3 AND p.tenant_id = x.t"
                    " AND p.user_id = x.u",
                    [t for t, _ in offline], [u for _, u in offline], node_id)

    @_translated
    async def sync_stream_presence(
        self, node_id: str, online: Sequence[tuple[str, str]], *, ttl_s: float
    ) -> None:
        """Make ``online`` the whole of ``node_id``'s rows, each live ``ttl_s`` from now."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM stream_presence p WHERE p.node_id = $3 AND NOT EXISTS ("
                " SELECT 1 FROM unnest($1::text[], $2::text[]) AS x(t, u)"
                " WHERE p.tenant_id = x.t AND p.user_id = x.u)",
                [t for t, _ in online], [u for _, u in online], node_id)
            await _upsert_stream_presence(conn, node_id, online, ttl_s)

    @_translated
    async def refresh_stream_presence(self, node_id: str, *, ttl_s: float) -> int:
        """Extend every row of ``node_id`` to ``ttl_s`` from now; how many there are."""
        status = await self._pool.execute(
            "UPDATE stream_presence SET expires_at = now() + make_interval(secs => $2)"
            " WHERE node_id = $1", node_id, ttl_s)
        return _count(status)

    @_translated
    async def prune_stream_presence(self, *, expired_for_s: float) -> int:
        """Delete the rows (of any node) expired more than ``expired_for_s`` ago."""
        status = await self._pool.execute(
            "DELETE FROM stream_presence"
            " WHERE expires_at < now() - make_interval(secs => $1)", expired_for_s)
        return _count(status)

    @_translated
    async def clear_stream_presence(self, node_id: str) -> None:
        """Delete every row of ``node_id`` (its graceful shutdown)."""
        await self._pool.execute("DELETE FROM stream_presence WHERE node_id = $1", node_id)

    @_translated
    async def take_rate_tokens(
        self, key_id: str, *, per_s: float, burst: float, want: int
    ) -> tuple[int, float]:
        """Refill ``key_id``'s shared bucket (``per_s``, at most ``burst``) and take up to
        ``want`` whole tokens: (tokens granted, tokens left). See migration 0006."""
        row = await self._pool.fetchrow(
            "SELECT granted, remaining FROM geopush_take_rate_tokens($1, $2, $3, $4)",
            key_id, per_s, burst, want)
        assert row is not None
        return int(row["granted"]), float(row["remaining"])

    @_translated
    async def prune_rate_buckets(self, *, idle_for_s: float) -> int:
        """Delete buckets untouched for ``idle_for_s`` (full again by then: the same as no
        row, as long as ``idle_for_s`` is at least burst / rate); how many."""
        status = await self._pool.execute(
            "DELETE FROM rate_buckets"
            " WHERE updated_at < extract(epoch FROM clock_timestamp()) - $1", idle_for_s)
        return _count(status)

    @_translated
    async def stream_presence(self, tenant_id: str, user_ids: Sequence[str]) -> set[str]:
        """The users of ``user_ids`` with a live row on any node (``expires_at > now()``)."""
        rows = await self._pool.fetch(
            "SELECT DISTINCT user_id FROM stream_presence WHERE tenant_id = $1"
            " AND user_id = ANY($2::text[]) AND expires_at > now()",
            tenant_id, list(user_ids))
        return {r["user_id"] for r in rows}

    # -- tenants and keys ------------------------------------------------------------

    @_translated
    async def ensure_tenant(self, tenant_id: str, *, name: str = "") -> TenantRecord:
        row = await self._pool.fetchrow(
            "WITH ins AS (INSERT INTO tenants (tenant_id, name, created_at) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING tenant_id, name, created_at)"
            " SELECT * FROM ins UNION ALL"
            " SELECT tenant_id, name, created_at FROM tenants WHERE tenant_id = $1 LIMIT 1",
            tenant_id, name, self._clock(),
        )
        assert row is not None
        return TenantRecord(row["tenant_id"], row["name"], row["created_at"])

    @_translated
    async def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        row = await self._pool.fetchrow(
            "SELECT tenant_id, name, created_at FROM tenants WHERE tenant_id = $1", tenant_id)
        return None if row is None else TenantRecord(row[0], row[1], row[2])

    @_translated
    async def list_tenants(self) -> list[TenantRecord]:
        rows = await self._pool.fetch(
            "SELECT tenant_id, name, created_at FROM tenants ORDER BY tenant_id")
        return [TenantRecord(r[0], r[1], r[2]) for r in rows]

    @_translated
    async def create_key(
        self, tenant_id: str, *, key_id: str, key_hash: str, role: Role, name: str = ""
    ) -> KeyRecord:
        now = self._clock()
        try:
            await self._pool.execute(
                "INSERT INTO api_keys (key_hash, tenant_id, key_id, role, name, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                key_hash, tenant_id, key_id, Role(role).value, name, now,
            )
        except asyncpg.ForeignKeyViolationError as exc:
            raise NotFoundError(f"no tenant {tenant_id!r}") from exc
        except asyncpg.UniqueViolationError as exc:
            raise ConflictError(f"key {key_id!r} (or its secret) exists") from exc
        return KeyRecord(tenant_id, key_id, Role(role), name, now)

    @staticmethod
    def _key(row: Mapping[str, Any]) -> KeyRecord:
        return KeyRecord(row["tenant_id"], row["key_id"], Role(row["role"]), row["name"],
                         row["created_at"], row["revoked"])

    @_translated
    async def find_key(self, key_hash: str) -> KeyRecord | None:
        row = await self._pool.fetchrow("SELECT * FROM api_keys WHERE key_hash = $1", key_hash)
        return None if row is None else self._key(row)

    @_translated
    async def list_keys(self, tenant_id: str) -> list[KeyRecord]:
        rows = await self._pool.fetch(
            "SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY key_id", tenant_id)
        return [self._key(r) for r in rows]

    @_translated
    async def revoke_key(self, tenant_id: str, key_id: str) -> bool:
        status = await self._pool.execute(
            "UPDATE api_keys SET revoked = true WHERE tenant_id = $1 AND key_id = $2",
            tenant_id, key_id)
        return _count(status) > 0

    # -- venues ----------------------------------------------------------------------

    @staticmethod
    async def _bump(conn: asyncpg.Connection, tenant_id: str) -> int:
        """Bump the catalogue version (first, so the tenant row is locked and known)."""
        version = await conn.fetchval(
            "UPDATE tenants SET catalog_version = catalog_version + 1 WHERE tenant_id = $1"
            " RETURNING catalog_version", tenant_id)
        if version is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        return int(version)

    @_translated
    async def put_venue(
        self, tenant_id: str, venue: Venue, *, max_venues: int | None = None
    ) -> bool:
        return await self.put_venues(tenant_id, [venue], max_venues=max_venues) == 1

    @_translated
    async def put_venues(
        self, tenant_id: str, venues: Sequence[Venue], *, max_venues: int | None = None
    ) -> int:
        if not venues:
            await self._bump_alone(tenant_id)
            return 0
        rows = []
        for v in venues:
            box = venue_bbox(v)
            text = stored_form(v)[0] if isinstance(v, EncodedVenue) else json.dumps(
                venue_feature(v))
            rows.append((v.id, text, v.kind.value, list(v.tags),
                         box.min_lng, box.min_lat, box.max_lng, box.max_lat))
        now = self._clock()
        async with self._pool.acquire() as conn, conn.transaction():
            # The bump locks the tenant row: concurrent writes of its venues count one
            # after the other.
            await self._bump(conn, tenant_id)
            if max_venues is not None:
                ids = sorted({r[0] for r in rows})
                others = await conn.fetchval(
                    "SELECT count(*) FROM venues WHERE tenant_id = $1"
                    " AND NOT (venue_id = ANY($2::text[]))", tenant_id, ids)
                if int(others) + len(ids) > max_venues:
                    raise LimitExceededError("venues", max_venues, int(others) + len(ids))
            inserted = await conn.fetch(
                "INSERT INTO venues (tenant_id, venue_id, feature, kind, tags, min_lng,"
                " min_lat, max_lng, max_lat, updated_at)"
                " SELECT $1, v.id, v.f::jsonb, v.k, ARRAY(SELECT jsonb_array_elements_text("
                "   v.t::jsonb)), v.a, v.b, v.c, v.d, $2"
                " FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::float8[],"
                "   $8::float8[], $9::float8[], $10::float8[]) AS v(id, f, k, t, a, b, c, d)"
                " ON CONFLICT (tenant_id, venue_id) DO UPDATE SET feature = EXCLUDED.feature,"
                "   kind = EXCLUDED.kind, tags = EXCLUDED.tags, min_lng = EXCLUDED.min_lng,"
                "   min_lat = EXCLUDED.min_lat, max_lng = EXCLUDED.max_lng,"
                "   max_lat = EXCLUDED.max_lat, updated_at = EXCLUDED.updated_at"
                " RETURNING (xmax = 0) AS created",
                tenant_id, now, [r[0] for r in rows], [r[1] for r in rows],
                [r[2] for r in rows], [json.dumps(r[3]) for r in rows],
                [r[4] for r in rows], [r[5] for r in rows], [r[6] for r in rows],
                [r[7] for r in rows],
            )
        return sum(1 for r in inserted if r["created"])

    async def _bump_alone(self, tenant_id: str) -> None:
        async with self._pool.acquire() as conn:
            await self._bump(conn, tenant_id)

    @_translated
    async def get_venue(self, tenant_id: str, venue_id: str) -> Venue | None:
        feature = await self._pool.fetchval(
            "SELECT feature FROM venues WHERE tenant_id = $1 AND venue_id = $2",
            tenant_id, venue_id)
        return None if feature is None else venue_from_feature(feature)

    @_translated
    async def delete_venue(
        self, tenant_id: str, venue_id: str, *, cascade: bool = False
    ) -> tuple[str, ...]:
        async with self._pool.acquire() as conn, conn.transaction():
            # The venue row locked first: two deletes (or a delete and a child's insert
            # under it, which takes no lock here) see one order.
            found = await conn.fetchval(
                "SELECT venue_id FROM venues WHERE tenant_id = $1 AND venue_id = $2"
                " FOR UPDATE", tenant_id, venue_id)
            if found is None:
                return ()
            rows = await conn.fetch(
                "WITH RECURSIVE below(venue_id, parent_id) AS ("
                " SELECT venue_id, feature->'properties'->>'parent_id' FROM venues"
                "  WHERE tenant_id = $1 AND feature->'properties'->>'parent_id' = $2"
                " UNION"
                " SELECT v.venue_id, v.feature->'properties'->>'parent_id' FROM venues v"
                "  JOIN below b ON v.feature->'properties'->>'parent_id' = b.venue_id"
                "  WHERE v.tenant_id = $1 AND v.venue_id <> $2)"
                " SELECT venue_id, parent_id FROM below ORDER BY venue_id", tenant_id, venue_id)
            below = [r["venue_id"] for r in rows]
            if below and not cascade:
                raise VenueHasChildrenError(
                    venue_id, tuple(r["venue_id"] for r in rows if r["parent_id"] == venue_id))
            gone = (venue_id, *below)
            await conn.execute("DELETE FROM venues WHERE tenant_id = $1"
                               " AND venue_id = ANY($2::text[])", tenant_id, list(gone))
            await self._bump(conn, tenant_id)
            return gone

    @_translated
    async def list_venues(
        self,
        tenant_id: str,
        *,
        bbox: BBox | None = None,
        kind: str | None = None,
        tag: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[Venue]:
        box = bbox or BBox(-math.inf, -math.inf, math.inf, math.inf)
        rows = await self._pool.fetch(
            "SELECT feature FROM venues WHERE tenant_id = $1"
            " AND min_lng <= $4 AND max_lng >= $2 AND min_lat <= $5 AND max_lat >= $3"
            " AND ($6::text IS NULL OR kind = $6) AND ($7::text IS NULL OR tags @> ARRAY[$7])"
            " AND ($8::text IS NULL OR venue_id COLLATE \"C\" > $8)"
            " ORDER BY venue_id COLLATE \"C\" LIMIT $9",
            tenant_id, box.min_lng, box.min_lat, box.max_lng, box.max_lat, kind, tag, after,
            limit,
        )
        return [venue_from_feature(r["feature"]) for r in rows]

    @_translated
    async def catalog_version(self, tenant_id: str) -> int:
        version = await self._pool.fetchval(
            "SELECT catalog_version FROM tenants WHERE tenant_id = $1", tenant_id)
        if version is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        return int(version)

    @_translated
    async def load_catalog(self, tenant_id: str) -> Catalog:
        async with self._pool.acquire() as conn, conn.transaction(
                isolation="repeatable_read", readonly=True):
            tenant = await conn.fetchrow(
                "SELECT catalog_version, policy FROM tenants WHERE tenant_id = $1", tenant_id)
            if tenant is None:
                raise NotFoundError(f"no tenant {tenant_id!r}")
            venues = await self._venues.venues(conn, tenant_id)
            campaigns = await conn.fetch(
                "SELECT body FROM campaigns WHERE tenant_id = $1"
                " ORDER BY campaign_id COLLATE \"C\"", tenant_id)
        return Catalog(
            tenant_id, int(tenant["catalog_version"]),
            venues,
            tuple(Campaign.model_validate(r["body"], context=STORED) for r in campaigns),
            policy_from_json(tenant["policy"]),
        )

    # -- profiles --------------------------------------------------------------------

    @_translated
    async def put_profile(self, tenant_id: str, profile: Profile) -> bool:
        try:
            created = await self._pool.fetchval(
                "INSERT INTO profiles (tenant_id, user_id, body, updated_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, user_id) DO UPDATE"
                " SET body = EXCLUDED.body, updated_at = EXCLUDED.updated_at"
                " RETURNING (xmax = 0)",
                tenant_id, profile.user_id, profile.model_dump(mode="json"), self._clock())
        except asyncpg.ForeignKeyViolationError as exc:
            raise NotFoundError(f"no tenant {tenant_id!r}") from exc
        return bool(created)

    @_translated
    async def patch_profile(
        self, tenant_id: str, user_id: str, patch: Mapping[str, Any]
    ) -> Profile:
        async with self._pool.acquire() as conn, conn.transaction():
            body = await conn.fetchval(
                "SELECT body FROM profiles WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
                tenant_id, user_id)
            if body is None:
                raise NotFoundError(f"no profile {user_id!r}")
            merged = merge_patch(body, patch)
            merged["user_id"] = user_id
            profile = Profile.model_validate(merged)
            await conn.execute(
                "UPDATE profiles SET body = $3, updated_at = $4"
                " WHERE tenant_id = $1 AND user_id = $2",
                tenant_id, user_id, profile.model_dump(mode="json"), self._clock())
        return profile

    @_translated
    async def get_profile(self, tenant_id: str, user_id: str) -> Profile | None:
        body = await self._pool.fetchval(
            "SELECT body FROM profiles WHERE tenant_id = $1 AND user_id = $2", tenant_id, user_id)
        return None if body is None else Profile.model_validate(body)

    @_translated
    async def erase_user(self, tenant_id: str, user_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        async with self._pool.acquire() as conn, conn.transaction():
            # The user's batch lock: a batch in flight finishes first, and none starts
            # until the erasure commits, so nothing is written back afterwards.
            await conn.execute("SELECT pg_advisory_xact_lock(geopush_lock_key($1, $2))",
                               tenant_id, user_id)
            for table in _ERASE_TABLES:
                status = await conn.execute(
                    f"DELETE FROM {table} WHERE tenant_id = $1 AND user_id = $2",
                    tenant_id, user_id)
                counts[_STREAK_KEY.get(table, table)] = _count(status)
            # Not counted: which node holds the user's open socket is no data kept about
            # them (the memory store has none), and a node still holding one writes its
            # row again at its next heartbeat.
            await conn.execute(
                "DELETE FROM stream_presence WHERE tenant_id = $1 AND user_id = $2",
                tenant_id, user_id)
            await _bump_user_epoch(conn, tenant_id, user_id)
        return counts

    # -- campaigns and policy --------------------------------------------------------

    async def _upsert_campaign(self, tenant_id: str, campaign: Campaign, *, create: bool) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            await self._bump(conn, tenant_id)
            conflict = "DO NOTHING" if create else (
                "(tenant_id, campaign_id) DO UPDATE SET status = EXCLUDED.status,"
                " body = EXCLUDED.body, updated_at = EXCLUDED.updated_at")
            created = await conn.fetchval(
                "INSERT INTO campaigns (tenant_id, campaign_id, status, body, updated_at)"
                f" VALUES ($1, $2, $3, $4, $5) ON CONFLICT {conflict} RETURNING (xmax = 0)",
                tenant_id, campaign.id, campaign.status.value, campaign.model_dump(mode="json"),
                self._clock())
            if create and created is None:
                raise ConflictError(f"campaign {campaign.id!r} exists")
        return bool(created)

    @_translated
    async def create_campaign(self, tenant_id: str, campaign: Campaign) -> None:
        await self._upsert_campaign(tenant_id, campaign, create=True)

    @_translated
    async def put_campaign(self, tenant_id: str, campaign: Campaign) -> bool:
        return await self._upsert_campaign(tenant_id, campaign, create=False)

    @_translated
    async def get_campaign(self, tenant_id: str, campaign_id: str) -> Campaign | None:
        body = await self._pool.fetchval(
            "SELECT body FROM campaigns WHERE tenant_id = $1 AND campaign_id = $2",
            tenant_id, campaign_id)
        return None if body is None else Campaign.model_validate(body, context=STORED)

    @_translated
    async def list_campaigns(
        self, tenant_id: str, *, status: CampaignStatus | None = None,
        after: str | None = None, limit: int | None = None,
    ) -> list[Campaign]:
        rows = await self._pool.fetch(
            "SELECT body FROM campaigns WHERE tenant_id = $1"
            " AND ($2::text IS NULL OR status = $2)"
            " AND ($3::text IS NULL OR campaign_id COLLATE \"C\" > $3)"
            " ORDER BY campaign_id COLLATE \"C\" LIMIT $4",
            tenant_id, None if status is None else CampaignStatus(status).value, after, limit)
        return [Campaign.model_validate(r["body"], context=STORED) for r in rows]

    @_translated
    async def delete_campaign(self, tenant_id: str, campaign_id: str) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                "DELETE FROM campaigns WHERE tenant_id = $1 AND campaign_id = $2",
                tenant_id, campaign_id)
            if _count(status) == 0:
                return False
            await self._bump(conn, tenant_id)
            return True

    @_translated
    async def set_campaign_status(
        self, tenant_id: str, campaign_id: str, status: CampaignStatus
    ) -> Campaign | None:
        async with self._pool.acquire() as conn, conn.transaction():
            body = await conn.fetchval(
                "SELECT body FROM campaigns WHERE tenant_id = $1 AND campaign_id = $2"
                " FOR UPDATE", tenant_id, campaign_id)
            if body is None:
                return None
            campaign = Campaign.model_validate(body, context=STORED).model_copy(
                update={"status": CampaignStatus(status)})
            await self._bump(conn, tenant_id)
            await conn.execute(
                "UPDATE campaigns SET status = $3, body = $4, updated_at = $5"
                " WHERE tenant_id = $1 AND campaign_id = $2",
                tenant_id, campaign_id, campaign.status.value,
                campaign.model_dump(mode="json"), self._clock())
        return campaign

    @_translated
    async def get_policy(self, tenant_id: str) -> PolicyRecord:
        row = await self._pool.fetchrow(
            "SELECT policy FROM tenants WHERE tenant_id = $1", tenant_id)
        if row is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        return policy_from_json(row["policy"])

    @_translated
    async def put_policy(self, tenant_id: str, record: PolicyRecord) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await self._bump(conn, tenant_id)
            await conn.execute("UPDATE tenants SET policy = $2 WHERE tenant_id = $1",
                               tenant_id, policy_json(record))

    # -- history ---------------------------------------------------------------------

    @_translated
    async def list_decisions(
        self, tenant_id: str, user_id: str, *, limit: int = 50, before: float | None = None,
        after_key: DecisionPageKey | None = None,
    ) -> list[DecisionRecord]:
        at, event_at, key = after_key if after_key is not None else (None, None, None)
        rows = await self._pool.fetch(
            "SELECT decision_key, body FROM decisions WHERE tenant_id = $1 AND user_id = $2"
            " AND ($3::float8 IS NULL OR decided_at < $3)"
            " AND ($5::float8 IS NULL OR (decided_at, at, decision_key COLLATE \"C\")"
            "   < ($5::float8, $6::float8, $7::text COLLATE \"C\"))"
            " ORDER BY decided_at DESC, at DESC, decision_key COLLATE \"C\" DESC LIMIT $4",
            tenant_id, user_id, before, limit, at, event_at, key)
        return [DecisionRecord(r["decision_key"], Decision.from_json_obj(r["body"]))
                for r in rows]

    @_translated
    async def list_events(
        self, tenant_id: str, user_id: str, *, limit: int = 100
    ) -> list[EventRecord]:
        rows = await self._pool.fetch(
            "SELECT * FROM (SELECT * FROM events WHERE tenant_id = $1 AND user_id = $2"
            " ORDER BY at DESC, recorded_at DESC, event_key DESC LIMIT $3) last"
            " ORDER BY at, recorded_at, event_key",
            tenant_id, user_id, limit)
        return [EventRecord(r["event_key"], event_from_row(r), r["recorded_at"]) for r in rows]

    @_translated
    async def venue_events(
        self, tenant_id: str, venue_id: str, *, since: float, limit: int = 1000
    ) -> list[EventRecord]:
        rows = await self._pool.fetch(
            "SELECT * FROM (SELECT * FROM events WHERE tenant_id = $1 AND venue_id = $2"
            " AND at >= $3 ORDER BY at DESC, recorded_at DESC, event_key DESC LIMIT $4) last"
            " ORDER BY at, recorded_at, event_key",
            tenant_id, venue_id, since, limit)
        return [EventRecord(r["event_key"], event_from_row(r), r["recorded_at"]) for r in rows]

    @_translated
    async def delivery_timeline(
        self, tenant_id: str, campaign_id: str, *, bucket_s: float
    ) -> list[tuple[float, str, str, int]]:
        rows = await self._pool.fetch(
            "SELECT floor(created_at / $3) * $3 AS bucket, channel, status, count(*) AS n"
            " FROM deliveries WHERE tenant_id = $1 AND campaign_id = $2"
            " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", tenant_id, campaign_id, bucket_s)
        return [(float(r["bucket"]), r["channel"], r["status"], int(r["n"])) for r in rows]

    @_translated
    async def recorded_pings(
        self, tenant_id: str, *, since: float, limit: int
    ) -> tuple[PingBatch, NDArray[np.float64]]:
        rows = await self._pool.fetch(
            "SELECT * FROM (SELECT user_id, ts, lat, lng, accuracy_m, speed_mps, heading_deg,"
            " mock, received_at FROM pings WHERE tenant_id = $1 AND ts >= $2"
            " ORDER BY ts DESC, user_id DESC LIMIT $3) last ORDER BY ts, user_id",
            tenant_id, since, limit)

        def column(name: str) -> NDArray[np.float64]:
            return np.array([np.nan if r[name] is None else r[name] for r in rows],
                            dtype=np.float64)

        batch = PingBatch.from_columns(
            np.array([r["user_id"] for r in rows], dtype=str), column("ts"), column("lat"),
            column("lng"), accuracy_m=column("accuracy_m"), speed_mps=column("speed_mps"),
            heading_deg=column("heading_deg"),
            mock=np.array([bool(r["mock"]) for r in rows], dtype=bool))
        return batch, column("received_at")

    # -- deliveries ------------------------------------------------------------------

    @staticmethod
    def _delivery(row: Mapping[str, Any]) -> DeliveryRecord:
        # A deliveries row has a column of the same name for every field.
        values = {name: row[name] for name in _DELIVERY_FIELDS}
        values.update(status=DeliveryStatus(row["status"]), feedback=tuple(row["feedback"]),
                      rich=RichContent.from_json(row["rich"]))
        return DeliveryRecord(**values)

    @_translated
    async def get_delivery(self, tenant_id: str, delivery_id: str) -> DeliveryRecord | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM deliveries WHERE tenant_id = $1 AND delivery_id = $2",
            tenant_id, delivery_id)
        return None if row is None else self._delivery(row)

    @_translated
    async def list_deliveries(
        self,
        tenant_id: str,
        *,
        user_id: str | None = None,
        status: DeliveryStatus | None = None,
        limit: int = 100,
    ) -> list[DeliveryRecord]:
        rows = await self._pool.fetch(
            "SELECT * FROM deliveries WHERE tenant_id = $1"
            " AND ($2::text IS NULL OR user_id = $2) AND ($3::text IS NULL OR status = $3)"
            " ORDER BY created_at, delivery_id COLLATE \"C\" LIMIT $4",
            tenant_id, user_id, None if status is None else DeliveryStatus(status).value, limit)
        return [self._delivery(r) for r in rows]

    @_translated
    async def update_delivery(
        self,
        tenant_id: str,
        delivery_id: str,
        *,
        status: DeliveryStatus,
        attempts: int | None = None,
        next_attempt_at: float | None = None,
        last_error: str | None = None,
        now: float,
    ) -> DeliveryRecord | None:
        row = await self._pool.fetchrow(
            "UPDATE deliveries SET status = $3, attempts = coalesce($4, attempts),"
            " next_attempt_at = $5, last_error = $6, updated_at = $7"
            " WHERE tenant_id = $1 AND delivery_id = $2 RETURNING *",
            tenant_id, delivery_id, DeliveryStatus(status).value, attempts, next_attempt_at,
            last_error, now)
        return None if row is None else self._delivery(row)

    @_translated
    async def record_feedback(
        self, tenant_id: str, delivery_id: str, kind: FeedbackKind, *, now: float,
        button: str | None = None,
    ) -> DeliveryRecord | None:
        kind = FeedbackKind(kind)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE deliveries SET feedback = feedback || $3::text, updated_at = $4,"
                " feedback_times = feedback_times || jsonb_build_object($3::text, $4::float8),"
                " button = coalesce($5, button)"
                " WHERE tenant_id = $1 AND delivery_id = $2 AND NOT ($3 = ANY(feedback))"
                " RETURNING *",
                tenant_id, delivery_id, kind.value, now, button)
            if row is None:  # unknown, or the same report again (counted once)
                again = await conn.fetchrow(
                    "SELECT * FROM deliveries WHERE tenant_id = $1 AND delivery_id = $2",
                    tenant_id, delivery_id)
                return None if again is None else self._delivery(again)
            if kind in IGNORED_KINDS or kind in ENGAGED_KINDS:
                await conn.execute(
                    "INSERT INTO user_streaks (tenant_id, user_id, ignored_streak)"
                    " VALUES ($1, $2, $3) ON CONFLICT (tenant_id, user_id) DO UPDATE SET"
                    " ignored_streak = CASE WHEN $3 = 0 THEN 0"
                    "   ELSE user_streaks.ignored_streak + 1 END",
                    tenant_id, row["user_id"], 1 if kind in IGNORED_KINDS else 0)
        return self._delivery(row)

    @_translated
    async def count_deliveries(self, tenant_id: str, status: DeliveryStatus) -> int:
        n = await self._pool.fetchval(
            "SELECT count(*) FROM deliveries WHERE tenant_id = $1 AND status = $2",
            tenant_id, DeliveryStatus(status).value)
        return int(n)

    @_translated
    async def list_inbox(
        self, tenant_id: str, user_id: str, *, limit: int = 50, before: float | None = None,
        after_key: InboxPageKey | None = None,
    ) -> list[DeliveryRecord]:
        at, delivery_id = after_key if after_key is not None else (None, None)
        rows = await self._pool.fetch(
            "SELECT * FROM deliveries WHERE tenant_id = $1 AND user_id = $2"
            " AND channel = 'inbox' AND status = 'sent'"
            " AND ($3::float8 IS NULL OR created_at < $3)"
            " AND ($5::float8 IS NULL OR (created_at, delivery_id COLLATE \"C\")"
            "   < ($5::float8, $6::text COLLATE \"C\"))"
            " ORDER BY created_at DESC, delivery_id COLLATE \"C\" DESC LIMIT $4",
            tenant_id, user_id, before, limit, at, delivery_id)
        return [self._delivery(r) for r in rows]

    # -- the outbox dispatcher -------------------------------------------------------

    @_translated
    async def claim_deliveries(
        self, tenant_id: str, *, now: float, limit: int, lease_s: float, claim: str
    ) -> list[DeliveryRecord]:
        # SKIP LOCKED: concurrent claimers (other dispatchers, other nodes) pass over the
        # rows this statement is taking instead of waiting for them; the lease column
        # then keeps them away after this short transaction commits.
        rows = await self._pool.fetch(
            "WITH due AS (SELECT delivery_id FROM deliveries WHERE tenant_id = $1"
            "   AND status IN ('pending', 'failed')"
            "   AND coalesce(next_attempt_at, created_at) <= $2 AND expires_at > $2"
            "   AND (claimed_until IS NULL OR claimed_until <= $2)"
            "   ORDER BY coalesce(next_attempt_at, created_at), delivery_id"
            "   LIMIT $3 FOR UPDATE SKIP LOCKED)"
            " UPDATE deliveries d SET claimed_until = $2 + $4, claimed_by = $5,"
            "   attempts = d.attempts + 1, updated_at = $2"
            " FROM due WHERE d.tenant_id = $1 AND d.delivery_id = due.delivery_id"
            " RETURNING d.*",
            tenant_id, now, limit, lease_s, claim)
        out = [self._delivery(r) for r in rows]
        out.sort(key=lambda d: (d.created_at if d.next_attempt_at is None
                                else d.next_attempt_at, d.delivery_id))
        return out

    @_translated
    async def complete_deliveries(
        self, tenant_id: str, claim: str, outcomes: Sequence[DeliveryOutcome], *, now: float
    ) -> int:
        if not outcomes:
            return 0
        os_ = outcomes
        status = await self._pool.execute(
            "UPDATE deliveries d SET status = x.s, channel = coalesce(x.ch, d.channel),"
            " next_attempt_at = x.n, last_error = x.e,"
            " provider_id = coalesce(x.p, d.provider_id), claimed_until = NULL,"
            " claimed_by = NULL, updated_at = $3"
            " FROM unnest($4::text[], $5::text[], $6::text[], $7::float8[], $8::text[],"
            " $9::text[]) AS x(id, s, ch, n, e, p)"
            " WHERE d.tenant_id = $1 AND d.delivery_id = x.id AND d.claimed_by = $2",
            tenant_id, claim, now, [o.delivery_id for o in os_],
            [DeliveryStatus(o.status).value for o in os_], [o.channel for o in os_],
            [o.next_attempt_at for o in os_], [o.last_error for o in os_],
            [o.provider_id for o in os_])
        return _count(status)

    @_translated
    async def prune_pings(self, tenant_id: str, *, before: float, limit: int) -> int:
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM pings WHERE ctid = ANY(ARRAY("
                " SELECT ctid FROM pings WHERE tenant_id = $1 AND received_at < $2"
                " LIMIT $3))", tenant_id, before, limit)
        return _count(status)

    @_translated
    async def expire_deliveries(self, tenant_id: str, *, now: float, limit: int) -> ExpirySweep:
        async with self._pool.acquire() as conn, conn.transaction():
            stale = await conn.fetch(
                "SELECT delivery_id, last_error FROM deliveries WHERE tenant_id = $1"
                " AND status IN ('pending', 'failed') AND expires_at <= $2"
                " AND (claimed_until IS NULL OR claimed_until <= $2)"
                " ORDER BY expires_at, delivery_id LIMIT $3 FOR UPDATE SKIP LOCKED",
                tenant_id, now, limit)
            expired = await conn.fetch(
                "UPDATE deliveries d SET status = 'expired', last_error = x.e,"
                " claimed_until = NULL, claimed_by = NULL, updated_at = $2"
                " FROM unnest($3::text[], $4::text[]) AS x(id, e)"
                " WHERE d.tenant_id = $1 AND d.delivery_id = x.id RETURNING d.*",
                tenant_id, now, [r["delivery_id"] for r in stale],
                [expired_reason(r["last_error"]) for r in stale]) if stale else []
            ignored = await conn.fetch(
                "WITH ended AS (SELECT delivery_id, NOT (feedback &&"
                "   ARRAY['opened', 'clicked', 'dismissed', 'converted', 'ignored']) AS quiet"
                "   FROM deliveries WHERE tenant_id = $1 AND status = 'sent' AND NOT settled"
                "   AND expires_at <= $2 ORDER BY expires_at, delivery_id LIMIT $3"
                "   FOR UPDATE SKIP LOCKED)"
                " UPDATE deliveries d SET settled = true, updated_at = $2,"
                "   feedback = CASE WHEN ended.quiet THEN d.feedback || 'ignored'::text"
                "   ELSE d.feedback END"
                " FROM ended WHERE d.tenant_id = $1 AND d.delivery_id = ended.delivery_id"
                " RETURNING d.*, ended.quiet",
                tenant_id, now, limit)
            quiet = [r for r in ignored if r["quiet"]]
            per_user: dict[str, int] = {}
            for r in quiet:
                per_user[r["user_id"]] = per_user.get(r["user_id"], 0) + 1
            if per_user:
                await conn.execute(
                    "INSERT INTO user_streaks (tenant_id, user_id, ignored_streak)"
                    " SELECT $1, u, n FROM unnest($2::text[], $3::int[]) AS x(u, n)"
                    " ON CONFLICT (tenant_id, user_id) DO UPDATE SET"
                    " ignored_streak = user_streaks.ignored_streak + EXCLUDED.ignored_streak",
                    tenant_id, list(per_user), list(per_user.values()))
        return ExpirySweep(tuple(self._delivery(r) for r in expired),
                           tuple(self._delivery(r) for r in quiet))

    # -- contacts, channel settings, stream secrets ----------------------------------

    @_translated
    async def get_profiles(self, tenant_id: str, user_ids: Sequence[str]) -> dict[str, Profile]:
        rows = await self._pool.fetch(
            "SELECT user_id, body FROM profiles WHERE tenant_id = $1"
            " AND user_id = ANY($2::text[])", tenant_id, list(dict.fromkeys(user_ids)))
        return {r[0]: Profile.model_validate(r[1]) for r in rows}

    @_translated
    async def remove_contact(
        self, tenant_id: str, user_id: str, channel: str, address: str
    ) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            body = await conn.fetchval(
                "SELECT body FROM profiles WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
                tenant_id, user_id)
            if body is None:
                return False
            profile = Profile.model_validate(body)
            contacts = without_contact(profile.contacts, channel, address)
            if contacts is None:
                return False
            profile = profile.model_copy(update={"contacts": contacts})
            await conn.execute(
                "UPDATE profiles SET body = $3, updated_at = $4"
                " WHERE tenant_id = $1 AND user_id = $2",
                tenant_id, user_id, profile.model_dump(mode="json"), self._clock())
        return True

    @_translated
    async def get_channel_config(self, tenant_id: str) -> dict[str, Any] | None:
        config = await self._pool.fetchval(
            "SELECT channels FROM tenants WHERE tenant_id = $1", tenant_id)
        return None if config is None else dict(config)

    @_translated
    async def put_channel_config(self, tenant_id: str, config: Mapping[str, Any]) -> None:
        status = await self._pool.execute(
            "UPDATE tenants SET channels = $2 WHERE tenant_id = $1", tenant_id, dict(config))
        if _count(status) == 0:
            raise NotFoundError(f"no tenant {tenant_id!r}")

    @_translated
    async def stream_secret(self, tenant_id: str) -> str:
        # Read first: every stream connection asks, and only the first one may write.
        row = await self._pool.fetchrow(
            "SELECT stream_secret FROM tenants WHERE tenant_id = $1", tenant_id)
        if row is not None and row["stream_secret"] is not None:
            return str(row["stream_secret"])
        secret = await self._pool.fetchval(
            "UPDATE tenants SET stream_secret = coalesce(stream_secret, $2)"
            " WHERE tenant_id = $1 RETURNING stream_secret",
            tenant_id, secrets.token_urlsafe(32))
        if secret is None:
            raise NotFoundError(f"no tenant {tenant_id!r}")
        return str(secret)

    @_translated
    async def stream_token_epochs(self, tenant_id: str, user_id: str) -> tuple[int, int]:
        row = await self._pool.fetchrow(
            "SELECT t.stream_epoch, coalesce(e.epoch, 0) AS user_epoch FROM tenants t"
            " LEFT JOIN stream_token_epochs e"
            " ON e.tenant_id = t.tenant_id AND e.user_key = $2 WHERE t.tenant_id = $1",
            tenant_id, token_user_key(user_id))
        return (0, 0) if row is None else (int(row["stream_epoch"]), int(row["user_epoch"]))

    @_translated
    async def revoke_stream_tokens(self, tenant_id: str, user_id: str | None = None) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            epoch = await conn.fetchval(
                "UPDATE tenants SET stream_epoch = stream_epoch + $2 WHERE tenant_id = $1"
                " RETURNING stream_epoch", tenant_id, int(user_id is None))
            if epoch is None:
                raise NotFoundError(f"no tenant {tenant_id!r}")
            if user_id is not None:
                epoch = await _bump_user_epoch(conn, tenant_id, user_id)
        return int(epoch)

    # -- stats -----------------------------------------------------------------------

    @_translated
    async def record_conversion(
        self, tenant_id: str, campaign_id: str, user_id: str, *, at: float
    ) -> bool:
        if not await self._pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM tenants WHERE tenant_id = $1)", tenant_id):
            raise NotFoundError(f"no tenant {tenant_id!r}")
        status = await self._pool.execute(
            "INSERT INTO conversions (tenant_id, campaign_id, user_id, at)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            tenant_id, campaign_id, user_id, at)
        return _count(status) == 1

    @_translated
    async def channel_open_counts(self, tenant_id: str, since: float) -> dict[str, tuple[int, int]]:
        rows = await self._pool.fetch(
            "SELECT channel, count(*) AS sent, count(*) FILTER (WHERE feedback && $3::text[])"
            " AS opened FROM deliveries WHERE tenant_id = $1 AND status = 'sent'"
            " AND created_at >= $2 GROUP BY 1",
            tenant_id, since, list(OPENED_KINDS))
        return {r["channel"]: (r["sent"], r["opened"]) for r in rows}

    @_translated
    async def campaign_stats(self, tenant_id: str, campaign_id: str) -> CampaignAggregate:
        async with self._pool.acquire() as conn, conn.transaction(
                isolation="repeatable_read", readonly=True):
            decided = await conn.fetch(
                "SELECT c->>'outcome' AS o, c->>'reason' AS r, count(*) AS n"
                " FROM decisions d, jsonb_array_elements(d.body->'considered') c"
                " WHERE d.tenant_id = $1 AND c->>'campaign_id' = $2 GROUP BY 1, 2",
                tenant_id, campaign_id)
            statuses = await conn.fetch(
                "SELECT variant_id, status, count(*) AS n FROM deliveries"
                " WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY 1, 2",
                tenant_id, campaign_id)
            kinds = await conn.fetch(
                "SELECT variant_id, f, count(*) AS n FROM deliveries, unnest(feedback) f"
                " WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY 1, 2",
                tenant_id, campaign_id)
            pressed = await conn.fetch(
                "SELECT variant_id, button, count(*) AS n FROM deliveries"
                " WHERE tenant_id = $1 AND campaign_id = $2 AND button IS NOT NULL"
                " GROUP BY 1, 2",
                tenant_id, campaign_id)
            users = await conn.fetch(
                "WITH treated AS (SELECT variant_id, user_id,"
                "   bool_or('converted' = ANY(feedback)) AS fb FROM deliveries"
                "   WHERE tenant_id = $1 AND campaign_id = $2 GROUP BY 1, 2)"
                " SELECT variant_id, count(*) AS users, count(*) FILTER (WHERE fb OR EXISTS"
                "   (SELECT 1 FROM conversions c WHERE c.tenant_id = $1"
                "    AND c.campaign_id = $2 AND c.user_id = treated.user_id)) AS converted"
                " FROM treated GROUP BY 1",
                tenant_id, campaign_id)
            control = await conn.fetchrow(
                "WITH held AS (SELECT DISTINCT user_id FROM ledger WHERE tenant_id = $1"
                "   AND campaign_id = $2 AND control)"
                " SELECT count(*) AS users, count(*) FILTER (WHERE EXISTS (SELECT 1"
                "   FROM conversions c WHERE c.tenant_id = $1 AND c.campaign_id = $2"
                "   AND c.user_id = held.user_id)) AS converted FROM held",
                tenant_id, campaign_id)
        assert control is not None
        by_variant: dict[str, dict[str, Any]] = {}
        for r in statuses:
            v = by_variant.setdefault(r["variant_id"], {"status": {}, "feedback": {}})
            v["status"][r["status"]] = int(r["n"])
        for r in kinds:
            by_variant.setdefault(r["variant_id"], {"status": {}, "feedback": {}})[
                "feedback"][r["f"]] = int(r["n"])
        buttons: dict[str, dict[str, int]] = {}
        for r in pressed:
            buttons.setdefault(r["variant_id"], {})[r["button"]] = int(r["n"])
        treated = {r["variant_id"]: (int(r["users"]), int(r["converted"])) for r in users}
        variants = tuple(
            VariantAggregate(vid, sum(v["status"].values()), v["status"], v["feedback"],
                             *treated.get(vid, (0, 0)), buttons.get(vid, {}))
            for vid, v in sorted(by_variant.items()))
        return CampaignAggregate(
            campaign_id, {(r["o"], r["r"]): int(r["n"]) for r in decided}, variants,
            int(control["users"]), int(control["converted"]))

    # -- scheduled fan-out: the audience by zone, in pages, and each slot's progress ---

    @_translated
    async def profile_zones(self, tenant_id: str) -> list[str | None]:
        # A loose index scan over profiles_zone (migration 0010): one index probe per
        # distinct zone, not a pass over every profile.
        rows = await self._pool.fetch(
            "WITH RECURSIVE z(tz) AS ("
            " SELECT min(body->'attributes'->>'timezone') FROM profiles WHERE tenant_id = $1"
            " UNION ALL"
            " SELECT (SELECT min(body->'attributes'->>'timezone') FROM profiles"
            "  WHERE tenant_id = $1 AND body->'attributes'->>'timezone' > z.tz)"
            " FROM z WHERE z.tz IS NOT NULL)"
            " SELECT tz FROM z WHERE tz IS NOT NULL", tenant_id)
        without = await self._pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM profiles WHERE tenant_id = $1"
            " AND body->'attributes'->>'timezone' IS NULL)", tenant_id)
        zones: list[str | None] = sorted(r["tz"] for r in rows)
        return [None, *zones] if without else zones

    @_translated
    async def profiles_page(
        self, tenant_id: str, *, timezone: str | None, after: str | None, limit: int
    ) -> list[Profile]:
        zone_test = ("body->'attributes'->>'timezone' IS NULL AND $2::text IS NULL"
                     if timezone is None else "body->'attributes'->>'timezone' = $2")
        rows = await self._pool.fetch(
            f"SELECT body FROM profiles WHERE tenant_id = $1 AND {zone_test}"
            " AND ($3::text IS NULL OR user_id COLLATE \"C\" > $3)"
            " ORDER BY user_id COLLATE \"C\" LIMIT $4", tenant_id, timezone, after, limit)
        return [Profile.model_validate(r["body"]) for r in rows]

    @_translated
    async def slot_cursors(self, tenant_id: str, since: float) -> dict[str, SlotCursor]:
        rows = await self._pool.fetch(
            "SELECT cursor_id, campaign_id, at, after_user, done FROM schedule_slots"
            " WHERE tenant_id = $1 AND at >= $2", tenant_id, since)
        return {r["cursor_id"]: SlotCursor(r["cursor_id"], r["campaign_id"], r["at"],
                                           r["after_user"], r["done"]) for r in rows}

    @_translated
    async def save_slot_cursor(self, tenant_id: str, cursor: SlotCursor) -> None:
        await self._pool.execute(
            "INSERT INTO schedule_slots AS s (tenant_id, cursor_id, campaign_id, at,"
            " after_user, done, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (tenant_id, cursor_id) DO UPDATE SET"
            " after_user = CASE WHEN EXCLUDED.after_user IS NOT NULL AND (s.after_user IS NULL"
            "  OR EXCLUDED.after_user COLLATE \"C\" > s.after_user COLLATE \"C\")"
            "  THEN EXCLUDED.after_user ELSE s.after_user END,"
            " done = s.done OR EXCLUDED.done, updated_at = EXCLUDED.updated_at",
            tenant_id, cursor.cursor_id, cursor.campaign_id, cursor.at, cursor.after_user,
            cursor.done, self._clock())

    # -- processing ------------------------------------------------------------------

    @asynccontextmanager
    async def batch(
        self, tenant_id: str, user_ids: Sequence[str], *, skip_locked: bool = False
    ) -> AsyncIterator[_PgTx]:
        users = sorted(set(user_ids))
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                # Lock (or, skip_locked, claim), then read the users' presence: one round
                # trip (see migration 0003 for why the read sees what the lock waited for).
                presence = await conn.fetchrow(
                    "SELECT * FROM geopush_lock_load_presence($1, $2::text[], $3)",
                    tenant_id, users, skip_locked)
                assert presence is not None
                if not presence["tenant_known"]:
                    raise NotFoundError(f"no tenant {tenant_id!r}")
                if skip_locked:
                    claimed = set(presence["locked"])
                    users = [u for u in users if u in claimed]
                yield _PgTx(conn, tenant_id, tuple(users), self._clock, presence)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise StoreUnavailableError(f"PostgreSQL: {exc}") from exc

    @asynccontextmanager
    async def owned_transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """One transaction on a pooled connection that takes no user locks: for a
        single writer that owns its users by other means (a partition's worker, see
        :mod:`server.cluster.worker`). Commits on a clean exit."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                yield conn
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise StoreUnavailableError(f"PostgreSQL: {exc}") from exc

    def owned_batch(self, conn: asyncpg.Connection, tenant_id: str,
                    user_ids: Sequence[str]) -> _PgTx:
        """A batch transaction of ``user_ids`` on ``conn``'s :meth:`owned_transaction`
        (no locks taken: the caller owns the users; presence is read from the table)."""
        return _PgTx(conn, tenant_id, tuple(sorted(set(user_ids))), self._clock)

    @_translated
    async def due_users(self, tenant_id: str, now: float, limit: int) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT user_id FROM presence WHERE tenant_id = $1 AND next_due_s <= $2"
            " ORDER BY next_due_s, user_id COLLATE \"C\" LIMIT $3", tenant_id, now, limit)
        return [r["user_id"] for r in rows]

    # -- models (server.store.roles.models; statements in postgres_models) --------------

    @_translated
    async def add_model(self, tenant_id: str, kind: ModelKind, blob: bytes,
                        evaluation: dict[str, Any], *, promote: bool) -> ModelRecord:
        async with self._pool.acquire() as conn:
            return await postgres_models.add(conn, tenant_id, kind, blob, evaluation,
                                             promote=promote, now=self._clock())

    @_translated
    async def list_models(self, tenant_id: str,
                          kind: ModelKind | None = None) -> list[ModelRecord]:
        async with self._pool.acquire() as conn:
            return await postgres_models.listing(conn, tenant_id, kind)

    @_translated
    async def promoted_model(self, tenant_id: str, kind: ModelKind) -> ModelRecord | None:
        async with self._pool.acquire() as conn:
            return await postgres_models.promoted(conn, tenant_id, kind)

    @_translated
    async def training_events(self, tenant_id: str, *, after: TrainingCursor | None,
                              limit: int) -> list[tuple[TrainingCursor, TrainingEvent]]:
        async with self._pool.acquire() as conn:
            return await postgres_models.training_page(conn, tenant_id, after, limit)

    @_translated
    async def training_visits(self, tenant_id: str, *, after: TrainingCursor | None,
                              limit: int) -> list[tuple[TrainingCursor, TrainingSignal]]:
        async with self._pool.acquire() as conn:
            return await postgres_models.visits_page(conn, tenant_id, after, limit)

    @_translated
    async def training_feedback(self, tenant_id: str, *, after: TrainingCursor | None,
                                limit: int) -> list[tuple[TrainingCursor, TrainingSignal]]:
        async with self._pool.acquire() as conn:
            return await postgres_models.feedback_page(conn, tenant_id, after, limit)

    # -- behaviour (server.store.roles.behaviour; statements in postgres_behaviour) ------

    @_translated
    async def ingest_behaviour(
        self, tenant_id: str, records: Sequence[BehaviourRecord], *,
        campaigns: Sequence[Campaign] = (), now: float | None = None,
    ) -> list[BehaviourRecord]:
        async with self._pool.acquire() as conn:
            return await postgres_behaviour.ingest(
                conn, tenant_id, records, self._clock() if now is None else now, campaigns)

    @_translated
    async def due_triggers(self, tenant_id: str, now: float,
                           limit: int) -> list[PendingTrigger]:
        async with self._pool.acquire() as conn:
            return await postgres_behaviour.due(conn, tenant_id, now, limit)

    @_translated
    async def open_triggers(self, tenant_id: str,
                            keys: Sequence[str]) -> list[PendingTrigger]:
        async with self._pool.acquire() as conn:
            return await postgres_behaviour.still_open(conn, tenant_id, keys)

    @_translated
    async def settle_triggers(self, tenant_id: str, keys: Sequence[str]) -> int:
        async with self._pool.acquire() as conn:
            return await postgres_behaviour.fired(conn, tenant_id, keys)

    @_translated
    async def list_behaviour(
        self, tenant_id: str, user_id: str, *, since: float | None = None, limit: int = 100
    ) -> list[BehaviourRecord]:
        async with self._pool.acquire() as conn:
            return await postgres_behaviour.listing(conn, tenant_id, user_id, since, limit)

    @_translated
    async def get_features(self, tenant_id: str, user_id: str) -> UserFeatures | None:
        async with self._pool.acquire() as conn:
            return await postgres_behaviour.features(conn, tenant_id, user_id)

    @_translated
    async def get_features_of(self, tenant_id: str,
                              user_ids: Sequence[str]) -> dict[str, UserFeatures]:
        async with self._pool.acquire() as conn:
            return await postgres_behaviour.features_of(conn, tenant_id, user_ids)

    @_translated
    async def get_tag_rules(self, tenant_id: str) -> TagRules | None:
        async with self._pool.acquire() as conn:
            return await postgres_behaviour.get_rules(conn, tenant_id)

    @_translated
    async def put_tag_rules(self, tenant_id: str, rules: TagRules) -> None:
        async with self._pool.acquire() as conn:
            await postgres_behaviour.put_rules(conn, tenant_id, rules, self._clock())

    @_translated
    async def prune_behaviour(self, tenant_id: str, *, before: float, limit: int) -> int:
        async with self._pool.acquire() as conn:
            return await postgres_behaviour.prune(conn, tenant_id, before, limit)


class _PgTx:
    """A batch transaction of :class:`PostgresStore` on one connection (see ``batch``)."""

    _LOAD = ("SELECT array_agg(p.user_id) AS user_ids, array_agg(last_ts) AS last_ts,"
             " array_agg(anchor_ts) AS anchor_ts, array_agg(anchor_lat) AS anchor_lat,"
             " array_agg(anchor_lng) AS anchor_lng, array_agg(reject_streak) AS reject_streak,"
             " array_agg(open::text) AS open, array_agg(lag_s) AS lag_s"
             " FROM unnest($2::text[]) AS u(user_id) JOIN presence p"
             " ON p.tenant_id = $1 AND p.user_id = u.user_id")

    def __init__(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        users: tuple[str, ...],
        clock: Callable[[], float],
        presence: Mapping[str, Any] | None = None,
    ) -> None:
        """``presence``: the users' presence arrays read right after the locks, if the
        batch did (valid until this transaction writes presence)."""
        self._conn = conn
        self._tenant = tenant_id
        self._users = users
        self._clock = clock
        self._allowed = frozenset(users)
        self._presence = presence

    @property
    def tenant_id(self) -> str:
        return self._tenant

    @property
    def user_ids(self) -> tuple[str, ...]:
        return self._users

    def _check(self, user_ids: Sequence[str]) -> None:
        outside = set(user_ids) - self._allowed
        if outside:
            raise OutsideBatchError(f"users {sorted(outside)} are not locked by this batch")

    def _which(self, users: Sequence[str] | None) -> list[str]:
        """``users`` (checked to be locked), sorted; all locked users when None."""
        if users is None:
            return list(self._users)
        self._check(users)
        return sorted(set(users))

    async def load_state(self) -> PresenceState:
        row = self._presence
        if row is None:
            row = await self._conn.fetchrow(self._LOAD, self._tenant, self._users)
            assert row is not None  # an aggregate without GROUP BY: always one row
        return _presence_state(row)

    async def load_profiles(self, users: Sequence[str] | None = None) -> dict[str, Profile]:
        rows = await self._conn.fetch(
            "SELECT p.user_id, p.body FROM unnest($2::text[]) AS u(user_id)"
            " JOIN profiles p ON p.tenant_id = $1 AND p.user_id = u.user_id",
            self._tenant, self._which(users))
        return {r[0]: Profile.model_validate(r[1]) for r in rows}

    async def load_ledger(
        self, since: float, users: Sequence[str] | None = None
    ) -> LedgerSnapshot:
        wanted = self._which(users)
        # unnest joins, not "user_id = ANY(array)": the cached generic plan of the latter
        # compares every row of a small table with every element of a large array.
        rows = await self._conn.fetch(
            "SELECT l.* FROM unnest($2::text[]) AS u(user_id)"
            " JOIN ledger l ON l.tenant_id = $1 AND l.user_id = u.user_id"
            " WHERE l.at >= $3 ORDER BY l.user_id COLLATE \"C\", l.at, l.seq",
            self._tenant, wanted, since)
        streaks = await self._conn.fetch(
            "SELECT s.user_id, s.ignored_streak FROM unnest($2::text[]) AS u(user_id)"
            " JOIN user_streaks s ON s.tenant_id = $1 AND s.user_id = u.user_id",
            self._tenant, wanted)
        return LedgerSnapshot(tuple(ledger_from_row(r) for r in rows),
                              {r[0]: r[1] for r in streaks})

    async def load_push_feedback(
        self, since: float, users: Sequence[str] | None = None
    ) -> tuple[PushFeedback, ...]:
        rows = await self._conn.fetch(
            "SELECT d.user_id, d.channel, d.created_at, d.feedback && $4::text[] AS opened"
            " FROM unnest($2::text[]) AS u(user_id)"
            " JOIN deliveries d ON d.tenant_id = $1 AND d.user_id = u.user_id"
            " WHERE d.status = 'sent' AND d.created_at >= $3"
            " ORDER BY d.user_id COLLATE \"C\", d.created_at",
            self._tenant, self._which(users), since, list(OPENED_KINDS))
        return tuple(PushFeedback(r[0], r[1], r[2], r[3]) for r in rows)

    async def insert_pings(self, pings: PingBatch, *, received_at: float) -> int:
        if not len(pings):
            return 0
        users = [str(u) for u in pings.user_id.tolist()]
        self._check(users)
        # A retried batch (its answer was lost: a timeout, a killed server) must not
        # store its pings twice: pings are unique per (tenant, user, ts), so the ones
        # stored already are skipped, and so is the second of a (user, ts) given twice
        # (rows go in the order given). NaN (not given) is NULL.
        status = await self._conn.execute(
            "INSERT INTO pings (tenant_id, user_id, ts, lat, lng, accuracy_m, speed_mps,"
            " heading_deg, mock, received_at)"
            " SELECT $1, u, t, la, ln, nullif(ac, 'NaN'), nullif(sp, 'NaN'),"
            "   nullif(hd, 'NaN'), m, $10"
            " FROM unnest($2::text[], $3::float8[], $4::float8[], $5::float8[],"
            "   $6::float8[], $7::float8[], $8::float8[], $9::bool[])"
            "   WITH ORDINALITY AS x(u, t, la, ln, ac, sp, hd, m, n)"
            " ORDER BY n ON CONFLICT DO NOTHING",
            self._tenant, users, pings.ts.tolist(), pings.lat.tolist(), pings.lng.tolist(),
            pings.accuracy_m.tolist(), pings.speed_mps.tolist(), pings.heading_deg.tolist(),
            pings.mock.tolist(), received_at,
        )
        return _count(status)

    async def _insert_keyed(
        self, sql: str, rows: Sequence[_T], values: Callable[[_T], tuple[Any, ...]]
    ) -> list[asyncpg.Record]:
        """The keyed insert of every kind: ``values(row)`` in the column order of ``sql``
        (:func:`_keyed_insert`), one array per column, one statement; what it returned
        for the rows new now (none when ``rows`` is empty)."""
        if not rows:
            return []
        columns = [list(c) for c in zip(*map(values, rows), strict=True)]
        self._check(columns[1])
        found: list[asyncpg.Record] = await self._conn.fetch(sql, self._tenant, *columns)
        return found

    async def insert_events(self, events: Sequence[EventRecord]) -> int:
        return len(await self._insert_keyed(_INSERT_EVENTS, events, lambda r: (
            r.event_key, r.event.user_id, r.event.venue_id, r.event.kind.value, r.event.at,
            r.event.visit_id, r.event.dwell_s, r.event.confidence.value,
            None if r.event.reason is None else r.event.reason.value, r.event.stale,
            r.recorded_at)))

    async def insert_decisions(self, decisions: Sequence[DecisionRecord]) -> int:
        return len(await self._insert_keyed(_INSERT_DECISIONS, decisions, lambda r: (
            r.decision_key, r.decision.user_id, r.decision.decided_at, r.decision.at,
            r.decision.to_json())))

    async def insert_ledger(self, entries: Sequence[KeyedEntry]) -> int:
        return len(await self._insert_keyed(_INSERT_LEDGER, entries, lambda k: (
            k.entry_key, k.entry.user_id, k.entry.campaign_id, k.entry.venue_id,
            k.entry.variant_id, k.entry.at, k.entry.channel, k.entry.control)))

    async def insert_deliveries(self, deliveries: Sequence[NewDelivery]) -> list[DeliveryRecord]:
        rows = await self._insert_keyed(_INSERT_DELIVERIES, deliveries, lambda d: (
            d.idempotency_key, d.user_id, d.delivery_id, d.campaign_id, d.variant_id,
            d.venue_id, d.visit_id, d.event, d.channel, d.title, d.body, d.locale,
            d.created_at, d.expires_at, d.created_at,
            None if d.rich is None else json.dumps(d.rich.as_json(), ensure_ascii=False)))
        by_key = {r["idempotency_key"]: PostgresStore._delivery(r) for r in rows}
        return [by_key.pop(d.idempotency_key) for d in deliveries if d.idempotency_key in by_key]

    async def save_state(self, state: PresenceState) -> None:
        columns = to_columns(state)
        if not len(columns):
            return
        self._check(columns.user_ids)
        self._presence = None  # what batch() read is stale now
        # next_due_s: NaN (no open visit) is NULL, out of the partial due index.
        await self._conn.execute(
            "INSERT INTO presence (tenant_id, user_id, last_ts, anchor_ts, anchor_lat,"
            " anchor_lng, reject_streak, open, next_due_s, updated_at, lag_s)"
            " SELECT $1, u, a, b, c, d, r, o::jsonb, nullif(n, 'NaN'), $10, g"
            " FROM unnest($2::text[], $3::float8[], $4::float8[], $5::float8[], $6::float8[],"
            "   $7::int2[], $8::text[], $9::float8[], $11::float8[])"
            "   AS x(u, a, b, c, d, r, o, n, g)"
            " ON CONFLICT (tenant_id, user_id) DO UPDATE SET last_ts = EXCLUDED.last_ts,"
            " anchor_ts = EXCLUDED.anchor_ts, anchor_lat = EXCLUDED.anchor_lat,"
            " anchor_lng = EXCLUDED.anchor_lng, reject_streak = EXCLUDED.reject_streak,"
            " open = EXCLUDED.open, next_due_s = EXCLUDED.next_due_s,"
            " updated_at = EXCLUDED.updated_at, lag_s = EXCLUDED.lag_s",
            self._tenant, columns.user_ids, columns.last_ts.tolist(),
            columns.anchor_ts.tolist(), columns.anchor_lat.tolist(),
            columns.anchor_lng.tolist(), columns.reject_streak.tolist(),
            [None if o is None else orjson.dumps(o).decode() for o in columns.open],
            columns.next_due_s.tolist(), self._clock(),
            [0.0] * len(columns) if columns.lag_s is None else columns.lag_s.tolist(),
        )


__all__ = ["PostgresStore", "StoreError"]
