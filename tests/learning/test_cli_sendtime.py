"""``geopush sendtime fit|predict``: the command-line contract, end to end."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.learning.conftest import DAY, HEADER, T0, Run


def predictions(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def evening_opener_csv(tmp_path: Path) -> Path:
    """carol opens the app at 12:00 UTC every day (20:00 in Shanghai); one click a day
    for ten users at 01:00 UTC (09:00 in Shanghai)."""
    rows = [f"carol,{T0 + d * DAY + 12 * 3600},app_open,,,,\n" for d in range(20)]
    rows += [f"u{i},{T0 + d * DAY + 3600},click,x,news,,\n" for i in range(10) for d in range(5)]
    path = tmp_path / "events.csv"
    path.write_text(HEADER + "".join(rows))
    return path


def test_best_hours_are_local_to_the_time_zone(tmp_path: Path, geopush: Run) -> None:
    events = evening_opener_csv(tmp_path)
    for zone, hour in (("Asia/Shanghai", "20"), ("UTC", "12")):
        model, out = tmp_path / f"{hour}.npz", tmp_path / f"{hour}.csv"
        assert geopush("sendtime", "fit", "--events", events, "--out", model,
                       "--timezone", zone) == 0
        assert geopush("sendtime", "predict", "--model", model, "--out", out) == 0
        carol = [r for r in predictions(out) if r["user_id"] == "carol"]
        assert carol[0]["hour"] == hour
        assert [int(r["rank"]) for r in carol] == list(range(1, 25))
        assert sorted(int(r["hour"]) for r in carol) == list(range(24))
        assert abs(sum(float(r["score"]) for r in carol) - 1.0) < 1e-3


def test_top_and_users_with_unknown_ones(tmp_path: Path, geopush: Run) -> None:
    events = evening_opener_csv(tmp_path)
    model, out = tmp_path / "m.npz", tmp_path / "p.csv"
    users = tmp_path / "users.txt"
    users.write_text("nobody\ncarol\n")
    assert geopush("sendtime", "fit", "--events", events, "--out", model,
                   "--timezone", "Asia/Shanghai") == 0
    assert geopush("sendtime", "predict", "--model", model, "--users", users, "--top", 3,
                   "--out", out) == 0
    rows = predictions(out)
    assert out.read_text().splitlines()[0] == "user_id,hour,score,rank"
    assert [r["user_id"] for r in rows] == ["nobody"] * 3 + ["carol"] * 3
    # the population engages at 09:00 local (50 clicks) more than at 20:00 (20 opens)
    assert rows[0]["hour"] == "9"


def test_until_drops_the_later_events(tmp_path: Path, geopush: Run) -> None:
    """carol opened at 12:00 for ten days, then at 03:00 for twenty."""
    rows = [f"carol,{T0 + d * DAY + 12 * 3600},app_open,,,,\n" for d in range(10)]
    rows += [f"carol,{T0 + d * DAY + 3 * 3600},app_open,,,,\n" for d in range(10, 30)]
    events = tmp_path / "events.csv"
    events.write_text(HEADER + "".join(rows))
    best = {}
    for until in (None, T0 + 10 * DAY):
        model, out = tmp_path / "m.npz", tmp_path / "p.csv"
        extra = ["--until", until] if until else []
        assert geopush("sendtime", "fit", "--events", events, "--out", model, *extra) == 0
        assert geopush("sendtime", "predict", "--model", model, "--out", out, "--top", 1) == 0
        best[until] = predictions(out)[0]["hour"]
    assert best == {None: "3", T0 + 10 * DAY: "12"}


def test_unknown_time_zone_is_refused(tmp_path: Path, geopush: Run,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    events = evening_opener_csv(tmp_path)
    assert geopush("sendtime", "fit", "--events", events, "--out", tmp_path / "m.npz",
                   "--timezone", "Mars/Olympus") == 2
    assert "--timezone: unknown time zone 'Mars/Olympus'" in capsys.readouterr().err


def test_bad_time_names_line_and_column(tmp_path: Path, geopush: Run,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.csv"
    events.write_text(HEADER + "carol,2026-13-45T10:00:00Z,app_open,,,,\n")
    assert geopush("sendtime", "fit", "--events", events, "--out", tmp_path / "m.npz") == 2
    assert "events.csv:2: ts: not an ISO 8601 time or epoch seconds" in capsys.readouterr().err


def test_a_time_no_calendar_places_is_named_not_a_traceback(
        tmp_path: Path, geopush: Run, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.csv"
    events.write_text(HEADER + "carol,1767225600,app_open,,,,\ncarol,1e30,app_open,,,,\n")
    assert geopush("sendtime", "fit", "--events", events, "--out", tmp_path / "m.npz") == 2
    err = capsys.readouterr().err
    assert "events.csv:3: ts: outside 1970-01-01 - 2199-12-31: '1e30'" in err
    assert "Traceback" not in err
