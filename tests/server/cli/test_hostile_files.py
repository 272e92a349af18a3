"""Hostile and broken input files for the commands that read them.

Each property starts from a small valid file (Forum, a mall in central Helsinki, and the
pavement outside it) and breaks it one way: a truncated line, a column deleted or named
twice, two values swapped, a cell replaced by text, nothing, NaN, infinity, 1e400, -0, a
huge integer, another script's digits, latitude 91 or longitude 181, bytes that are no
UTF-8, a byte-order mark, CRLF line ends, an empty file, a header alone or in capitals, a
very long line. Whatever the break, the command either succeeds or stops with exit status
2 and one ``geopush: error:`` line naming the file and, for a broken row, its line —
never a traceback, never a hang. A break that changes nothing a reader sees (a BOM, CRLF)
changes nothing in the output either.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.cli.__main__ import main
from server.store import MemoryStore
from tests.behaviour.test_events_import import serve

FORUM_ID = "osm:way/289767497"
FORUM = {
    "type": "FeatureCollection",
    "features": [{
        "type": "Feature", "id": FORUM_ID,
        "properties": {"id": FORUM_ID, "name": "Forum", "kind": "mall",
                       "timezone": "Europe/Helsinki"},
        "geometry": {"type": "Polygon", "coordinates": [[
            [24.937545, 60.169417], [24.937317, 60.1693345], [24.9374915, 60.1692192],
            [24.9375547, 60.1691727], [24.9377211, 60.1692315], [24.9379658, 60.1690667],
            [24.9378157, 60.169005], [24.9381472, 60.1687943], [24.9390813, 60.1691342],
            [24.9389865, 60.1691998], [24.9382962, 60.1696554], [24.9382801, 60.169683],
            [24.9382108, 60.1696579], [24.9381613, 60.16964], [24.9378807, 60.1695385],
            [24.9376331, 60.1694489], [24.937545, 60.169417]]]},
    }],
}

POINTS = """\
id,lat,lng,accuracy_m
forum-west-door,60.16933,24.93752,10
forum-middle,60.16924,24.93822,8.5
esplanadi,60.16760,24.94800,20
"""

PINGS = """\
user_id,ts,lat,lng,accuracy_m,speed_mps,mock
anna,2025-11-28T09:00:00Z,60.16760,24.94800,10,1.4,false
anna,2025-11-28T09:00:30Z,60.16933,24.93752,10,1.4,false
anna,2025-11-28T09:01:00Z,60.16924,24.93822,8,0.5,false
anna,2025-11-28T09:07:00Z,60.16924,24.93822,8,0.0,false
anna,2025-11-28T09:20:00Z,60.16760,24.94800,12,1.4,false
"""

NOON = 1_772_452_800.0
EVENTS_CSV = f"""\
user_id,ts,kind,item_id,category,price,event_id
mei,{NOON:.0f},view,sku-1,baby,19.5,e1
mei,2026-03-02T12:05:00Z,purchase,sku-1,baby,19.5,e2
lin,{NOON + 600:.0f},view,sku-2,electronics,,e3
"""
EVENTS_JSONL = "".join(json.dumps(e) + "\n" for e in (
    {"user_id": "mei", "ts": NOON, "kind": "view", "event_id": "j1",
     "item": {"id": "sku-1", "category": "baby", "price": 19.5}},
    {"user_id": "mei", "ts": NOON + 300, "kind": "purchase", "event_id": "j2",
     "item": {"id": "sku-1", "category": "baby", "price": 19.5}},
    {"user_id": "lin", "ts": NOON + 600, "kind": "view", "event_id": "j3"},
))

SCENARIO = """\
name: hostile
start: 2025-11-28T10:55:00+02:00
venues: forum.geojson
pings: pings.csv
policy: {quiet_hours: null}
campaigns:
  - id: welcome
    trigger: {event: enter}
    venues: {ids: ["osm:way/289767497"]}
    variants: [{id: a, title: Welcome to Forum, body: Coffee is on us}]
