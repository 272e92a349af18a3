"""Request and response bodies of the HTTP API, as pydantic models.

The OpenAPI document is generated from these (``server/openapi.py``), so what the docs
say and what the server checks are one thing. Core models (``Campaign``, ``Profile``,
``TenantPolicy``, ``Decision``) are used as they are; the models here are the API's own
envelopes. Unknown fields are refused (``extra="forbid"``): a misspelt ``accuracy`` is
an error that names it, not a silently missing value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from server.auth import Role
from triggers.decisions import Campaign, CampaignStatus, Decision, Profile
from venues import VenueKind
from venues.limits import (
    DEFAULT_MAX_VERTICES,
    MAX_ID_CHARS,
    MAX_METADATA_BYTES,
    MAX_NAME_CHARS,
    MAX_OPENING_HOURS_CHARS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_TIMEZONE_CHARS,
)


def to_epoch_s(value: Any) -> Any:
    """Epoch seconds from a number or an ISO-8601 string with a UTC offset.

    Strings that hold a number are read as epoch seconds. Anything else is left for
    pydantic to reject with its usual message.
    """
    if isinstance(value, str):
        if len(value) > 64:
            raise ValueError("a time is at most 64 characters")
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError("must be epoch seconds or ISO-8601 with an offset") from exc
        if parsed.tzinfo is None:
            raise ValueError("an ISO-8601 time needs a UTC offset (e.g. +08:00 or Z)")
        return parsed.timestamp()
    if isinstance(value, bool):
        raise ValueError("must be epoch seconds or ISO-8601 with an offset")
    return value


EpochS = Annotated[float, BeforeValidator(to_epoch_s), Field(ge=0, lt=1e11), WithJsonSchema(
    {"anyOf": [{"type": "number", "minimum": 0},
               {"type": "string", "format": "date-time", "maxLength": 64}]})]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# --------------------------------------------------------------------------- errors


class ErrorDetail(_Strict):
    field: str | None
    code: str
    message: str


class ErrorInfo(_Strict):
    code: str = Field(description="stable snake_case code, e.g. validation_error, not_found")
    message: str
    field: str | None = Field(description="request path at fault, e.g. pings[3].lat")
    details: list[ErrorDetail] | None = None


class ErrorBody(_Strict):
    error: ErrorInfo


# --------------------------------------------------------------------------- pings


class PingIn(_Strict):
    """One location fix (DESIGN, Ping)."""

    user_id: str = Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")
    ts: EpochS = Field(description="event time: epoch seconds or ISO-8601 with offset")
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0, le=1e6)
    speed_mps: float | None = Field(default=None, ge=0, le=1e4)
    heading_deg: float | None = Field(default=None, ge=0, le=360)
    altitude_m: float | None = Field(default=None, ge=-1e5, le=1e6)
    mock: bool = False
    device_id: str | None = Field(default=None, max_length=256)



class PingsRequest(_Strict):
    pings: list[PingIn] = Field(max_length=1000, description="at most 1000 pings")


class RejectedPing(_Strict):
    index: int = Field(description="position in the request's pings array")
    code: str = Field(description="validation code (missing, less_than_equal, ...) or the "
                                  "engine's: future_ts")
    field: str | None = Field(description="e.g. pings[3].lat")
    message: str


class EventOut(_Strict):
    user_id: str
    venue_id: str
    kind: Literal["enter", "dwell", "exit"]
    at: float
    visit_id: str
    dwell_s: float | None
    confidence: Literal["high", "medium", "low"]
    reason: Literal["left", "timeout", "venue_removed"] | None
    stale: bool


class DeliveryOut(BaseModel):
    """A push put in the outbox (fields beyond these may be added)."""

    model_config = ConfigDict(extra="allow")

    id: str
    user_id: str
    campaign_id: str
    variant_id: str | None = None
    venue_id: str | None = None
    channel: str
    title: str | None = None
    body: str | None = None
    status: str | None = None


class PingsResponse(_Strict):
    accepted: int = Field(description="pings handed to the engine")
    rejected: list[RejectedPing]
    ignored: dict[str, int] = Field(
        default_factory=dict, description="pings the engine took but that changed nothing, "
        "by rule: duplicate, late, inaccurate, mock, teleport, ...")
    events: list[EventOut]
    deliveries: list[DeliveryOut]


class OsmAndResponse(_Strict):
    accepted: int
    rejected: list[RejectedPing]


# --------------------------------------------------------------------------- venues


class GeoJsonGeometry(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=32)
    coordinates: Any = Field(default=None, description=f"at most {DEFAULT_MAX_VERTICES:,} "
                             "positions in all (GEOPUSH_MAX_VENUE_VERTICES)")


def _checked(schema: dict[str, Any]) -> WithJsonSchema:
    """The documented schema of a property that venue validation checks (with its own
    problem codes and field paths), stating the limits it applies."""
    return WithJsonSchema(schema)


class VenueProperties(BaseModel):
    """The venue fields of a Feature. Checked by venue validation (the same as
    ``geopush venues validate``), which names each problem's field and code; the limits
    here are the ones it applies."""

    model_config = ConfigDict(extra="allow")

    id: Annotated[Any, _checked({"anyOf": [{"type": "string", "maxLength": MAX_ID_CHARS},
                                           {"type": "integer"}]})] = None
    name: Annotated[Any, _checked({"type": "string", "maxLength": MAX_NAME_CHARS})] = None
    kind: Annotated[Any, _checked({"type": "string",
                                   "enum": [k.value for k in VenueKind]})] = None
    tags: Annotated[Any, _checked({"type": "array", "maxItems": MAX_TAGS, "items": {
        "type": "string", "maxLength": MAX_TAG_CHARS}})] = None
    parent_id: Annotated[Any, _checked({"type": "string", "maxLength": MAX_ID_CHARS})] = None
    dwell_s: Annotated[Any, _checked({"type": "integer", "minimum": 1,
                                      "maximum": 86_400})] = None
    opening_hours: Annotated[Any, _checked({"type": "string",
                                            "maxLength": MAX_OPENING_HOURS_CHARS})] = None
    timezone: Annotated[Any, _checked({"type": "string",
                                       "maxLength": MAX_TIMEZONE_CHARS})] = None
    metadata: Annotated[Any, _checked({"type": "object", "description": "free JSON, at "
                                       f"most {MAX_METADATA_BYTES:,} characters as JSON"})
                        ] = None
    enabled: Annotated[Any, _checked({"type": "boolean"})] = None
    radius_m: Annotated[Any, _checked({"type": "number", "minimum": 10,
                                       "maximum": 10_000})] = None


class VenueFeature(BaseModel):
    """A venue as a GeoJSON Feature: the venue fields are ``properties``
    (``name``, ``kind``, ``tags``, ``parent_id``, ``dwell_s``, ``opening_hours``,
    ``timezone``, ``metadata``, ``enabled``, and ``radius_m`` with a Point)."""

    model_config = ConfigDict(extra="allow")

    type: Literal["Feature"]
    id: Annotated[str, Field(max_length=MAX_ID_CHARS)] | int | None = None
    properties: VenueProperties | None = None
    geometry: GeoJsonGeometry | None = None


MAX_IMPORT_FEATURES = 100_000
"""Features in one import (a 16 MiB body holds about that many small ones)."""


class VenueCollection(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["FeatureCollection"]
    features: list[VenueFeature] = Field(max_length=MAX_IMPORT_FEATURES)


class VenuePage(VenueCollection):
    """A page of ``GET /v1/venues``."""

    next_cursor: str | None = Field(default=None, description="pass as ?cursor= for the "
                                    "next page; null on the last")
    next_after: str | None = Field(default=None, description="the last id of this page "
                                   "(?after=, kept for older clients); null on the last")


class ProblemOut(_Strict):
    feature_index: int = Field(description="0-based feature position; -1 = the whole file")
    feature_id: str | None
    field: str
    code: str
    message: str
    severity: Literal["error", "warning"]


class ImportSummary(_Strict):
    features: int
    valid: int
    rejected: int
    repaired: int
    errors: int
    warnings: int
    by_kind: dict[str, int]
    strict_rejected: bool


class OutlineOut(_Strict):
    feature_index: int = Field(description="0-based feature position, as in problems")
    geometry: dict[str, Any] = Field(
        description="the feature's geometry as read from the file, valid or not "
                    "(GeoJSON, longitude/latitude rounded to 6 decimals)")
    radius_m: float | None = Field(description="a circle venue's radius (a Point)")
    simplified: bool = Field(description="simplified for display (over 1,000 positions)")


class ImportReport(_Strict):
    dry_run: bool
    imported: int = Field(description="venues written (0 on a dry run)")
    summary: ImportSummary
    problems: list[ProblemOut]
    venues: list[str] = Field(description="ids of the valid venues, in file order")
    outlines: list[OutlineOut] = Field(
        default_factory=list,
        description="dry run only, for any file format: each feature's outline for a map "
                    "of the report, features with problems first to fit the budget (50,000 "
                    "positions in all); one that cannot be read or does not fit is left out")


class HoursSpan(_Strict):
    start: datetime = Field(description="local time in the venue's zone, with its offset")
    end: datetime
    state: Literal["open", "closed", "unknown"] = Field(
        description="campaigns that respect opening hours skip a closed venue "
                    "(venue_closed) and treat unknown as open, with a note")
    comment: str | None = Field(default=None,
                                description="the deciding rule's comment, or why open")


class VenueHoursOut(_Strict):
    """How campaigns read a venue's opening hours over a stretch of days."""

    venue_id: str
    opening_hours: str | None = Field(
        description="the text campaigns read: opening_hours, else metadata.opening_hours")
    timezone: str = Field(description="the venue's zone, else the tenant's default (a "
                                      "decision reads a venue without a zone in the "
                                      "user's zone)")
    understood: bool = Field(description="false: the text is not OSM opening_hours "
                                         "syntax, and campaigns treat the venue as open")
    problem: str | None = Field(default=None, description="why the text is not understood")
    caveat: str | None = Field(
        default=None, description="what evaluation cannot honour (school holidays, public "
                                  "holidays of an unknown country)")
    spans: list[HoursSpan]


