"""Behaviour event files: CSV and JSONL rows become events; a bad line names its line
and column."""

from __future__ import annotations

import pytest

from triggers.behaviour.files import EventFileError, read_csv, read_jsonl

HEADER = "user_id,ts,kind,item_id,category,price,event_id,item_name,tags\n"


def test_a_csv_row_becomes_an_event_with_its_item() -> None:
    rows = [HEADER, "mum-1,2026-03-02T10:15:00+08:00,purchase,diapers-xl,diapers,89.9,"
                    "o-1,Diapers XL,baby;bulk\n"]
    ((line, event),) = list(read_csv(rows))
    assert line == 2
    assert (event.user_id, event.ts, event.kind, event.event_id) == (
        "mum-1", 1_772_417_700.0, "purchase", "o-1")
    assert event.item is not None
    assert (event.item.id, event.item.category, event.item.price, event.item.name,
            event.item.tags) == ("diapers-xl", "diapers", 89.9, "Diapers XL", ("baby", "bulk"))


def test_a_csv_header_is_read_whatever_its_case_as_the_learning_commands_read_it() -> None:
    rows = [" User_ID ,TS,Kind,ITEM_ID,Category\n", "u1,1772452800,view,sku-1,baby\n"]
    ((_, event),) = list(read_csv(rows))
    assert event.user_id == "u1" and event.item is not None
    assert event.item.category == "baby"
    with pytest.raises(EventFileError, match="named twice"):
        list(read_csv(["user_id,ts,kind,item_id,category,TS\n", "u1,1,view,a,b,2\n"]))


def test_a_csv_row_without_an_item_is_an_event_without_one() -> None:
    rows = ["user_id,ts,kind,item_id,category\n", "u1,1772452800,app_open,,\n"]
    ((_, event),) = list(read_csv(rows))
    assert event.item is None and event.kind == "app_open"


@pytest.mark.parametrize(("rows", "line", "field"), [
    (["user_id,ts,kind,item_id\n"], 1, "category"),
    (["user_id,ts,kind,item_id,category,colour\n"], 1, "colour"),
    ([HEADER, "u1,1772452800,view,sku-1,toys,-3,,,\n"], 2, "price"),
    ([HEADER, "u1,1772452800,view,,toys,,,,\n"], 2, "item_id"),
    ([HEADER, "u1,yesterday,view,sku-1,toys,,,,\n"], 2, "ts"),
    ([HEADER, "u1,1772452800,view,sku-1,toys,,,,\n", "u2,1772452800,view\n"], 3, None),
    ([HEADER, "u1,1772452800,has space,sku-1,toys,,,,\n"], 2, "kind"),
])
def test_a_bad_csv_line_names_its_line_and_column(rows: list[str], line: int,
                                                  field: str | None) -> None:
    with pytest.raises(EventFileError) as info:
        list(read_csv(rows))
    assert (info.value.line, info.value.field) == (line, field)


def test_jsonl_lines_are_api_objects() -> None:
    lines = ['{"user_id": "u1", "ts": 1772452800, "kind": "view", '
             '"item": {"id": "sku-1", "category": "sports"}}\n', "\n",
             '{"user_id": "u1", "ts": 1772452900, "kind": "purchase", '
             '"item": {"id": "sku-1", "price": 20}}\n']
    assert [(n, e.kind) for n, e in read_jsonl(lines)] == [(1, "view"), (3, "purchase")]


def test_a_bad_jsonl_line_names_its_line_and_field() -> None:
    lines = ['{"user_id": "u1", "ts": 1772452800, "kind": "view"}\n',
             '{"user_id": "u1", "ts": 1772452800, "kind": "view", "item": {"price": 1}}\n']
    with pytest.raises(EventFileError) as info:
        list(read_jsonl(lines))
    assert (info.value.line, info.value.field) == (2, "item.id")
    with pytest.raises(EventFileError, match="line 1: not JSON"):
        list(read_jsonl(["{oops\n"]))



def test_a_jsonl_text_no_database_can_hold_names_its_field() -> None:
    line = ('{"user_id": "u1", "ts": 1772452800, "kind": "view", '
            '"item": {"id": "sku-1", "name": "Bottle \\u0000"}}\n')
    with pytest.raises(EventFileError) as caught:
        list(read_jsonl([line]))
    assert (caught.value.line, caught.value.field) == (1, "item.name")
    assert "NUL character" in caught.value.message
