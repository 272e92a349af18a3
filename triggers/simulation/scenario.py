"""The scenario model: what ``geopush simulate`` replays (the YAML: fixtures/scenarios/README.md).

Pure: :class:`ScenarioSpec` is the YAML document without its file references, built with
``ScenarioSpec.model_validate(data)`` so that a ``pydantic.ValidationError`` names the
path (``campaigns[0].trigger.event``); the file loader (``server/cli/scenario_files.py``)
reads the venue file and the pings CSV and hands them over as objects. :func:`build`
checks what needs the venues (a route naming an unknown venue) and returns the
:class:`Scenario` the engine runs.

Extensions to DESIGN's example, all optional:

- ``end`` (default: the last ping delivered + the silence timeout, so open visits end),
  ``pings_arrival`` (``ts``, the default: each recorded ping arrives at its own ``ts``,
  or at its ``received_at`` column; ``file_order``: the file is an upload log, a ping
  arrives when the file has reached its time — a user exported after others arrives
  late, as a phone emptying its buffer: the same visits, ``stale`` for pushes),
  ``timezone`` (IANA zone of the timeline and of "per day" counts; default the UTC offset
  of ``start``), ``seed`` (of every random draw, default 0), ``batch_s`` (virtual time
  per engine batch, default 30 s);
- ``policy.presence``: overrides of :class:`~triggers.presence_policy.PresencePolicy`;
- ``trajectories[].generate``: every knob of :class:`~triggers.trajectory.TrajectorySpec`
  plus ``start`` (a time) or ``start_offset_s`` (after the scenario start) and
  ``approach_deg``; the route grammar is in :mod:`triggers.simulation.routes`;
- ``users``: generated crowds ``{count, id_prefix, profile, start_spread_s, generate}``;
- ``expect`` kinds: see :class:`Expect`;
- ``events``: behaviour events replayed at their ``ts`` (``events: FILE.csv``, a list of
  files and inline event objects, and per-user generators ``{user_id | user_ids,
  generate: [...]}``, see :class:`EventGenerator`; trajectories and crowds may carry
  ``events: {generate: [...]}``), ``tag_rules`` (as ``PUT /v1/tag-rules``; default: the
  service's defaults). The file loader resolves the files and hands over
  ``events`` and ``event_generators`` as objects;
- ``response`` (latent traits and the response model) and ``compare`` (a second policy
  on the same events): see :mod:`triggers.simulation.response`; ``users[].traits``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    model_validator,
)

from triggers.behaviour.events import BehaviourEvent
from triggers.behaviour.rules import TagRules
from triggers.decisions.models import (
    BehaviourKindName,
    Campaign,
    EpochSeconds,
    Profile,
    Tag,
    TenantPolicy,
    TimeZoneName,
)
from triggers.decisions.records import Reason
from triggers.presence_policy import PresencePolicy
from triggers.simulation.errors import SimulationError
from triggers.simulation.response import Compare, ResponseModel, Traits
from triggers.simulation.routes import Leg, check_legs, parse_leg
from triggers.trajectory import PingColumns
from venues.model import Venue


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


def _as_list(value: Any) -> Any:
    """A single mapping where a list is expected is read as a list of one."""
    return [value] if isinstance(value, Mapping) else value


def _as_rules(value: Any) -> Any:
    """``tag_rules`` as ``PUT /v1/tag-rules`` takes it (``{rules: [...]}``) or the list."""
    return {"rules": value} if isinstance(value, list) else value


class PresenceOverrides(_Frozen):
    """``policy.presence``: any :class:`PresencePolicy` threshold (same names and units)."""

    max_accuracy_m: float | None = None
    default_accuracy_m: float | None = None
    exit_margin_m: float | None = None
    exit_confirm_pings: int | None = None
    silence_timeout_s: float | None = None
    dwell_s: int | None = None
    enter_pair_window_s: float | None = None
    max_speed_mps: float | None = None
    teleport_confirm_pings: int | None = None
    max_future_s: float | None = None
    stale_after_s: float | None = None
    live_lag_s: float | None = None

    @model_validator(mode="after")
    def _usable(self) -> PresenceOverrides:
        # Checked as the file is read, so the error names its line and path (a
        # TriggerError is a ValueError: pydantic reports it at policy.presence).
        self.build()
        return self

    def build(self) -> PresencePolicy:
        """The presence policy (raises ``TriggerError`` on an out-of-range value)."""
        given = {k: v for k, v in self.model_dump().items() if v is not None}
        policy = PresencePolicy(**given)
        policy.check_consistent()
        return policy


class ScenarioPolicy(TenantPolicy):
    """The tenant policy plus ``presence`` overrides."""

    presence: PresenceOverrides = PresenceOverrides()

    def tenant(self) -> TenantPolicy:
        return TenantPolicy.model_validate(self.model_dump(exclude={"presence"}))


Route = tuple[Annotated[Leg, PlainValidator(parse_leg)], ...]


class GenerateSpec(_Frozen):
    """A generated trajectory: the route and the generator's knobs
    (:class:`triggers.trajectory.TrajectorySpec`, same names and meaning)."""

    route: Route = Field(min_length=1)
    start: EpochSeconds | None = None
    """When the device starts; default the scenario start (+ ``start_offset_s``)."""
    start_offset_s: float = Field(default=0.0, ge=0)
    approach_deg: float = 180.0
    """Compass bearing from a venue towards where a route that *starts* with ``entrance``
    or ``edge:`` is placed (180: the device starts south of the venue)."""
    speed_mps: float = Field(default=1.4, gt=0)
    interval_s: float = Field(default=10.0, gt=0)
    noise_m: float = Field(default=0.0, ge=0)
    accuracy_m: float | tuple[float, float] | None = 10.0
    gaps: tuple[tuple[float, float], ...] = ()
    teleport_rate: float = Field(default=0.0, ge=0, le=1)
    teleport_m: float = Field(default=5_000.0, gt=0)
    burst_rate: float = Field(default=0.0, ge=0, le=1)
    burst_len: int = Field(default=6, ge=1)
    burst_delay_s: float = Field(default=120.0, ge=0)
    latency_s: float = Field(default=1.0, ge=0)
    mock_rate: float = Field(default=0.0, ge=0, le=1)


MAX_GENERATED = 10_000
"""Events one generator makes for one user, at most."""


class EventGenerator(_Frozen):
    """Events of one kind made for a user at ``from``, ``from + every_s``, ... while
    before ``until`` (default: the scenario's end) and at most ``count`` of them.
    Deterministic: no random draw; the i-th event's id is ``gen:<user>:<n>:<i>``."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False,
                              populate_by_name=True)

    kind: BehaviourKindName
    category: Tag | None = None
    item_id: str | None = Field(default=None, min_length=1, max_length=128)
    """Default: ``<category>-item`` (or ``<kind>-item`` without a category)."""
    item_name: str | None = Field(default=None, max_length=200)
    price: float | None = Field(default=None, ge=0)
    every_s: float = Field(gt=0)
    start: EpochSeconds | None = Field(default=None, alias="from")
    """Default: the scenario start."""
    until: EpochSeconds | None = None
    count: int | None = Field(default=None, ge=1, le=MAX_GENERATED)