"""

HOSTILE = (
    "", " ", "text", "NaN", "nan", "inf", "-Infinity", "1e400", "-1e400", "-0", "+0.0",
    "1e-400", "0x1A", "1_000", "99999999999999999999999999999", "9" * 400, "٦٠٫١٦٩",
    "٦٠.١٦٩", "６０.１６９", "91", "-90.0000001", "181", "-181", "null", "true",
    "2025-02-30T09:00:00Z", "1e18", "-1e18", "\x00", "\t60.1693\t", "é", "60.1693 60.1693",
)
"""Cells a broken export writes: text, nothing, non-finite and overflowing numbers,
other scripts' digits, coordinates just off the globe, impossible dates."""

FILE_BREAKS = ("bom", "crlf", "not_utf8", "empty", "header_only", "header_upper",
               "no_final_newline", "blank_lines")
ROW_BREAKS = ("truncate", "replace", "swap", "drop_cell", "extra_cell", "long_cell",
              "lone_quote")
COLUMN_BREAKS = ("drop_column", "duplicate_column", "swap_header")


class Broken:
    """A broken file: its bytes, how it was broken and, for one broken row, its line
    (1-based, the header is line 1; None when the break is elsewhere)."""

    def __init__(self, data: bytes, how: str, line: int | None = None) -> None:
        self.data, self.how, self.line = data, how, line

    def __repr__(self) -> str:
        # A long cell is 200 kB: hypothesis would print it whole.
        shown = self.data if len(self.data) < 400 else self.data[:400] + b"..."
        return f"Broken({shown!r}, how={self.how!r}, line={self.line})"


def _csv_breaks(valid: str) -> st.SearchStrategy[Broken]:
    """One break of the comma-separated ``valid`` text (no quoting in it)."""
    lines = valid.splitlines()
    rows = [line.split(",") for line in lines]
    width = len(rows[0])

    @st.composite
    def broken(draw: st.DrawFn) -> Broken:
        how = draw(st.sampled_from(FILE_BREAKS + ROW_BREAKS + COLUMN_BREAKS))
        out = [list(r) for r in rows]
        if how in FILE_BREAKS:
            return Broken(_file_break(draw, how, lines), how)
        if how in COLUMN_BREAKS:
            j = draw(st.integers(0, width - 1))
            k = draw(st.integers(0, width - 1))
            for r in out if how != "swap_header" else out[:1]:
                if how == "drop_column":
                    del r[j]
                elif how == "duplicate_column":
                    r.insert(k, r[j])
                else:
                    r[j], r[k] = r[k], r[j]
            # A column named twice: which of the two is read is no answer.
            return Broken(_join(out), how, 1 if how == "duplicate_column" else None)
        i = draw(st.integers(1, len(rows) - 1))
        out[i] = _row_break(draw, how, out[i])
        return Broken(_join(out), how, i + 1)

    return broken()


def _row_break(draw: st.DrawFn, how: str, row: list[str]) -> list[str]:
    j = draw(st.integers(0, len(row) - 1))
    if how == "truncate":
        text = ",".join(row)
        return [text[:draw(st.integers(0, len(text) - 1))]]
    if how == "replace":
        row[j] = draw(st.sampled_from(HOSTILE))
    elif how == "swap":
        k = draw(st.integers(0, len(row) - 1))
        row[j], row[k] = row[k], row[j]
    elif how == "drop_cell":
        del row[j]
    elif how == "extra_cell":
        row.insert(j, draw(st.sampled_from(HOSTILE)))
    elif how == "long_cell":
        row[j] = draw(st.sampled_from(("9", "x", "٩"))) * 200_000
    else:
        row[j] = '"' + row[j]
    return row


