"""``geopush serve`` (the HTTP service) and ``geopush keys create`` (an API key).

``serve`` reads the settings once (environment ``GEOPUSH_*`` / ``DATABASE_URL``, flags
on top), optionally preloads a scenario's venues, profiles, campaigns and policy into
tenant ``default``, and runs until SIGTERM or SIGINT, then shuts down gracefully:
the listener closes, requests in flight get ``--shutdown-timeout`` seconds, the timer
loop stops, the store closes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from server.api.context import STORE
from server.app import create_app
from server.auth import DEFAULT_TENANT, Role, generate_key, hash_key, new_key_id
from server.cli_common import CliError
from server.logs import configure_logging
from server.scenario_files import ScenarioFileError, load_scenario
from server.settings import Settings, SettingsError, load_settings
from server.store import PolicyRecord, Store, open_store
from server.store.errors import StoreError
from triggers.simulation import Scenario


def register(sub: Any) -> None:
    """Add ``serve`` and ``keys create`` to the ``geopush`` subcommands."""
    serve = sub.add_parser("serve", help="run the HTTP service", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1; "
                                      "GEOPUSH_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8080; GEOPUSH_PORT)")
    serve.add_argument("--database-url", metavar="URL",
                       help="PostgreSQL URL (DATABASE_URL); default: the embedded store")
    serve.add_argument("--scenario", type=Path, metavar="FILE",
                       help="preload venues, profiles, campaigns and policy of a scenario "
                            "YAML into tenant 'default'")
    serve.add_argument("--admin-key", metavar="KEY",
                       help="make KEY an admin key of tenant 'default' (GEOPUSH_ADMIN_KEY)")
    serve.add_argument("--shutdown-timeout", type=float, default=10.0, metavar="S",
                       help="seconds requests in flight get at shutdown (default 10)")
    serve.set_defaults(func=_serve)

    keys = sub.add_parser("keys", help="manage API keys",
                          description="Manage API keys in a PostgreSQL store.")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create an API key and print it once")
    create.add_argument("--tenant", required=True, help="tenant id (created if missing)")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--name", default="", help="a label for people")
    create.add_argument("--database-url", metavar="URL",
                        help="PostgreSQL URL (DATABASE_URL)")
    create.set_defaults(func=_keys_create)


def _settings(**flags: Any) -> Settings:
    try:
        return load_settings(**flags)
    except SettingsError as exc:
        raise CliError(str(exc)) from exc


def _serve(args: argparse.Namespace) -> int:
    settings = _settings(host=args.host, port=args.port, database_url=args.database_url,
                         admin_key=args.admin_key)
    scenario = _read_scenario(args.scenario) if args.scenario is not None else None
    configure_logging(settings.log_format, settings.log_level)
    app = create_app(settings)
    if scenario is not None:
        app.on_startup.append(_preloader(scenario))
    app.on_startup.append(_freeze_startup_objects)
    store_label = "PostgreSQL" if settings.database_url else "embedded (in-memory) store"
    web.run_app(
        app, host=settings.host, port=settings.port, shutdown_timeout=args.shutdown_timeout,
        print=lambda _msg: print(f"geopush: serving on http://{settings.host}:{settings.port}"
                                 f" ({store_label}); docs at /docs", flush=True),
        access_log=None,
    )
    return 0


async def _freeze_startup_objects(_app: web.Application) -> None:
    """Tune the cyclic GC for serving. Everything alive after start-up (modules,
    classes, the store's catalogue) is frozen out of its reach: a full collection would
    otherwise walk those ~200k objects each time, a 100-200 ms pause of every request
    in flight. What is created later is collected as usual, the young generation every
    50,000 net allocations instead of 700 (measured: p99 at half the saturating rate
    from 36-65 ms to 7 ms, ``tests/bench/bench_service.py``)."""
    gc.collect()
    gc.freeze()
    # Requests allocate and free many short-lived containers; collecting the young
    # generation every 700 net allocations (the default) turns into a pause every few
    # requests under load. 50,000 keeps collections rare and still bounded.
    gc.set_threshold(50_000, 20, 100)
    # Index rebuilds and venue validation run in worker threads; at the default 5 ms
    # switch interval the event loop waits up to 5 ms for the GIL each time it wakes
    # (several times a request). 1 ms keeps a tenant's rebuild from showing in another
    # tenant's latency (tests/bench/bench_hostile.py).
    sys.setswitchinterval(0.001)


def _read_scenario(path: Path) -> Scenario:
    try:
        return load_scenario(path)
    except ScenarioFileError as exc:
        raise exc.as_cli_error() from exc


def _preloader(scenario: Scenario) -> Callable[[web.Application], Awaitable[None]]:
    async def preload(app: web.Application) -> None:
        await preload_scenario(app[STORE], scenario, DEFAULT_TENANT)

    return preload


async def preload_scenario(store: Store, scenario: Scenario, tenant_id: str) -> None:
    """Write a scenario's venues, profiles, campaigns and policy into ``tenant_id``."""
    spec = scenario.spec
    await store.ensure_tenant(tenant_id)
    if scenario.venues:
        await store.put_venues(tenant_id, scenario.venues)
    for profile in spec.profiles:
        await store.put_profile(tenant_id, profile)
    for campaign in spec.campaigns:
        await store.put_campaign(tenant_id, campaign)
    presence = {k: v for k, v in spec.policy.presence.model_dump().items() if v is not None}
    await store.put_policy(tenant_id, PolicyRecord(policy=spec.policy.tenant(),
                                                   presence=presence))


def _keys_create(args: argparse.Namespace) -> int:
    settings = _settings(database_url=args.database_url)
    if settings.database_url is None:
        raise CliError("keys create needs --database-url (or DATABASE_URL): the embedded "
                       "store lives only inside a running server; there, use --admin-key "
                       "or POST /v1/keys")
    key = generate_key()
    try:
        record = asyncio.run(_create_key(settings.database_url, args.tenant, Role(args.role),
                                         key, args.name))
    except StoreError as exc:
        raise CliError(f"cannot create the key: {exc}", field="--database-url") from exc
    print(f"key {record}: {key}")
    print("geopush: this key is shown once; only its hash is stored")
    return 0


async def _create_key(url: str, tenant: str, role: Role, key: str, name: str) -> str:
    store = await open_store(url)
    try:
        await store.ensure_tenant(tenant)
        record = await store.create_key(tenant, key_id=new_key_id(), key_hash=hash_key(key),
                                        role=role, name=name)
        return f"{record.key_id} (tenant {record.tenant_id}, role {record.role.value})"
    finally:
        await store.close()