class GeneratedEvents(_Frozen):
    """``events: {generate: [...]}`` of a trajectory, a crowd or a list of users."""

    generate: tuple[EventGenerator, ...] = Field(min_length=1, max_length=16)


class UserEvents(GeneratedEvents):
    """A top-level ``events`` entry that generates events for named users."""

    user_id: str | None = Field(default=None, min_length=1)
    user_ids: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _someone(self) -> UserEvents:
        if (self.user_id is None) == (not self.user_ids):
            raise ValueError("give user_id or user_ids (one of them)")
        return self

    @property
    def users(self) -> tuple[str, ...]:
        return (self.user_id,) if self.user_id is not None else self.user_ids


class TrajectoryEntry(_Frozen):
    user_id: str = Field(min_length=1)
    generate: GenerateSpec
    events: GeneratedEvents | None = None


class ProfileTemplate(Profile):
    """A crowd's profile: a :class:`Profile` whose ``user_id`` each user fills in."""

    user_id: str = ""


class Crowd(_Frozen):
    """``users``: ``count`` generated users ``<id_prefix><n>`` (n from 1, zero-padded to
    the width of ``count``) sharing a profile and a route template; random route items
    (``wait:600-1800``, ``venue:kind=mall``) are drawn per user."""

    count: int = Field(ge=1, le=1_000_000)
    id_prefix: str = Field(default="user-", min_length=1)
    profile: ProfileTemplate = ProfileTemplate()
    start_spread_s: float = Field(default=0.0, ge=0)
    """Each user starts at a uniformly drawn offset in [0, start_spread_s)."""
    generate: GenerateSpec
    events: GeneratedEvents | None = None
    """Behaviour events generated for every user of the crowd."""
    traits: Traits | None = None
    """The crowd's latent traits for the ``response`` model (every user the same)."""

    def user_id(self, n: int) -> str:
        return f"{self.id_prefix}{n:0{len(str(self.count))}d}"


