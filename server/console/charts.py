"""Figures of the console drawn on the server: the week of opening hours, CTR per
variant with its interval, deliveries by outcome (as data for inline SVG in the
templates: positions in percent, no styles, so the page needs no script and the
Content-Security-Policy no ``unsafe-inline``), and the results as CSV. Pure.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of one day: from ``x`` to ``x + width`` percent of 24 hours."""

    x: float
    width: float
    state: str
    label: str


@dataclass(slots=True)
class Day:
    day: date
    segments: list[Segment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def week_view(spans: Sequence[Mapping[str, Any]]) -> list[Day]:
    """The hours report's spans (local times with offsets) cut into days, each a row
    of open / closed / unknown segments, with the comments (holidays) of each day."""
    days: dict[date, Day] = {}
    for span in spans:
        start = datetime.fromisoformat(span["start"])
        end = datetime.fromisoformat(span["end"])
        cursor = start
        while cursor < end:
            midnight = datetime.combine(cursor.date() + timedelta(days=1),
                                        datetime.min.time(), tzinfo=cursor.tzinfo)
            stop = min(end, midnight)
            row = days.setdefault(cursor.date(), Day(cursor.date()))
            x = (cursor - cursor.replace(hour=0, minute=0, second=0)).total_seconds()
            width = (stop - cursor).total_seconds()
            label = f"{cursor:%H:%M}–{stop:%H:%M}" if stop < midnight else \
                f"{cursor:%H:%M}–24:00"
            row.segments.append(Segment(round(100 * x / DAY_S, 3),
                                        round(100 * width / DAY_S, 3), span["state"], label))
            comment = span.get("comment")
            if comment and comment not in row.notes:
                row.notes.append(str(comment))
            cursor = stop
    return [days[d] for d in sorted(days)]


def when(epoch_s: float) -> str:
    """An epoch time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a horizontal chart: its label, value text and extent in percent;
    ``low``/``high`` the interval's ends in percent (None without one)."""

    label: str
    value: str
    width: float
    low: float | None = None
    high: float | None = None


def ctr_chart(variants: Sequence[Mapping[str, Any]]) -> list[Bar]:
    """CTR per variant with its Wilson interval, on a scale of the largest upper bound."""
    top = max([v["ctr"]["high"] or 0.0 for v in variants] + [0.01])
    bars = []
    for v in variants:
        ctr = v["ctr"]
        rate = ctr["rate"]
        text = "–" if rate is None else (f"{100 * rate:.1f}% ({ctr['successes']}/"
                                         f"{ctr['trials']})")
        bars.append(Bar(v["variant_id"], text, _pct(rate or 0.0, top),
                        None if ctr["low"] is None else _pct(ctr["low"], top),
                        None if ctr["high"] is None else _pct(ctr["high"], top)))
    return bars


def bar_chart(counts: Mapping[str, int]) -> list[Bar]:
    """Counts as bars on a scale of the largest."""
    top = max([*counts.values(), 1])
    return [Bar(name, str(n), _pct(float(n), float(top))) for name, n in counts.items()]


def _pct(value: float, top: float) -> float:
    return round(100.0 * value / top, 2) if top > 0 else 0.0


def stats_csv(stats: Mapping[str, Any]) -> str:
    """One row per variant: sends, clicks, CTR with its interval, conversion and lift."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["campaign_id", "variant_id", "deliveries", "sends", "clicks", "ctr",
                     "ctr_low", "ctr_high", "converted", "treated_users", "lift",
                     "lift_p_value"])
    for v in stats["variants"]:
        ctr, conv, lift = v["ctr"], v["conversion"], v["lift"]
        writer.writerow([stats["campaign_id"], v["variant_id"], v["deliveries"], v["sends"],
                         ctr["successes"], _num(ctr["rate"]), _num(ctr["low"]),
                         _num(ctr["high"]), conv["successes"], conv["trials"],
                         _num(lift["lift"]), _num(lift["p_value"])])
    return out.getvalue()


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


MAX_COLUMNS = 400
MIN_COLUMNS = 12


def buckets_needed(rows: Sequence[tuple[float, str, str, int]], bucket_s: float) -> int:
    """How many buckets of ``bucket_s`` the rows span."""
    return 0 if not rows else round((rows[-1][0] - rows[0][0]) / bucket_s) + 1


@dataclass(frozen=True, slots=True)
class Stack:
    """One column of a stacked chart over time: where it stands (percent of the
    width), its time label, and its segments ``(name, y, height, count)`` in percent of
    the height, bottom first."""

    x: float
    width: float
    label: str
    segments: tuple[tuple[str, float, float, int], ...]


def stacked_over_time(rows: Sequence[tuple[float, str, str, int]], *, by: str,
                      bucket_s: float) -> tuple[list[Stack], list[str]]:
    """Deliveries per time bucket stacked by ``by`` (``channel`` or ``status``) from
    ``delivery_timeline`` rows, on a scale of the busiest bucket, every bucket between
    the first and the last drawn (empty ones too); and the names stacked, in order.
    At most :data:`MAX_COLUMNS` buckets (the caller picks a coarser bucket past it)."""
    if not rows:
        return [], []
    pick = 1 if by == "channel" else 2
    counts: dict[float, dict[str, int]] = {}
    for row in rows:
        per = counts.setdefault(row[0], {})
        per[str(row[pick])] = per.get(str(row[pick]), 0) + row[3]
    names = sorted({name for per in counts.values() for name in per})
    last = max(counts)
    # At least MIN_COLUMNS buckets, ending with the last: one busy hour is a column,
    # not the whole width.
    first = min(*counts, last - (MIN_COLUMNS - 1) * bucket_s)
    n = min(round((last - first) / bucket_s) + 1, MAX_COLUMNS)
    top = max(sum(per.values()) for per in counts.values())
    width = 100.0 / n
    stacks = []
    for i in range(n):
        at = first + i * bucket_s
        per = counts.get(at, {})
        y, segments = 100.0, []
        for name in names:
            if per.get(name):
                height = 100.0 * per[name] / top
                y -= height
                segments.append((name, round(y, 3), round(height, 3), per[name]))
        label = datetime.fromtimestamp(at, UTC).strftime(
            "%Y-%m-%d %H:%M" if bucket_s < DAY_S else "%Y-%m-%d")
        stacks.append(Stack(round(i * width, 3), round(width * 0.9, 3), label, tuple(segments)))
    return stacks, names


def busiest(stacks: Sequence[Stack]) -> int:
    """The largest total of one column (the top of the chart's scale)."""
    return max((sum(seg[3] for seg in s.segments) for s in stacks), default=0)
