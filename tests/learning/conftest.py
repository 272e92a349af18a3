"""Small event files for the learning commands' tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from server.cli.__main__ import main

HEADER = "user_id,ts,kind,item_id,category,price,event_id\n"
DAY = 86_400
T0 = 1_767_225_600
"""2026-01-01T00:00:00Z."""


def iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shop_rows(epoch: bool = True) -> list[str]:
    """Four weeks of a small shop: alice buys baby goods, bob runs and reads, carol
    opens the app in the evening; toys appear only in week 5 (after ``T0 + 28 days``)."""
    rows = []
    for day in range(28):
        t = T0 + day * DAY
        rows.append(("alice", t + 10 * 3600, "view", "d1", "mother_baby", "", ""))
        if day % 7 == 0:
            rows.append(("alice", t + 10 * 3600 + 60, "purchase", "d1", "mother_baby", "12.5", ""))
        if day % 2 == 0:
            rows.append(("bob", t + 7 * 3600, "view", "s1", "sport", "", ""))
            rows.append(("bob", t + 7 * 3600 + 30, "click", "b1", "books", "", ""))
        rows.append(("carol", t + 19 * 3600, "app_open", "", "", "", ""))
        rows.append(("carol", t + 19 * 3600 + 60, "view", "f1", "food", "", ""))
        rows.append(("dave", t + 12 * 3600, "wishlist", "f2", "food", "", ""))
    rows.append(("alice", T0 + 29 * DAY, "view", "t1", "toys", "", ""))
    out = []
    for user, ts, kind, item, cat, price, event in rows:
        stamp = str(ts) if epoch else iso(ts)
        out.append(f"{user},{stamp},{kind},{item},{cat},{price},{event}\n")
    return out


@pytest.fixture
def shop_csv(tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    path.write_text(HEADER + "".join(shop_rows()))
    return path


Run = Callable[..., int]


@pytest.fixture
def geopush() -> Run:
    """Runs ``geopush ARGS...`` in-process; returns the exit status."""
    def run(*args: object) -> int:
        return main([str(a) for a in args])
    return run
