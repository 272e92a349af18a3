"""``geopush visits``: replay a pings CSV through the presence engine.

The rules (chunks as engine batches on a virtual clock, late pings, what happens at the
end of the file) are in :data:`DESCRIPTION`, which ``geopush visits --help`` prints.
:func:`_chunks` is also the one pings-CSV parser of scenario files.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import math
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from server.cli.common import END_T, FIRST_T, TIME_RANGE_SAID, CliError, not_utf8

if TYPE_CHECKING:
    import numpy as np

    from geo.index import GeofenceIndex
    from triggers.pings import PingBatch
    from triggers.presence_events import PresenceEvent
    from triggers.presence_policy import PresencePolicy

REQUIRED = ("user_id", "ts", "lat", "lng")
OPTIONAL = ("accuracy_m", "speed_mps", "heading_deg", "altitude_m", "mock", "device_id",
            "received_at")
OUT_HEADER = ("user_id", "venue_id", "kind", "at", "visit_id", "dwell_s", "confidence", "reason")
MAX_USER_ID_CHARS = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n", ""}

DESCRIPTION = """\
Replay a pings CSV through the presence engine and write one row per event
(user_id,venue_id,kind,at,visit_id,dwell_s,confidence,reason).

The file is read in chunks of --chunk-rows pings, each chunk one engine batch on a
virtual clock, with the server's rules and the file order as arrival order: a row
arrives when the file has reached its time, the latest ts (or received_at, an optional
column of the same format) of it and the rows above it. Within a chunk pings may come
in any order; across chunks a ping older than its user's last one is late (counted and
ignored). A user whose rows come after later-dated rows of others (a file grouped by
user) is history arriving late: their timers run on their own clock, as the server
runs an offline buffer uploaded late. So a file sorted by ts, or grouped by user in
time order, gives the same events whatever the chunk size.

At the end every user's clock is brought to the last time in the file: dwell timers
due by then have fired and visits silent for the silence timeout are closed; visits
still open stay open; the summary on stderr says how many."""


def register(parser: argparse.ArgumentParser) -> None:
    """Define the ``visits`` arguments (imports nothing heavy: see ``__main__``)."""
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--venues", required=True, metavar="FILE", help="venue file")
    parser.add_argument("--pings", required=True, metavar="FILE.csv",
                        help="pings CSV: user_id,ts,lat,lng and optional accuracy_m, "
                             "speed_mps, heading_deg, altitude_m, mock, device_id, "
                             "received_at")
    parser.add_argument("--out", metavar="FILE.csv", help="output CSV (default: stdout)")
    parser.add_argument("--chunk-rows", type=int, default=100_000, metavar="N",
                        help="pings per engine batch (default 100000)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The ``visits`` command: returns the exit status, raises :class:`CliError`."""
    from geo.errors import GeoError  # noqa: PLC0415 - heavy imports run, not register
    from geo.index import GeofenceIndex  # noqa: PLC0415
    from triggers.presence_policy import PresencePolicy  # noqa: PLC0415
    from venues import VenueError, load_venues  # noqa: PLC0415

    if args.chunk_rows < 1:
        raise CliError("must be >= 1", field="--chunk-rows")
    try:
        load = load_venues(args.venues)
    except VenueError as exc:
        raise CliError(str(exc)) from exc
    venues = [v for v in load.venues if v.enabled]
    try:
        index = GeofenceIndex.build([v.fence() for v in venues])
    except GeoError as exc:
        raise CliError(str(exc), location=args.venues) from exc
    policy = PresencePolicy().with_venues((v.id, v.dwell_s) for v in venues)

    pings_path = Path(args.pings)
    with contextlib.ExitStack() as stack:
        try:
            source = stack.enter_context(pings_path.open(newline="", encoding="utf-8-sig"))
        except OSError as exc:
            raise CliError(exc.strerror or str(exc), location=args.pings) from exc
        out: TextIO = sys.stdout
        if args.out:
            try:
                out = stack.enter_context(Path(args.out).open("w", newline="", encoding="utf-8"))
            except OSError as exc:
                raise CliError(exc.strerror or str(exc), location=args.out) from exc
        n_events, state = _replay(source, out, chunk_rows=args.chunk_rows, index=index,
                                  policy=policy, path=pings_path)
    c = state.counters
    open_visits = sum(len(v) for v in state.visits.values())
    print(f"geopush visits: {c.received} pings ({c.accepted} accepted, {c.late} late, "
          f"{c.duplicate} duplicate, {c.inaccurate} inaccurate, {c.teleport} teleport, "
          f"{c.mock} mock, {c.future} future), {n_events} events, "
          f"{open_visits} visits still open", file=sys.stderr)
    return 0


