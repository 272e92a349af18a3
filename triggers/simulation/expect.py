"""Checking a scenario's ``expect`` list against a run: met or not, expected vs got."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from triggers.decisions.records import Outcome as LineOutcome
from triggers.presence_events import EventKind
from triggers.simulation.result import SimulationResult, iso
from triggers.simulation.scenario import Expect, ShareRange

_MAX_LISTED = 8


@dataclass(frozen=True, slots=True)
class Outcome:
    """One expectation's verdict, with both sides in words (the readable diff)."""

    index: int
    met: bool
    expected: str
    got: str

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "met": self.met, "expected": self.expected,
                "got": self.got}


def check(expects: tuple[Expect, ...], result: SimulationResult) -> list[Outcome]:
    """Every expectation of the scenario, in order (needs a run that kept records)."""
    return [_check(i, e, result) for i, e in enumerate(expects)]


def _check(i: int, e: Expect, r: SimulationResult) -> Outcome:
    kind = e.kind
    if kind == "push":
        return _push(i, e, r)
    if kind in ("none", "pushes"):
        return _counts(i, e, r)
    if kind == "visits":
        return _visits(i, e, r)
    if kind == "reason":
        return _reason(i, e, r)
    return _shares(i, e, r)


def _who(e: Expect) -> str:
    return f"user {e.user_id}" if e.user_id is not None else "all users"


def _listing(items: list[str]) -> str:
    if not items:
        return "nothing"
    more = f" … and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return "; ".join(items[:_MAX_LISTED]) + more


def _push(i: int, e: Expect, r: SimulationResult) -> Outcome:
    mine = [d for d in r.deliveries if d.user_id == e.user_id]
    want = [f"a push of {e.campaign_id}"]
    if e.variant_id:
        want.append(f"variant {e.variant_id}")
    if e.venue_id:
        want.append(f"at venue {e.venue_id}")
    if e.at is not None:
        want.append(f"at {iso(e.at, r.tz)} ± {e.within_s:g} s")
    if e.title_contains:
        want.append(f"title containing {e.title_contains!r}")
    if e.body_contains:
        want.append(f"body containing {e.body_contains!r}")

    def fits(d: Any) -> bool:
        return (d.campaign_id == e.campaign_id
                and (e.variant_id is None or d.variant_id == e.variant_id)
                and (e.venue_id is None or d.venue_id == e.venue_id)
                and (e.at is None or abs(d.at - e.at) <= e.within_s)
                and (e.title_contains is None or e.title_contains in d.title)
                and (e.body_contains is None or e.body_contains in d.body))

    met = any(fits(d) for d in mine)
    got = [f"{iso(d.at, r.tz)} {d.campaign_id}/{d.variant_id} at {d.venue_id}: {d.title!r}"
           for d in mine]
    got_text = f"pushes to {e.user_id}: {_listing(got)}"
    if not met:
        why = _why_not(e, r)
        if why:
            got_text += f"; {e.campaign_id} was stopped by: {why}"
    return Outcome(i, met, f"{e.user_id} gets " + ", ".join(want), got_text)


def _why_not(e: Expect, r: SimulationResult) -> str:
    reasons = []
    for d in r.decisions:
        if d.user_id != e.user_id:
            continue
        for line in d.considered:
            if line.campaign_id == e.campaign_id and line.outcome is not LineOutcome.SENT:
                detail = f" ({line.detail})" if line.detail else ""
                reasons.append(f"{iso(d.decided_at, r.tz)} {d.event} at {d.venue_id}: "
                               f"{line.reason.value}{detail}")
    return _listing(reasons) if reasons else "never considered (no matching event)"


