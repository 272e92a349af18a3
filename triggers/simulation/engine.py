"""The simulator: the service's engine on a virtual clock. Pure (time is virtual).

One engine: every ping goes through :func:`triggers.presence.process_batch`, every timer
through :func:`triggers.presence.advance`, every event through
:func:`triggers.decisions.decide` — the functions the service calls — with ``now`` the
virtual time. The loop, per slice of ``batch_s`` virtual seconds:

1. fire the timers due before the slice's first delivery, each at its due time (so a
   DWELL is decided at the instant it is due, as the service's timer loop would);
2. feed the pings delivered in the slice, in delivery order, as ONE batch, at ``now`` =
   the last delivery time (a server processes a batch when the last ping is in), each
   ping received at its own delivery time (a user whose pings arrive late runs their
   timers behind, as on the server: ``PresencePolicy.live_lag_s``);
3. fire the timers due up to the end of the slice.

Slices in which nothing is delivered nor due are skipped whole.

Each event is decided with the user's profile (an empty one for users without), the
:class:`CampaignIndex`, the venue, the tenant policy and an :class:`InMemoryLedger`;
the decision's ledger entries are recorded before the next event (the service does
both in one transaction), and a chosen push becomes a :class:`Delivery`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from geo.index import GeofenceIndex
from triggers.behaviour.events import BehaviourEvent
from triggers.decisions import CampaignIndex, InMemoryLedger, Profile, decide, selector_matches
from triggers.decisions.learning import learn_profile
from triggers.decisions.ledger import FeedbackKind
from triggers.decisions.models import Campaign, EventKind, TenantPolicy
from triggers.decisions.records import Decision
from triggers.decisions.segments import Visit
from triggers.learning.signals import FeedbackBook
from triggers.presence import advance, process_batch
from triggers.presence_events import PresenceEvent
from triggers.presence_policy import PresencePolicy
from triggers.presence_state import PresenceState, new_state
from triggers.simulation.backtest import BacktestTally
from triggers.simulation.behaviour import BehaviourReplay, scenario_events, tag_rules
from triggers.simulation.response import (
    ResponseModel,
    ResponseTally,
    Traits,
    lift_report,
    respond,
    tags_of,
)
from triggers.simulation.result import Delivery, SimulationResult, Stats, Track, idempotency_key
from triggers.simulation.routes import resolve
from triggers.simulation.scenario import Crowd, GenerateSpec, Scenario
from triggers.simulation.scheduled import SlotDecider, SlotFeed, slot_feed
from triggers.simulation.sendtime import SendTimeLearner
from triggers.simulation.stream import Device, PingStream, lay_out
from triggers.trajectory import PingColumns, TrajectorySpec
from venues.model import Venue

Progress = Callable[[float, float], None]
"""Called with (virtual seconds done, virtual seconds in all) after each slice."""


@dataclass
class _World:
    """A set of live campaigns with its own ledger (the scenario's, or a back-test's)."""

    index: CampaignIndex
    thresholds: dict[str, frozenset[int]]
    """Venue id → the DWELL thresholds this world's campaigns asked for (+ the venue's)."""
    ledger: InMemoryLedger = field(default_factory=InMemoryLedger)
    policy: TenantPolicy | None = None
    """The world's tenant policy; ``None``: the scenario's."""
    book: FeedbackBook = field(default_factory=FeedbackBook)
    """Feedback counts the learning options read (filled by the response model)."""
    responses: ResponseTally = field(default_factory=ResponseTally)
    send_time: SendTimeLearner | None = None
    """The world's send-time model, when one of its campaigns has a ``best_time``."""

    def sees(self, event: PresenceEvent) -> bool:
        """DWELL events at thresholds only another world asked for are not this world's:
        a live campaign with no ``dwell_s`` must not fire again at a candidate's 900 s."""
        if event.kind.value != EventKind.DWELL.value or event.dwell_s is None:
            return True
        wanted = self.thresholds.get(event.venue_id)
        return wanted is None or int(event.dwell_s) in wanted


