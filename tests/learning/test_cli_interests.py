"""``geopush interests fit|predict``: the command-line contract, end to end."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from tests.learning.conftest import DAY, HEADER, T0, Run, shop_rows
from tests.learning.synthetic import START_T, World, events

UNTIL = T0 + 28 * DAY


def predictions(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def model(tmp_path: Path, shop_csv: Path, geopush: Run) -> Path:
    out = tmp_path / "interests.npz"
    assert geopush("interests", "fit", "--events", shop_csv, "--out", out,
                   "--until", UNTIL) == 0
    return out


def test_predict_writes_each_users_categories_ranked_from_one(
        tmp_path: Path, model: Path, geopush: Run) -> None:
    out = tmp_path / "pred.csv"
    assert geopush("interests", "predict", "--model", model, "--at", UNTIL,
                   "--out", out) == 0
    assert out.read_text().splitlines()[0] == "user_id,category,score,rank"
    rows = predictions(out)
    alice = [r for r in rows if r["user_id"] == "alice"]
    assert [int(r["rank"]) for r in alice] == list(range(1, len(alice) + 1))
    assert alice[0]["category"] == "mother_baby"
    scores = [float(r["score"]) for r in alice]
    assert scores == sorted(scores, reverse=True)
    assert {r["user_id"] for r in rows} == {"alice", "bob", "carol", "dave"}
    assert {r["category"] for r in rows if r["user_id"] == "bob"} >= {"sport", "books"}


def test_fit_ignores_events_at_or_after_until(tmp_path: Path, model: Path,
                                              geopush: Run) -> None:
    out = tmp_path / "pred.csv"
    assert geopush("interests", "predict", "--model", model, "--at", UNTIL,
                   "--out", out) == 0
    assert "toys" not in {r["category"] for r in predictions(out)}


def test_top_limits_the_categories_per_user(tmp_path: Path, model: Path,
                                            geopush: Run) -> None:
    out = tmp_path / "pred.csv"
    assert geopush("interests", "predict", "--model", model, "--at", UNTIL, "--top", 2,
                   "--out", out) == 0
    rows = predictions(out)
    assert len(rows) == 4 * 2
    assert {r["rank"] for r in rows} == {"1", "2"}


def test_users_without_history_get_the_popular_categories(
        tmp_path: Path, model: Path, geopush: Run) -> None:
    users = tmp_path / "users.txt"
    users.write_text("zoe\nbob\n\nzoe\n")
    out = tmp_path / "pred.csv"
    assert geopush("interests", "predict", "--model", model, "--at", UNTIL, "--users", users,
                   "--top", 3, "--out", out) == 0
    rows = predictions(out)
    assert [r["user_id"] for r in rows] == ["zoe"] * 3 + ["bob"] * 3
    # food has the most events (carol and dave every day)
    assert rows[0]["category"] == "food"


def test_iso_and_epoch_times_give_the_same_model(tmp_path: Path, geopush: Run) -> None:
    outputs = []
    for epoch in (True, False):
        events = tmp_path / f"events-{epoch}.csv"
        events.write_text(HEADER + "".join(shop_rows(epoch=epoch)))
        model, out = tmp_path / f"m-{epoch}.npz", tmp_path / f"p-{epoch}.csv"
        assert geopush("interests", "fit", "--events", events, "--out", model,
                       "--until", "2026-01-29T00:00:00Z") == 0
        assert geopush("interests", "predict", "--model", model,
                       "--at", "2026-01-29T08:00:00+08:00", "--out", out) == 0
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize(("row", "line", "column"), [
    ("alice,yesterday,view,d1,mother_baby,,", 3, "ts"),
    ("alice,-5,view,d1,mother_baby,,", 3, "ts"),  # before 1970: a broken export
    ("alice,1e30,view,d1,mother_baby,,", 3, "ts"),  # no calendar places it
    ("alice,30000000000,view,d1,mother_baby,,", 3, "ts"),  # the year 2920
    (",1767225600,view,d1,mother_baby,,", 3, "user_id"),
    ("alice,1767225600,,d1,mother_baby,,", 3, "kind"),
    ("alice,1767225600,purchase,d1,mother_baby,-3,", 3, "price"),
])
def test_bad_row_is_named_by_line_and_column(  # noqa: PLR0917 - one parametrize row
        tmp_path: Path, geopush: Run,
                                             capsys: pytest.CaptureFixture[str], row: str,
                                             line: int, column: str) -> None:
    events = tmp_path / "events.csv"
    events.write_text(HEADER + "bob,1767225600,view,s1,sport,,\n" + row + "\n")
    status = geopush("interests", "fit", "--events", events, "--out", tmp_path / "m.npz")
    err = capsys.readouterr().err
    assert status == 2
    assert f"events.csv:{line}: {column}:" in err
    assert "Traceback" not in err


def test_row_of_the_wrong_width_is_named(tmp_path: Path, geopush: Run,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.csv"
    events.write_text(HEADER + "bob,1767225600,view,s1,sport,,\nbob,1767225600,view\n")
    assert geopush("interests", "fit", "--events", events, "--out", tmp_path / "m.npz") == 2
    assert "events.csv:3: 3 cells where the header has 7" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "said"), [
    ("user_id,ts,kind,item_id\nbob,1767225600,view,s1\n", "category: missing column"),
    ("user_id,TS,ts,kind,item_id,category\nbob,1,1767225600,view,s1,sport\n",
     "ts: named twice in the header"),
])
def test_a_header_without_a_column_or_with_one_twice_is_named_on_line_one(
        tmp_path: Path, geopush: Run, capsys: pytest.CaptureFixture[str], text: str,
        said: str) -> None:
    events = tmp_path / "events.csv"
    events.write_text(text)
    assert geopush("interests", "fit", "--events", events, "--out", tmp_path / "m.npz") == 2
    assert f"events.csv:1: {said}" in capsys.readouterr().err


def test_a_sendtime_model_is_not_an_interest_model(tmp_path: Path, shop_csv: Path,
                                                   geopush: Run,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "sendtime.npz"
    assert geopush("sendtime", "fit", "--events", shop_csv, "--out", model) == 0
    assert geopush("interests", "predict", "--model", model, "--at", UNTIL,
                   "--out", tmp_path / "p.csv") == 2
    assert "not a geopush interests model" in capsys.readouterr().err


def test_unknown_kinds_are_kept_as_custom(tmp_path: Path, model: Path, geopush: Run) -> None:
    out = tmp_path / "pred.csv"
    assert geopush("interests", "predict", "--model", model, "--at", UNTIL,
                   "--out", out) == 0
    dave = [r for r in predictions(out) if r["user_id"] == "dave"]
    assert dave[0]["category"] == "food"  # dave's only events are "wishlist" on food


def test_explain_adds_the_features_behind_each_score_after_the_contract_columns(
        tmp_path: Path, geopush: Run) -> None:
    world = World(users=1500, days=42, seed=11, user_block=1500)
    events_csv = tmp_path / "events.csv"
    pd.concat(list(events(world)), ignore_index=True).to_csv(events_csv, index=False)
    model, out = tmp_path / "interests.npz", tmp_path / "pred.csv"
    until = START_T + 35 * DAY
    assert geopush("interests", "fit", "--events", events_csv, "--out", model,
                   "--until", until) == 0
    users = tmp_path / "users.txt"
    users.write_text("u0\nstranger\n")
    assert geopush("interests", "predict", "--model", model, "--at", until, "--top", 3,
                   "--users", users, "--explain", "--out", out) == 0
    assert out.read_text().splitlines()[0] == "user_id,category,score,rank,features"
    rows = predictions(out)
    known = [r["features"] for r in rows if r["user_id"] == "u0"]
    assert len(known) == 3
    assert all(1 <= len(said.split(", ")) <= 3 for said in known)
    assert all(part.rsplit(" ", 1)[1][0] in "+-" for said in known for part in said.split(", "))
    assert {r["features"] for r in rows if r["user_id"] == "stranger"} == {
        "popular with all users (no history of the user)"}


def test_a_spreadsheets_header_is_read_whatever_its_case(tmp_path: Path, geopush: Run) -> None:
    events = tmp_path / "events.csv"
    # As a spreadsheet exports it: a byte-order mark, capitals, spaces, CRLF lines.
    events.write_bytes(("\ufeff User_ID,TS,Kind,Item_ID,Category \r\n"
                        "alice,1767225600,view,d1,mother_baby\r\n"
                        "bob,1767225600,view,s1,sport\r\n").encode())
    out, pred = tmp_path / "m.npz", tmp_path / "p.csv"
    assert geopush("interests", "fit", "--events", events, "--out", out) == 0
    assert geopush("interests", "predict", "--model", out, "--at", T0 + DAY, "--top", 1,
                   "--out", pred) == 0
    assert {(r["user_id"], r["category"]) for r in predictions(pred)} == {
        ("alice", "mother_baby"), ("bob", "sport")}
