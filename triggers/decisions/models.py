"""The inputs of a decision: profiles, campaigns and the tenant policy.

All models are pydantic v2 and frozen: the scenario loader and the HTTP API build them with
``Model.model_validate(data)`` from YAML/JSON and get a ``pydantic.ValidationError`` whose
``errors()`` name the field path (``("variants", 1, "weight")``); the core only reads them.
Unknown keys are rejected (``extra="forbid"``) so that a typo in a campaign is an error, not a
silently ignored rule — except in :class:`Attributes`, which is open by design.

Times are float epoch seconds (``*_at``, ``first_seen``, ``start``); on input they may also be
ISO-8601 strings with an offset or aware datetimes. Durations carry ``_s`` and are seconds.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from holidays.registry import EntityLoader
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from triggers.decisions.hours import in_window, parse_window
from triggers.decisions.rich import (
    AltText,
    Button,
    Buttons,
    DeepLink,
    ImageByTag,
    ImageUrl,
    check_button_ids,
    check_rich_size,
)


def _to_epoch(value: Any) -> Any:
    """Accept epoch seconds, an aware datetime or an ISO-8601 string with offset."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("datetime needs a UTC offset")
        return value.timestamp()
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"not an ISO-8601 time or epoch seconds: {value!r}") from exc
        if parsed.tzinfo is None:
            raise ValueError(f"time {value!r} needs a UTC offset")
        return parsed.timestamp()
    return value


EpochSeconds = Annotated[float, BeforeValidator(_to_epoch)]
"""Epoch seconds; input may be a number, an aware datetime or an ISO-8601 string with offset."""


def _check_timezone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


def _check_window(value: str | None) -> str | None:
    if value is not None:
        parse_window(value)
    return value


@lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    # The holidays library's calendars: every ISO 3166-1 alpha-2 code, and XK (Kosovo,
    # user-assigned, in common use); aliases such as UK for GB left out.
    return frozenset(EntityLoader.get_country_codes(include_aliases=False))


def _check_country(value: str) -> str:
    if value not in _countries():
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (FI, CN, GB, "
                         "...)")
    return value


# Sizes of what a tenant may store (every string and list has one: stated in the
# OpenAPI document, checked by pydantic before anything else looks at the value).
MAX_ID_CHARS = 256
MAX_NAME_CHARS = 256
MAX_TAG_CHARS = 64
MAX_TAGS = 256
MAX_SHORT_CHARS = 64
"""Locales, genders, time zone names, currencies, channel names."""
MAX_TEXT_CHARS = 1024
"""Free text values: an offer's fields, an item's URL (2,048 for URLs)."""
MAX_TITLE_SOURCE_CHARS = 1024
MAX_BODY_SOURCE_CHARS = 8192
"""Longest template source of a variant's title and body (a template may hold logic its
output does not show, so more than the rendered limits, 256 and 4,096)."""
MAX_OFFER_TTL_S = 30 * 86_400
"""An offer kept undelivered for a month has long stopped being about where the user is
(and a larger one would not fit a timestamp)."""
MAX_VARIANTS = 50
MAX_SELECTOR_IDS = 1000
MAX_ATTRIBUTES = 64
"""Attributes beyond the named ones."""

Id = Annotated[str, StringConstraints(max_length=MAX_ID_CHARS)]
Name = Annotated[str, StringConstraints(max_length=MAX_NAME_CHARS)]
Tag = Annotated[str, StringConstraints(max_length=MAX_TAG_CHARS)]
Short = Annotated[str, StringConstraints(max_length=MAX_SHORT_CHARS)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)]
STORED: dict[str, bool] = {"stored": True}
"""The validation context of a campaign read back from a store
(``Campaign.model_validate(body, context=STORED)``): the rules added after campaigns may
have been stored (an empty category, no channel, a ``best_time`` window without a whole
hour) are not applied to it, so a campaign written before them still loads, and the
tenant's other campaigns with it; what the API is given meets every rule."""


