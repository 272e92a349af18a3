"""A small parser for the common subset of OSM ``opening_hours``.

Supported (the forms venue files carry in practice):

- ``24/7``;
- rules separated by ``;``, each ``[days] times`` where days are ``Mo``…``Su``, ranges
  (``Mo-Fr``, wrapping ``Fr-Mo``) and lists (``Tu, Fr`` / ``Mo-Fr,Su``); no days = every day;
- times ``HH:MM-HH:MM`` separated by ``,``; an end past midnight (``18:00-02:00`` or
  ``20:00-26:00``) continues into the next day; ``24:00`` ends the day;
- ``off`` / ``closed`` for the given days;
- public holidays, ``PH``, as a day of their own (``PH off``, ``Mo-Fr,PH 10:00-16:00``):
  on a public holiday the ``PH`` rule applies instead of the weekday's (the caller says
  whether the day is one, from the venue's country's calendar); with no ``PH`` rule a
  holiday keeps its weekday's hours.

A later rule replaces earlier ones for the days it names, as in OSM
(``Mo-Sa 10:00-20:00; Sa 10:00-16:00`` closes Saturday at 16:00).

Not supported, and so reported as unknown (the caller treats the venue as open and notes
it): school holidays (``SH``), months and dates (``Jun-Aug:``, ``Dec 25``), weeks,
``sunrise``/``sunset``, open ends (``+``), fallback rules (``||``), comments (``"..."``),
and ``:`` selectors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from triggers.decisions.hours import MINUTES_PER_DAY

_DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
_DAY_TOKEN = re.compile(r"^(Mo|Tu|We|Th|Fr|Sa|Su)(?:-(Mo|Tu|We|Th|Fr|Sa|Su))?$")
_HOLIDAY = 7
"""The day index of ``PH`` among the parsed days (Monday = 0 … Sunday = 6, then PH)."""
_SPAN = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """Open spans per weekday (Monday = 0), in minutes after that day's local midnight.

    An end above 1440 spills into the next day.
    """

    spans: tuple[tuple[tuple[int, int], ...], ...]
    holiday: tuple[tuple[int, int], ...] | None = None
    """The ``PH`` rule's spans; ``None`` when the text names no ``PH``."""

    @property
    def mentions_holidays(self) -> bool:
        return self.holiday is not None

    def is_open(self, local: datetime, *, holiday: bool = False) -> bool:
        """Whether the venue is open at local time ``local`` (aware, in the venue's
        zone); ``holiday``: the local day is a public holiday."""
        return self.is_open_at(local.weekday(), local.hour * 60 + local.minute, holiday=holiday)

    def is_open_at(self, today: int, minute: int, *, holiday: bool = False) -> bool:
        """:meth:`is_open` for local weekday ``today`` (Monday = 0) and ``minute`` after
        local midnight."""
        spans = self.holiday if holiday and self.holiday is not None else self.spans[today]
        if any(start <= minute < end for start, end in spans):
            return True
        yesterday = (today - 1) % 7
        return any(start <= minute + MINUTES_PER_DAY < end for start, end in self.spans[yesterday])


ALWAYS_OPEN = OpeningHours(spans=tuple(((0, MINUTES_PER_DAY),) for _ in range(7)))


def parse_opening_hours(text: str) -> OpeningHours | None:
    """Parse the supported subset; ``None`` when the text uses anything else."""
    text = text.strip()
    if text == "24/7":
        return ALWAYS_OPEN
    if not text or any(mark in text for mark in ('"', "||", "+", "SH", "week")):
        return None
    days: list[tuple[tuple[int, int], ...] | None] = [() for _ in range(7)] + [None]
    for rule in (r.strip() for r in text.split(";")):
        if not rule:
            continue
        parsed = _parse_rule(rule)
        if parsed is None:
            return None
        rule_days, spans = parsed
        for day in rule_days:
            days[day] = spans
    weekdays = tuple(d or () for d in days[:_HOLIDAY])
    return OpeningHours(spans=weekdays, holiday=days[_HOLIDAY])


def _parse_rule(rule: str) -> tuple[list[int], tuple[tuple[int, int], ...]] | None:
    # Commas separate both day lists and time lists; a space separates days from times.
    # Normalising ", " to "," first lets "Tu, Fr 10:00-18:00" split on the single space.
    tokens = re.sub(r"\s*,\s*", ",", rule).split()
    if len(tokens) == 1:
        day_part, time_part = None, tokens[0]
    elif len(tokens) == 2:
        day_part, time_part = tokens
    else:
        return None
    if day_part is None and _is_day(time_part.split(",")[0]):
        day_part, time_part = time_part, "00:00-24:00"
    rule_days = _parse_days(day_part) if day_part is not None else list(range(7))
    if rule_days is None:
        return None
    if time_part in ("off", "closed"):
        return rule_days, ()
    spans = _parse_spans(time_part)
    return None if spans is None else (rule_days, spans)


def _parse_days(text: str) -> list[int] | None:
    result: list[int] = []
    for token in text.split(","):
        if token == "PH":
            result.append(_HOLIDAY)
            continue
        match = _DAY_TOKEN.match(token)
        if match is None:
            return None
        first = _DAYS.index(match.group(1))
        last = _DAYS.index(match.group(2)) if match.group(2) else first
        length = (last - first) % 7 + 1
        result += [(first + i) % 7 for i in range(length)]
    return sorted(set(result))


def _is_day(token: str) -> bool:
    return token == "PH" or _DAY_TOKEN.match(token) is not None


def _parse_spans(text: str) -> tuple[tuple[int, int], ...] | None:
    spans: list[tuple[int, int]] = []
    for token in text.split(","):
        match = _SPAN.match(token)
        if match is None:
            return None
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 48:
            return None
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end <= start:
            end += MINUTES_PER_DAY
        spans.append((start, end))
    return tuple(spans)
