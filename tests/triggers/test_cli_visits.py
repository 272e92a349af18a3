"""``geopush visits`` end to end on the Helsinki fixtures."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from server.cli import main
from tests.conftest import FIXTURES, HELSINKI_VENUES
from tests.triggers.builders import FORUM, helsinki_mall_walks
from triggers.trajectory import generate_many

PINGS = FIXTURES / "pings" / "helsinki_malls.csv"


def test_fixture_is_what_the_generator_makes() -> None:
    cols = generate_many(helsinki_mall_walks(), 2025)
    assert cols.take(cols.delivery_order()).to_csv_text() == PINGS.read_text(encoding="utf-8")


def test_visits_replays_the_mall_walks(tmp_path: Path) -> None:
    out = tmp_path / "visits.csv"
    status = main(["visits", "--venues", str(HELSINKI_VENUES), "--pings", str(PINGS),
                   "--out", str(out), "--chunk-rows", "50"])
    assert status == 0
    rows = list(csv.DictReader(out.read_text(encoding="utf-8").splitlines()))
    assert list(rows[0]) == ["user_id", "venue_id", "kind", "at", "visit_id", "dwell_s",
                             "confidence", "reason"]
    anna = [(r["kind"], r["dwell_s"]) for r in rows
            if r["user_id"] == "anna" and r["venue_id"] == FORUM]
    assert [k for k, _ in anna] == ["enter", "dwell", "exit"]
    assert anna[1][1] == "300" and float(anna[2][1]) > 900
    assert rows[0]["at"].endswith("Z")


def test_visits_output_does_not_depend_on_chunk_size(tmp_path: Path) -> None:
    outs = []
    for chunk in ("7", "100000"):
        out = tmp_path / f"v{chunk}.csv"
        assert main(["visits", "--venues", str(HELSINKI_VENUES), "--pings", str(PINGS),
                     "--out", str(out), "--chunk-rows", chunk]) == 0
        outs.append(sorted(out.read_text(encoding="utf-8").splitlines()))
    assert outs[0] == outs[1]


@pytest.mark.parametrize(("line", "message"), [
    ("u1,yesterday,60.17,24.94", "bad.csv:3: ts: 'yesterday' is neither ISO-8601"),
    ("u1,2025-11-28T09:00:00,60.17,24.94", "bad.csv:3: ts: '2025-11-28T09:00:00' has no UTC"),
    ("u1,1764320400,91,24.94", "bad.csv:3: lat: 91.0 is outside [-90, 90]"),
    ("u1,1764320400,60.17", "bad.csv:3: 3 fields, the header has 4"),
])
def test_bad_row_is_reported_by_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, message: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"user_id,ts,lat,lng\nu1,1764320390,60.17,24.94\n{line}\n", encoding="utf-8")
    status = main(["visits", "--venues", str(HELSINKI_VENUES), "--pings", str(bad)])
    assert status == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