def _replay(
    source: TextIO,
    out: TextIO,
    *,
    chunk_rows: int,
    index: GeofenceIndex,
    policy: PresencePolicy,
    path: Path,
) -> tuple[int, Any]:
    import numpy as np  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415 - see run

    from geo.errors import GeoError  # noqa: PLC0415
    from triggers.errors import TriggerError  # noqa: PLC0415
    from triggers.presence import catch_up, process_batch  # noqa: PLC0415
    from triggers.presence_state import new_state  # noqa: PLC0415

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(OUT_HEADER)
    state = new_state()
    clock = -math.inf
    n_events = 0
    size = os.fstat(source.fileno()).st_size
    with tqdm(total=size, unit="B", unit_scale=True, file=sys.stderr, desc="pings",
              disable=None, leave=False) as bar:
        for batch, consumed, received in _chunks(source, str(path), chunk_rows):
            # A row arrives when the file has reached its time: the running maximum.
            arrived = np.maximum.accumulate(
                np.concatenate([[clock], np.where(np.isnan(received), batch.ts, received)]))
            clock = float(arrived[-1])
            try:
                state, events = process_batch(state, index, batch, policy, clock,
                                              received_at=arrived[1:])
            except (TriggerError, GeoError) as exc:
                raise CliError(str(exc), location=str(path)) from exc
            for event in events:
                writer.writerow(_row(event))
            n_events += len(events)
            bar.update(consumed)
        for event in catch_up(state, clock, policy):
            writer.writerow(_row(event))
            n_events += 1
    return n_events, state


def _row(e: PresenceEvent) -> list[str]:
    dwell = "" if e.dwell_s is None else (
        str(int(e.dwell_s)) if float(e.dwell_s).is_integer() else f"{e.dwell_s:.3f}")
    return [e.user_id, e.venue_id, e.kind.value, _iso(e.at), e.visit_id, dwell,
            e.confidence.value, "" if e.reason is None else e.reason.value]


def _iso(ts: float) -> str:
    when = dt.datetime.fromtimestamp(ts, dt.UTC)
    spec = "seconds" if float(ts).is_integer() else "milliseconds"
    return when.isoformat(timespec=spec).replace("+00:00", "Z")


def _chunks(
    source: TextIO, name: str, chunk_rows: int
) -> Iterator[tuple[PingBatch, int, np.ndarray[Any, np.dtype[np.float64]]]]:
    """Parse the CSV into batches; yields (batch, bytes consumed since the last one,
    each ping's ``received_at`` — NaN where the file gives none)."""
    import numpy as np  # noqa: PLC0415 - see run

    records = _records(csv.reader(source), name)
    first = next(records, None)
    if first is None:
        raise CliError("empty file: expected a header user_id,ts,lat,lng", location=name)
    header = [h.strip() for h in first[1]]
    for col in header:
        if col not in REQUIRED and col not in OPTIONAL:
            raise CliError(f"unknown column (expected {', '.join(REQUIRED + OPTIONAL)})",
                           location=f"{name}:1", field=col)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CliError(f"missing column(s) {', '.join(missing)}", location=f"{name}:1")
    twice = [c for c in REQUIRED + OPTIONAL if header.count(c) > 1]
    if twice:  # which of the two would be read is no answer
        raise CliError("named twice in the header", location=f"{name}:1", field=twice[0])
    pos = {c: header.index(c) for c in header}
    cols: dict[str, list[Any]] = {c: [] for c in ("user_id", "ts", "lat", "lng", "accuracy_m",
                                                   "speed_mps", "heading_deg", "mock",
                                                   "received_at")}
    last_offset = 0
    for line, record in records:
        if not record or all(not f.strip() for f in record):
            continue
        where = f"{name}:{line}"
        if len(record) != len(header):
            raise CliError(f"{len(record)} fields, the header has {len(header)}", location=where)
        _parse_row(record, pos, cols, where)
        if len(cols["ts"]) >= chunk_rows:
            offset = _tell(source, last_offset)
            yield _batch(cols), offset - last_offset, np.array(cols["received_at"])
            last_offset = offset
            cols = {c: [] for c in cols}
    if cols["ts"]:
        offset = _tell(source, last_offset)
        yield _batch(cols), offset - last_offset, np.array(cols["received_at"])


def _records(reader: Any, name: str) -> Iterator[tuple[int, list[str]]]:
    """``(line, row)`` of ``reader`` (the line where the row ends); a row the csv module
    cannot split, or text that is not UTF-8, raises :class:`CliError` naming its line."""
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CliError(str(exc), location=f"{name}:{reader.line_num}") from exc
        except UnicodeDecodeError as exc:
            raise not_utf8(name, exc) from exc
        yield reader.line_num, record