def _stored(info: ValidationInfo) -> bool:
    context = info.context
    return isinstance(context, dict) and bool(context.get("stored"))


def _named(category: str, info: ValidationInfo) -> str:
    if not category and not _stored(info):
        raise ValueError("an empty category names nothing a model could score")
    return category


Category = Annotated[str, StringConstraints(max_length=MAX_TAG_CHARS), AfterValidator(_named)]
"""An item category as behaviour events name it (what the interest model scores): an
empty one names nothing a model could score."""

# After-validators: pydantic first checks the value is a string (so a number is a
# field-named validation error), then these check what the string says.
TimeZoneName = Annotated[str, StringConstraints(max_length=MAX_SHORT_CHARS),
                         AfterValidator(_check_timezone)]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", max_length=2),
                        AfterValidator(_check_country)]
"""An ISO 3166-1 alpha-2 country code, upper case (``FI``)."""
LocalWindow = Annotated[str, StringConstraints(max_length=32), AfterValidator(_check_window)]
"""A local time window ``"HH:MM-HH:MM"``; the end may be ``24:00``; ``22:00-08:00`` wraps."""


class _Frozen(BaseModel):
    # NaN and the infinities are no time, weight or duration, and have no JSON form.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class EventKind(StrEnum):
    """The presence event kinds a campaign can be triggered by."""

    ENTER = "enter"
    DWELL = "dwell"
    EXIT = "exit"


CHANNELS = ("inbox", "webhook", "mqtt", "fcm", "apns", "email", "sms")
"""Delivery channels known to the service; ``inbox`` is the built-in in-app inbox."""

ALL_CHANNELS = "*"
"""In ``Profile.opt_outs``: the user opted out of every channel."""


# --------------------------------------------------------------------------- profile


class Attributes(BaseModel):
    """A user's attributes. The named ones are used by rules; any other key is kept and
    reaches templates as ``user.<key>`` (JSON scalars only: at most
    :data:`MAX_ATTRIBUTES` of them, names of :data:`MAX_TAG_CHARS` and text values of
    :data:`MAX_TEXT_CHARS` characters)."""

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False, json_schema_extra={
        "maxProperties": MAX_ATTRIBUTES + 9,
        "propertyNames": {"maxLength": MAX_TAG_CHARS},
        "additionalProperties": {"anyOf": [
            {"type": "string", "maxLength": MAX_TEXT_CHARS}, {"type": "number"},
            {"type": "boolean"}, {"type": "null"}]}})

    age: int | None = Field(default=None, ge=0, le=150)
    gender: Short | None = None
    locale: Short | None = None
    """BCP 47-ish, ``zh-CN`` or ``zh_CN``; used for audience and content variants."""
    timezone: TimeZoneName | None = None
    """IANA zone; schedules, quiet hours and the calendar-day cap use it."""
    first_name: Name | None = None
    city: Name | None = None
    occupation: Name | None = None
    country: Short | None = None
    """ISO 3166-1 alpha-2; selects the holiday calendar for greetings."""

    @model_validator(mode="after")
    def _extras_are_scalars(self) -> Attributes:
        extra = self.model_extra or {}
        if len(extra) > MAX_ATTRIBUTES:
            raise ValueError(f"{len(extra)} attributes beyond the named ones, more than "
                             f"{MAX_ATTRIBUTES}")
        for key, value in extra.items():
            if not isinstance(value, str | int | float | bool | None):
                raise ValueError(f"attribute {key!r} must be a JSON scalar")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"attribute {key!r} must be a finite number")
            if len(key) > MAX_TAG_CHARS:
                raise ValueError(f"an attribute name of {len(key):,} characters, more "
                                 f"than {MAX_TAG_CHARS}")
            if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
                raise ValueError(f"attribute {key!r} has {len(value):,} characters, more "
                                 f"than {MAX_TEXT_CHARS}")
        return self


