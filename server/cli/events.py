"""``geopush events import FILE``: behaviour events from a CSV or JSONL file into a
running service (``--target URL --key K``, ``POST /v1/events`` with an SDK or admin
key) or straight into a PostgreSQL store (``--database-url URL [--tenant T]``).

The file is checked whole first: a bad line (an event dated more than 300 s ahead of
this machine's clock included) stops the import before anything is sent,
naming the file, the line and the column (``events.csv:7: price: ...``). Then it is
sent in batches of 1,000 (gzip over HTTP); a progress line goes to stderr every
:data:`PROGRESS_EVERY` events. Importing a file again is harmless: events are
idempotent (``event_id``, else a hash of the event), and the summary counts them as
duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from server.cli.common import CliError, not_utf8

BATCH = 1000
PROGRESS_EVERY = 50_000

DESCRIPTION = """\
Import behaviour events from a CSV file (header user_id,ts,kind,item_id,category and
optionally price,event_id,item_name,tags; tags separated by ;) or a JSONL file (one API
event object a line; .jsonl or .ndjson, or --format jsonl) into a running service
(--target URL --key K: POST /v1/events with an sdk or admin key) or straight into a
PostgreSQL store (--database-url URL [--tenant T]).

The file is checked whole first: a bad line (an event dated more than 300 s ahead of
this machine's clock included) stops the import before anything is sent, naming the
file, the line and the column. Events go in batches of 1,000; a progress line
goes to stderr every 50,000 events. Importing a file again is harmless: events are
idempotent (event_id, else a hash of the event) and counted as already there."""


def register(parser: argparse.ArgumentParser) -> None:
    """Define ``events import`` (imports nothing heavy: see ``__main__``)."""
    parser.description = "Behaviour events: import a file."
    actions = parser.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    imp = actions.add_parser("import", help="import behaviour events from CSV or JSONL",
                             description=DESCRIPTION,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("file", type=Path, help="CSV (user_id,ts,kind,item_id,category[,price,"
                                             "event_id,item_name,tags]) or .jsonl")
    imp.add_argument("--format", choices=("csv", "jsonl"), default=None,
                     help="default: by the file's extension (.jsonl / .ndjson: JSONL)")
    imp.add_argument("--target", metavar="URL", help="a running geopush service")
    imp.add_argument("--key", help="its API key (sdk or admin; default: $GEOPUSH_API_KEY, "
                                   "as the other commands, or the older $GEOPUSH_KEY)",
                     default=os.environ.get("GEOPUSH_API_KEY") or os.environ.get("GEOPUSH_KEY"))
    imp.add_argument("--database-url", metavar="URL", help="a PostgreSQL store instead")
    imp.add_argument("--tenant", default="default",
                     help="with --database-url: the tenant (default: default)")
    imp.add_argument("--quiet", action="store_true", help="no progress lines")
    imp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The ``events import`` command: returns the exit status, raises :class:`CliError`."""
    if (args.target is None) == (args.database_url is None):
        raise CliError("give --target URL --key K, or --database-url URL", field="--target")
    if args.target is not None and not args.key:
        raise CliError("the service's API key is required with --target", field="--key")
    jsonl = (args.format == "jsonl") if args.format else \
        args.file.suffix.lower() in {".jsonl", ".ndjson"}
    total = _check(args.file, jsonl)
    send = _send_http(args) if args.target else _send_store(args)
    started = time.monotonic()
    summary = asyncio.run(send(args.file, jsonl, total, args.quiet))
    elapsed = time.monotonic() - started
    print(f"{args.file}: {total:,} events: {summary['stored']:,} stored, "
          f"{summary['duplicates']:,} already there, {summary['rejected']:,} rejected "
          f"({elapsed:.1f} s)")
    return 1 if summary["rejected"] else 0


def _events(path: Path, jsonl: bool) -> Iterator[tuple[int, Any]]:
    from triggers.behaviour.files import EventFileError, read_events  # noqa: PLC0415

    try:
        with path.open(encoding="utf-8-sig", newline="") as lines:
            yield from read_events(lines, jsonl=jsonl)
    except EventFileError as exc:
        raise CliError(exc.message, location=f"{path}:{exc.line}", field=exc.field) from exc
    except UnicodeDecodeError as exc:
        raise not_utf8(str(path), exc) from exc
    except OSError as exc:
        raise CliError(exc.strerror or str(exc), location=str(path)) from exc


def _check(path: Path, jsonl: bool) -> int:
    """Read the whole file once; the number of events (a bad line raises). An event the
    service would refuse for its time is a bad line too (on the store as well): one
    dated more than ``MAX_FUTURE_S`` ahead of this machine's clock."""
    from triggers.behaviour.events import MAX_FUTURE_S  # noqa: PLC0415

    now = time.time()
    total = 0
    for line, event in _events(path, jsonl):
        if event.ts > now + MAX_FUTURE_S:
            raise CliError(f"{event.ts - now:.0f} s ahead of this "
                           f"machine's clock (more than {MAX_FUTURE_S:g} s: future_ts)",
                           location=f"{path}:{line}", field="ts")
        total += 1
    return total


def _batches(path: Path, jsonl: bool) -> Iterator[list[tuple[int, Any]]]:
    batch: list[tuple[int, Any]] = []
    for row in _events(path, jsonl):
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _progress(done: int, total: int, quiet: bool, last: list[int]) -> None:
    if not quiet and (done - last[0] >= PROGRESS_EVERY or (done == total and last[0])):
        print(f"geopush: {done:,} of {total:,} events sent", file=sys.stderr, flush=True)
        last[0] = done


def _send_http(args: argparse.Namespace) -> Any:
    async def send(path: Path, jsonl: bool, total: int, quiet: bool) -> dict[str, int]:
        import gzip  # noqa: PLC0415 - run only

        import aiohttp  # noqa: PLC0415
        import orjson  # noqa: PLC0415

        url = args.target.rstrip("/") + "/v1/events"
        headers = {"Authorization": f"Bearer {args.key}", "Content-Type": "application/json",
                   "Content-Encoding": "gzip"}
        counts = {"stored": 0, "duplicates": 0, "rejected": 0}
        done, last = 0, [0]
        try:
            async with aiohttp.ClientSession() as session:
                for batch in _batches(path, jsonl):
                    body = gzip.compress(orjson.dumps({"events": [
                        e.model_dump(mode="json", exclude_none=True) for _, e in batch]}))
                    async with session.post(url, data=body, headers=headers) as resp:
                        answer = await resp.json(content_type=None)
                        if resp.status != 200:
                            error = (answer or {}).get("error", {})
                            raise CliError(f"{resp.status} {error.get('code')}: "
                                           f"{error.get('message')}", field="--target")
                    _tally(counts, answer, batch, path)
                    done += len(batch)
                    _progress(done, total, quiet, last)
        except aiohttp.ClientError as exc:
            raise CliError(f"cannot reach the service: {exc}", field="--target") from exc
        return counts

    return send


def _tally(counts: dict[str, int], answer: dict[str, Any], batch: list[tuple[int, Any]],
           path: Path) -> None:
    counts["stored"] += answer["stored"]
    counts["duplicates"] += answer["duplicates"]
    for rejected in answer["rejected"]:
        counts["rejected"] += 1
        line = batch[rejected["index"]][0]
        field = (rejected.get("field") or "").split(".", 1)[-1]
        print(f"geopush: {path}:{line}: {field}: {rejected['message']} (not imported)",
              file=sys.stderr)


def _send_store(args: argparse.Namespace) -> Any:
    async def send(path: Path, jsonl: bool, total: int, quiet: bool) -> dict[str, int]:
        from server.store import open_store  # noqa: PLC0415 - run only
        from server.store.errors import StoreError  # noqa: PLC0415
        from server.store.roles.behaviour import BehaviourRecord  # noqa: PLC0415

        counts = {"stored": 0, "duplicates": 0, "rejected": 0}
        done, last = 0, [0]
        try:
            store = await open_store(args.database_url)
        except StoreError as exc:
            raise CliError(str(exc), field="--database-url") from exc
        try:
            await store.ensure_tenant(args.tenant)
            for batch in _batches(path, jsonl):
                now = time.time()
                new = await store.ingest_behaviour(
                    args.tenant, [BehaviourRecord.of(e, now) for _, e in batch])
                counts["stored"] += len(new)
                counts["duplicates"] += len(batch) - len(new)
                done += len(batch)
                _progress(done, total, quiet, last)
        except StoreError as exc:
            raise CliError(str(exc), field="--database-url") from exc
        finally:
            await store.close()
        return counts

    return send
