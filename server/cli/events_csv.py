"""Reading behaviour-event CSV files for the learning commands, in chunks, checked.

Columns ``user_id,ts,kind,item_id,category`` and optionally ``price,event_id`` (others are
ignored); ``ts`` is ISO 8601 (UTC when it has no offset or ends in `` UTC``) or epoch
seconds (milliseconds when the number is that large, see :func:`parse_times`); an empty
``category`` is an event about no category (an app_open). A bad cell stops the command
with ``FILE:LINE: column: message`` (exit status 2). The file is read by pyarrow in blocks,
so a file of any size streams through in bounded memory, with a progress bar on stderr
(by bytes read) when stderr is a terminal.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from pyarrow import csv as pa_csv

from server.cli.common import END_T, FIRST_T, TIME_RANGE_SAID, CliError
from triggers.learning.coding import Vocabulary, kind_codes

REQUIRED = ("user_id", "ts", "kind", "item_id", "category")
OPTIONAL = ("price", "event_id")
BLOCK_BYTES = 8 << 20
"""pyarrow's block: about 230,000 events at a time."""


@dataclass(frozen=True)
class EventChunk:
    """Checked events of one block: ``user`` and ``category`` as vocabulary indexes
    (``-1``: no category), ``kind`` codes, ``ts`` epoch seconds."""

    user: npt.NDArray[np.int64]
    category: npt.NDArray[np.int64]
    kind: npt.NDArray[np.int8]
    ts: npt.NDArray[np.float64]


def read_events(path: str, users: Vocabulary, categories: Vocabulary,
                desc: str) -> Iterator[EventChunk]:
    """The file's events, a block at a time, ids numbered in the given vocabularies."""
    header = _header(path)
    names = [c for c in (*REQUIRED, *OPTIONAL) if c in header]
    convert = pa_csv.ConvertOptions(column_types={c: pa.string() for c in header},
                                    include_columns=names, strings_can_be_null=False)
    line = 2
    with open(path, "rb") as raw, _progress(path, desc) as bar:
        counted = _CountingFile(raw, bar)
        try:
            # One thread: no read-ahead of further blocks, so memory stays one block's.
            # The header row is skipped and its names given as read by _header.
            reader = pa_csv.open_csv(counted, read_options=pa_csv.ReadOptions(
                block_size=BLOCK_BYTES, use_threads=False, skip_rows=1,
                column_names=header), convert_options=convert)
            for batch in reader:
                yield _checked(path, line, batch, users, categories)
                line += batch.num_rows
        except pa.ArrowInvalid as exc:
            raise _bad_shape(path, len(header)) from exc


def _header(path: str) -> list[str]:
    """The column names, as the contract spells them: case and surrounding spaces do
    not count (``User_ID`` is ``user_id``, as spreadsheets write headers)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            given = next(csv.reader(f), [])
    except OSError as exc:
        raise CliError(exc.strerror or "cannot read", location=path) from exc
    except UnicodeDecodeError as exc:
        raise CliError("not UTF-8 text", location=path) from exc
    header = [name.strip().lower() for name in given]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CliError(f"missing column (the header has {', '.join(given) or 'nothing'})",
                       location=f"{path}:1", field=missing[0])
    twice = [c for c in (*REQUIRED, *OPTIONAL) if header.count(c) > 1]
    if twice:
        raise CliError("named twice in the header (case does not count)",
                       location=f"{path}:1", field=twice[0])
    return header


def _bad_shape(path: str, width: int) -> CliError:
    """The first row whose number of cells is not the header's (pyarrow does not say)."""
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            if len(row) != width and row:
                return CliError(f"{len(row)} cells where the header has {width}",
                                location=f"{path}:{number}")
    return CliError("not a readable CSV file", location=path)


