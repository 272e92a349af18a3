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
header as line 1 (blank lines count too). ``--out`` is written to a
temporary file and renamed at the end, so a failed run leaves no partial output.

Speed (``tests/bench/bench_locate.py``): pyarrow's CSV reader parses the numbers;
the rest of the file is read again as text (pandas) only when something is amiss, to
name the bad row exactly. A :class:`geo.grid.BoxGrid` of the venues' boxes drops the
points far from every venue before the index computes H3 cells. Only the modules this
command needs are imported (no pandas or geopandas on the fast path, nothing of the
service).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from server.cli.common import CliError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
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
    import numpy as np  # noqa: PLC0415 - heavy imports run, not register
    from tqdm import tqdm  # noqa: PLC0415

    venue_ids = np.asarray(index.fence_ids, dtype=object)
    out.write("point_id,venue_id\n")
    writer = csv.writer(out, lineterminator="\n")
    written = 0
    with tqdm(desc="locate", unit=" pts", unit_scale=True, file=sys.stderr, disable=None) as bar:
        for chunk in _chunks(points_path, chunk_size):
            near = np.flatnonzero(grid.may_hold(chunk.lat, chunk.lng))
            hits = index.query(chunk.lat[near], chunk.lng[near])
            ids = chunk.point_ids(near[hits.point])
            writer.writerows(zip(ids, venue_ids[hits.fence].tolist(), strict=True))
            written += hits.n_pairs
            bar.update(chunk.lat.shape[0])
    return written


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Checked points: ``lat``/``lng`` in range, and their ids (None: row numbers)."""

    first_row: int
    lat: NDArray[np.float64]
    lng: NDArray[np.float64]
    ids: pa.Array | NDArray[np.object_] | None
    """pyarrow's strings (the fast reader) or numpy's objects (the text reader)."""

    def point_ids(self, rows: NDArray[np.int64]) -> list[object]:
        """The ids of ``rows`` (0-based in this chunk), leading blanks dropped."""
        import numpy as np  # noqa: PLC0415 - see locate

        if self.ids is None:
            return list((rows + self.first_row).tolist())
        if isinstance(self.ids, np.ndarray):
            return [str(t).lstrip(" ") for t in self.ids[rows].tolist()]
        return [t.lstrip(" ") for t in _texts(self.ids, rows)]


def _chunks(path: str, chunk_size: int) -> Iterator[_Chunk]:
    """The points of ``path`` in chunks of at most ``chunk_size``, checked.

    Read by pyarrow's CSV reader, numbers as float64 (~4x pandas' C parser, and no
    Python object per id). From the first chunk with anything amiss (a cell that is
    no number, a coordinate out of range, a row of the wrong width) the rest of the
    file is read again as text by :func:`_text_chunks`, which names the bad row or,
    when the text is fine after all, reads on.
    """
    raw, columns = _header(path)
    first_row = 0
    for chunk in _arrow_chunks(path, raw, columns, chunk_size):
        if chunk is None:
            yield from _text_chunks(path, first_row, chunk_size)
            return
        yield chunk
        first_row += chunk.lat.shape[0]


def _arrow_chunks(
    path: str, raw: list[str], columns: list[str], chunk_size: int
) -> Iterator[_Chunk | None]:
    """Chunks read by pyarrow; a last None where one is amiss (see :func:`_chunks`)."""
    import pyarrow as pa  # noqa: PLC0415 - see locate
    from pyarrow import csv as pa_csv  # noqa: PLC0415

    numeric = {"lat", "lng", "accuracy_m"}
    convert = pa_csv.ConvertOptions(
        column_types={r: pa.float64() if c in numeric else pa.string()
                      for r, c in zip(raw, columns, strict=True)},
        null_values=[""], strings_can_be_null=False, quoted_strings_can_be_null=False)
    first_row = 0
    try:
        reader = pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=_BLOCK_BYTES),
                                 convert_options=convert)
        for batch in reader:
            for start in range(0, batch.num_rows, chunk_size):
                chunk = _checked(batch.slice(start, chunk_size), columns, first_row)
                yield chunk
                if chunk is None:
                    return
                first_row += chunk.lat.shape[0]
    except pa.ArrowException:
        yield None


_BLOCK_BYTES = 8 << 20
"""pyarrow reads the CSV in blocks of this many bytes (~250,000 points)."""


def _checked(batch: pa.RecordBatch, columns: list[str], first_row: int) -> _Chunk | None:
    """A chunk of ``batch`` when all its values are good, else None."""
    import numpy as np  # noqa: PLC0415 - see locate

    lat, _ = _floats(batch.column(columns.index("lat")))
    lng, _ = _floats(batch.column(columns.index("lng")))
    for values, (lo, hi) in ((lat, _RANGES["lat"]), (lng, _RANGES["lng"])):
        if not ((values >= lo) & (values <= hi)).all():  # False for NaN (empty) too
            return None
    if "accuracy_m" in columns:
        values, empty = _floats(batch.column(columns.index("accuracy_m")))
        # Empty is allowed (the presence default applies); a written NaN is not.
        if not (empty | (np.isfinite(values) & (values >= 0.0))).all():
            return None
    ids = batch.column(columns.index("id")) if "id" in columns else None
    return _Chunk(first_row, lat, lng, ids)


# pyarrow's own conversions to numpy and Python (to_numpy, take, to_pylist) import
# pandas on first use, a third of this command's start-up; the two helpers below read
# the Arrow buffers with numpy instead (layout: arrow.apache.org/docs/format/Columnar).


def _floats(column: pa.Array) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """A float64 column as (values with NaN where empty, empty mask)."""
    import numpy as np  # noqa: PLC0415 - see locate

    n, offset = len(column), column.offset
    validity, data = column.buffers()
    values = np.frombuffer(data, dtype=np.float64, count=offset + n)[offset:]
    if not column.null_count:
        return values, np.zeros(n, dtype=np.bool_)
    bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
    empty = bits[offset:offset + n] == 0
    return np.where(empty, np.nan, values), empty


def _texts(column: pa.Array, rows: NDArray[np.int64]) -> list[str]:
    """The values at ``rows`` of a string column without nulls."""
    import numpy as np  # noqa: PLC0415 - see locate

    _, offsets_buffer, data_buffer = column.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32, count=column.offset + len(column) + 1
                            )[column.offset:]
    data = memoryview(data_buffer) if data_buffer is not None else memoryview(b"")
    starts, ends = offsets[rows].tolist(), offsets[rows + 1].tolist()
    return [str(data[a:b], "utf-8") for a, b in zip(starts, ends, strict=True)]


def _header(path: str) -> tuple[list[str], list[str]]:
    """The column names as written and stripped; a missing ``lat``/``lng`` names the
    file's line 1."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            first = next((row for row in csv.reader(fh) if row), None)
    except FileNotFoundError as exc:
        raise CliError("no such file", location=path) from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CliError(f"cannot read: {exc}", location=path) from exc
    if first is None:
        raise CliError("empty file: expected a header with lat,lng", location=path)
    columns = [c.strip() for c in first]
    missing = [c for c in _REQUIRED if c not in columns]
    if missing:
        raise CliError(f"missing column (header has {', '.join(columns)})",
                       location=f"{path}:1", field=missing[0])
    twice = [c for c in (*_REQUIRED, "id", "accuracy_m") if columns.count(c) > 1]
    if twice:  # which of the two would be read is no answer
        raise CliError("named twice in the header", location=f"{path}:1", field=twice[0])
    return first, columns