def _counts(i: int, e: Expect, r: SimulationResult) -> Outcome:
    mine = [d for d in r.deliveries
            if (e.user_id is None or d.user_id == e.user_id)
            and (e.campaign_id is None or d.campaign_id == e.campaign_id)]
    n = len(mine)
    what = f"pushes of {e.campaign_id}" if e.campaign_id else "pushes"
    if e.kind == "none":
        expected, met = f"no {what} to {_who(e)}", n == 0
    else:
        parts, met = [], True
        if e.pushes is not None:
            parts.append(f"exactly {e.pushes}")
            met &= n == e.pushes
        if e.min_pushes is not None:
            parts.append(f"at least {e.min_pushes}")
            met &= n >= e.min_pushes
        if e.max_pushes is not None:
            parts.append(f"at most {e.max_pushes}")
            met &= n <= e.max_pushes
        expected = f"{' and '.join(parts)} {what} to {_who(e)}"
    got = [f"{iso(d.at, r.tz)} {d.user_id} {d.campaign_id}/{d.variant_id}: {d.title!r}"
           for d in mine]
    return Outcome(i, met, expected, f"{n}: {_listing(got)}")


def _visits(i: int, e: Expect, r: SimulationResult) -> Outcome:
    enters = [ev for ev in r.events if ev.kind is EventKind.ENTER
              and (e.user_id is None or ev.user_id == e.user_id)
              and (e.venue_id is None or ev.venue_id == e.venue_id)]
    n = len(enters)
    where = f" at {e.venue_id}" if e.venue_id else ""
    if e.visits is not None:
        expected, met = f"exactly {e.visits} visit(s){where} by {_who(e)}", n == e.visits
    else:
        assert e.max_visits is not None
        expected, met = f"at most {e.max_visits} visit(s){where} by {_who(e)}", \
            n <= e.max_visits
    got = [f"{iso(ev.at, r.tz)} {ev.user_id} entered {ev.venue_id}" for ev in enters]
    return Outcome(i, met, expected, f"{n}: {_listing(got)}")


def _reason(i: int, e: Expect, r: SimulationResult) -> Outcome:
    assert e.reason is not None
    hits, seen = [], []
    for d in r.decisions:
        if e.user_id is not None and d.user_id != e.user_id:
            continue
        for line in d.considered:
            if e.campaign_id is not None and line.campaign_id != e.campaign_id:
                continue
            text = f"{iso(d.decided_at, r.tz)} {d.user_id} {line.campaign_id}: {line.reason.value}"
            seen.append(text)
            if line.reason is e.reason:
                hits.append(text)
    what = e.campaign_id or "a campaign"
    return Outcome(i, bool(hits), f"{what} stopped by {e.reason.value} for {_who(e)}",
                   _listing(hits) if hits else f"no such line; lines: {_listing(seen)}")


def _in(share: float, bounds: ShareRange) -> bool:
    return bounds.min <= share <= bounds.max


def _shares(i: int, e: Expect, r: SimulationResult) -> Outcome:
    sent: dict[str, str] = {}
    held: set[str] = set()
    for d in r.decisions:
        for line in d.considered:
            if line.campaign_id != e.campaign_id:
                continue
            if line.outcome is LineOutcome.SENT:
                sent.setdefault(d.user_id, line.variant_id or "")
            elif line.outcome is LineOutcome.HELD_OUT:
                held.add(d.user_id)
    reached = set(sent) | held
    if e.control_share is not None:
        share = len(held) / len(reached) if reached else 0.0
        bounds = e.control_share
        return Outcome(
            i, bool(reached) and _in(share, bounds),
            f"{e.campaign_id}: control share of users reached in "
            f"[{bounds.min:.3f}, {bounds.max:.3f}]",
            f"{share:.3f} ({len(held)} held out of {len(reached)} users reached)",
        )
    assert e.variant_share is not None
    treated = len(sent)
    shares = {v: sum(1 for x in sent.values() if x == v) / treated if treated else 0.0
              for v in e.variant_share}
    met = treated > 0 and all(_in(shares[v], b) for v, b in e.variant_share.items())
    expected = ", ".join(f"{v} in [{b.min:.3f}, {b.max:.3f}]"
                         for v, b in e.variant_share.items())
    got = ", ".join(f"{v} {shares[v]:.3f}" for v in e.variant_share)
    return Outcome(i, met, f"{e.campaign_id} variant shares of treated users: {expected}",
                   f"{got} of {treated} treated users")