def dwell_thresholds(
    campaigns: Iterable[Campaign], venues: Sequence[Venue]
) -> dict[str, frozenset[int]]:
    """Per venue: its own ``dwell_s`` and every DWELL ``dwell_s`` of a campaign whose
    venue selector matches it (what presence must time, see ``PresencePolicy``)."""
    dwell = [c for c in campaigns if c.trigger.event is EventKind.DWELL
             and c.trigger.dwell_s is not None]
    out: dict[str, frozenset[int]] = {}
    for venue in venues:
        wanted = {venue.dwell_s}
        for campaign in dwell:
            if selector_matches(campaign.venues, venue):
                assert campaign.trigger.dwell_s is not None
                wanted.add(math.ceil(campaign.trigger.dwell_s))
        out[venue.id] = frozenset(wanted)
    return out


def devices(scenario: Scenario) -> tuple[list[Device], dict[str, int]]:
    """Every generated device, and user id → crowd index for crowd users."""
    spec = scenario.spec
    venues = scenario.venues_by_id
    cache: dict[str, list[Venue]] = {}
    out: list[Device] = []
    crowd_of: dict[str, int] = {}

    def add(user_id: str, gen: GenerateSpec, rng: np.random.Generator, offset_s: float) -> None:
        plan = resolve(gen.route, venues, rng, gen.approach_deg, cache)
        start_ts = (gen.start if gen.start is not None else scenario.start_ts) \
            + gen.start_offset_s + offset_s
        template = TrajectorySpec(
            user_id=user_id, start=plan.start, route=plan.legs, start_ts=start_ts,
            speed_mps=gen.speed_mps, interval_s=gen.interval_s, noise_m=gen.noise_m,
            accuracy_m=gen.accuracy_m, gaps=gen.gaps, teleport_rate=gen.teleport_rate,
            teleport_m=gen.teleport_m, burst_rate=gen.burst_rate, burst_len=gen.burst_len,
            burst_delay_s=gen.burst_delay_s, latency_s=gen.latency_s, mock_rate=gen.mock_rate,
        )
        out.append(lay_out(user_id, len(out), plan.start, plan.legs, start_ts=start_ts,
                           template=template))

    seed = spec.seed & 0xFFFFFFFF
    for i, entry in enumerate(spec.trajectories):
        add(entry.user_id, entry.generate, np.random.default_rng([seed, 0, i]), 0.0)
    for g, crowd in enumerate(spec.users):
        for n in range(1, crowd.count + 1):
            uid = crowd.user_id(n)
            rng = np.random.default_rng([seed, g + 1, n])
            offset = float(rng.uniform(0.0, crowd.start_spread_s)) if crowd.start_spread_s else 0.0
            add(uid, crowd.generate, rng, offset)
            crowd_of[uid] = g
    return out, crowd_of


class _Profiles:
    """Profiles by user id: the scenario's, a crowd's template, or an empty one."""

    def __init__(self, profiles: Iterable[Profile], crowds: Sequence[Crowd],
                 crowd_of: dict[str, int]) -> None:
        self._given = {p.user_id: p for p in profiles}
        self._crowds = crowds
        self._crowd_of = crowd_of
        self._made: dict[str, Profile] = {}
        self.overlay: Callable[[Profile, float], Profile] | None = None
        """Adds what a decision at a time sees on top (the tags learned from events)."""
        self._learned: dict[str, Profile] = {}
        self._visits: dict[str, list[Visit]] = {}

    def learn(self, event: PresenceEvent, venues: Mapping[str, Venue], now: float,
              tz: str) -> None:
        """After an EXIT was decided: the user's profile learns from their visits so far,
        as the service's learner does (``triggers.decisions.learning``)."""
        if event.kind.value != "exit" or event.dwell_s is None:
            return
        venue = venues.get(event.venue_id)
        if venue is None:
            return
        history = self._visits.setdefault(event.user_id, [])
        history.append(Visit(event.venue_id, str(venue.kind), event.at - event.dwell_s,
                             event.at))
        profile = self(event.user_id)
        zone = profile.attributes.timezone or venue.timezone or tz
        self._learned[event.user_id] = learn_profile(profile, history, venues, now=now,
                                                     tz=zone)

    def at(self, user_id: str, now: float) -> Profile:
        """The user's profile as a decision at ``now`` sees it."""
        profile = self(user_id)
        return profile if self.overlay is None else self.overlay(profile, now)

    def __call__(self, user_id: str) -> Profile:
        found = (self._learned.get(user_id) or self._given.get(user_id)
                 or self._made.get(user_id))
        if found is not None:
            return found
        crowd = self._crowd_of.get(user_id)
        if crowd is not None:
            made: Profile = self._crowds[crowd].profile.model_copy(update={"user_id": user_id})
        else:
            made = Profile(user_id=user_id)
        self._made[user_id] = made
        return made