class Item(_Frozen):
    """An item the user viewed (and did not buy), for "still thinking about ..." content."""

    id: Id
    name: Name
    url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    price: float | None = None
    currency: Short | None = None
    viewed_at: EpochSeconds | None = None


class NextStop(_Frozen):
    """Where the user usually goes next from a station (learned by
    :func:`triggers.decisions.routes.learn_next_stops`)."""

    venue_id: Id
    name: Name
    line_ids: tuple[Tag, ...] = Field(default=(), max_length=64)
    trips: int = Field(default=1, ge=1)
    """How many observed trips support it."""


class Device(_Frozen):
    """A push token of one of the user's app installs."""

    platform: Literal["fcm", "apns"]
    token: str = Field(min_length=1, max_length=4096)


class Contacts(_Frozen):
    """Where the service can reach the user, by channel. The in-app inbox needs nothing;
    the tenant's webhook and MQTT broker are tenant settings. A dead address (uninstalled
    app, unknown mailbox) is removed by the delivery service when a channel says so."""

    devices: tuple[Device, ...] = Field(default=(), max_length=32)
    """Push tokens; a push goes to every token of its platform."""
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    """As the user gave it; the SMS channel normalises it to E.164."""
    mqtt_topic: str | None = Field(default=None, min_length=1, max_length=1024)
    """Overrides the tenant's per-user MQTT topic template for this user."""

    def tokens(self, platform: str) -> tuple[str, ...]:
        """The user's tokens on ``platform`` (``fcm`` / ``apns``), in order, once each."""
        return tuple(dict.fromkeys(d.token for d in self.devices if d.platform == platform))


class LearnedTag(_Frozen):
    """A tag learned from behaviour events by a tenant's tag rule, with its provenance
    (see :mod:`triggers.behaviour.rules`)."""

    tag: Tag = Field(min_length=1)
    reason: Text
    """Why, in words: ``"7 views of sports in 30 days"``."""
    kind: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    """The event kind of the rule's condition that holds."""
    categories: tuple[Tag, ...] = Field(default=(), max_length=16)
    """Its categories (empty: any category)."""
    count: int = Field(ge=0)
    within_days: float = Field(gt=0)
    last_at: EpochSeconds | None = None
    """The latest event counted."""


class Profile(_Frozen):
    """What the decision knows about a user. Everything but ``user_id`` is optional."""

    user_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    attributes: Attributes = Attributes()
    tags: tuple[Tag, ...] = Field(default=(), max_length=MAX_TAGS)
    """Interest tags set by the tenant (``mother_baby``)."""
    scene_tags: tuple[Tag, ...] = Field(default=(), max_length=MAX_TAGS)
    """Tags learned from visits (``commuter``, ``shopper``), see ``segments.derive_scene_tags``."""
    first_seen: EpochSeconds | None = None
    last_active: EpochSeconds | None = None
    opt_outs: tuple[Short, ...] = Field(default=(), max_length=16)
    """Channels the user refused; ``"*"`` means all of them."""
    channels: Annotated[tuple[Short, ...], Field(max_length=16)] | None = None
    """Channels the user can be reached on (has a token / address); ``None`` = all."""
    language: Short | None = None
    """Preferred content language; overrides ``attributes.locale`` for variants."""
    recently_viewed: Item | None = None
    learned_tags: tuple[LearnedTag, ...] = Field(default=(), max_length=MAX_TAGS)
    """Tags learned from behaviour events (tenant tag rules), kept apart from ``tags``."""
    next_stops: dict[Id, NextStop] = Field(default={}, max_length=256)
    """Station venue id → the user's usual next station from there (route tips)."""
    contacts: Contacts = Contacts()
    """Push tokens and addresses the delivery service sends to (not used by decisions)."""

    @property
    def content_locale(self) -> str | None:
        """The locale content is chosen for: ``language``, else ``attributes.locale``."""
        return self.language or self.attributes.locale

    @property
    def all_tags(self) -> frozenset[str]:
        """Interest tags and scene tags together, as audiences see them."""
        return frozenset(self.tags) | frozenset(self.scene_tags)


