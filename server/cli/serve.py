"""``geopush serve``: the HTTP service.

Reads the settings once (environment ``GEOPUSH_*`` / ``DATABASE_URL``, flags on top),
optionally preloads a scenario's venues, profiles, campaigns and policy into tenant
``default``, and runs until SIGTERM or SIGINT, then shuts down gracefully: the
listener closes, requests in flight get ``--shutdown-timeout`` seconds, the timer
loop stops, the store closes. A database that cannot be reached at start is one
``geopush: error: cannot reach the database at URL: why`` line (exit status 2).
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from server.cli.common import CliError

if TYPE_CHECKING:
    from aiohttp import web

    from server.app import GatewayOptions
    from server.settings import Settings
    from server.store import Store
    from triggers.simulation import Scenario

DESCRIPTION = """\
Run the HTTP service (docs at /docs). It uses the embedded in-memory store unless a
PostgreSQL URL is given (--database-url or DATABASE_URL). Every setting can also come
from the environment (GEOPUSH_HOST, GEOPUSH_PORT, GEOPUSH_ADMIN_KEY, ...); flags win.
SIGTERM or SIGINT shuts it down gracefully."""


def register(parser: argparse.ArgumentParser) -> None:
    """Define the ``serve`` arguments (imports nothing heavy: see ``__main__``)."""
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1; "
                                       "GEOPUSH_HOST)")
    parser.add_argument("--port", type=int, help="port (default 8080; GEOPUSH_PORT)")
    parser.add_argument("--database-url", metavar="URL",
                        help="PostgreSQL URL (DATABASE_URL); default: the embedded store")
    parser.add_argument("--scenario", type=Path, metavar="FILE",
                        help="preload venues, profiles, campaigns and policy of a scenario "
                             "YAML into tenant 'default'")
    parser.add_argument("--admin-key", metavar="KEY",
                        help="make KEY an admin key of tenant 'default' (GEOPUSH_ADMIN_KEY); "
                             "without one, the embedded store prints a generated key")
    parser.add_argument("--shutdown-timeout", type=float, default=10.0, metavar="S",
                        help="seconds requests in flight get at shutdown (default 10)")
    cluster = parser.add_argument_group(
        "partitioned mode", "a gateway validates pings and publishes them to NATS "
        "JetStream; `geopush worker` processes them (docs/scale-out.md)")
    cluster.add_argument("--role", choices=("node", "gateway"), default="node",
                         help="node (default): process pings here; gateway: publish them")
    cluster.add_argument("--nats-url", "--nats", dest="nats_url", metavar="URL[,URL...]",
                         help="NATS servers of the gateway (required with --role gateway)")
    cluster.add_argument("--partitions", type=int, default=64, metavar="P",
                         help="partitions of the stream, when this gateway creates it "
                              "(default 64; an existing stream keeps its own)")
    cluster.add_argument("--replicas", type=int, default=1, metavar="R",
                         help="copies of the stream and buckets, when created (default 1; "
                              "3 on a three-node cluster)")
    parser.set_defaults(func=_serve)


def _settings(**flags: Any) -> Settings:
    from server.settings import SettingsError, load_settings  # noqa: PLC0415 - see _serve

    try:
        return load_settings(**flags)
    except SettingsError as exc:
        raise CliError(str(exc)) from exc


def _serve(args: argparse.Namespace) -> int:
    # The service's imports, here and not at the top, keep `geopush --help` and the
    # other commands from loading aiohttp, asyncpg and the app (see ``__main__``).
    from aiohttp import web  # noqa: PLC0415

    from server.app import create_app  # noqa: PLC0415
    from server.cluster.stream import ClusterSetupError  # noqa: PLC0415
    from server.logs import configure_logging  # noqa: PLC0415
    from server.store.errors import StoreError, StoreUnavailableError  # noqa: PLC0415

    settings = _settings(host=args.host, port=args.port, database_url=args.database_url,
                         admin_key=args.admin_key)
    scenario = _read_scenario(args.scenario) if args.scenario is not None else None
    configure_logging(settings.log_format, settings.log_level)
    app = create_app(settings, gateway=_gateway(args, settings))
    if scenario is not None:
        app.on_startup.append(_preloader(scenario))
    app.on_startup.append(_freeze_startup_objects)
    store_label = "PostgreSQL" if settings.database_url else "embedded (in-memory) store"
    if args.role == "gateway":
        store_label += ", gateway to NATS JetStream"
    try:
        web.run_app(
            app, host=settings.host, port=settings.port,
            shutdown_timeout=args.shutdown_timeout,
            print=lambda _msg: print(f"geopush: serving on http://{settings.host}:"
                                     f"{settings.port} ({store_label}); docs at /docs",
                                     flush=True),
            access_log=None,
        )
    except ClusterSetupError as exc:
        raise CliError(str(exc)) from exc
    except StoreError as exc:
        if not settings.database_url:
            raise
        why = " ".join(str(exc).split())  # one line, whatever the driver said
        what = ("cannot reach the database" if isinstance(exc, StoreUnavailableError)
                else "cannot start on the database")
        raise CliError(f"{what} at {redacted(settings.database_url)}: {why}") from exc
    return 0


def _gateway(args: argparse.Namespace, settings: Settings) -> GatewayOptions | None:
    """The gateway's options with ``--role gateway``; checks what the role needs."""
    from server.app import GatewayOptions  # noqa: PLC0415 - see _serve
    from server.cluster.stream import StreamSettings, split_urls  # noqa: PLC0415

    if args.role != "gateway":
        if args.nats_url:
            raise CliError("--nats-url: only a gateway (--role gateway) publishes to NATS")
        return None
    if not args.nats_url or not split_urls(args.nats_url):
        raise CliError("--role gateway needs --nats-url URL[,URL...]")
    if not settings.database_url:
        raise CliError("--role gateway needs --database-url: the workers' PostgreSQL "
                       "holds the keys, venues and campaigns it checks against")
    if not 1 <= args.partitions <= 4096:
        raise CliError(f"--partitions: {args.partitions} is not within 1..4096")
    if not 1 <= args.replicas <= 5:
        raise CliError(f"--replicas: {args.replicas} is not within 1..5")
    return GatewayOptions(tuple(split_urls(args.nats_url)), StreamSettings(
        partitions=args.partitions, replicas=args.replicas))


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


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
    from server.cli.scenario_files import ScenarioFileError, load_scenario  # noqa: PLC0415

    try:
        return load_scenario(path)
    except ScenarioFileError as exc:
        raise exc.as_cli_error() from exc


def _preloader(scenario: Scenario) -> Callable[[web.Application], Awaitable[None]]:
    from server.api.context import STORE  # noqa: PLC0415 - see _serve
    from server.auth import DEFAULT_TENANT  # noqa: PLC0415

    async def preload(app: web.Application) -> None:
        await preload_scenario(app[STORE], scenario, DEFAULT_TENANT)

    return preload


async def preload_scenario(store: Store, scenario: Scenario, tenant_id: str) -> None:
    """Write a scenario's venues, profiles, campaigns and policy into ``tenant_id``."""
    from server.store import PolicyRecord  # noqa: PLC0415 - see _serve

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