def _worlds(
    scenario: Scenario, candidate: Campaign | None
) -> tuple[list[_World], BacktestTally | None, _World | None]:
    """The live world; with ``candidate`` the shadow world that back-tests it (the live
    campaigns with the candidate added, or replacing its namesake) and its tally; with
    the scenario's ``compare``, the compared policy's world (last)."""
    spec = scenario.spec
    live = list(spec.campaigns)
    worlds = [_World(CampaignIndex(live), dwell_thresholds(live, scenario.venues))]
    tally = None
    if candidate is not None:
        shadow = [c for c in live if c.id != candidate.id] + [candidate]
        worlds.append(_World(CampaignIndex(shadow), dwell_thresholds(shadow, scenario.venues)))
        tally = BacktestTally(candidate.id, replaces_live=len(shadow) == len(live))
    compared = None
    if spec.compare is not None:
        campaigns = list(spec.compare.campaigns if spec.compare.campaigns is not None else live)
        compared = _World(CampaignIndex(campaigns), dwell_thresholds(campaigns, scenario.venues),
                          policy=spec.compare_policy().tenant())
        worlds.append(compared)
    return worlds, tally, compared


@dataclass(slots=True)
class _Responder:
    """Draws each push's open and click (``response`` in the scenario) and feeds them
    back to the world's ledger and feedback book, as the service's feedback would."""

    model: ResponseModel
    seed: int
    tz: tzinfo
    crowd_traits: list[Traits | None]
    crowd_of: dict[str, int]

    def traits(self, user_id: str) -> Traits:
        given = self.model.users.get(user_id)
        if given is not None:
            return given
        crowd = self.crowd_of.get(user_id)
        found = None if crowd is None else self.crowd_traits[crowd]
        return found if found is not None else self.model.traits

    def __call__(self, world: _World, event: PresenceEvent, decision: Decision,
                 profile: Profile, now: float) -> None:
        chosen = decision.chosen
        if chosen is not None:
            self.draw(world, idempotency_key(event, chosen.campaign_id), decision, profile,
                      now)

    def draw(self, world: _World, delivery_key: str, decision: Decision, profile: Profile,
             now: float) -> None:
        """Draws the chosen push's response (its key seeds the dice) and feeds it back."""
        chosen = decision.chosen
        if chosen is None:
            return
        user_id, book, model = decision.user_id, world.book, self.model
        zone = profile.attributes.timezone
        local = datetime.fromtimestamp(now, ZoneInfo(zone) if zone else self.tz)
        response = respond(
            model, self.traits(user_id), seed=self.seed, user_id=user_id,
            delivery_key=delivery_key, channel=chosen.channel,
            tags=tags_of(model, chosen.campaign_id, chosen.variant_id),
            minute=local.hour * 60 + local.minute,
            recent=book.recent_engagement(user_id, now - model.fatigue_window_s).trials,
        )
        push = book.record_send(user_id, chosen.campaign_id, chosen.variant_id, chosen.channel,
                                now)
        world.responses.add(chosen.campaign_id, chosen.variant_id, response)
        if world.send_time is not None:
            world.send_time.observe_feedback(user_id, now, opened=response.opened,
                                             clicked=response.clicked)
        if response.clicked:
            book.record_click(push)
            world.ledger.record_feedback(user_id, FeedbackKind.CLICKED)
        elif response.opened:
            book.record_open(push)
            world.ledger.record_feedback(user_id, FeedbackKind.OPENED)
        else:
            world.ledger.record_feedback(user_id, FeedbackKind.IGNORED)


def _user_ids(scenario: Scenario, devs: Sequence[Device],
              events: Sequence[BehaviourEvent]) -> set[str]:
    """Every user of the run: the generated devices' and the recorded pings', the
    behaviour events', and with a scheduled campaign the scenario's profiles too (a slot
    reaches users who never ping)."""
    user_ids = {d.user_id for d in devs}
    user_ids.update(e.user_id for e in events)
    if scenario.recorded is not None:
        user_ids.update(np.unique(scenario.recorded.user_id).tolist())
    if any(c.trigger.scheduled is not None for c in scenario.spec.campaigns):
        user_ids.update(p.user_id for p in scenario.spec.profiles)
    return user_ids