def _text_breaks(valid: str) -> st.SearchStrategy[Broken]:
    """One break of ``valid`` YAML or JSON text: a line truncated, a token replaced,
    a file-level break."""
    lines = valid.splitlines()
    tokens = re.compile(r"-?\d+(?:\.\d+)?|\w+")

    @st.composite
    def broken(draw: st.DrawFn) -> Broken:
        how = draw(st.sampled_from((*FILE_BREAKS[:4], "truncate", "replace", "replace",
                                    "long_cell")))
        if how in FILE_BREAKS:
            return Broken(_file_break(draw, how, lines), how)
        i = draw(st.integers(0, len(lines) - 1))
        out = list(lines)
        if how == "truncate":
            out[i] = out[i][:draw(st.integers(0, max(len(out[i]) - 1, 0)))]
        else:
            spans = [m.span() for m in tokens.finditer(out[i])]
            if not spans:
                return Broken(_join_lines(out), how)
            a, b = draw(st.sampled_from(spans))
            new = draw(st.sampled_from(HOSTILE)) if how == "replace" else "9" * 200_000
            out[i] = out[i][:a] + new + out[i][b:]
        return Broken(_join_lines(out), how, i + 1)

    return broken()


def _file_break(draw: st.DrawFn, how: str, lines: list[str]) -> bytes:
    text = _join_lines(lines)
    if how == "bom":
        return b"\xef\xbb\xbf" + text
    if how == "crlf":
        return text.replace(b"\n", b"\r\n")
    if how == "not_utf8":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.sampled_from((b"\xff", b"\xe9", b"\xc3", b"\x80\x80"))) \
            + text[at:]
    if how == "empty":
        return b""
    if how == "header_only":
        return _join_lines(lines[:1])
    if how == "header_upper":
        return _join_lines([lines[0].upper(), *lines[1:]])
    if how == "no_final_newline":
        return text.rstrip(b"\n")
    return text.replace(b"\n", b"\n\n")


def _join(rows: list[list[str]]) -> bytes:
    return _join_lines([",".join(r) for r in rows])


def _join_lines(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


HARMLESS = {"bom", "crlf", "no_final_newline", "blank_lines"}
"""Breaks a careful reader does not see: the output must be the valid file's."""


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``geopush ARGV`` in-process: (exit status, stdout, stderr). Any exception that
    escapes ``main`` fails the test with its traceback."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


MUST_FAIL = {"empty", "duplicate_column"}
"""Breaks that leave no right answer: the command must say so."""


def assert_clear_failure(status: int, err: str, file: Path, broken: Broken) -> None:
    """Exit status 2 and one last ``geopush: error:`` line naming the file (and the
    broken row's line when one row was broken and the row is still a row)."""
    assert "Traceback" not in err
    assert status == 2, err
    message = err.rstrip("\n").splitlines()[-1]
    assert message.startswith("geopush: error: "), err
    assert str(file) in message, message
    if broken.line is not None and broken.how != "lone_quote":
        assert f"{file}:{broken.line}:" in message, (broken.how, message)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    (root / "forum.geojson").write_text(json.dumps(FORUM), encoding="utf-8")
    return root


PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])


# --- geopush locate ---------------------------------------------------------------


def _locate(workdir: Path, data: bytes) -> tuple[int, str, str, Path]:
    points = workdir / "points.csv"
    points.write_bytes(data)
    status, out, err = run_cli(["locate", "--venues", str(workdir / "forum.geojson"),
                                "--points", str(points)])
    return status, out, err, points


def _reads_or_names(run: Callable[[bytes], tuple[int, str, str, Path]], clean: str,
                    broken: Broken, header: str) -> None:
    """A command given a broken file either reads it (its output starts with ``header``;
    a harmless break reads as the clean file does) or names what is wrong."""
    status, out, err, path = run(broken.data)
    if status == 0:
        assert out.startswith(header)
        assert broken.how not in MUST_FAIL, out
        if broken.how in HARMLESS:
            assert out == run(clean.encode())[1]
    else:
        assert_clear_failure(status, err, path, broken)