def _checked(path: str, first_line: int, batch: pa.RecordBatch, users: Vocabulary,
             categories: Vocabulary) -> EventChunk:
    frame = batch.to_pandas()

    def fail(column: str, bad: npt.NDArray[np.bool_], message: str) -> CliError:
        row = int(np.flatnonzero(bad)[0])
        value = frame[column].iloc[row]
        return CliError(f"{message}: {value!r}", location=f"{path}:{first_line + row}",
                        field=column)

    for column in ("user_id", "kind"):
        empty = (frame[column].str.strip() == "").to_numpy()
        if empty.any():
            raise fail(column, empty, "empty")
    ts = parse_times(frame["ts"])
    bad_ts = ~np.isfinite(ts)
    if bad_ts.any():
        raise fail("ts", bad_ts, "not an ISO 8601 time or epoch seconds")
    bad_ts = ~in_time_range(ts)
    if bad_ts.any():
        raise fail("ts", bad_ts, TIME_RANGE_SAID)
    if "price" in frame:
        given = (frame["price"].str.strip() != "").to_numpy()
        price = pd.to_numeric(frame["price"].where(given), errors="coerce").to_numpy()
        bad_price = given & ~(np.isfinite(price) & (price >= 0))
        if bad_price.any():
            raise fail("price", bad_price, "not a price (a number, 0 or more)")
    return EventChunk(_indexes(frame["user_id"], users),
                      _indexes(frame["category"].str.strip(), categories),
                      kind_codes(frame["kind"].str.strip().tolist()), ts)


EPOCH_MS_FROM = 1e11
"""A number of epoch seconds this large is past the year 5000: such a ``ts`` is epoch
milliseconds (as some exports write them), and is read as such."""


def in_time_range(ts: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Which of ``ts`` (epoch seconds) lie in :data:`FIRST_T` - :data:`END_T`."""
    return (ts >= FIRST_T) & (ts < END_T)


def parse_times(text: pd.Series) -> npt.NDArray[np.float64]:
    """Epoch seconds of each cell (``nan`` when it is neither a number nor ISO 8601).
    Numbers from :data:`EPOCH_MS_FROM` on are milliseconds; an ISO time may end in
    `` UTC`` or `` GMT`` instead of an offset (``2019-10-01 00:00:00 UTC``, as exports
    from warehouses write it)."""
    ts = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, copy=True)
    ms = ts >= EPOCH_MS_FROM
    ts[ms] /= 1000.0
    iso = ~np.isfinite(ts)
    if iso.any():
        ts[iso] = _iso_seconds(text[iso])
        named = np.flatnonzero(iso)[~np.isfinite(ts[iso])]
        if len(named):  # only the cells that did not parse pay for the second try
            cells = text.iloc[named].astype(str).str.replace(r"\s*(?:UTC|GMT)$", "+00:00",
                                                              regex=True)
            ts[named] = _iso_seconds(cells)
    return ts


def _iso_seconds(cells: pd.Series) -> npt.NDArray[np.float64]:
    parsed = pd.to_datetime(cells, utc=True, format="ISO8601", errors="coerce")
    seconds = (parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    return np.asarray(seconds.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def _indexes(values: pd.Series, vocab: Vocabulary) -> npt.NDArray[np.int64]:
    codes, uniques = pd.factorize(values)
    return np.asarray(vocab.index(list(uniques))[codes], dtype=np.int64)


class _CountingFile:
    """A read-only file that moves a progress bar by the bytes read."""

    def __init__(self, raw: IO[bytes], bar: Any) -> None:
        self._raw, self._bar = raw, bar
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._bar.update(len(data))
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


def _progress(path: str, desc: str) -> Any:
    import os  # noqa: PLC0415

    from tqdm import tqdm  # noqa: PLC0415

    return tqdm(total=os.path.getsize(path), desc=desc, unit="B", unit_scale=True,
                file=sys.stderr, disable=None, leave=False)


def read_users(path: str) -> list[str]:
    """USERS.txt: one user id a line (blank lines skipped, duplicates dropped)."""
    try:
        with open(path, encoding="utf-8") as f:
            ids = [line.strip() for line in f]
    except OSError as exc:
        raise CliError(exc.strerror or "cannot read", location=path) from exc
    except UnicodeDecodeError as exc:
        raise CliError("not UTF-8 text", location=path) from exc
    return list(dict.fromkeys(i for i in ids if i))


def parse_time_option(text: str, option: str) -> float:
    """An ISO 8601 time or epoch seconds given on the command line."""
    ts = parse_times(pd.Series([text]))[0]
    if not np.isfinite(ts):
        raise CliError(f"not an ISO 8601 time or epoch seconds: {text!r}", field=option)
    if not in_time_range(np.array([ts])).all():
        raise CliError(f"{TIME_RANGE_SAID}: {text!r}", field=option)
    return float(ts)
