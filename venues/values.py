"""Helpers for untrusted JSON-like values: type tests and short renderings for messages."""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NonFinite:
    """Stands in for a ``NaN`` / ``Infinity`` / ``-Infinity`` literal found in a JSON file.

    Python's json module accepts these literals, but they are not JSON (RFC 8259) and
    no coordinate or radius may be non-finite; parsing keeps a marker instead of a float
    so that validation can name the exact field that held one.
    """

    literal: str


def json_int(text: str) -> int | float:
    """A JSON integer, for ``json.loads(parse_int=...)``. One beyond a float's range
    (over 308 digits) is read as the infinity it overflows to, so that validation names
    its field as it names ``1e400``; Python's ``int`` would refuse one over 4,300
    digits, and ``float()`` of a longer one raises ``OverflowError``."""
    return int(text) if len(text) <= _FLOAT_DIGITS else float(text)


_FLOAT_DIGITS = 308
"""No integer of this many digits (a sign counted) exceeds ``sys.float_info.max``."""


def is_non_finite(value: object) -> bool:
    """True for NaN, an infinity, a :class:`NonFinite` marker, or an integer beyond a
    float's range (YAML reads ``1`` and 400 zeros as one; as a float it is infinite)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) > _FLOAT_MAX
    return isinstance(value, NonFinite) or (isinstance(value, float) and not math.isfinite(value))


_FLOAT_MAX = int(sys.float_info.max)


def first_non_finite(value: object) -> tuple[int | str, ...] | None:
    """The path (keys and list indices) to the first non-finite number in a JSON-like
    ``value``, in document order; ``None`` when every number is finite.

    ``json.loads`` reads ``1e400`` as an infinity and YAML reads ``.inf`` / ``.nan``;
    no JSON writer can put them back (``Infinity`` is not JSON), and PostgreSQL's
    ``jsonb`` refuses them, so input holding one is refused where it is read, naming
    the field. Iterative: a document nested a thousand deep does not exhaust the stack.
    """
    stack: list[tuple[tuple[int | str, ...], object]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if is_non_finite(item):
            return path
        if isinstance(item, dict):
            children: list[tuple[tuple[int | str, ...], object]] = [
                ((*path, key), child) for key, child in item.items()]
        elif isinstance(item, list | tuple):
            children = [((*path, i), child) for i, child in enumerate(item)]
        else:
            continue
        stack.extend(reversed(children))
    return None


def first_unstorable_text(value: object) -> tuple[int | str, ...] | None:
    """The path to the first text, key or value, of a JSON-like ``value`` that no
    database text can hold (a NUL character, or a lone UTF-16 surrogate: JSON may escape
    one alone, and it has no UTF-8 form), in document order; ``None`` when there is none.
    A key is named by its own path."""
    stack: list[tuple[tuple[int | str, ...], object]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item or _LONE_SURROGATE(item):
                return path
        elif isinstance(item, dict):
            children: list[tuple[tuple[int | str, ...], object]] = []
            for key, child in item.items():
                children += [((*path, key), key), ((*path, key), child)]
            stack.extend(reversed(children))
        elif isinstance(item, list | tuple):
            stack.extend(reversed([((*path, i), child) for i, child in enumerate(item)]))
    return None


_LONE_SURROGATE = re.compile("[\ud800-\udfff]").search
"""A Python str holds a surrogate only when JSON escaped one alone (pairs decode to one
character)."""


def is_number(value: object) -> bool:
    """True for an int or float that is not a bool (``True`` is an int in Python)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def type_name(value: object) -> str:
    """The JSON name of a value's type, for messages (``string``, ``array``, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, NonFinite):
        return value.literal
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def show(value: object, limit: int = 40) -> str:
    """``value`` as a short literal for a message; long values are cut with ``...``."""
    text = value.literal if isinstance(value, NonFinite) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
