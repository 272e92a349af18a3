"""``geopush locate``: the batch join through the command line."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from server.cli import main
from tests.conftest import BEIJING_VENUES, FIXTURES
from tests.geo.builders import brute_force_pairs, load_fences

SAMPLE = FIXTURES / "points" / "beijing_sample.csv"


def test_locate_writes_the_brute_force_join_of_the_beijing_sample(tmp_path: Path) -> None:
    out = tmp_path / "out" / "located.csv"
    # A small chunk size so that rows cross chunk boundaries.
    assert (
        main(
            [
                "locate",
                "--venues",
                str(BEIJING_VENUES),
                "--points",
                str(SAMPLE),
                "--out",
                str(out),
                "--chunk-size",
                "777",
            ]
        )
        == 0
    )
    with SAMPLE.open() as fh:
        rows = list(csv.DictReader(fh))
    lat = np.array([float(r["lat"]) for r in rows])
    lng = np.array([float(r["lng"]) for r in rows])
    fences = load_fences(BEIJING_VENUES)
    p, f = brute_force_pairs(fences, lat, lng)
    want = [[rows[i]["id"], fences[j].fence_id] for i, j in zip(p, f, strict=True)]
    with out.open() as fh:
        got = list(csv.reader(fh))
    assert got[0] == ["point_id", "venue_id"]
    assert got[1:] == want
    assert len(want) > 1_000


def test_locate_numbers_points_by_row_when_there_is_no_id_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    points = tmp_path / "p.csv"
    # Row 1 is inside 农业展览馆 station (its first vertex), row 0 far away.
    points.write_text("lat,lng\n0,0\n39.939236068397726,116.45640976573445\n")
    assert main(["locate", "--venues", str(BEIJING_VENUES), "--points", str(points)]) == 0
    assert capsys.readouterr().out.splitlines() == ["point_id,venue_id", "1,bjsubway:5448567458"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lat,lng\n39.9,116.4\n39.9,abc\n", "p.csv:3: lng: 'abc' is not a number in [-180, 180]"),
        ("lat,lng\n95,116.4\n", "p.csv:2: lat: '95' is not a number in [-90, 90]"),
        ("lat,lng\n,116.4\n", "p.csv:2: lat: missing value"),
        ("latitude,lng\n39.9,116.4\n", "p.csv:1: lat: missing column"),
        ("lat,lng,accuracy_m\n39.9,116.4,-3\n", "p.csv:2: accuracy_m: '-3' is not a distance"),
        ("", "p.csv: empty file"),
    ],
)
def test_locate_reports_bad_rows_as_file_line_field_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    points = tmp_path / "p.csv"
    points.write_text(text)
    out = tmp_path / "located.csv"
    status = main(
        ["locate", "--venues", str(BEIJING_VENUES), "--points", str(points), "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert f"geopush: error: {tmp_path / message}" in err or message in err, err
    assert "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == [points]


# Row 1 of the sample below: inside 农业展览馆 station (its first vertex).
_INSIDE = "39.939236068397726,116.45640976573445"


def test_locate_names_a_bad_row_deep_in_the_file_by_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    points = tmp_path / "p.csv"
    rows = [f"p{i},{_INSIDE}" for i in range(2_500)]
    rows[1_700] = "p1700,39.9,116.4x"  # line 1,702: the header is line 1
    points.write_text("id,lat,lng\n" + "\n".join(rows) + "\n")
    out = tmp_path / "located.csv"
    status = main(["locate", "--venues", str(BEIJING_VENUES), "--points", str(points),
                   "--out", str(out), "--chunk-size", "300"])
    assert status == 2
    assert capsys.readouterr().err.strip() == (
        f"geopush: error: {points}:1702: lng: '116.4x' is not a number in [-180, 180]")
    assert not out.exists()


@pytest.mark.parametrize(
    ("cell", "message"),
    [("nan", "'nan' is not a distance in metres (>= 0)"),
     ("-0.5", "'-0.5' is not a distance in metres (>= 0)"),
     ("inf", "'inf' is not a distance in metres (>= 0)")],
)
def test_locate_refuses_an_accuracy_that_is_no_distance_but_takes_an_empty_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cell: str, message: str
) -> None:
    points = tmp_path / "p.csv"
    points.write_text(f"id,lat,lng,accuracy_m\na,{_INSIDE},\nb,{_INSIDE},{cell}\n")
    assert main(["locate", "--venues", str(BEIJING_VENUES), "--points", str(points)]) == 2
    assert capsys.readouterr().err.strip() == f"geopush: error: {points}:3: accuracy_m: {message}"


def test_locate_reads_blanks_quotes_a_bom_and_crlf_as_a_spreadsheet_writes_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lat, lng = _INSIDE.split(",")
    points = tmp_path / "p.csv"
    points.write_bytes(
        "\ufeffid, lat ,lng,accuracy_m\r\n"
        f"  far away,0,0,\r\n"
        f"\"gate, north\", {lat} ,{lng} ,12\r\n"
        f"南门,\"{lat}\",{lng},\r\n".encode())
    assert main(["locate", "--venues", str(BEIJING_VENUES), "--points", str(points)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "point_id,venue_id", '"gate, north",bjsubway:5448567458', "南门,bjsubway:5448567458"]


def test_locate_writes_the_same_rows_whatever_the_chunk_size(tmp_path: Path) -> None:
    outs = []
    for chunk in ("97", "4096", "200000"):
        out = tmp_path / f"located-{chunk}.csv"
        assert main(["locate", "--venues", str(BEIJING_VENUES), "--points", str(SAMPLE),
                     "--out", str(out), "--chunk-size", chunk]) == 0
        outs.append(out.read_text())
    assert outs[0] == outs[1] == outs[2]
    assert outs[0].count("\n") > 1_000