# --------------------------------------------------------------------------- campaign


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


class Segment(StrEnum):
    """Lifecycle segments, see ``segments.segment_of`` for the thresholds."""

    NEW = "new"
    ACTIVE = "active"
    DORMANT = "dormant"


_DAY_NAMES = ("mo", "tu", "we", "th", "fr", "sa", "su")

LocalTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", max_length=5)]
"""A local wall-clock time ``"HH:MM"`` (00:00 to 23:59)."""

BehaviourKindName = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                                     pattern=r"^[A-Za-z0-9_.:-]+$")]
"""A behaviour event kind: ``view``, ``click``, ``add_to_cart``, ``purchase``, ``search``,
``app_open`` or a custom name (see :mod:`triggers.behaviour.events`)."""


class BestTime(_Frozen):
    """Send each user at their own best hour (learned), inside ``window``; users without
    enough data get ``fallback``."""

    fallback: LocalTime
    window: LocalWindow = "00:00-24:00"

    @field_validator("window")
    @classmethod
    def _holds_a_whole_hour(cls, window: str, info: ValidationInfo) -> str:
        # A user's best time is a whole hour of the window: "09:15-09:45" has none, and
        # a user with send-time data would have no time to be sent at (one stored before
        # this rule gets the fallback: ``best_time.choose_time``).
        bounds = parse_window(window)
        if not _stored(info) and not any(in_window(bounds, hour * 60) for hour in range(24)):
            raise ValueError(f"window {window!r} holds no whole hour (HH:00) to send at")
        return window