@dataclass(slots=True)
class _Decider:
    """Called with each batch of presence events (and the time they are decided at):
    decides each in every world, records the live world's outcome in ``result``,
    tallies the back-test, and lets the user's profile learn from the event."""

    result: SimulationResult
    worlds: list[_World]
    tally: BacktestTally | None
    venues: Mapping[str, Venue]
    profiles: _Profiles
    tenant: TenantPolicy
    zone: str
    keep_records: bool
    responder: _Responder | None = None
    behaviour: BehaviourReplay | None = None

    def __call__(self, events: Sequence[PresenceEvent], now: float) -> None:
        result, keep_records = self.result, self.keep_records
        for event in events:
            result.stats.add_event(event)
            if keep_records:
                result.events.append(event)
            venue = self.venues[event.venue_id]
            profile = self.profiles.at(event.user_id, now)
            decided: list[Decision | None] = []
            for k, world in enumerate(self.worlds):
                if not world.sees(event):
                    decided.append(None)
                    continue
                unmet = None if self.behaviour is None else self.behaviour.unmet(
                    world.index, event.user_id, event.at)
                decision = decide(event, profile, world.index, venue,
                                  world.policy or self.tenant, world.ledger, now,
                                  signals=world.book, behaviour_unmet=unmet)
                for entry in decision.ledger_entries():
                    world.ledger.record(entry)
                if self.responder is not None:
                    self.responder(world, event, decision, profile, now)
                decided.append(decision)
                if k == 0:
                    _record(result, event, decision, keep_records)
            if self.tally is not None:
                self.tally.add(decided[0], decided[1])
            self.profiles.learn(event, self.venues, now, self.zone)


def simulate(
    scenario: Scenario,
    *,
    candidate: Campaign | None = None,
    keep_records: bool = True,
    track_users: int = 0,
    progress: Progress | None = None,
) -> SimulationResult:
    """Run ``scenario`` (see the module docstring); with ``candidate``, back-test it.

    ``keep_records=False`` keeps only counters (for very large runs); ``track_users``
    keeps the pings of that many users (smallest ids first) for maps and plots.
    """
    spec = scenario.spec
    tz = spec.tz
    by_id = scenario.venues_by_id
    tenant: TenantPolicy = spec.policy.tenant()
    worlds, tally, compared = _worlds(scenario, candidate)
    presence = spec.policy.presence.build().with_venues(
        ((v.id, v.dwell_s) for v in scenario.venues),
        {vid: tuple(sorted(set().union(*(w.thresholds[vid] for w in worlds))))
         for vid in by_id},
    )
    index = GeofenceIndex.build([v.fence() for v in scenario.venues if v.enabled])

    devs, crowd_of = devices(scenario)
    profiles = _Profiles(spec.profiles, spec.users, crowd_of)
    zone = str(getattr(tz, "key", "") or tenant.default_timezone)
    stream = PingStream(devs, scenario.recorded, spec.seed, _end_hint(scenario, devs))
    behaviour = _events(scenario, crowd_of)
    user_ids = _user_ids(scenario, devs, behaviour)
    tracked = sorted(user_ids)[:track_users]
    tracks = {u: Track() for u in tracked}
    tracked_arr = np.asarray(tracked, dtype=str)

    begin = min(scenario.start_ts, stream.first_delivery)
    end = (spec.end.timestamp() if spec.end is not None
           else math.ceil(max(begin, stream.last_activity, _last_behaviour(behaviour, worlds))
                          + presence.silence_timeout_s + spec.batch_s))
    result = SimulationResult(
        name=spec.name, tz=tz, start=begin, end=end, users=len(user_ids), events=[],
        decisions=[], deliveries=[], stats=Stats(), counters={}, tracks=tracks,
        open_visits=0,
    )
    state = new_state()
    responder = None if spec.response is None else _Responder(
        spec.response, spec.seed, tz, [c.traits for c in spec.users], crowd_of)
    sources = _Sources.build(scenario, result, worlds, tally, profiles, behaviour,
                             sorted(user_ids), keep_records)
    sources.slots.respond = None if responder is None else _slot_responder(responder, worlds)
    handle = _Decider(result, worlds, tally, by_id, profiles, tenant, zone, keep_records,
                      responder=responder, behaviour=sources.replay)

    def fire(until: float) -> None:
        _fire_until(until, state, presence, handle, sources)

    clock = begin
    total = max(end - begin, 1e-9)
    while clock < end:
        slice_end = min(_past_quiet_slices(clock, spec.batch_s, min(
            stream.next_at(), _next_due(state, sources), end)) + spec.batch_s, end)
        cols = stream.take_until(slice_end)
        if cols is not None:
            fire(float(cols.delivery_ts[0]))
            now = float(cols.delivery_ts[-1])
            state, events = process_batch(state, index, cols.to_batch(), presence, now,
                                          received_at=cols.delivery_ts)
            handle(events, now)
            if tracks:
                _track(tracks, tracked_arr, cols)
        fire(slice_end)
        clock = slice_end
        if progress is not None:
            progress(clock - begin, total)

    result.counters = state.counters.as_dict()
    result.open_visits = sum(len(v) for v in state.visits.values())
    if tally is not None:
        result.backtest = tally.report()
    if spec.response is not None:
        other = None if spec.compare is None else spec.compare.name
        result.response = _response_report(spec.response.policy_name, worlds[0], other,
                                           compared)
    return result


