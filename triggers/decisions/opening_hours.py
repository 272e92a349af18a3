"""A small parser for the common subset of OSM ``opening_hours``.

Supported (the forms venue files carry in practice):

- ``24/7``;
- rules separated by ``;``, each ``[months] [days] times``;
- months ``Jan``…``Dec``, ranges (``Jun-Aug``, wrapping ``Nov-Feb``) and lists
  (``Jan,Mar-Apr``), then a space or ``:`` (OSM's optional separator, ``Jun-Aug: Mo-Fr``):
  the rule applies in those months of every year; no months = all year; months alone
  (``Jun-Aug``) = open all day in them;
- days ``Mo``…``Su``, ranges (``Mo-Fr``, wrapping ``Fr-Mo``, ``Su-Sa`` = the whole week)
  and lists (``Tu, Fr`` / ``Mo-Fr,Su``); no days = every day;
- times ``HH:MM-HH:MM`` separated by ``,``; an end past midnight (``18:00-02:00`` or
  ``20:00-26:00``) continues into the next day; ``24:00`` ends the day;
- ``off`` / ``closed`` for the given months and days;
- public holidays, ``PH``, as a day of their own (``PH off``, ``Mo-Fr,PH 10:00-16:00``,
  ``Dec: PH 12:00-16:00``): on a public holiday the ``PH`` rule applies instead of the
  weekday's (the caller says whether the day is one, from the venue's country's calendar);
  in a month with no ``PH`` rule a holiday keeps its weekday's hours.

A later rule replaces earlier ones for the days it names, each day a (month, weekday) or
(month, ``PH``) pair, as in OSM: ``Mo-Sa 10:00-20:00; Sa 10:00-16:00`` closes Saturday at
16:00, and ``Mo-Su 10:00-20:00; Jul: Sa 10:00-14:00`` only July's Saturdays.

A span past midnight belongs to the day it starts on, whose month's rules govern it: with
``Jun-Aug: 18:00-03:00; Sep-May: 18:00-24:00`` the night of 31 August is open until 03:00
on 1 September.

Not supported, and so reported as unknown (the caller treats the venue as open and notes
it): dates and date ranges (``Dec 25``, ``Dec 24-26``, ``Jun 15-Aug 31``), years, weeks,
school holidays (``SH``), ``sunrise``/``sunset``, open ends (``+``), fallback rules
(``||``), comments (``"..."``), and a ``:`` anywhere but after months (``Mo-Fr: ...``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

from triggers.decisions.hours import MINUTES_PER_DAY

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH = "|".join(_MONTHS)
_MONTH_TOKEN = re.compile(rf"^({_MONTH})(?:-({_MONTH}))?$")
_DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
_DAY_TOKEN = re.compile(r"^(Mo|Tu|We|Th|Fr|Sa|Su)(?:-(Mo|Tu|We|Th|Fr|Sa|Su))?$")
_HOLIDAY = 7
"""The day index of ``PH`` among the parsed days (Monday = 0 … Sunday = 6, then PH)."""
_SPAN = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")

Spans: TypeAlias = tuple[tuple[int, int], ...]
"""One day's open spans, (start, end) in minutes after its local midnight; an end above
1440 spills into the next day."""
Week: TypeAlias = tuple[Spans, ...]
"""Seven days' spans, Monday first."""

_ALL_DAY: Spans = ((0, MINUTES_PER_DAY),)


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """Open spans per month and weekday, in minutes after that day's local midnight."""

    months: tuple[Week, ...]
    """Twelve weeks, January first. Months under the same rules share one ``Week`` tuple:
    most texts name no months, and a parse is cached per text."""
    holidays: tuple[Spans | None, ...] | None = None
    """The ``PH`` rules' spans per month, January first; ``None`` for a month no ``PH``
    rule covers (its holidays keep their weekday's hours), and in place of the tuple when
    the text names no ``PH``."""

    @property
    def mentions_holidays(self) -> bool:
        return self.holidays is not None

    def is_open(self, local: datetime, *, holiday: bool = False) -> bool:
        """Whether the venue is open at local time ``local`` (aware, in the venue's
        zone); ``holiday``: the local day is a public holiday."""
        month = local.month
        return self.is_open_at(
            local.weekday(), local.hour * 60 + local.minute, month=month, holiday=holiday,
            yesterday_month=month if local.day > 1 else (month - 2) % 12 + 1,
        )

    def is_open_at(
        self, today: int, minute: int, *, month: int, holiday: bool = False,
        yesterday_month: int | None = None,
    ) -> bool:
        """:meth:`is_open` for local weekday ``today`` (Monday = 0), ``minute`` after local
        midnight and local ``month`` (1-12).

        ``yesterday_month`` (1-12) is the previous day's month, whose rules govern a span
        spilling past midnight into today; it differs from ``month`` only on the 1st, and
        defaults to ``month``: a caller that does not know the day of the month gets the
        new month's rules for the night spilling into the 1st. Builds nothing, so a caller
        may ask every minute.
        """
        before = month if yesterday_month is None else yesterday_month
        if not (1 <= month <= 12 and 1 <= before <= 12):
            # Month 0 would silently read December's rules.
            raise ValueError(f"month {month} / yesterday_month {yesterday_month} not 1-12")
        spans = self.months[month - 1][today]
        if holiday and self.holidays is not None:
            holiday_spans = self.holidays[month - 1]
            if holiday_spans is not None:
                spans = holiday_spans
        for start, end in spans:
            if start <= minute < end:
                return True
        since_yesterday = minute + MINUTES_PER_DAY
        # Loops, not any(...): a generator would be built on every call.
        for start, end in self.months[before - 1][(today - 1) % 7]:
            if start <= since_yesterday < end:
                return True
        return False