@PROPERTY
@given(broken=_csv_breaks(POINTS))
def test_locate_reads_a_broken_points_file_or_names_what_is_wrong(
    workdir: Path, broken: Broken
) -> None:
    _reads_or_names(lambda data: _locate(workdir, data), POINTS, broken, "point_id,venue_id\n")


# --- geopush visits ---------------------------------------------------------------


def _visits(workdir: Path, data: bytes) -> tuple[int, str, str, Path]:
    pings = workdir / "pings.csv"
    pings.write_bytes(data)
    status, out, err = run_cli(["visits", "--venues", str(workdir / "forum.geojson"),
                                "--pings", str(pings), "--chunk-rows", "2"])
    return status, out, err, pings


@PROPERTY
@given(broken=_csv_breaks(PINGS))
def test_visits_reads_a_broken_pings_file_or_names_what_is_wrong(
    workdir: Path, broken: Broken
) -> None:
    _reads_or_names(lambda data: _visits(workdir, data), PINGS, broken,
                    "user_id,venue_id,kind,at,")


# --- geopush events import --------------------------------------------------------


@pytest.fixture(scope="module")
def events_service() -> Iterator[tuple[str, str]]:
    """A geopush service on the embedded store, in a thread of its own (the import
    runs its own event loop): its URL and an SDK key."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    server, key = asyncio.run_coroutine_threadsafe(serve(MemoryStore()), loop).result()
    try:
        yield str(server.make_url("/")), key
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def _import(workdir: Path, service: tuple[str, str], name: str,
            data: bytes) -> tuple[int, str, str, Path]:
    path = workdir / name
    path.write_bytes(data)
    url, key = service
    status, out, err = run_cli(["events", "import", str(path), "--target", url,
                                "--key", key, "--quiet"])
    return status, out, err, path


def _check_import(status: int, out: str, err: str, path: Path, broken: Broken) -> None:
    if status == 0:
        assert f"{path}: " in out and " events: " in out
    else:
        assert_clear_failure(status, err, path, broken)


@PROPERTY
@given(broken=_csv_breaks(EVENTS_CSV))
def test_events_import_reads_a_broken_csv_or_names_what_is_wrong(
    workdir: Path, events_service: tuple[str, str], broken: Broken
) -> None:
    status, out, err, path = _import(workdir, events_service, "events.csv", broken.data)
    assert status != 0 or broken.how not in MUST_FAIL, out
    _check_import(status, out, err, path, broken)


@PROPERTY
@given(broken=_text_breaks(EVENTS_JSONL))
def test_events_import_reads_a_broken_jsonl_or_names_what_is_wrong(
    workdir: Path, events_service: tuple[str, str], broken: Broken
) -> None:
    _check_import(*_import(workdir, events_service, "events.jsonl", broken.data), broken)


# --- geopush venues validate ------------------------------------------------------


@PROPERTY
@given(broken=_text_breaks(json.dumps(FORUM, indent=1)))
def test_venues_validate_reports_a_broken_venue_file(workdir: Path, broken: Broken) -> None:
    path = workdir / "venues.geojson"
    path.write_bytes(broken.data)
    status, out, err = run_cli(["venues", "validate", str(path)])
    assert "Traceback" not in err
    if status == 2:
        message = err.rstrip("\n").splitlines()[-1]
        assert message.startswith(f"geopush: error: {path}"), err
    else:
        assert status in (0, 1), err
        assert f"{path}: " in out
        if status == 1:
            assert any(line.startswith(f"{path}: ") and "[" in line
                       for line in out.splitlines()), out


# --- geopush simulate -------------------------------------------------------------


def _simulate(workdir: Path, scenario: bytes, pings: bytes) -> tuple[int, str, str, Path]:
    path = workdir / "scenario.yaml"
    path.write_bytes(scenario)
    (workdir / "pings.csv").write_bytes(pings)
    status, out, err = run_cli(["simulate", str(path), "--json"])
    return status, out, err, path


@PROPERTY
@given(broken=_text_breaks(SCENARIO))
def test_simulate_reads_a_broken_scenario_or_names_what_is_wrong(
    workdir: Path, broken: Broken
) -> None:
    status, out, err, path = _simulate(workdir, broken.data, PINGS.encode())
    if status == 0:
        assert json.loads(out)["summary"]
    else:
        # The line of a replaced token is not always where YAML notices.
        assert_clear_failure(status, err, path, Broken(broken.data, broken.how))


@PROPERTY
@given(broken=_csv_breaks(PINGS))
def test_simulate_reads_a_broken_pings_file_or_names_what_is_wrong(
    workdir: Path, broken: Broken
) -> None:
    status, out, err, path = _simulate(workdir, SCENARIO.encode(), broken.data)
    if status == 0:
        assert json.loads(out)["summary"]
        assert broken.how not in MUST_FAIL
        return
    assert_clear_failure(status, err, path, Broken(broken.data, broken.how))
    if broken.line is not None and broken.how != "lone_quote":
        assert f"pings.csv:{broken.line}:" in err, err



# --- What the properties found ----------------------------------------------------


def _replaced(text: str, line: int, column: int, value: str) -> str:
    """``text`` with cell ``column`` of (1-based) ``line`` replaced by ``value``."""
    lines = text.splitlines()
    cells = lines[line - 1].split(",")
    cells[column] = value
    lines[line - 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


def test_locate_names_the_line_of_a_row_with_one_cell_too_many(workdir: Path) -> None:
    data = POINTS.replace("forum-middle,", "forum-middle,east wing,").encode()
    status, _, err, points = _locate(workdir, data)
    assert status == 2
    assert f"{points}:3: 5 fields, the header has 4" in err


def test_locate_refuses_a_row_with_a_cell_missing_rather_than_shift_its_values(
    workdir: Path,
) -> None:
    # Without its id, the row's latitude would be read as the id, its longitude as the
    # latitude, its accuracy as the longitude: a point in the sea off Somalia.
    data = POINTS.replace("forum-middle,", "").encode()
    status, _, err, points = _locate(workdir, data)
    assert status == 2
    assert f"{points}:3: 3 fields, the header has 4" in err


@pytest.mark.parametrize(("run", "valid", "column"), [
    (_locate, POINTS, "lat"), (_visits, PINGS, "ts")])
def test_a_column_named_twice_is_named_not_read_one_of_two_ways(
    workdir: Path, run: Callable[[Path, bytes], tuple[int, str, str, Path]], valid: str,
    column: str,
) -> None:
    lines = valid.splitlines()
    at = lines[0].split(",").index(column)
    data = "\n".join(f"{line},{line.split(',')[at]}" for line in lines) + "\n"
    status, _, err, path = run(workdir, data.encode())
    assert status == 2
    assert f"{path}:1: {column}: named twice in the header" in err


def test_events_import_names_a_column_named_twice(
    workdir: Path, events_service: tuple[str, str]
) -> None:
    header, *rows = EVENTS_CSV.splitlines()
    data = "\n".join([f"{header},category", *(f"{row},toys" for row in rows)]) + "\n"
    status, _, err, path = _import(workdir, events_service, "events.csv", data.encode())
    assert status == 2
    assert f"{path}:1: category: named twice in the header" in err


def test_locate_counts_blank_lines_in_the_line_it_names(workdir: Path) -> None:
    data = _replaced(POINTS, 4, 1, "91").replace("\n", "\n\n").encode()
    status, _, err, points = _locate(workdir, data)
    assert status == 2
    assert f"{points}:7: lat: '91' is not a number in [-90, 90]" in err


def test_visits_names_the_line_that_is_not_utf8(workdir: Path) -> None:
    data = PINGS.encode().replace(b"anna,2025-11-28T09:07", b"\xe4nna,2025-11-28T09:07")
    status, _, err, pings = _visits(workdir, data)
    assert status == 2
    assert f"{pings}:5: not UTF-8 text (byte 1 of the line)" in err


def test_visits_reads_a_file_that_starts_with_a_byte_order_mark(workdir: Path) -> None:
    status, out, _, _ = _visits(workdir, b"\xef\xbb\xbf" + PINGS.encode())
    assert status == 0
    assert out == _visits(workdir, PINGS.encode())[1]


def test_visits_refuses_a_time_in_epoch_milliseconds(workdir: Path) -> None:
    data = _replaced(PINGS, 3, 1, "1764320430000").encode()
    status, _, err, pings = _visits(workdir, data)
    assert status == 2
    assert f"{pings}:3: ts: '1764320430000' is outside 1970-01-01 - 2199-12-31" in err


@pytest.mark.parametrize(("column", "written"), [
    (2, "٦٠.١٦٧٦٠"),  # Arabic-Indic digits: Python's float reads them, pyarrow does not
    (3, "24.948_00"),  # Python's digit grouping
    (1, "١٧٦٤٣٢٠٤٣٠"),
])
def test_visits_reads_numbers_as_locate_does_ascii_digits_only(
    workdir: Path, column: int, written: str,
) -> None:
    data = _replaced(PINGS, 2, column, written).encode()
    status, _, err, pings = _visits(workdir, data)
    assert status == 2
    field = ("ts", "lat", "lng")[column - 1]
    assert f"{pings}:2: {field}: {written!r} is" in err


def test_visits_refuses_a_user_id_with_a_control_character(workdir: Path) -> None:
    # As a numpy string "anna\0" would lose its NUL and become anna, silently.
    data = _replaced(PINGS, 4, 0, "anna\x00").encode()
    status, _, err, pings = _visits(workdir, data)
    assert status == 2
    assert f"{pings}:4: user_id: must be 1-256 characters without control characters" in err


def test_events_import_names_the_line_of_a_cell_too_long_for_a_csv_row(
    workdir: Path, events_service: tuple[str, str]
) -> None:
    data = _replaced(EVENTS_CSV, 3, 3, "x" * 200_000).encode()
    status, _, err, path = _import(workdir, events_service, "events.csv", data)
    assert status == 2
    assert f"{path}:3: not a CSV row: field larger than field limit" in err


def test_events_import_names_the_field_of_an_integer_too_long_for_python(
    workdir: Path, events_service: tuple[str, str]
) -> None:
    data = EVENTS_JSONL.replace(f'"ts": {NOON + 300}', '"ts": 1' + "0" * 5000).encode()
    status, _, err, path = _import(workdir, events_service, "events.jsonl", data)
    assert status == 2
    assert f"{path}:2: ts: " in err


def test_events_import_reads_a_file_that_starts_with_a_byte_order_mark(
    workdir: Path, events_service: tuple[str, str]
) -> None:
    data = b"\xef\xbb\xbf" + EVENTS_CSV.encode()
    status, out, err, path = _import(workdir, events_service, "events.csv", data)
    assert status == 0, err
    assert f"{path}: 3 events: " in out


def test_events_import_refuses_a_nul_in_a_csv_cell_before_sending_anything(
    workdir: Path, events_service: tuple[str, str]
) -> None:
    # The service refuses it (no database text holds a NUL): the check must too, else
    # the lines above it are sent and the import stops half done.
    data = _replaced(EVENTS_CSV, 3, 4, "ba\x00by").encode()
    status, out, err, path = _import(workdir, events_service, "events.csv", data)
    assert (status, out) == (2, "")
    assert f"{path}:3: category: a text holds a NUL character" in err


def test_events_import_refuses_a_nul_in_a_jsonl_text_naming_its_field(
    workdir: Path, events_service: tuple[str, str]
) -> None:
    data = EVENTS_JSONL.replace('"category": "baby"', '"category": "ba\\u0000by"', 1).encode()
    status, out, err, path = _import(workdir, events_service, "events.jsonl", data)
    assert (status, out) == (2, "")
    assert f"{path}:1: item.category: a text holds a NUL character" in err


def test_venues_validate_names_a_coordinate_too_large_for_a_float(workdir: Path) -> None:
    path = workdir / "venues.geojson"
    path.write_text(json.dumps(FORUM).replace("60.169417]", "1" + "0" * 400 + "]", 1))
    status, out, err = run_cli(["venues", "validate", str(path)])
    assert status == 1, err
    assert "geometry.coordinates[0][0]: latitude inf is not a finite number" in out


def test_simulate_names_the_line_of_a_date_that_does_not_exist(workdir: Path) -> None:
    scenario = SCENARIO.replace("2025-11-28T10:55", "2025-02-30T10:55").encode()
    status, _, err, path = _simulate(workdir, scenario, PINGS.encode())
    assert status == 2
    assert f"{path}:2: not valid YAML: '2025-02-30T10:55:00+02:00': day is out of range" \
        in err


def test_simulate_names_the_line_of_a_control_character(workdir: Path) -> None:
    scenario = SCENARIO.replace("name: hostile", "name: host\x00ile").encode()
    status, _, err, path = _simulate(workdir, scenario, PINGS.encode())
    assert status == 2
    assert err.count("\n") == 1
    assert f"{path}:1: not valid YAML: special characters are not allowed" in err


def test_simulate_names_a_venue_file_name_too_long_for_the_file_system(
    workdir: Path,
) -> None:
    scenario = SCENARIO.replace("forum.geojson", "f" * 5000 + ".geojson").encode()
    status, _, err, path = _simulate(workdir, scenario, PINGS.encode())
    assert status == 2
    assert f"{path}:3: venues: venue file 'ffff" in err and "File name too long" in err


def test_simulate_names_the_line_of_an_events_file_that_is_not_utf8(workdir: Path) -> None:
    events = workdir / "events.csv"
    events.write_bytes(EVENTS_CSV.encode().replace(b"lin,", b"l\xefn,"))
    scenario = SCENARIO.replace("pings: pings.csv", "pings: pings.csv\nevents: events.csv")
    status, _, err, path = _simulate(workdir, scenario.encode(), PINGS.encode())
    assert status == 2
    assert f"{path}:5: events: {events}:4: not UTF-8 text (byte 2 of the line)" in err


def test_simulate_names_an_event_decades_after_the_start_rather_than_replay_the_gap(
    workdir: Path,
) -> None:
    events = workdir / "events.csv"
    events.write_text(_replaced(EVENTS_CSV, 4, 1, "2199-12-31T00:00:00Z"), encoding="utf-8")
    scenario = SCENARIO.replace("pings: pings.csv", "pings: pings.csv\nevents: events.csv")
    status, _, err, _ = _simulate(workdir, scenario.encode(), PINGS.encode())
    assert status == 2
    assert (f"{events}:4: ts: 2199-12-31T00:00:00Z is more than 366 days after the "
            "scenario's start (2025-11-28T08:55:00Z)") in err


def test_simulate_names_a_ping_decades_from_the_start_rather_than_replay_the_gap(
    workdir: Path,
) -> None:
    # Epoch 0: the replay would step through 55 years, 30 virtual seconds at a time.
    pings = _replaced(PINGS, 4, 1, "0").encode()
    status, _, err, path = _simulate(workdir, SCENARIO.encode(), pings)
    assert status == 2
    assert (f"{path}:4: pings: {workdir / 'pings.csv'}:4: ts: 1970-01-01T00:00:00Z is more "
            "than 366 days from the scenario's start (2025-11-28T08:55:00Z)") in err
