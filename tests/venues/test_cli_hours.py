"""``geopush venues hours``: a venue's opening hours as campaigns read them, from a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.cli import main
from tests.conftest import HELSINKI_VENUES
from tests.venues.builders import collection, feature, write_json

CATHEDRAL = "osm:way/419479428"  # "Jun-Aug: Su-Sa 09:00-24:00; Sep-May: Su-Sa 09:00-18:00"


def _run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    status = main(["venues", "hours", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


def test_the_cathedral_keeps_summer_hours_until_august_ends(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = _run(capsys, HELSINKI_VENUES, "--id", CATHEDRAL, "--from", "2026-08-31",
                          "--days", "2")
    assert status == 0
    assert out.splitlines() == [
        "Helsingin tuomiokirkko (osm:way/419479428), Europe/Helsinki: "
        "'Jun-Aug: Su-Sa 09:00-24:00; Sep-May: Su-Sa 09:00-18:00'",
        "  Mon 2026-08-31 00:00 - Mon 2026-08-31 09:00  closed",
        "  Mon 2026-08-31 09:00 - Tue 2026-09-01 00:00  open",
        "  Tue 2026-09-01 00:00 - Tue 2026-09-01 09:00  closed",
        "  Tue 2026-09-01 09:00 - Tue 2026-09-01 18:00  open",
        "  Tue 2026-09-01 18:00 - Wed 2026-09-02 00:00  closed",
    ]


def test_json_spans_carry_the_offset_and_holidays_come_from_the_country_given(
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    path = write_json(tmp_path / "shop.geojson", collection(feature(
        "shop", kind="store", opening_hours="Mo-Su 10:00-18:00; PH off",
        timezone="Europe/Helsinki")))
    status, out, _ = _run(capsys, path, "--id", "shop", "--from", "2026-12-25", "--days", "1",
                          "--country", "fi", "--json")
    report = json.loads(out)
    assert status == 0
    assert report["spans"] == [{"start": "2026-12-25T00:00:00+02:00",
                                "end": "2026-12-26T00:00:00+02:00", "state": "closed",
                                "comment": None}]
    assert (report["understood"], report["caveat"]) == (True, None)


def test_hours_that_do_not_parse_are_shown_open_with_the_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    path = write_json(tmp_path / "shop.geojson", collection(feature(
        "shop", kind="store", opening_hours="Mo-Fr: 10:00-18:00", timezone="Europe/Helsinki")))
    status, out, _ = _run(capsys, path, "--id", "shop", "--from", "2026-12-21", "--days", "1")
    assert status == 0
    assert ("  note: 'Mo-Fr: 10:00-18:00' is not OSM opening_hours syntax (at column 6)"
            in out.splitlines())
    assert out.splitlines()[-1] == ("  Mon 2026-12-21 00:00 - Tue 2026-12-22 00:00  open  "
                                    "(not understood; treated as open)")


@pytest.mark.parametrize(("argv", "status", "says"), [
    (["--id", "nowhere"], 1, "id: no valid venue with id 'nowhere'"),
    (["--id", CATHEDRAL, "--from", "2026-13-01"], 2, "'2026-13-01' is not a date"),
    (["--id", CATHEDRAL, "--days", "0"], 2, "'0' is not a number of days from 1 to 31"),
])
def test_bad_arguments_get_one_line_naming_them(
    capsys: pytest.CaptureFixture[str], argv: list[str], status: int, says: str,
) -> None:
    if status == 2:
        with pytest.raises(SystemExit) as exited:
            _run(capsys, HELSINKI_VENUES, *argv)
        assert exited.value.code == 2
        err = capsys.readouterr().err
    else:
        got, _, err = _run(capsys, HELSINKI_VENUES, *argv)
        assert got == status
    assert says in err