class ScheduledTrigger(_Frozen):
    """Fire at local wall-clock ``times`` on ``days`` (two-letter names, empty = every day)
    in each user's time zone, to the campaign's audience. One send per (campaign, user,
    slot); a slot missed while the service was down is caught up within ``grace_s``.
    With ``best_time`` the slots are its window's hours and ``times`` may be left out
    (given, they are not used)."""

    best_time: BestTime | None = None
    times: tuple[LocalTime, ...] = Field(default=(), max_length=24, validate_default=True)
    days: tuple[Short, ...] = Field(default=(), max_length=7)
    grace_s: float = Field(default=3600.0, ge=0, le=86_400)

    @field_validator("days")
    @classmethod
    def _known_days(cls, days: tuple[str, ...]) -> tuple[str, ...]:
        lowered = tuple(d.lower() for d in days)
        unknown = [d for d in lowered if d not in _DAY_NAMES]
        if unknown:
            raise ValueError(f"unknown day names {unknown}; use {list(_DAY_NAMES)}")
        return lowered

    @field_validator("times")
    @classmethod
    def _distinct_times(cls, times: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        # best_time is declared first, so it has been read when times is checked (it is
        # missing from the data when it was itself wrong: that error is the one to see).
        if not times and "best_time" in info.data and info.data["best_time"] is None:
            raise ValueError("times needs at least one HH:MM time (or give best_time)")
        if len(set(times)) != len(times):
            raise ValueError(f"times {list(times)} repeat a time")
        return times


class ItemFilter(_Frozen):
    """Which items a behaviour trigger listens to; every given field must match (an
    item's ``category``, and any one of ``tags``). Empty = any item (or none)."""

    category: Tag | None = None
    tags: tuple[Tag, ...] = Field(default=(), max_length=MAX_TAGS)


class Unless(_Frozen):
    """Cancel a pending behaviour trigger when the user does ``kind`` within ``within_s``
    of the triggering event (``same_item``: on the same item id)."""

    kind: BehaviourKindName
    same_item: bool = True
    within_s: float = Field(gt=0, le=90 * 86_400)


class BehaviourTrigger(_Frozen):
    """Fire ``delay_s`` after a behaviour event of ``kind`` (on an item matching ``item``),
    unless the follow-up in ``unless`` happens first. The item reaches templates as
    ``item``."""

    kind: BehaviourKindName
    item: ItemFilter | None = None
    delay_s: float = Field(default=0.0, ge=0, le=30 * 86_400)
    unless: Unless | None = None

    @model_validator(mode="after")
    def _unless_within_delay(self) -> BehaviourTrigger:
        if self.unless is not None and self.unless.within_s < self.delay_s:
            raise ValueError(f"unless.within_s ({self.unless.within_s:g}) is shorter than "
                             f"delay_s ({self.delay_s:g}): the follow-up could not cancel")
        return self


class BehaviourCondition(_Frozen):
    """``also`` on a location trigger: the user did ``kind`` (on a matching item) within
    ``within_s`` before the location event."""

    kind: BehaviourKindName
    item: ItemFilter | None = None
    within_s: float = Field(gt=0, le=90 * 86_400)


class TriggerKind(StrEnum):
    """What starts a campaign: a presence event, a schedule, or a behaviour event."""

    ENTER = "enter"
    DWELL = "dwell"
    EXIT = "exit"
    SCHEDULED = "scheduled"
    BEHAVIOUR = "behaviour"


class Trigger(_Frozen):
    """Exactly one of ``event`` (location: enter / dwell / exit), ``scheduled`` or
    ``behaviour``. A location trigger may add ``also``, a behaviour condition."""

    event: EventKind | None = None
    dwell_s: float | None = Field(default=None, gt=0)
    """Only for ``dwell``: the campaign fires on a DWELL event whose ``dwell_s`` is at least
    this; ``None`` accepts the venue's own threshold."""
    scheduled: ScheduledTrigger | None = None
    behaviour: BehaviourTrigger | None = None
    also: BehaviourCondition | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        given = [name for name, value in (("event", self.event), ("scheduled", self.scheduled),
                                          ("behaviour", self.behaviour)) if value is not None]
        if len(given) != 1:
            raise ValueError("a trigger needs exactly one of event, scheduled or behaviour"
                             + (f"; got {given}" if given else ""))
        if self.dwell_s is not None and self.event is not EventKind.DWELL:
            raise ValueError("dwell_s is only meaningful with event: dwell")
        if self.also is not None and self.event is None:
            raise ValueError("also is only meaningful with a location event")
        return self

    @property
    def kind(self) -> TriggerKind:
        """The trigger's kind: the location event's name, ``scheduled`` or ``behaviour``."""
        if self.event is not None:
            return TriggerKind(self.event.value)
        return TriggerKind.SCHEDULED if self.scheduled is not None else TriggerKind.BEHAVIOUR

    @property
    def is_location(self) -> bool:
        return self.event is not None


class VenueSelector(_Frozen):
    """Which venues a campaign listens to. Within a field any value matches; the fields
    given must all match (``{kinds: [mall], tags: [premium]}`` = premium malls). An empty
    selector matches every venue."""

    ids: tuple[Id, ...] = Field(default=(), max_length=MAX_SELECTOR_IDS)
    kinds: tuple[Short, ...] = Field(default=(), max_length=16)
    tags: tuple[Tag, ...] = Field(default=(), max_length=MAX_TAGS)
    parent: Id | None = None
    """A venue id: matches the venues inside it (``parent_id``), e.g. the stores of a mall."""


class AgeRange(_Frozen):
    """Inclusive bounds in years; a user with no age never matches a range."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @field_validator("max")
    @classmethod
    def _not_below_min(cls, value: int | None, info: ValidationInfo) -> int | None:
        low = info.data.get("min")
        if value is not None and low is not None and value < low:
            raise ValueError(f"max ({value}) is below min ({low}): no age would match")
        return value


class InterestThreshold(_Frozen):
    """A predicted-interest condition of an audience."""

    min: float = Field(ge=0, le=1)


class Audience(_Frozen):
    """Who a campaign is for. Every given criterion must hold; empty = everyone.
    Tags are matched against interest tags and scene tags together."""

    all_of_tags: tuple[Tag, ...] = Field(default=(), max_length=MAX_TAGS)
    any_of_tags: tuple[Tag, ...] = Field(default=(), max_length=MAX_TAGS)
    none_of_tags: tuple[Tag, ...] = Field(default=(), max_length=MAX_TAGS)
    age: AgeRange | None = None
    gender: tuple[Short, ...] = Field(default=(), max_length=16)
    locales: tuple[Short, ...] = Field(default=(), max_length=64)
    """``zh`` matches ``zh-CN``; ``zh-CN`` matches only ``zh-CN`` (``_`` and ``-`` alike)."""
    segments: tuple[Segment, ...] = Field(default=(), max_length=3)
    interests: dict[Category, InterestThreshold] = Field(default={}, max_length=MAX_TAGS)
    """Category → the least predicted interest (the promoted interest model's probability
    that the user engages with the category in the next period), e.g.
    ``{"mother_baby": {"min": 0.6}}``; below it the reason is
    ``interest_below_threshold``. Checked by the service, which holds the model."""



class Schedule(_Frozen):
    """When a campaign may send, in local time (the user's zone, else the venue's)."""

    start: EpochSeconds | None = None
    end: EpochSeconds | None = None
    """Exclusive."""
    days: tuple[Short, ...] = Field(default=(), max_length=7)
    """Two-letter day names (``mo`` … ``su``, any case); empty = every day."""
    hours: LocalWindow | None = None
    """``"10:00-21:00"`` local; a window may wrap midnight. ``None`` = all day."""
    respect_opening_hours: bool = True
    """Skip (``venue_closed``) when the venue's ``opening_hours`` say it is closed."""

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: float | None, info: ValidationInfo) -> float | None:
        start = info.data.get("start")
        if value is not None and start is not None and value <= start:
            raise ValueError(f"end ({_iso(value)}) is not after start ({_iso(start)}): "
                             "the campaign could never send")
        return value

    @field_validator("days")
    @classmethod
    def _known_days(cls, days: tuple[str, ...]) -> tuple[str, ...]:
        lowered = tuple(d.lower() for d in days)
        unknown = [d for d in lowered if d not in _DAY_NAMES]
        if unknown:
            raise ValueError(f"unknown day names {unknown}; use {list(_DAY_NAMES)}")
        return lowered

    @property
    def weekdays(self) -> frozenset[int]:
        """The allowed days as ``datetime.weekday()`` numbers (Monday = 0)."""
        return _weekday_numbers(self.days)


