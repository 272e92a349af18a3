"""``geopush stats --campaign ID [--database-url URL | --target URL --key K] [--json]``:
a campaign's decisions, outbox, CTR (Wilson 95%) and lift against its control group —
the document of ``GET /v1/campaigns/{id}/stats``, read straight from the database or
from a running server, printed as a table (or as JSON)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any
from urllib.parse import quote

from server.cli.common import CliError, add_source_arguments, database_url, get_json


def register(parser: argparse.ArgumentParser) -> None:
    """Define the ``stats`` arguments (imports nothing heavy: see ``__main__``)."""
    parser.description = (
        "Print a campaign's decisions, outbox, CTR with Wilson 95% intervals and lift "
        "against its control group (two-proportion z-test), read from PostgreSQL or "
        "from a running server.")
    parser.add_argument("--campaign", required=True, help="campaign id")
    add_source_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The ``stats`` command: returns the exit status, raises :class:`CliError`."""
    from server.api.stats import render_table  # noqa: PLC0415 - heavy imports run only

    if args.target:
        doc = _from_server(args.target, args.key or os.environ.get("GEOPUSH_API_KEY"),
                           args.campaign)
    else:
        url = database_url(args.database_url)
        doc = asyncio.run(_from_database(url, args.schema, args.tenant, args.campaign))
    print(json.dumps(doc, indent=2) if args.json else render_table(doc))
    return 0


async def _from_database(
    url: str, schema: str, tenant_id: str, campaign_id: str
) -> dict[str, Any]:
    from server.api.stats import campaign_stats_doc  # noqa: PLC0415 - see run
    from server.store import PostgresStore, StoreError  # noqa: PLC0415

    try:
        # Read-only: a stats query never migrates the database under a running service.
        store = await PostgresStore.open(url, schema=schema, min_size=1, max_size=1,
                                         apply_migrations=False)
    except StoreError as exc:
        raise CliError(str(exc), field="--database-url") from exc
    try:
        if await store.get_campaign(tenant_id, campaign_id) is None:
            raise CliError(f"no campaign {campaign_id!r} in tenant {tenant_id!r}",
                           field="--campaign")
        doc: dict[str, Any] = campaign_stats_doc(
            await store.campaign_stats(tenant_id, campaign_id)).model_dump(mode="json")
        return doc
    finally:
        await store.close()


def _from_server(target: str, key: str | None, campaign_id: str) -> dict[str, Any]:
    return get_json(target, key, f"/v1/campaigns/{quote(campaign_id, safe='')}/stats")
