"""``geopush model report [--database-url URL | --target URL --key K] [--kind K] [--json]``:
the tenant's learned model versions, each with its held-out figure, the best baseline's,
whether it is promoted and why — the document of ``GET /v1/models``, read straight from
the database or from a running server, printed as a table (or as JSON)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

from server.cli.common import CliError, add_source_arguments, database_url, get_json

KINDS = ("interests", "sendtime")


def register(parser: argparse.ArgumentParser) -> None:
    """Define the ``model`` arguments (imports nothing heavy: see ``__main__``)."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    report = sub.add_parser("report", help="the model versions and their evaluation")
    add_source_arguments(report)
    report.add_argument("--kind", default=None, choices=KINDS, help="only this kind")
    report.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    """``model report``: returns the exit status, raises :class:`CliError`."""
    from server.api.model_routes import render_table  # noqa: PLC0415 - heavy imports

    if args.target:
        doc = _from_server(args.target, args.key or os.environ.get("GEOPUSH_API_KEY"),
                           args.kind)
    else:
        url = database_url(args.database_url)
        doc = asyncio.run(_from_database(url, args.schema, args.tenant, args.kind))
    print(json.dumps(doc, indent=2) if args.json else render_table(doc["models"]))
    return 0


async def _from_database(url: str, schema: str, tenant_id: str,
                         kind: Any) -> dict[str, Any]:
    from server.api.model_routes import model_doc  # noqa: PLC0415 - see run_report
    from server.store import PostgresStore, StoreError  # noqa: PLC0415

    try:
        # Read-only: a report never migrates the database under a running service.
        store = await PostgresStore.open(url, schema=schema, min_size=1, max_size=1,
                                         apply_migrations=False)
    except StoreError as exc:
        raise CliError(str(exc), field="--database-url") from exc
    try:
        return {"models": [model_doc(r) for r in await store.list_models(tenant_id, kind)]}
    except StoreError as exc:
        # Most often a schema without geopush's tables (--schema names another one).
        raise CliError(str(exc), field="--schema") from exc
    finally:
        await store.close()


def _from_server(target: str, key: str | None, kind: str | None) -> dict[str, Any]:
    return get_json(target, key, "/v1/models", params={"kind": kind} if kind else None)