def _iso(at: float) -> str:
    """Epoch seconds as an ISO-8601 UTC time, or as seconds beyond the calendar's years."""
    try:
        return datetime.fromtimestamp(at, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return f"{at:g} s"


@lru_cache(maxsize=256)
def _weekday_numbers(days: tuple[str, ...]) -> frozenset[int]:
    # Memoised: ``decide`` asks for it per candidate campaign per event, and a pydantic
    # model cannot hold a cached_property of its own without joining its fields.
    return frozenset(_DAY_NAMES.index(d) for d in days)


class PerUserCap(_Frozen):
    count: int = Field(ge=1)
    period_s: float = Field(gt=0)
    """A rolling window ending now."""


class Caps(_Frozen):
    per_user: PerUserCap | None = None
    cooldown_s: float | None = Field(default=None, gt=0)
    """Minimum time between two pushes of this campaign to one user at one venue."""


class Style(StrEnum):
    """Content tone matched to the user's age band, see ``content.age_band``."""

    CASUAL = "casual"
    NEUTRAL = "neutral"
    FORMAL = "formal"


class Variant(_Frozen):
    """One rendition of an experiment arm.

    Entries sharing an ``id`` are one arm: the arm is drawn by ``weight`` (all its entries
    must carry the same weight), then the rendition by ``locale`` and ``style``.
    """

    id: str = Field(min_length=1, max_length=MAX_SHORT_CHARS)
    weight: float = Field(default=1.0, ge=0)
    title: str = Field(max_length=MAX_TITLE_SOURCE_CHARS,
                       description="a template; renders at most 256 characters")
    body: str = Field(max_length=MAX_BODY_SOURCE_CHARS,
                      description="a template; renders at most 4,096 characters")
    locale: Short | None = None
    style: Style | None = None
    image_url: ImageUrl | None = None
    """The push's picture (``https``); the fallback of ``image_by_tag``."""
    image_by_tag: ImageByTag = {}
    """Interest tag → picture, in order of preference: the user gets the picture of the
    first tag they hold (see ``rich.choose_image``), else ``image_url``."""
    image_alt: AltText | None = None
    """What the picture shows, for email and screen readers; default: the push's title."""
    deep_link: DeepLink | None = None
    """Where a tap on the push goes: a web link or an app link (``myapp://offer/42``)."""
    buttons: Buttons = Field(default=(), validate_default=True)
    """Up to three action buttons ``{id, title, deep_link}``, ids unique, titles plain."""

    @field_validator("image_alt")
    @classmethod
    def _alt_needs_an_image(cls, alt: str | None, info: ValidationInfo) -> str | None:
        if alt is not None and info.data.get("image_url") is None and not info.data.get(
                "image_by_tag"):
            raise ValueError("image_alt given without an image (image_url or image_by_tag)")
        return alt

    @field_validator("buttons")
    @classmethod
    def _buttons_fit(cls, buttons: tuple[Button, ...], info: ValidationInfo
                     ) -> tuple[Button, ...]:
        check_button_ids(buttons)
        check_rich_size(image_url=info.data.get("image_url"),
                        image_by_tag=info.data.get("image_by_tag") or {},
                        image_alt=info.data.get("image_alt"),
                        deep_link=info.data.get("deep_link"), buttons=buttons)
        return buttons


class Campaign(_Frozen):
    """A campaign: its trigger, venues, audience, schedule, caps and variants.

    Built from the scenario YAML / API JSON with ``Campaign.model_validate(data)``; the YAML
    key for the venue selector is ``venues``.
    """

    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    name: Name = ""
    status: CampaignStatus = CampaignStatus.ACTIVE
    """Scenario files list campaigns to run, so a campaign is active unless it says not."""
    trigger: Trigger
    venues: VenueSelector = VenueSelector()
    audience: Audience = Audience()
    schedule: Schedule = Schedule()
    caps: Caps = Caps()
    priority: int = 0
    """Higher wins; ties go to the smaller campaign id (a stable, documented order)."""
    variants: tuple[Variant, ...] = Field(min_length=1, max_length=MAX_VARIANTS)
    control_pct: float = Field(default=0.0, ge=0, le=100)
    """Share of users (by hash of campaign and user) held out as the control group."""
    channels: tuple[Short, ...] = Field(default=("inbox",), max_length=len(CHANNELS))
    """In order of preference; the first one the user can receive and did not refuse wins
    (none: the campaign could never send)."""
    offer_ttl_s: float = Field(default=3600.0, gt=0, le=MAX_OFFER_TTL_S)
    """An undelivered push expires after this; one hour, since a location offer is about
    being near the venue now."""
    offer: dict[Tag, Text | int | float | bool | None] = Field(default={}, max_length=64)
    """Free offer data (code, discount) for templates as ``offer.<key>``."""
    categories: tuple[Category, ...] = Field(default=(), max_length=MAX_TAGS)
    """The item categories (interest tags) the offer is about, as behaviour events name
    them: what the interest model scores the campaign by, and what feedback on its pushes
    teaches the model."""
    min_open_chance: float | None = Field(default=None, ge=0, le=1)
    """For location triggers: the least predicted chance that the user opens a push now
    (the promoted send-time model's weight of the current local hour relative to the
    user's best hour); below it the reason is ``unlikely_to_open``. Without a send-time
    model it is not applied."""
    optimize: Literal["fixed", "thompson"] = "fixed"
    """How treated users get an arm: ``fixed`` draws by the declared weights (a hash of
    campaign and user); ``thompson`` samples the arms' click posteriors per decision
    (``triggers.learning.thompson``). The control group is the same hash hold-out either way."""
    channel_choice: Literal["first", "auto"] = "first"
    """``first``: the first of ``channels`` the user can receive and did not refuse;
    ``auto``: of those, the one with the user's best smoothed open rate
    (``triggers.learning.channels``), the campaign's order breaking ties."""

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, channels: tuple[str, ...],
                        info: ValidationInfo) -> tuple[str, ...]:
        unknown = [c for c in channels if c not in CHANNELS]
        if unknown:
            raise ValueError(f"unknown channels {unknown}; use {list(CHANNELS)}")
        if not channels and not _stored(info):
            raise ValueError("no channel: the campaign could never send")
        return channels

    @field_validator("variants")
    @classmethod
    def _arms_are_consistent(cls, variants: tuple[Variant, ...]) -> tuple[Variant, ...]:
        # A field validator, so that the error names ``variants``.
        weights: dict[str, float] = {}
        renditions: set[tuple[str, str | None, str | None]] = set()
        for variant in variants:
            if weights.setdefault(variant.id, variant.weight) != variant.weight:
                raise ValueError(f"variant {variant.id!r}: renditions disagree on weight")
            key = (variant.id, norm_locale(variant.locale), variant.style)
            if key in renditions:
                raise ValueError(f"variant {variant.id!r}: duplicate locale/style rendition")
            renditions.add(key)
        if sum(weights.values()) <= 0:
            raise ValueError("variant weights must not all be zero")
        return variants

    @property
    def arms(self) -> tuple[tuple[str, float], ...]:
        """``(variant id, weight)`` per arm, in first-declared order."""
        seen: dict[str, float] = {}
        for variant in self.variants:
            seen.setdefault(variant.id, variant.weight)
        return tuple(seen.items())


