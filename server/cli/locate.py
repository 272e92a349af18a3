"""``geopush locate``: the batch point-in-venue join.

    geopush locate --venues FILE --points FILE.csv [--out FILE.csv] [--chunk-size N]

Reads the venues (any format ``venues.read.load_venues`` reads), indexes the
enabled ones, streams the points CSV in chunks through the same
:class:`geo.GeofenceIndex` the presence engine uses, and writes one
``point_id,venue_id`` row per containment (a point on a venue's edge is inside),
points in file order, venues in file order within a point.

Points CSV: a header with ``lat`` and ``lng`` (degrees), optional ``id`` (defaults
to the 0-based data-row number) and ``accuracy_m`` (checked, not used: containment
is about the point). Bad input stops the run at the first bad row with
``geopush: error: FILE:LINE: field: message`` (exit status 2) rather than skipping
it — a join that silently drops rows looks complete and is not. LINE counts the
header as line 1 and assumes no quoted newlines. ``--out`` is written to a
temporary file and renamed at the end, so a failed run leaves no partial output.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from tqdm import tqdm

from geo import GeofenceIndex
from server.cli_common import CliError
from venues.errors import VenueError
from venues.read import load_venues

DEFAULT_CHUNK_SIZE = 200_000
"""Rows per chunk: ~10 MB of columns, large enough that per-call overhead vanishes."""

_REQUIRED = ("lat", "lng")
_RANGES = {"lat": (-90.0, 90.0), "lng": (-180.0, 180.0)}


def register(sub: Any) -> None:
    """Add the ``locate`` subcommand to the ``geopush`` parser."""
    parser = sub.add_parser(
        "locate",
        help="join points (CSV) to the venues that contain them",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--venues", required=True, metavar="FILE", help="venue file")
    parser.add_argument(
        "--points", required=True, metavar="FILE.csv", help="CSV with lat,lng[,id,accuracy_m]"
    )
    parser.add_argument(
        "--out", metavar="FILE.csv", help="output CSV (default: standard output)"
    )
    parser.add_argument(
        "--chunk-size", type=_positive_int, default=DEFAULT_CHUNK_SIZE, metavar="N",
        help=f"points per batch (default {DEFAULT_CHUNK_SIZE})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The ``locate`` command: returns the exit status, raises :class:`CliError`."""
    index = build_venue_index(args.venues)
    if args.out is None:
        locate(index, args.points, sys.stdout, chunk_size=args.chunk_size)
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            rows = locate(index, args.points, fh, chunk_size=args.chunk_size)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(f"geopush: wrote {rows} rows to {out}", file=sys.stderr)
    return 0


def build_venue_index(path: str) -> GeofenceIndex:
    """Load a venue file and index its enabled venues (containment only: no halo)."""
    try:
        load = load_venues(path)
    except VenueError as exc:
        raise CliError(str(exc)) from exc
    if load.errors:
        print(
            f"geopush: {path}: {len(load.errors)} problem(s); "
            f"{load.summary.rejected} feature(s) not indexed "
            f"(`geopush venues validate {path}` lists them)",
            file=sys.stderr,
        )
    fences = [v.fence() for v in load.venues if v.enabled]
    return GeofenceIndex.build(fences, halo_m=0.0)


def locate(index: GeofenceIndex, points_path: str, out: IO[str], *, chunk_size: int) -> int:
    """Stream ``points_path`` through ``index``, writing ``point_id,venue_id`` rows.

    Returns the number of rows written (the header excluded).
    """
    venue_ids = np.asarray(index.fence_ids, dtype=object)
    out.write("point_id,venue_id\n")
    written = 0
    with tqdm(desc="locate", unit=" pts", unit_scale=True, file=sys.stderr, disable=None) as bar:
        for first_row, frame in _chunks(points_path, chunk_size):
            lat, lng = (_coordinate(frame, name, points_path, first_row) for name in _REQUIRED)
            if "accuracy_m" in frame.columns:
                _accuracy(frame, points_path, first_row)
            hits = index.query(lat, lng)
            if "id" in frame.columns:
                ids = frame["id"].to_numpy(dtype=object)[hits.point]
            else:
                ids = hits.point + first_row
            pd.DataFrame({"p": ids, "v": venue_ids[hits.fence]}).to_csv(
                out, header=False, index=False, lineterminator="\n"
            )
            written += hits.n_pairs
            bar.update(len(frame))
    return written


def _chunks(path: str, chunk_size: int) -> Iterator[tuple[int, pd.DataFrame]]:
    """(first data-row number, chunk) pairs; every value read as text."""
    try:
        reader = pd.read_csv(
            path, dtype=str, na_filter=False, chunksize=chunk_size, skipinitialspace=True
        )
    except FileNotFoundError as exc:
        raise CliError("no such file", location=path) from exc
    except pd.errors.EmptyDataError as exc:
        raise CliError("empty file: expected a header with lat,lng", location=path) from exc
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise CliError(f"cannot read: {exc}", location=path) from exc
    first_row = 0
    with reader:
        while True:
            try:
                frame = next(reader)
            except StopIteration:
                return
            except (UnicodeDecodeError, pd.errors.ParserError) as exc:
                raise CliError(f"cannot parse: {exc}", location=path) from exc
            if first_row == 0:
                frame.columns = [str(c).strip() for c in frame.columns]
                missing = [c for c in _REQUIRED if c not in frame.columns]
                if missing:
                    raise CliError(
                        f"missing column (header has {', '.join(map(str, frame.columns))})",
                        location=f"{path}:1", field=missing[0],
                    )
            else:
                frame.columns = [str(c).strip() for c in frame.columns]
            yield first_row, frame
            first_row += len(frame)


def _coordinate(
    frame: pd.DataFrame, name: str, path: str, first_row: int
) -> NDArray[np.float64]:
    values = pd.to_numeric(frame[name].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    lo, hi = _RANGES[name]
    ok = (values >= lo) & (values <= hi)  # False for NaN too
    if not ok.all():
        i = int(np.argmin(ok))
        text = frame[name].iloc[i]
        why = (
            "missing value" if text.strip() == ""
            else f"{text!r} is not a number in [{lo:g}, {hi:g}]"
        )
        raise CliError(why, location=f"{path}:{first_row + i + 2}", field=name)
    return values


def _accuracy(frame: pd.DataFrame, path: str, first_row: int) -> None:
    text = frame["accuracy_m"].str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    # An empty accuracy is allowed (the presence default applies); anything else must
    # be a finite number of metres >= 0.
    bad = (text != "").to_numpy() & ~(np.isfinite(values) & (values >= 0.0))
    if bad.any():
        i = int(np.argmax(bad))
        raise CliError(
            f"{frame['accuracy_m'].iloc[i]!r} is not a distance in metres (>= 0)",
            location=f"{path}:{first_row + i + 2}", field="accuracy_m",
        )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