class ShareRange(_Frozen):
    """A fraction of users, ``0 <= min <= max <= 1``."""

    min: float = Field(default=0.0, ge=0, le=1)
    max: float = Field(default=1.0, ge=0, le=1)


class Expect(_Frozen):
    """One expectation. Its kind follows from the keys given:

    - ``{user_id, campaign_id[, at, within_s, variant_id, venue_id, title_contains,
      body_contains]}``: the user gets a push of the campaign (at ``at`` ± ``within_s``,
      default 60 s);
    - ``{user_id, none: true[, campaign_id]}``: no push at all (of that campaign);
    - ``{user_id?, campaign_id?, pushes | min_pushes | max_pushes: N}``: push counts;
    - ``{user_id?, venue_id?, visits | max_visits: N}``: visits (ENTER events);
    - ``{user_id?, campaign_id?, reason: R}``: at least one event where the campaign
      (any, if not named) was considered and stopped with reason code R;
    - ``{campaign_id, control_share: {min, max}}``: the share of the users that reached
      the campaign (sent or held out) who were held out as its control group;
    - ``{campaign_id, variant_share: {a: {min, max}, ...}}``: the share of treated users
      per variant.
    """

    user_id: str | None = None
    campaign_id: str | None = None
    venue_id: str | None = None
    variant_id: str | None = None
    at: EpochSeconds | None = None
    within_s: float = Field(default=60.0, ge=0)
    none: bool = False
    title_contains: str | None = None
    body_contains: str | None = None
    pushes: int | None = Field(default=None, ge=0)
    min_pushes: int | None = Field(default=None, ge=0)
    max_pushes: int | None = Field(default=None, ge=0)
    visits: int | None = Field(default=None, ge=0)
    max_visits: int | None = Field(default=None, ge=0)
    reason: Reason | None = None
    control_share: ShareRange | None = None
    variant_share: dict[str, ShareRange] | None = None

    @property
    def kind(self) -> str:
        if self.control_share is not None:
            return "control_share"
        if self.variant_share is not None:
            return "variant_share"
        if self.visits is not None or self.max_visits is not None:
            return "visits"
        if self.reason is not None:
            return "reason"
        if self.none:
            return "none"
        if any(v is not None for v in (self.pushes, self.min_pushes, self.max_pushes)):
            return "pushes"
        return "push"

    @model_validator(mode="after")
    def _complete(self) -> Expect:
        kind = self.kind
        if kind in ("control_share", "variant_share") and self.campaign_id is None:
            raise ValueError(f"{kind} needs campaign_id")
        if kind == "none" and self.user_id is None:
            raise ValueError("none: true needs user_id")
        if kind == "push" and (self.user_id is None or self.campaign_id is None):
            raise ValueError(
                "an expectation needs user_id and campaign_id (a push), or one of none, "
                "pushes, min_pushes, max_pushes, visits, max_visits, reason, control_share, "
                "variant_share"
            )
        if self.at is not None and kind != "push":
            raise ValueError(f"at only applies to a push expectation, not to {kind}")
        return self