ALWAYS_OPEN = OpeningHours(months=((_ALL_DAY,) * 7,) * 12)


def parse_opening_hours(text: str) -> OpeningHours | None:
    """Parse the supported subset; ``None`` when the text uses anything else."""
    text = text.strip()
    if text == "24/7":
        return ALWAYS_OPEN
    if not text or any(mark in text for mark in ('"', "||", "+", "SH", "week")):
        return None
    # One cell per (month, day); a rule overwrites the cells it names.
    weeks: list[list[Spans]] = [[() for _ in range(7)] for _ in range(12)]
    holidays: list[Spans | None] = [None] * 12
    for rule in (r.strip() for r in text.split(";")):
        if not rule:
            continue
        parsed = _parse_rule(rule)
        if parsed is None:
            return None
        rule_months, rule_days, spans = parsed
        for month in rule_months:
            for day in rule_days:
                if day == _HOLIDAY:
                    holidays[month] = spans
                else:
                    weeks[month][day] = spans
    shared: dict[Week, Week] = {}
    return OpeningHours(
        months=tuple(shared.setdefault(week, week) for week in map(tuple, weeks)),
        holidays=None if all(h is None for h in holidays) else tuple(holidays),
    )


def _parse_rule(rule: str) -> tuple[Sequence[int], list[int], Spans] | None:
    # Commas separate month, day and time lists; spaces separate months, days and times.
    # Normalising ", " to "," first lets "Tu, Fr 10:00-18:00" split on single spaces.
    tokens = re.sub(r"\s*,\s*", ",", rule).split()
    rule_months: Sequence[int] = range(12)
    # Only months may take OSM's ':' separator, which may touch the days ("Jun-Aug:Su-Sa");
    # the first ':' of a time ("10:00-18:00") leaves "10", no month.
    head, _, rest = tokens[0].partition(":")
    months = _parse_months(head)
    if months is not None:
        rule_months, tokens = months, [rest, *tokens[1:]] if rest else tokens[1:]
        if not tokens:
            return rule_months, list(range(7)), _ALL_DAY
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
        return rule_months, rule_days, ()
    spans = _parse_spans(time_part)
    return None if spans is None else (rule_months, rule_days, spans)


def _parse_months(text: str) -> list[int] | None:
    """``Jan,Mar-Apr`` → month indices (January = 0); ``None`` when not months."""
    result: list[int] = []
    for token in text.split(","):
        match = _MONTH_TOKEN.match(token)
        if match is None:
            return None
        result += _range(match, _MONTHS)
    return sorted(set(result))


def _parse_days(text: str) -> list[int] | None:
    result: list[int] = []
    for token in text.split(","):
        if token == "PH":
            result.append(_HOLIDAY)
            continue
        match = _DAY_TOKEN.match(token)
        if match is None:
            return None
        result += _range(match, _DAYS)
    return sorted(set(result))


def _range(match: re.Match[str], names: tuple[str, ...]) -> list[int]:
    """Indices in ``names`` of a matched ``first[-last]``, wrapping past the end of the
    cycle (``Fr-Mo``, ``Nov-Feb``)."""
    first = names.index(match.group(1))
    last = names.index(match.group(2) or match.group(1))
    return [(first + i) % len(names) for i in range((last - first) % len(names) + 1)]


def _is_day(token: str) -> bool:
    return token == "PH" or _DAY_TOKEN.match(token) is not None


def _parse_spans(text: str) -> Spans | None:
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
