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

Speed (``tests/bench/bench_locate.py``): coordinates are parsed as numbers by
pandas' C parser; a chunk is read again as text only when that fails, to name the
bad row exactly. A :class:`geo.grid.BoxGrid` of the venues' boxes drops the points
far from every venue before the index computes H3 cells. Only the modules this
command needs are imported (no geopandas for GeoJSON, nothing of the service).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from server.cli.common import CliError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from numpy.typing import NDArray

    from geo import GeofenceIndex
    from geo.grid import BoxGrid

DEFAULT_CHUNK_SIZE = 200_000
"""Rows per chunk: ~10 MB of columns, large enough that per-call overhead vanishes."""

_REQUIRED = ("lat", "lng")
_RANGES = {"lat": (-90.0, 90.0), "lng": (-180.0, 180.0)}


def register(parser: argparse.ArgumentParser) -> None:
    """Define the ``locate`` arguments (imports nothing heavy: see ``__main__``)."""
    parser.description = (
        "Join points to the venues that contain them: one point_id,venue_id row per "
        "containment (a point on an edge is inside), points in file order. Bad input "
        "stops the run, naming file, line and field."
    )
    parser.add_argument("--venues", required=True, metavar="FILE",
                        help="venue file (GeoJSON, GeoPackage, zipped Shapefile, KML)")
    parser.add_argument("--points", required=True, metavar="FILE.csv",
                        help="CSV with lat,lng and optional id, accuracy_m")
    parser.add_argument("--out", metavar="FILE.csv",
                        help="output CSV (default: standard output)")
    parser.add_argument(
        "--chunk-size", type=_positive_int, default=DEFAULT_CHUNK_SIZE, metavar="N",
        help=f"points per batch (default {DEFAULT_CHUNK_SIZE})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The ``locate`` command: returns the exit status, raises :class:`CliError`."""
    index, grid = build_venue_index(args.venues)
    if args.out is None:
        locate(index, grid, args.points, sys.stdout, chunk_size=args.chunk_size)
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            rows = locate(index, grid, args.points, fh, chunk_size=args.chunk_size)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(f"geopush: wrote {rows} rows to {out}", file=sys.stderr)
    return 0


def build_venue_index(path: str) -> tuple[GeofenceIndex, BoxGrid]:
    """Load a venue file; index its enabled venues (containment only: no halo) and
    grid their boxes."""
    from geo import GeofenceIndex  # noqa: PLC0415 - heavy imports run, not register
    from geo.grid import BoxGrid  # noqa: PLC0415
    from venues.errors import VenueError  # noqa: PLC0415
    from venues.read import load_venues  # noqa: PLC0415

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
    return GeofenceIndex.build(fences, halo_m=0.0), BoxGrid.of_fences(fences)


def locate(
    index: GeofenceIndex, grid: BoxGrid, points_path: str, out: IO[str], *, chunk_size: int
) -> int:
    """Stream ``points_path`` through ``grid`` then ``index``, writing
    ``point_id,venue_id`` rows. Returns the number of rows written (header excluded)."""
    import csv  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    venue_ids = np.asarray(index.fence_ids, dtype=object)
    out.write("point_id,venue_id\n")
    writer = csv.writer(out, lineterminator="\n")
    written = 0
    with tqdm(desc="locate", unit=" pts", unit_scale=True, file=sys.stderr, disable=None) as bar:
        for first_row, frame in _chunks(points_path, chunk_size):
            lat, lng = frame["lat"].to_numpy(), frame["lng"].to_numpy()
            near = np.flatnonzero(grid.may_hold(lat, lng))
            hits = index.query(lat[near], lng[near])
            rows = near[hits.point]
            ids = ([i.lstrip(" ") for i in frame["id"].to_numpy(dtype=object)[rows].tolist()]
                   if "id" in frame.columns else (rows + first_row).tolist())
            writer.writerows(zip(ids, venue_ids[hits.fence].tolist(), strict=True))
            written += hits.n_pairs
            bar.update(len(frame))
    return written


def _chunks(path: str, chunk_size: int) -> Iterator[tuple[int, pd.DataFrame]]:
    """(first data-row number, chunk) pairs, checked: ``lat``/``lng`` as float64 in
    range, ``id`` as text when present, ``accuracy_m`` a distance or empty."""
    import pandas as pd  # noqa: PLC0415

    raw, columns = _header(path)
    # Numbers parsed as numbers (pandas' C parser); only an empty cell is missing,
    # so that "NA" stays an id and "nan" is no coordinate.
    numeric = [r for r, c in zip(raw, columns, strict=True) if c in _REQUIRED]
    # No skipinitialspace: it triples the parse time, and the float parser skips
    # blanks on its own; ids lose their leading blanks in `locate`, on the hits only.
    reader = pd.read_csv(
        path, dtype={r: ("float64" if r in numeric else str) for r in raw},
        chunksize=chunk_size, keep_default_na=False, na_values={r: [""] for r in numeric},
    )
    first_row = 0
    with reader:
        while True:
            try:
                frame = next(reader)
            except StopIteration:
                return
            except ValueError:
                # A cell that is no number: read this chunk again as text to name it.
                frame = _text_chunk(path, first_row, chunk_size)
            except (UnicodeDecodeError, pd.errors.ParserError) as exc:
                raise CliError(f"cannot parse: {exc}", location=path) from exc
            frame.columns = columns
            if not _in_range(frame):
                frame = _text_chunk(path, first_row, chunk_size)
            if "accuracy_m" in frame.columns:
                _accuracy(frame, path, first_row)
            yield first_row, frame
            first_row += len(frame)


def _header(path: str) -> tuple[list[str], list[str]]:
    """The column names as written and stripped; a missing ``lat``/``lng`` names the
    file's line 1."""
    import pandas as pd  # noqa: PLC0415

    try:
        head = pd.read_csv(path, dtype=str, nrows=0, skipinitialspace=True)
    except FileNotFoundError as exc:
        raise CliError("no such file", location=path) from exc
    except pd.errors.EmptyDataError as exc:
        raise CliError("empty file: expected a header with lat,lng", location=path) from exc
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise CliError(f"cannot read: {exc}", location=path) from exc
    raw = [str(c) for c in head.columns]
    columns = [c.strip() for c in raw]
    missing = [c for c in _REQUIRED if c not in columns]
    if missing:
        raise CliError(f"missing column (header has {', '.join(columns)})",
                       location=f"{path}:1", field=missing[0])
    return raw, columns


def _in_range(frame: pd.DataFrame) -> bool:
    """Every coordinate within its range (False for NaN too)."""
    for name in _REQUIRED:
        lo, hi = _RANGES[name]
        values = frame[name].to_numpy()
        if not ((values >= lo) & (values <= hi)).all():
            return False
    return True


def _text_chunk(path: str, first_row: int, chunk_size: int) -> pd.DataFrame:
    """The chunk at ``first_row`` read as text; raises :class:`CliError` at its first
    bad coordinate, else returns it with ``lat``/``lng`` as float64."""
    import pandas as pd  # noqa: PLC0415

    try:
        frame = pd.read_csv(path, dtype=str, na_filter=False, skipinitialspace=True,
                            skiprows=range(1, first_row + 1), nrows=chunk_size)
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise CliError(f"cannot parse: {exc}", location=path) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    for name in _REQUIRED:
        frame[name] = _coordinate(frame, name, path, first_row)
    return frame


def _coordinate(
    frame: pd.DataFrame, name: str, path: str, first_row: int
) -> NDArray[np.float64]:
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

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
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

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
