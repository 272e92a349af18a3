"""What the ``interests`` and ``sendtime`` commands share: the fit pass over the events
file, the user list of a prediction, writing the predictions CSV."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from server.cli.common import CliError
from server.cli.events_csv import EventChunk, parse_time_option, read_events, read_users
from triggers.learning.coding import DAY_S, ENGAGEMENT_KINDS, Vocabulary


@dataclass
class FirstPass:
    """What one checking pass over the events learns: ids, time span, counts."""

    users: Vocabulary
    categories: Vocabulary
    until_t: float
    first_t: float
    """Where the events before ``until`` start, stray ones left out: the start of the
    first day by which :data:`STRAY_SHARE` of them had come (or the first event, if
    later). Public logs carry a few events stamped years away from the rest; one of
    them must not stretch the window that the period and the cutoffs are cut from."""
    events_before_until: int
    engagement_before_until: int = 0
    """Of those, the app opens, clicks and push opens (what the send-time model counts
    when a file has them)."""


STRAY_SHARE = 0.001


def first_pass(path: str, until: str | None) -> FirstPass:
    """Check every row and number the ids; ``until`` defaults to just after the last event."""
    users, categories = Vocabulary(), Vocabulary()
    until_t = parse_time_option(until, "--until") if until else None
    first_t, last_t, before, engaged = np.inf, -np.inf, 0, 0
    per_day: dict[int, int] = {}
    for chunk in read_events(path, users, categories, "checking"):
        if len(chunk.ts):
            last_t = max(last_t, float(chunk.ts.max()))
            keep = np.ones(len(chunk.ts), bool) if until_t is None else chunk.ts < until_t
            kept = chunk.ts[keep]
            before += len(kept)
            engaged += int(np.isin(chunk.kind[keep], ENGAGEMENT_KINDS).sum())
            if len(kept):
                first_t = min(first_t, float(kept.min()))
                days, counts = np.unique(np.floor(kept / DAY_S).astype(np.int64),
                                         return_counts=True)
                for day, count in zip(days.tolist(), counts.tolist(), strict=True):
                    per_day[day] = per_day.get(day, 0) + count
    if before == 0:
        raise CliError("no events" + (" before --until" if until_t is not None else ""),
                       location=path)
    return FirstPass(users, categories, until_t if until_t is not None else last_t + 1.0,
                     max(first_t, _start_without_strays(per_day, before)), before, engaged)


def _start_without_strays(per_day: dict[int, int], total: int) -> float:
    """The start of the first day by which :data:`STRAY_SHARE` of ``total`` events came."""
    seen = 0
    for day in sorted(per_day):
        seen += per_day[day]
        if seen >= STRAY_SHARE * total:
            return day * DAY_S
    return -np.inf


def second_pass(path: str, seen: FirstPass, add: Callable[[EventChunk], None]) -> None:
    """Feed every chunk to ``add`` (ids numbered as in the first pass)."""
    for chunk in read_events(path, seen.users, seen.categories, "fitting"):
        add(chunk)


def say(message: str) -> None:
    """A step of a long command, on stderr."""
    print(f"geopush: {message}", file=sys.stderr, flush=True)


def prediction_users(users_path: str | None, model_users: list[str]
                     ) -> tuple[list[str], npt.NDArray[np.int64]]:
    """The users to predict for and their index in the model (``len(model_users)`` for
    a user the model has never seen)."""
    if users_path is None:
        return model_users, np.arange(len(model_users), dtype=np.int64)
    wanted = read_users(users_path)
    index = Vocabulary(model_users).lookup(wanted)
    index[index < 0] = len(model_users)
    return wanted, index


def check_top(top: int) -> int:
    if top < 1:
        raise CliError(f"must be at least 1, not {top}", field="--top")
    return top


def write_predictions(path: str, header: str, user_ids: list[str],
                      rows: npt.NDArray[np.int64], *, labels: list[str] | None,
                      scores: npt.NDArray[np.float64],
                      features: list[list[str]] | None = None) -> int:
    """``user_id,<item>,score,rank`` rows, rank 1 first; cells of ``rows`` below 0 (no
    more items) are left out. ``features``: a last column, ``features``, per user and
    rank (the contract's columns stay first). Returns the number of rows written."""
    written = 0
    try:
        with open(path, "w", encoding="utf-8", newline="") as out:
            out.write(f"user_id,{header},score,rank{',features' if features else ''}\n")
            for u, (user, items, values) in enumerate(zip(user_ids, rows.tolist(),
                                                          scores.tolist(), strict=True)):
                cell = _csv_cell(user)
                said = features[u] if features else None
                lines = [f"{cell},{_csv_cell(labels[i]) if labels else i},{v:.6g},{r}"
                         + (f",{_csv_cell(said[r - 1])}\n" if said else "\n")
                         for r, (i, v) in enumerate(zip(items, values, strict=True), start=1)
                         if i >= 0]
                out.writelines(lines)
                written += len(lines)
    except OSError as exc:
        raise CliError(exc.strerror or "cannot write", location=path) from exc
    return written


def _csv_cell(text: str) -> str:
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text