class ScenarioSpec(_Frozen):
    """The scenario YAML without ``venues`` and ``pings`` (loaded by the caller)."""

    name: str = Field(min_length=1)
    description: str = ""
    start: AwareDatetime
    end: AwareDatetime | None = None
    timezone: TimeZoneName | None = None
    seed: int = 0
    batch_s: float = Field(default=30.0, gt=0, le=600)
    pings_arrival: Literal["ts", "file_order"] = "ts"
    """When a recorded ping arrives: at its ``ts`` (or ``received_at``), or in file order."""
    policy: ScenarioPolicy = ScenarioPolicy()
    profiles: tuple[Profile, ...] = ()
    campaigns: tuple[Campaign, ...] = ()
    trajectories: tuple[TrajectoryEntry, ...] = ()
    users: Annotated[tuple[Crowd, ...], BeforeValidator(_as_list)] = ()
    expect: tuple[Expect, ...] = ()
    events: tuple[BehaviourEvent, ...] = ()
    """Inline and file events (the loader reads the files)."""
    event_generators: tuple[UserEvents, ...] = ()
    tag_rules: Annotated[TagRules | None, BeforeValidator(_as_rules)] = None
    """The tenant's rules for learned tags; ``None``: the service's defaults."""
    response: ResponseModel | None = None
    """Latent traits and the response model: ``simulate`` draws opens and clicks."""
    compare: Compare | None = None
    """A second policy decided on the same events, for the response's CTR lift."""
    model_training_interval_s: float = Field(default=86_400.0, gt=0)
    """How often a world with a ``best_time`` campaign trains its send-time model on the
    virtual clock (the service's setting of the same name)."""

    def compare_policy(self) -> ScenarioPolicy:
        """The compared world's policy: the scenario's with ``compare.policy`` applied."""
        overrides = {} if self.compare is None else self.compare.policy
        return ScenarioPolicy.model_validate({**self.policy.model_dump(), **overrides})

    @model_validator(mode="after")
    def _consistent(self) -> ScenarioSpec:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        seen: set[str] = set()
        for profile in self.profiles:
            if profile.user_id in seen:
                raise ValueError(f"two profiles for user {profile.user_id!r}")
            seen.add(profile.user_id)
        ids = [c.id for c in self.campaigns]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate campaign ids {dup}")
        if self.compare is not None:
            if self.response is None:
                raise ValueError("compare needs a response model to compare CTRs")
            try:
                self.compare_policy()
            except ValueError as exc:
                raise ValueError(f"compare.policy: {exc}") from exc
        return self

    @property
    def tz(self) -> tzinfo:
        """The zone of the timeline: ``timezone``, else the UTC offset of ``start``."""
        if self.timezone is not None:
            return ZoneInfo(self.timezone)
        offset = self.start.utcoffset() or timedelta(0)
        return timezone(offset)


@dataclass(frozen=True)
class Scenario:
    """A validated scenario with its venues and recorded pings: the engine's input."""

    spec: ScenarioSpec
    venues: tuple[Venue, ...]
    recorded: PingColumns | None = None
    """Pings from the CSV, in file order; ``delivery_ts`` is when each arrives (see
    ``ScenarioSpec.pings_arrival`` and :func:`~triggers.simulation.stream.recorded_columns`)."""
    attribution: str | None = None

    @property
    def start_ts(self) -> float:
        return self.spec.start.timestamp()

    @property
    def venues_by_id(self) -> dict[str, Venue]:
        return {v.id: v for v in self.venues}

    def local(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.spec.tz)


def build(
    spec: ScenarioSpec,
    venues: tuple[Venue, ...],
    recorded: PingColumns | None = None,
    attribution: str | None = None,
) -> Scenario:
    """Check what needs the venues and return the :class:`Scenario`.

    Raises :class:`SimulationError` with the YAML path of the first problem: a route
    item that names no venue, an expectation about an unknown campaign or venue, or a
    scenario with neither pings nor trajectories (a scenario with a scheduled campaign
    and profiles may have no pings at all).
    """
    by_id = {v.id: v for v in venues}
    for i, entry in enumerate(spec.trajectories):
        check_legs(entry.generate.route, by_id, f"trajectories[{i}].generate.route")
    for i, crowd in enumerate(spec.users):
        check_legs(crowd.generate.route, by_id, f"users[{i}].generate.route")
    campaign_ids = {c.id for c in spec.campaigns}
    for i, expect in enumerate(spec.expect):
        if expect.campaign_id is not None and expect.campaign_id not in campaign_ids:
            raise SimulationError(
                f"expect[{i}].campaign_id",
                f"no campaign {expect.campaign_id!r} in this scenario "
                f"(campaigns: {sorted(campaign_ids)})",
            )
        if expect.venue_id is not None and expect.venue_id not in by_id:
            raise SimulationError(f"expect[{i}].venue_id", f"no venue {expect.venue_id!r}")
    scheduled = any(c.trigger.scheduled is not None for c in spec.campaigns)
    behaviour = bool(spec.events or spec.event_generators)
    if not spec.trajectories and not spec.users and (recorded is None or len(recorded) == 0) \
            and not (scheduled and spec.profiles) and not behaviour:
        raise SimulationError("", "the scenario has no pings, trajectories or users (nor "
                                  "profiles for a scheduled campaign, nor events)")
    if not venues:
        raise SimulationError("venues", "no valid venue")
    return Scenario(spec, venues, recorded, attribution)