def _learn_send_times(worlds: Sequence[_World], events: Sequence[BehaviourEvent],
                      start: float, interval_s: float) -> None:
    """Give each world with a ``best_time`` campaign its send-time model, trained every
    ``interval_s`` from ``start`` on the scenario's engagement events and the world's
    own feedback (:mod:`triggers.simulation.sendtime`)."""
    for world in worlds:
        if any(c.trigger.scheduled is not None and c.trigger.scheduled.best_time is not None
               for c in world.index.active_of_kind("scheduled")):
            world.send_time = SendTimeLearner(interval_s, start + interval_s)
            world.send_time.observe_events(events)


def _slot_responder(responder: _Responder, worlds: Sequence[_World]) -> Callable[
        [int, str, Decision, Profile, float], None]:
    """The response model for scheduled pushes: world number → that world's draws."""
    def respond(k: int, key: str, decision: Decision, profile: Profile, now: float) -> None:
        responder.draw(worlds[k], key, decision, profile, now)
    return respond


@dataclass
class _Sources:
    """What the virtual clock runs besides presence timers: scheduled slots, and
    behaviour events and triggers (a slot first when both are due at once)."""

    feed: SlotFeed
    slots: SlotDecider
    replay: BehaviourReplay | None
    _behaviour_at: float = math.inf

    @classmethod
    def build(  # noqa: PLR0917 - the run's parts the sources share
        cls, scenario: Scenario, result: SimulationResult, worlds: list[_World],
        tally: BacktestTally | None, profiles: _Profiles, events: list[BehaviourEvent],
        user_ids: list[str], keep_records: bool,
    ) -> _Sources:
        """The sources of a run; with behaviour events, the replay's learned tags are
        laid over every decision's profile (without, nothing in the run changes); a world
        with a ``best_time`` campaign gets its send-time model."""
        tenant = scenario.spec.policy.tenant()
        _learn_send_times(worlds, events, result.start, scenario.spec.model_training_interval_s)
        replay = None
        if events:
            replay = BehaviourReplay(events, tag_rules(scenario.spec), worlds, result, tally,
                                     profiles.at, tenant, keep_records)
            profiles.overlay = replay.learned
        feed = slot_feed([c for w in worlds for c in w.index.active_of_kind("scheduled")],
                         [profiles(u) for u in user_ids], tenant, result.start, result.end)
        slots = SlotDecider(result, worlds, tally, profiles.at, tenant, keep_records)
        return cls(feed, slots, replay, math.inf if replay is None else replay.next_at())

    def next_at(self) -> float:
        return min(self.feed.next_at(), self._behaviour_at)

    def run(self, due: float) -> None:
        """What is due at ``due``: the slots, else the behaviour replay."""
        if self.feed.next_at() <= due:
            self.slots(self.feed.take(due))
        elif self.replay is not None:
            self.replay.run(due)
            self._behaviour_at = self.replay.next_at()


def _events(scenario: Scenario, crowd_of: dict[str, int]) -> list[BehaviourEvent]:
    """The scenario's behaviour events in replay order (crowd users' generated ones too)."""
    members: dict[int, list[str]] = {}
    for user, g in crowd_of.items():
        members.setdefault(g, []).append(user)
    return scenario_events(scenario.spec, lambda g: sorted(members.get(g, ())),
                           scenario.start_ts)