def norm_locale(locale: str | None) -> str | None:
    """``zh_CN`` / ``zh-CN`` → ``zh-cn``: one spelling for comparing locales."""
    return None if locale is None else locale.replace("_", "-").lower()


# --------------------------------------------------------------------------- policy


class TenantPolicy(_Frozen):
    """Tenant-wide rules over all campaigns. Every default is what a tenant gets by saying
    nothing; ``None`` switches a rule off."""

    quiet_hours: LocalWindow | None = "22:00-08:00"
    """User-local; a location push held past quiet hours is pointless, so it is dropped."""
    max_per_day: int | None = Field(default=3, ge=0)
    """Pushes per calendar day in the user's zone (a 23- or 25-hour day across DST)."""
    max_per_week: int | None = Field(default=None, ge=0)
    """Pushes per rolling 7 × 24 h; off by default (the daily cap and min gap bound it)."""
    min_gap_s: float = Field(default=1800.0, ge=0)
    """Minimum time between any two pushes to one user: 30 minutes."""
    fatigue_after_ignored: int | None = Field(default=3, ge=1)
    """K: after K pushes ignored in a row (dismissed, or expired unopened) the daily cap is
    halved — ``max(1, max_per_day // 2)``, never 0, since only a push can be clicked — until
    the user clicks. Without a daily cap there is nothing to halve and the rule is idle."""
    one_push_per_event: Literal[True] = True
    """One event sends at most one push (the highest-priority eligible campaign). The
    decision contract carries one ``chosen``, so this cannot be switched off."""
    learned_caps: bool = False
    """When on, each user's daily cap is learned from how many of their recent pushes they
    opened (``triggers.learning.tolerance``), at most ``max_per_day``; a user held to it
    is skipped with ``learned_cap``. Off: every user has the tenant's cap."""
    default_timezone: TimeZoneName = "UTC"
    """Local time when neither the user nor the venue names a zone."""
    country: CountryCode | None = None
    """ISO 3166-1 alpha-2 country of the tenant's venues, for the public holidays (``PH``)
    of their opening hours when a venue's metadata names no ``addr:country``."""