def _tell(source: TextIO, fallback: int) -> int:
    # The byte offset of the file descriptor (read-ahead included): good enough for a
    # progress bar, and text-mode tell() is unavailable while csv iterates.
    try:
        return os.lseek(source.fileno(), 0, os.SEEK_CUR)
    except OSError:
        return fallback


def _batch(cols: dict[str, list[Any]]) -> PingBatch:
    import numpy as np  # noqa: PLC0415 - see run

    from triggers.pings import PingBatch  # noqa: PLC0415

    return PingBatch.from_columns(
        np.array(cols["user_id"], dtype=str), cols["ts"], cols["lat"], cols["lng"],
        accuracy_m=cols["accuracy_m"], speed_mps=cols["speed_mps"],
        heading_deg=cols["heading_deg"], mock=cols["mock"],
    )


def _parse_row(record: list[str], pos: dict[str, int], cols: dict[str, list[Any]],
               where: str) -> None:
    user = record[pos["user_id"]].strip()
    if not user:
        raise CliError("must not be empty", location=where, field="user_id")
    # The API's rule for a ping's user_id. numpy's strings would drop a trailing NUL
    # (merging "anna\0" into anna), and one long id widens every id of the batch.
    if len(user) > MAX_USER_ID_CHARS or _CONTROL.search(user):
        raise CliError(f"must be 1-{MAX_USER_ID_CHARS} characters without control "
                       f"characters, not {user[:40]!r}{'...' if len(user) > 40 else ''}",
                       location=where, field="user_id")
    cols["user_id"].append(user)
    cols["ts"].append(_parse_ts(record[pos["ts"]], where))
    received = record[pos["received_at"]].strip() if "received_at" in pos else ""
    cols["received_at"].append(_parse_ts(received, where, "received_at") if received
                               else math.nan)
    lat = _number(record, pos, "lat", where, required=True)
    lng = _number(record, pos, "lng", where, required=True)
    if not -90.0 <= lat <= 90.0:
        raise CliError(f"{lat!r} is outside [-90, 90]", location=where, field="lat")
    if not -180.0 <= lng <= 180.0:
        raise CliError(f"{lng!r} is outside [-180, 180]", location=where, field="lng")
    cols["lat"].append(lat)
    cols["lng"].append(lng)
    acc = _number(record, pos, "accuracy_m", where)
    if acc < 0:
        raise CliError(f"{acc!r} must be >= 0", location=where, field="accuracy_m")
    cols["accuracy_m"].append(acc)
    cols["speed_mps"].append(_number(record, pos, "speed_mps", where))
    cols["heading_deg"].append(_number(record, pos, "heading_deg", where))
    _number(record, pos, "altitude_m", where)
    mock = record[pos["mock"]].strip().lower() if "mock" in pos else ""
    if mock not in _TRUE and mock not in _FALSE:
        raise CliError(f"{mock!r} is not a boolean (true/false)", location=where, field="mock")
    cols["mock"].append(mock in _TRUE)


def _number(record: list[str], pos: dict[str, int], field: str, where: str, *,
            required: bool = False) -> float:
    if field not in pos:
        return math.nan
    text = record[pos[field]].strip()
    if not text:
        if required:
            raise CliError("must not be empty", location=where, field=field)
        return math.nan
    try:
        value = _decimal(text)
    except ValueError:
        raise CliError(f"{text!r} is not a number", location=where, field=field) from None
    if not math.isfinite(value):
        raise CliError(f"{text!r} is not a finite number", location=where, field=field)
    return value


def _decimal(text: str) -> float:
    """``float`` of a number written as ``locate`` (pyarrow) reads one: ASCII digits
    only (``float`` takes any script's digits) and no ``_`` between them."""
    if not text.isascii() or "_" in text:
        raise ValueError(text)
    return float(text)


def _parse_ts(text: str, where: str, field: str = "ts") -> float:
    text = text.strip()
    try:
        value = _decimal(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise CliError(f"{text!r} is not a finite time", location=where, field=field)
        return _in_range(value, text, where, field)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"{text!r} is neither ISO-8601 nor epoch seconds",
                       location=where, field=field) from None
    if when.tzinfo is None:
        raise CliError(f"{text!r} has no UTC offset (add Z or +hh:mm)",
                       location=where, field=field)
    return _in_range(when.timestamp(), text, where, field)


def _in_range(value: float, text: str, where: str, field: str) -> float:
    # Epoch milliseconds read as seconds land in the year 50,000; the engine would take
    # them for a time and the output could not write it.
    if not FIRST_T <= value < END_T:
        raise CliError(f"{text!r} is {TIME_RANGE_SAID}", location=where, field=field)
    return value
