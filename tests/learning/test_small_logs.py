"""Both fits take any well-formed log, however small or lopsided (one user, one
category, nothing before ``--until`` in some periods, empty categories, unknown kinds):
they write a model and its predictions, or say in one line why they cannot; never a
traceback. A first user's first export is often this small."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.cli import main
from tests.learning.conftest import DAY, T0, iso

KINDS = ("view", "click", "purchase", "add_to_cart", "app_open", "open", "pv", "wishlist")
CATEGORIES = ("", "sport", "books", "母婴", "toys, games")
USERS = ("alice", "bob", "carol")

rows = st.lists(
    st.tuples(st.sampled_from(USERS), st.integers(0, 40 * DAY), st.sampled_from(KINDS),
              st.sampled_from(CATEGORIES)),
    min_size=1, max_size=40)
SMALL = settings(max_examples=25, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])


def _write(folder: Path, events: list[tuple[str, int, str, str]]) -> Path:
    path = folder / "events.csv"
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["user_id", "ts", "kind", "item_id", "category"])
        for n, (user, offset, kind, category) in enumerate(events):
            out.writerow([user, iso(T0 + offset), kind, f"i{n}", category])
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _fit_then_predict(command: str, events: list[tuple[str, int, str, str]], until_d: int,
                      *, fit: list[str], predict: list[str],
                      needs_category: bool) -> list[dict[str, str]] | None:
    """``geopush COMMAND fit`` until day ``until_d``, then ``predict --top 3``: the
    predictions, or ``None`` when the log held nothing to fit before then (the fit must
    then have failed cleanly or written a model)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        log, model, pred = _write(folder, events), folder / "m.npz", folder / "p.csv"
        until = iso(T0 + until_d * DAY)
        status = main([command, "fit", "--events", str(log), "--out", str(model),
                       "--until", until, *fit])
        if not any(offset < until_d * DAY and (category or not needs_category)
                   for _, offset, _, category in events):
            assert status != 0 or model.exists()
            return None
        assert status == 0
        assert main([command, "predict", "--model", str(model), "--top", "3",
                     "--out", str(pred), *[until if a == "UNTIL" else a for a in predict]]) == 0
        return _rows(pred)


@SMALL
@given(events=rows, until_d=st.integers(1, 41))
def test_interest_fit_and_predict_take_any_small_log(
        events: list[tuple[str, int, str, str]], until_d: int) -> None:
    got = _fit_then_predict("interests", events, until_d, fit=[], predict=["--at", "UNTIL"],
                            needs_category=True)
    if got is None:
        return
    assert got, "every user of the log gets predictions"
    for user in {r["user_id"] for r in got}:
        ranks = [int(r["rank"]) for r in got if r["user_id"] == user]
        assert ranks == list(range(1, len(ranks) + 1))
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in got)
    assert {r["category"] for r in got} <= set(CATEGORIES) - {""}


@SMALL
@given(events=rows, until_d=st.integers(1, 41))
def test_sendtime_fit_and_predict_take_any_small_log(
        events: list[tuple[str, int, str, str]], until_d: int) -> None:
    got = _fit_then_predict("sendtime", events, until_d,
                            fit=["--timezone", "Asia/Shanghai"], predict=[],
                            needs_category=False)
    if got is None:
        return
    assert got, "every user of the log gets hours"
    for user in {r["user_id"] for r in got}:
        hours = [int(r["hour"]) for r in got if r["user_id"] == user]
        assert len(hours) == len(set(hours)) <= 3
        assert all(0 <= h <= 23 for h in hours)
