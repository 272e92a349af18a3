"""``geopush sendtime preview --campaign ID --target URL [--key K] [--json]``: a running
server's send-time preview of a ``best_time`` campaign (``GET
/v1/campaigns/{id}/sendtime-preview``): how many users have enough data, and how many
would be sent at each local time, as a table (or as JSON)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any
from urllib.parse import quote

from server.cli.common import get_json


def register(sub: Any) -> None:
    """Add ``preview`` to the ``sendtime`` actions."""
    preview = sub.add_parser("preview", help="a best_time campaign's chosen send times")
    preview.add_argument("--campaign", required=True, help="campaign id")
    preview.add_argument("--target", required=True, metavar="URL",
                         help="a running server (its URL)")
    preview.add_argument("--key", default=None,
                         help="manager or admin API key (default: $GEOPUSH_API_KEY)")
    preview.add_argument("--json", action="store_true", help="print the JSON document")
    preview.set_defaults(func=run_preview)


def run_preview(args: argparse.Namespace) -> int:
    """``sendtime preview``."""
    doc = _fetch(args.target, args.key or os.environ.get("GEOPUSH_API_KEY"), args.campaign)
    print(json.dumps(doc, indent=2) if args.json else render(doc))
    return 0


def render(doc: dict[str, Any]) -> str:
    """The preview as text: the counts, then one line per local send time."""
    lines = [f"campaign {doc['campaign_id']}: {doc['users']} users, {doc['with_data']} with "
             f"enough send-time data, {doc['fallback']} at the fallback "
             f"{doc['fallback_time']} (window {doc['window']})",
             f"{'local time':<10} {'users':>8}"]
    lines += [f"{hhmm:<10} {n:>8}" for hhmm, n in doc["times"].items()]
    return "\n".join(lines)


def _fetch(target: str, key: str | None, campaign_id: str) -> dict[str, Any]:
    return get_json(target, key,
                    f"/v1/campaigns/{quote(campaign_id, safe='')}/sendtime-preview",
                    timeout=60, field="--campaign")
