"""``geopush keys create``: an API key in a PostgreSQL store, printed once.

The embedded store lives inside a running ``geopush serve`` and nowhere else, so its
keys come from ``--admin-key`` / ``GEOPUSH_ADMIN_KEY`` (or the admin key it prints at
start) and ``POST /v1/keys``; this command needs PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from server.cli.common import CliError

ROLES = ("admin", "manager", "sdk")
"""``server.store.base.Role``'s values, written out so that defining the arguments
imports no store (a test keeps the two equal)."""

DESCRIPTION = """\
Create an API key in a PostgreSQL store and print it once (only its hash is stored).
--database-url (or DATABASE_URL) is required: the embedded store lives only inside a
running geopush serve, which takes its admin key from --admin-key or
GEOPUSH_ADMIN_KEY (or prints a generated one at start); more keys come from
POST /v1/keys with that admin key."""


def register(parser: argparse.ArgumentParser) -> None:
    """Define ``keys create`` (imports nothing heavy: see ``__main__``)."""
    parser.description = "Manage API keys in a PostgreSQL store."
    actions = parser.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create an API key and print it once",
                                description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    create.add_argument("--tenant", required=True, help="tenant id (created if missing)")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", default="", help="a label for people")
    # Required unless DATABASE_URL says it, so that the usage line shows what is needed.
    from_env = os.environ.get("GEOPUSH_DATABASE_URL") or os.environ.get("DATABASE_URL") or None
    create.add_argument("--database-url", metavar="URL", required=from_env is None,
                        default=from_env,
                        help="PostgreSQL URL (required; DATABASE_URL when set)")
    create.set_defaults(func=_create)


def _create(args: argparse.Namespace) -> int:
    from server.auth import generate_key  # noqa: PLC0415 - the store's imports: run only
    from server.settings import SettingsError, load_settings  # noqa: PLC0415
    from server.store.errors import StoreError  # noqa: PLC0415

    try:
        url = load_settings(database_url=args.database_url).database_url
    except SettingsError as exc:
        raise CliError(str(exc)) from exc
    if url is None:
        raise CliError("a PostgreSQL URL is required (--database-url or DATABASE_URL)",
                       field="--database-url")
    key = generate_key()
    try:
        record = asyncio.run(_create_key(url, args.tenant, args.role, key, args.name))
    except StoreError as exc:
        raise CliError(f"cannot create the key: {exc}", field="--database-url") from exc
    print(f"key {record}: {key}")
    print("geopush: this key is shown once; only its hash is stored")
    return 0


async def _create_key(url: str, tenant: str, role: str, key: str, name: str) -> str:
    from server.auth import Role, hash_key, new_key_id  # noqa: PLC0415 - see _create
    from server.store import open_store  # noqa: PLC0415

    store = await open_store(url)
    try:
        await store.ensure_tenant(tenant)
        record = await store.create_key(tenant, key_id=new_key_id(), key_hash=hash_key(key),
                                        role=Role(role), name=name)
        return f"{record.key_id} (tenant {record.tenant_id}, role {record.role.value})"
    finally:
        await store.close()