# --------------------------------------------------------------------------- users


class ProfileIn(Profile):
    """A profile as PUT: ``user_id`` comes from the path (if given it must match)."""

    user_id: str = Field(default="", max_length=256)


_NEXT_CURSOR = Field(default=None, description="pass as ?cursor= for the next page; null "
                                               "on the last")


class DecisionsResponse(_Strict):
    user_id: str
    decisions: list[Decision]
    next_cursor: str | None = _NEXT_CURSOR


class Deleted(_Strict):
    deleted: bool = True
    id: str


class VenueDeleted(Deleted):
    also: list[str] = Field(default_factory=list,
                            description="venues below it deleted with it (cascade=true)")


# --------------------------------------------------------------------------- campaigns


class CampaignIn(Campaign):
    """A campaign as created or replaced. ``id`` may be left out on POST (one is made
    up) and on PUT (the path's is used). A campaign created through the API is a
    ``draft`` unless it says otherwise: it starts sending on ``/activate``."""

    id: str = Field(default="", max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")
    status: CampaignStatus = CampaignStatus.DRAFT


class CampaignList(_Strict):
    campaigns: list[Campaign]
    next_cursor: str | None = _NEXT_CURSOR


# --------------------------------------------------------------------------- keys


class KeyCreate(_Strict):
    role: Role
    name: str = Field(default="", max_length=200, description="a label for people")


class KeyCreated(_Strict):
    id: str
    key: str = Field(description="the secret; shown once, stored only as a hash")
    tenant_id: str
    role: Role
    name: str


# --------------------------------------------------------------------------- health


class Health(_Strict):
    status: Literal["ok"]


class Ready(_Strict):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str]


class ServiceIndex(_Strict):
    """``GET /``: where to go from the root of the service."""

    name: Literal["geopush"]
    version: str
    docs: str = Field(description="human-readable API docs (HTML)")
    openapi: str = Field(description="the OpenAPI 3.1 document")
    health: str
    ready: str
