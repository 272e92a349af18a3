"""Logs shaped like the public e-commerce ones: other kind names (``pv``, ``cart``,
``buy``), a span of days rather than weeks, and no app opens. The learning commands read
them as they read the service's own export."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from server.cli.learning_common import first_pass
from tests.learning.conftest import DAY, HEADER, T0, Run
from tests.learning.missions import START_T, MissionWorld, write_csv
from triggers.learning.coding import (
    ADD_TO_CART,
    CUSTOM_KIND,
    PURCHASE,
    VIEW,
    kind_codes,
    window_period_d,
)
from triggers.learning.sendtime import SendTimeAccumulator, SendTimeParams


def test_public_log_kind_names_read_as_the_api_kinds() -> None:
    codes = kind_codes(["pv", "PV", "cart", "addtocart", "buy", "transaction", "View",
                        "fav", "remove_from_cart"])
    assert codes.tolist() == [VIEW, VIEW, ADD_TO_CART, ADD_TO_CART, PURCHASE, PURCHASE, VIEW,
                              CUSTOM_KIND, CUSTOM_KIND]


@pytest.mark.parametrize(("span_d", "period_d"), [
    (56.0, 7.0),  # eight weeks: the weekly period
    (22.0, 7.0),  # three weeks and a day: still weekly
    (21.5, 6.0),
    (8.0, 2.0),  # a nine-day log fitted until its last day
    (3.0, 1.0),
    (0.5, 1.0),  # too short for any: one day (the fit then says it cannot train)
])
def test_period_shrinks_to_whole_days_that_fit_three_times(span_d: float,
                                                           period_d: float) -> None:
    assert window_period_d(T0, T0 + span_d * DAY) == period_d


def test_nine_day_log_trains_a_ranker_on_two_day_periods(tmp_path: Path,
                                                         geopush: Run,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    world = MissionWorld(users=1_500)
    events = tmp_path / "events.csv"
    write_csv(world, str(events))
    until = START_T + 8 * DAY  # the last day is the one to predict
    assert geopush("interests", "fit", "--events", events, "--out", tmp_path / "m.npz",
                   "--until", until) == 0
    said = capsys.readouterr().out
    assert "period 2 days" in said
    assert "held-out recall@5: model" in said  # trained and judged, not too little history
    out = tmp_path / "p.csv"
    assert geopush("interests", "predict", "--model", tmp_path / "m.npz", "--at",
                   until, "--top", "5", "--out", out) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["category"][0] for r in rows} == {"c"}
    assert len({r["user_id"] for r in rows}) > 1_000


def test_a_log_without_app_opens_learns_hours_from_every_kind_once_an_hour(
        tmp_path: Path, geopush: Run, capsys: pytest.CaptureFixture[str]) -> None:
    """dora views twelve pages at 20:00 UTC each evening and buys once at 09:00; the
    hours she was active count once each, whatever the number of pages."""
    rows = []
    for day in range(10):
        t = T0 + day * DAY + 20 * 3600
        rows += [f"dora,{t + 60 * i},pv,i{i},shoes,,\n" for i in range(12)]
    rows.append(f"dora,{T0 + 9 * 3600},buy,i1,shoes,30,\n")
    events = tmp_path / "events.csv"
    events.write_text(HEADER + "".join(rows))
    model = tmp_path / "s.npz"
    assert geopush("sendtime", "fit", "--events", events, "--out", model) == 0
    assert "every kind counts" in capsys.readouterr().out
    from server.cli.sendtime import load  # noqa: PLC0415 - after the command ran

    fitted, users = load(str(model))
    counts = fitted.hour_counts[users.index("dora")]
    assert counts[20] == 10
    assert counts[9] == 1
    assert counts.sum() == 11


def test_an_hour_split_across_chunks_counts_once() -> None:
    acc = SendTimeAccumulator(T0 + 30 * DAY, SendTimeParams(), kinds=None)
    user = np.zeros(3, np.int64)
    hour = np.full(3, 20, np.int64)
    weekday = np.zeros(3, np.int64)
    kind = kind_codes(["pv"] * 3)
    t = T0 + 20 * 3600.0
    acc.add(user, hour, weekday, kind, np.array([t, t + 60, t + 120]))
    acc.add(user[:2], np.array([20, 21]), weekday[:2], kind[:2], np.array([t + 180, t + 3600]))
    counted = acc.early[0] + acc.late[0]
    assert counted[20] == 1  # its four events in two chunks
    assert counted[21] == 1
    assert counted.sum() == 2


def test_a_few_stray_timestamps_do_not_stretch_the_window(tmp_path: Path) -> None:
    """Nine days of events and two stamped in 1970: the window is the nine days."""
    rows = [f"u{i % 50},{T0 + (i % 9) * DAY + 3600 * (i % 24)},pv,i1,shoes,,\n"
            for i in range(3_000)]
    rows += ["u1,5,pv,i1,shoes,,\n", "u2,86400,buy,i1,shoes,,\n"]
    events = tmp_path / "events.csv"
    events.write_text(HEADER + "".join(rows))
    seen = first_pass(str(events), str(T0 + 8 * DAY))
    assert seen.first_t == T0
    assert window_period_d(seen.first_t, seen.until_t) == 2.0


@pytest.mark.parametrize("stamp", [
    "1767225600",  # epoch seconds
    "1767225600000",  # epoch milliseconds, as some exports write them
    "2026-01-01T00:00:00Z",
    "2026-01-01 08:00:00+08:00",
    "2026-01-01 00:00:00 UTC",  # a warehouse export's way
])
def test_times_of_other_exports_read_as_the_same_instant(stamp: str, tmp_path: Path,
                                                         geopush: Run) -> None:
    rows = [f"ann,{stamp},pv,i1,shoes,,\n", f"bob,{T0 + DAY},buy,i2,toys,,\n"]
    events = tmp_path / "events.csv"
    events.write_text(HEADER + "".join(rows))
    assert geopush("interests", "fit", "--events", events, "--out", tmp_path / "m.npz",
                   "--until", f"{T0 + 2 * DAY}000") == 0
    seen = first_pass(str(events), str(T0 + 2 * DAY))
    assert seen.first_t == T0