def _last_behaviour(events: Sequence[BehaviourEvent], worlds: Sequence[_World]) -> float:
    """The last event's time plus the longest trigger delay (when the last trigger may
    fall due); -inf without events."""
    if not events:
        return -math.inf
    delays = [c.trigger.behaviour.delay_s for w in worlds
              for c in w.index.active_of_kind("behaviour") if c.trigger.behaviour is not None]
    return events[-1].ts + max(delays, default=0.0)


def _response_report(name: str, live: _World, other_name: str | None,
                     other: _World | None) -> dict[str, Any]:
    """Opens, clicks and CTR per policy, campaign and variant; the lift over ``other``."""
    policies = {name: live.responses.report()}
    report: dict[str, Any] = {"policies": policies}
    if other is not None and other_name is not None:
        policies[other_name] = other.responses.report()
        report["lift"] = lift_report(name, live.responses, other_name, other.responses)
    return report


# The loop's parts, passed in as they are at the call (``state`` is replaced per batch).
def _past_quiet_slices(clock: float, batch_s: float, next_at: float) -> float:
    """The start of the last slice before ``next_at`` (the next delivery, timer, slot or
    behaviour event, or the end): the slices between are skipped whole, as nothing is
    delivered nor due in them (a scenario that ends years after its last ping runs in no
    more time than one that ends with it). Boundaries stay ``batch_s`` apart."""
    quiet = math.floor((next_at - clock) / batch_s) - 1
    return clock + quiet * batch_s if quiet > 0 else clock


def _next_due(state: PresenceState, sources: _Sources) -> float:
    """The instant of the next presence timer, slot or behaviour event (inf: none)."""
    return min(state.timers[0][0] if state.timers else math.inf, sources.next_at())


def _fire_until(
    until: float, state: PresenceState, presence: PresencePolicy, handle: _Decider,
    sources: _Sources,
) -> None:
    """Timers, scheduled slots and behaviour events and triggers due up to ``until``,
    each at its own instant, in time order (a slot first when several are due at once,
    then behaviour, then presence timers)."""
    while (due := _next_due(state, sources)) <= until:
        if sources.next_at() <= due:
            sources.run(due)
        else:
            handle(advance(state, due, presence), due)


def _end_hint(scenario: Scenario, devs: Sequence[Device]) -> float:
    """The last time any ping may be delivered: the scenario end, else the last device's
    or the last recorded ping's (a scenario may have recorded pings only)."""
    if scenario.spec.end is not None:
        return scenario.spec.end.timestamp()
    ends = [d.end_ts for d in devs]
    recorded = scenario.recorded
    if recorded is not None and len(recorded):
        ends.append(float(recorded.delivery_ts.max()))
    return max(ends, default=scenario.start_ts)


def _record(result: SimulationResult, event: PresenceEvent, decision: Decision,
            keep: bool) -> None:
    day = result_day(decision.decided_at, result)
    result.stats.add_decision(decision, day)
    if not keep:
        return
    result.decisions.append(decision)
    chosen = decision.chosen
    if chosen is not None:
        result.deliveries.append(Delivery(
            key=idempotency_key(event, chosen.campaign_id), user_id=decision.user_id,
            venue_id=decision.venue_id, campaign_id=chosen.campaign_id,
            variant_id=chosen.variant_id, channel=chosen.channel, title=chosen.title,
            body=chosen.body, at=decision.decided_at, expires_at=chosen.expires_at,
            event=decision.event, event_at=event.at, visit_id=event.visit_id,
        ))


def result_day(ts: float, result: SimulationResult) -> str:
    """The local date (scenario zone) that "pushes per user per day" counts ``ts`` in."""
    return datetime.fromtimestamp(ts, result.tz).date().isoformat()


def _track(tracks: dict[str, Track], tracked: NDArray[np.str_], cols: PingColumns) -> None:
    mask = np.isin(cols.user_id, tracked)
    if not bool(mask.any()):
        return
    idx = np.flatnonzero(mask)
    users = cols.user_id[idx]
    for user in np.unique(users).tolist():
        pick = idx[users == user]
        track = tracks[str(user)]
        track.ts.append(cols.ts[pick])
        track.lat.append(cols.lat[pick])
        track.lng.append(cols.lng[pick])

