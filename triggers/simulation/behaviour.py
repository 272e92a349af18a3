"""Behaviour events on the simulator's virtual clock.

The scenario's events (inline, from files, generated per user) are replayed at their
``ts``, in time order with pings, presence timers and scheduled slots, through the pure
code the service runs when events are posted (:mod:`triggers.behaviour`): each event is
folded into its user's features (a re-sent event, same idempotency key, changes nothing),
starts the behaviour triggers of every world's active campaigns it matches and cancels the
open ones it follows up (the cancellation is a decision with reason
``cancelled_by_follow_up``, as in the service). A trigger falls due ``delay_s`` after its
event and is decided then with ``decide`` (event ``behaviour``, no venue, the item in the
template context), in each world with its own ledger.

Profiles seen by every decision (location, scheduled, behaviour) carry the tags learned
from the user's features at the decision's time under the scenario's tag rules (default:
the service's), so a user becomes ``mother_baby`` from purchase events. Pure.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from triggers.behaviour.events import BehaviourEvent
from triggers.behaviour.features import EMPTY, UserFeatures, fold
from triggers.behaviour.profile import with_behaviour
from triggers.behaviour.rules import DEFAULT_TAG_RULES, TagRules
from triggers.behaviour.triggers import (
    BEHAVIOUR,
    BehaviourOccasion,
    PendingTrigger,
    behaviour_campaigns,
    cancellations,
    cancelled_decision,
    triggered,
    unmet_conditions,
)
from triggers.decisions import CampaignIndex, Decision, InMemoryLedger, Profile, decide
from triggers.decisions.models import Campaign, TenantPolicy
from triggers.simulation.backtest import BacktestTally
from triggers.simulation.result import Delivery, SimulationResult
from triggers.simulation.scenario import EventGenerator, GeneratedEvents, ScenarioSpec


class BehaviourWorld(Protocol):
    """What a world of the engine offers behaviour: its campaigns, its ledger and its
    tenant policy (``None``: the scenario's)."""

    index: CampaignIndex
    ledger: InMemoryLedger
    policy: TenantPolicy | None


# --------------------------------------------------------------------------- events


def generated(user_id: str, events: GeneratedEvents, start: float,
              end: float | None) -> list[BehaviourEvent]:
    """The events ``events.generate`` makes for ``user_id`` (see ``EventGenerator``)."""
    out: list[BehaviourEvent] = []
    for n, rule in enumerate(events.generate):
        out.extend(_generate(user_id, n, rule, start, end))
    return out


def _generate(user_id: str, n: int, rule: EventGenerator, start: float,
              end: float | None) -> Iterable[BehaviourEvent]:
    first = rule.start if rule.start is not None else start
    until = rule.until if rule.until is not None else (math.inf if end is None else end)
    limit = rule.count if rule.count is not None else 10_000
    item_id = rule.item_id or f"{rule.category or rule.kind}-item"
    for i in range(limit):
        ts = first + i * rule.every_s
        if ts >= until:
            return
        item = {"id": item_id, "name": rule.item_name, "category": rule.category,
                "price": rule.price}
        yield BehaviourEvent.model_validate({
            "event_id": f"gen:{user_id}:{n}:{i}", "user_id": user_id, "ts": ts,
            "kind": rule.kind, "item": {k: v for k, v in item.items() if v is not None}})


def scenario_events(spec: ScenarioSpec, crowd_users: Callable[[int], Sequence[str]],
                    start: float) -> list[BehaviourEvent]:
    """Every behaviour event of the scenario, in replay order (time, user, key)."""
    end = None if spec.end is None else spec.end.timestamp()
    events = list(spec.events)
    for entry in spec.event_generators:
        for user in entry.users:
            events.extend(generated(user, entry, start, end))
    for trajectory in spec.trajectories:
        if trajectory.events is not None:
            events.extend(generated(trajectory.user_id, trajectory.events, start, end))
    for g, crowd in enumerate(spec.users):
        if crowd.events is not None:
            for user in crowd_users(g):
                events.extend(generated(user, crowd.events, start, end))
    events.sort(key=lambda e: (e.ts, e.user_id, e.key()))
    return events


# --------------------------------------------------------------------------- replay


@dataclass
class _Triggers:
    """One world's behaviour triggers: the open ones by user, and their due order."""

    open_by_user: dict[str, dict[str, PendingTrigger]] = field(default_factory=dict)
    due: list[tuple[float, str, PendingTrigger]] = field(default_factory=list)
    started: set[str] = field(default_factory=set)

    def start(self, pending: PendingTrigger) -> None:
        if pending.key in self.started:
            return
        self.started.add(pending.key)
        self.open_by_user.setdefault(pending.user_id, {})[pending.key] = pending
        heapq.heappush(self.due, (pending.due_at, pending.key, pending))

    def close(self, pending: PendingTrigger) -> None:
        self.open_by_user.get(pending.user_id, {}).pop(pending.key, None)

    def is_open(self, pending: PendingTrigger) -> bool:
        return pending.key in self.open_by_user.get(pending.user_id, {})

    def next_at(self) -> float:
        while self.due and not self.is_open(self.due[0][2]):
            heapq.heappop(self.due)
        return self.due[0][0] if self.due else math.inf


@dataclass
class BehaviourReplay:
    """The replay (see the module docstring): :meth:`next_at` says when it has something
    to do, :meth:`run` does everything due at an instant."""

    events: Sequence[BehaviourEvent]
    rules: TagRules
    worlds: Sequence[BehaviourWorld]
    result: SimulationResult
    tally: BacktestTally | None
    profiles: Callable[[str, float], Profile]
    tenant: TenantPolicy
    keep_records: bool
    features: dict[str, UserFeatures] = field(default_factory=dict)
    by_user: dict[str, list[BehaviourEvent]] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set)
    _next: int = 0
    _triggers: list[_Triggers] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._triggers = [_Triggers() for _ in self.worlds]

    def next_at(self) -> float:
        """The next event's time or the next open trigger's due time (inf: none)."""
        event_at = self.events[self._next].ts if self._next < len(self.events) else math.inf
        return min(event_at, *(t.next_at() for t in self._triggers))

    def run(self, now: float) -> None:
        """Replay the events at ``now`` (a follow-up at a trigger's due instant still
        cancels it), then decide the triggers due at ``now``."""
        while self._next < len(self.events) and self.events[self._next].ts <= now:
            self._ingest(self.events[self._next], now)
            self._next += 1
        for k, triggers in enumerate(self._triggers):
            while triggers.next_at() <= now:
                _, _, pending = heapq.heappop(triggers.due)
                triggers.close(pending)
                self._fire(k, pending, now)

    def learned(self, profile: Profile, now: float) -> Profile:
        """``profile`` with the tags learned from the user's events at ``now`` (unchanged
        for a user without events, as in the service)."""
        features = self.features.get(profile.user_id)
        if features is None:
            return profile
        return with_behaviour(profile, features, self.rules, now)

    def unmet(self, campaigns: CampaignIndex, user_id: str, at: float) -> dict[str, str] | None:
        """The ``also`` conditions the user's events so far do not meet at ``at`` (what
        the service passes ``decide`` for location campaigns)."""
        also = [c for kind in ("enter", "dwell", "exit")
                for c in campaigns.active_of_kind(kind) if c.trigger.also is not None]
        if not also:
            return None
        return unmet_conditions(also, self.by_user.get(user_id, ()), at)

    def _ingest(self, event: BehaviourEvent, now: float) -> None:
        key = event.key()
        if key in self._seen:
            return
        self._seen.add(key)
        user = event.user_id
        self.features[user] = fold(self.features.get(user, EMPTY), (event,))
        self.by_user.setdefault(user, []).append(event)
        for k, world in enumerate(self.worlds):
            triggers = self._triggers[k]
            campaigns = behaviour_campaigns(_behaviour_of(world.index))
            for pending in triggered(campaigns, key, event):
                triggers.start(pending)
            open_ones = sorted(triggers.open_by_user.get(user, {}).values(),
                               key=lambda p: p.key)
            for pending, follow_up in cancellations(open_ones, (event,)):
                triggers.close(pending)
                if k == 0:
                    self._record(cancelled_decision(pending, follow_up, now), None)

    def _fire(self, k: int, pending: PendingTrigger, now: float) -> None:
        world = self.worlds[k]
        profile = self.learned(self.profiles(pending.user_id, now), now)
        decision = decide(BehaviourOccasion.of(pending), profile, world.index, None,
                          world.policy or self.tenant, world.ledger, now,
                          campaign_id=pending.campaign_id)
        for entry in decision.ledger_entries():
            world.ledger.record(entry)
        if k == 0:
            self._record(decision, pending)
        if self.tally is not None and len(self.worlds) > 1:
            live, shadow = (decision, None) if k == 0 else (None, decision)
            self.tally.add(live, shadow)

    def _record(self, decision: Decision, pending: PendingTrigger | None) -> None:
        result = self.result
        day = datetime.fromtimestamp(decision.decided_at, result.tz).date().isoformat()
        result.stats.add_decision(decision, day)
        if not self.keep_records:
            return
        result.decisions.append(decision)
        chosen = decision.chosen
        if chosen is not None and pending is not None:
            result.deliveries.append(Delivery(
                key=_key(pending.key, chosen.campaign_id), user_id=decision.user_id,
                venue_id=None, campaign_id=chosen.campaign_id, variant_id=chosen.variant_id,
                channel=chosen.channel, title=chosen.title, body=chosen.body,
                at=decision.decided_at, expires_at=chosen.expires_at, event=BEHAVIOUR,
                event_at=pending.event_ts, visit_id=pending.key,
            ))


def _behaviour_of(index: CampaignIndex) -> tuple[Campaign, ...]:
    return tuple(index.active_of_kind(BEHAVIOUR))


def _key(trigger_key: str, campaign_id: str) -> str:
    """The push's idempotency key: one per (trigger, campaign), as the service's."""
    return hashlib.sha256(f"{trigger_key}:{campaign_id}".encode()).hexdigest()[:32]


def tag_rules(spec: ScenarioSpec) -> TagRules:
    """The scenario's tag rules, else the service's defaults."""
    return spec.tag_rules if spec.tag_rules is not None else DEFAULT_TAG_RULES
