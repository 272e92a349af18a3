"""Back-test: what a candidate campaign would have done over a scenario, sending nothing.

The engine runs one presence pass and two decision worlds on the same events: the live
campaigns (what the scenario sends) and a shadow world where the candidate is live too
(replacing a live campaign with the same id: "what if I changed it"). Each world has its
own ledger, so caps consumed by the candidate show up in the shadow world only. Pairing
the two decisions of every event gives the comparison:

- the candidate's pushes, users reached, variants, control hold-outs, and the reasons it
  was stopped (``lower_priority`` = a live campaign outranked it);
- live pushes it *displaces*: sent in the live world, not in the shadow world, either
  ``by_priority`` (the candidate won that event) or by a cap (the live campaign's line
  says ``global_cap`` / ``min_gap`` / ``fatigue`` / ... because the candidate used the
  user's budget earlier);
- live pushes *gained* in the shadow world (a budget freed in the other direction).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from triggers.decisions.records import Decision, Outcome


@dataclass
class BacktestTally:
    candidate_id: str
    replaces_live: bool
    pushes: Counter[str] = field(default_factory=Counter)
    users: set[str] = field(default_factory=set)
    held_out: int = 0
    stopped: Counter[str] = field(default_factory=Counter)
    displaced_by_priority: Counter[str] = field(default_factory=Counter)
    displaced_by_caps: Counter[tuple[str, str]] = field(default_factory=Counter)
    gained: Counter[str] = field(default_factory=Counter)
    live_pushes: int = 0
    shadow_pushes: int = 0
    events_considered: int = 0

    def add(self, live: Decision | None, shadow: Decision | None) -> None:
        """One event's decisions in the live and shadow worlds (``None``: that world did
        not see the event, e.g. a DWELL threshold only the candidate asked for)."""
        live_chosen = None if live is None or live.chosen is None else live.chosen.campaign_id
        shadow_chosen = (None if shadow is None or shadow.chosen is None
                         else shadow.chosen.campaign_id)
        self.live_pushes += live_chosen is not None
        self.shadow_pushes += shadow_chosen is not None
        if shadow is not None:
            for line in shadow.considered:
                if line.campaign_id != self.candidate_id:
                    continue
                self.events_considered += 1
                if line.outcome is Outcome.SENT:
                    self.pushes[line.variant_id or ""] += 1
                    self.users.add(shadow.user_id)
                elif line.outcome is Outcome.HELD_OUT:
                    self.held_out += 1
                else:
                    self.stopped[line.reason.value] += 1
        if live_chosen == shadow_chosen:
            return
        if live_chosen is not None and live_chosen != self.candidate_id:
            if shadow_chosen == self.candidate_id:
                self.displaced_by_priority[live_chosen] += 1
            else:
                reason = "not_seen"
                if shadow is not None:
                    reason = next((c.reason.value for c in shadow.considered
                                   if c.campaign_id == live_chosen), "not_considered")
                self.displaced_by_caps[(live_chosen, reason)] += 1
        if shadow_chosen is not None and shadow_chosen != self.candidate_id:
            self.gained[shadow_chosen] += 1

    def report(self) -> dict[str, Any]:
        caps: dict[str, dict[str, int]] = {}
        for (campaign, reason), n in sorted(self.displaced_by_caps.items()):
            caps.setdefault(campaign, {})[reason] = n
        return {
            "candidate": self.candidate_id,
            "replaces_live_campaign": self.replaces_live,
            "events_matched": self.events_considered,
            "pushes": sum(self.pushes.values()),
            "pushes_by_variant": dict(sorted(self.pushes.items())),
            "users_reached": len(self.users),
            "held_out_control": self.held_out,
            "suppressions_by_reason": dict(sorted(self.stopped.items())),
            "live_pushes_without": self.live_pushes,
            "pushes_with": self.shadow_pushes,
            "displaced": {
                "by_priority": dict(sorted(self.displaced_by_priority.items())),
                "by_caps": caps,
                "total": sum(self.displaced_by_priority.values())
                + sum(self.displaced_by_caps.values()),
            },
            "live_pushes_gained": dict(sorted(self.gained.items())),
        }