def _text_chunks(path: str, first_row: int, chunk_size: int) -> Iterator[_Chunk]:
    """The chunks from data row ``first_row`` on, read as text with pandas; raises
    :class:`CliError` at the first bad value, naming its line."""
    import pandas as pd  # noqa: PLC0415 - only when the fast reader gave up

    _check_widths(path)
    try:
        reader = pd.read_csv(path, dtype=str, na_filter=False, skipinitialspace=True,
                             skiprows=range(1, first_row + 1), chunksize=chunk_size)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError) as exc:
        raise CliError(f"cannot read: {exc}", location=path) from exc
    with reader:
        while True:
            try:
                frame = next(reader)
            except StopIteration:
                return
            except (UnicodeDecodeError, pd.errors.ParserError) as exc:
                raise CliError(f"cannot parse: {exc}", location=path) from exc
            frame.columns = [str(c).strip() for c in frame.columns]
            lat, lng = (_coordinate(frame, name, path, first_row) for name in _REQUIRED)
            if "accuracy_m" in frame.columns:
                _accuracy(frame, path, first_row)
            ids = frame["id"].to_numpy(dtype=object) if "id" in frame.columns else None
            yield _Chunk(first_row, lat, lng, ids)
            first_row += len(frame)


def _check_widths(path: str) -> None:
    """Raise naming the first row whose number of cells is not the header's: pandas
    would fill a short row with blanks (its values in the wrong columns) and name a
    long one by its line in the chunk, not in the file."""
    width = 0
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            try:
                for row in reader:
                    if row and not width:
                        width = len(row)
                    elif row and len(row) != width:
                        raise CliError(f"{len(row)} fields, the header has {width}",
                                       location=f"{path}:{reader.line_num}")
            except csv.Error as exc:
                raise CliError(str(exc), location=f"{path}:{reader.line_num}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read: {exc}", location=path) from exc


def _line(path: str, row: int) -> int:
    """The file line of data row ``row`` (0-based), counted as pandas reads the file:
    blank lines skipped, a quoted newline inside a row (the line where it ends)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        rows = (reader.line_num for cells in reader if cells)
        return next(itertools.islice(rows, row + 1, None))


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
        raise CliError(why, location=f"{path}:{_line(path, first_row + i)}", field=name)
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
            location=f"{path}:{_line(path, first_row + i)}", field="accuracy_m",
        )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
