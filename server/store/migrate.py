"""Ordered SQL migrations, applied at start-up under an advisory lock.

Migrations are the files ``server/store/migrations/NNNN_name.sql`` (package data),
applied in number order, each in its own transaction together with its row in
``schema_migrations`` (version, name, sha256 of the text). ``pg_advisory_lock`` on
(this module's lock class, hash of the schema) makes concurrent start-ups safe: the
second waits, then finds everything applied. A migration already applied whose text
changed is refused (:class:`MigrationError`): edit history by adding a migration.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from server.store.errors import StoreError

LOCK_CLASS = 0x6770  # "gp": the first half of the two-int advisory key of migrations
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(StoreError):
    """The database's migration history does not match the shipped migrations."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@functools.cache
def shipped_migrations() -> tuple[Migration, ...]:
    """The migrations in the package, by version; raises on a duplicate number.

    Reads files: the async callers below run it in a thread (once; it is cached)."""
    out: dict[int, Migration] = {}
    for entry in resources.files("server.store").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in out:
            raise MigrationError(f"two migrations numbered {version:04d}")
        out[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return tuple(out[v] for v in sorted(out))


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def migrate(conn: asyncpg.Connection, schema: str, *, up_to: int | None = None) -> list[int]:
    """Apply the pending migrations to ``schema`` (created if missing), those numbered
    at most ``up_to`` when given (a database left at an older version, as the tests of
    a migration need); returns the versions applied now. Safe to run from many
    processes at once."""
    ident = quote_ident(schema)
    shipped = await asyncio.to_thread(shipped_migrations)
    await conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", LOCK_CLASS, schema)
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {ident}.schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = await conn.fetch(f"SELECT version, checksum FROM {ident}.schema_migrations")
        applied = {r["version"]: r["checksum"] for r in rows}
        done: list[int] = []
        for migration in shipped:
            if up_to is not None and migration.version > up_to:
                break
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was changed "
                        "after it was applied; add a new migration instead")
                continue
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path TO {ident}")
                await conn.execute(migration.sql)
                await conn.execute(
                    f"INSERT INTO {ident}.schema_migrations (version, name, checksum)"
                    " VALUES ($1, $2, $3)",
                    migration.version, migration.name, migration.checksum,
                )
            done.append(migration.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", LOCK_CLASS, schema)


async def pending(conn: asyncpg.Connection, schema: str) -> list[int]:
    """Versions shipped but not applied to ``schema`` (all of them when none is)."""
    exists = await conn.fetchval(
        "SELECT to_regclass($1) IS NOT NULL", f"{quote_ident(schema)}.schema_migrations")
    applied: set[int] = set()
    if exists:
        rows = await conn.fetch(
            f"SELECT version FROM {quote_ident(schema)}.schema_migrations")
        applied = {r["version"] for r in rows}
    shipped = await asyncio.to_thread(shipped_migrations)
    return [m.version for m in shipped if m.version not in applied]
