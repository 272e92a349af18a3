"""Behaviour events from files: CSV (``user_id,ts,kind,item_id,category`` and optional
``price,event_id,item_name,tags``, tags ``;``-separated) or JSONL (one API object a
line). Pure: reads lines it is given, never opens a file.

A bad line raises :class:`EventFileError` naming the line (1-based, the CSV header is
line 1) and the column (CSV) or field path (JSONL), e.g. ``line 7: price: must be >= 0``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import ValidationError

from triggers.behaviour.events import BehaviourEvent
from venues.values import first_unstorable_text, json_int

REQUIRED_COLUMNS = ("user_id", "ts", "kind", "item_id", "category")
OPTIONAL_COLUMNS = ("price", "event_id", "item_name", "tags")
_ITEM_COLUMNS = {"item_id": "id", "category": "category", "price": "price",
                 "item_name": "name", "tags": "tags"}
"""CSV column → the item field it fills (a validation error names the column)."""


class EventFileError(ValueError):
    """A line of an event file that is no event."""

    def __init__(self, line: int, field: str | None, message: str) -> None:
        super().__init__(f"line {line}: {field + ': ' if field else ''}{message}")
        self.line = line
        self.field = field
        self.message = message


def read_csv(lines: Iterable[str]) -> Iterator[tuple[int, BehaviourEvent]]:
    """``(line number, event)`` for every data row of a CSV (header first)."""
    reader = csv.reader(lines)
    try:
        header = [h.strip().lower() for h in next(reader)]  # as the learning commands
    except StopIteration:
        raise EventFileError(1, None, "empty file: expected a header "
                             + ",".join(REQUIRED_COLUMNS)) from None
    except csv.Error as exc:
        raise EventFileError(1, None, f"not a CSV row: {exc}") from exc
    unknown = [h for h in header if h not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise EventFileError(1, unknown[0], "unknown column (expected "
                             + ", ".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS) + ")")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise EventFileError(1, missing[0], "missing column")
    twice = [c for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if header.count(c) > 1]
    if twice:  # which of the two would be read is no answer
        raise EventFileError(1, twice[0], "named twice in the header")
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a cell over the csv module's 128 KiB, a stray NUL
            raise EventFileError(reader.line_num, None, f"not a CSV row: {exc}") from exc
        line = reader.line_num
        if not record or record == [""]:
            continue
        if len(record) != len(header):
            raise EventFileError(line, None,
                                 f"{len(record)} fields, the header has {len(header)}")
        nul = next((h for h, cell in zip(header, record, strict=True) if "\x00" in cell), None)
        if nul is not None:
            raise EventFileError(line, nul, NUL_SAID)
        yield line, _from_row(dict(zip(header, record, strict=True)), line)


def _from_row(row: dict[str, str], line: int) -> BehaviourEvent:
    data: dict[str, Any] = {"user_id": row["user_id"], "ts": _number_or_text(row["ts"]),
                            "kind": row["kind"]}
    if row.get("event_id"):
        data["event_id"] = row["event_id"]
    item: dict[str, Any] = {}
    for column, name in _ITEM_COLUMNS.items():
        value = row.get(column, "")
        if value == "":
            continue
        if column == "tags":
            item[name] = [t.strip() for t in value.split(";") if t.strip()]
        elif column == "price":
            item[name] = _number_or_text(value)
        else:
            item[name] = value
    if item and "id" not in item:
        raise EventFileError(line, "item_id", "needed when category, price, item_name "
                                              "or tags is given")
    if item:
        data["item"] = item
    try:
        return BehaviourEvent.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        loc = [str(p) for p in error["loc"]]
        field = _column_of(loc)
        raise EventFileError(line, field, str(error["msg"])) from exc


def _column_of(loc: list[str]) -> str:
    if loc[:1] == ["item"] and len(loc) > 1:
        by_field = {v: k for k, v in _ITEM_COLUMNS.items()}
        return by_field.get(loc[1], ".".join(loc))
    return ".".join(loc)


def _number_or_text(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value.strip()


def read_jsonl(lines: Iterable[str]) -> Iterator[tuple[int, BehaviourEvent]]:
    """``(line number, event)`` for every non-blank line of a JSONL file."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            data = json.loads(text, parse_int=json_int)
        except json.JSONDecodeError as exc:
            raise EventFileError(number, None, f"not JSON: {exc.msg} (column {exc.colno})") \
                from exc
        try:
            event = BehaviourEvent.model_validate(data)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            field = ".".join(str(p) for p in error["loc"]) or None
            raise EventFileError(number, field, str(error["msg"])) from exc
        # JSON writes a NUL or a lone surrogate only as a \u escape: no walk without one.
        where = first_unstorable_text(data) if "\\u" in text else None
        if where is not None:
            raise EventFileError(number, _dotted(where) or None, NUL_SAID)
        yield number, event


NUL_SAID = "a text holds a NUL character or a lone surrogate, which cannot be stored"
"""What the service answers for an event with such a text (no database text holds one):
refused in the file, so that a bad line stops the import before anything is sent."""


def _dotted(path: tuple[int | str, ...]) -> str:
    """A JSON path as the file's messages write it: ``item.name``, ``item.tags[1]``."""
    return "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in path) \
        .lstrip(".")


def read_events(lines: Iterable[str], *, jsonl: bool) -> Iterator[tuple[int, BehaviourEvent]]:
    """The events of a CSV or (``jsonl``) JSONL file's lines."""
    return read_jsonl(lines) if jsonl else read_csv(lines)
