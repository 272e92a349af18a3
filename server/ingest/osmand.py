"""The OsmAnd protocol as Traccar Client speaks it (https://www.traccar.org/osmand/).

Two shapes reach ``GET``/``POST /v1/osmand``:

**Parameters** (query string or an ``application/x-www-form-urlencoded`` body; OsmAnd
and Traccar Client before 9):

=====================  =================================================================
parameter              ping
=====================  =================================================================
``id`` / ``deviceid``  ``user_id`` and ``device_id`` (required)
``lat``, ``lon``       ``lat``, ``lng`` (or ``location=lat,lon``)
``timestamp``          ``ts``: epoch seconds, epoch milliseconds (values ≥ 1e11, i.e.
                       after 1973 in ms / year 5138 in s), or ISO-8601 (no offset = UTC,
                       as Traccar reads it); absent = the server's now
``speed``              ``speed_mps`` = ``speed`` × 0.514444: **knots**, Traccar's unit for
                       this protocol (Traccar Client sends knots; OsmAnd's own tracker
                       plugin is configured against Traccar, so the same)
``bearing``/``heading``  ``heading_deg``
``altitude``           ``altitude_m``; ``accuracy`` → ``accuracy_m`` (metres)
``mock``/``is_mock``   ``mock`` (``true``/``1``); ``valid=false`` rejects the fix
``batt``, ``hdop``, …  accepted and ignored (Traccar keeps them as attributes)
=====================  =================================================================

**JSON** (Traccar Client 9+, the background-geolocation SDK's native record)::

    {"device_id": "48241179", "location": {"timestamp": "2000-01-01T00:00:00.000Z",
     "coords": {"latitude": 0, "longitude": 0, "accuracy": 0, "speed": 0,
                "heading": 0, "altitude": 0}, "is_moving": false, "mock": false, ...}}

Here ``coords.speed`` is **m/s** (the SDK's unit, as traccar.org documents), so it is
taken as it is. ``location`` may also be a list (the SDK's batch sync). Negative speed,
heading or accuracy mean "unknown" in that SDK and are read as absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from server.api.schemas import PingIn, RejectedPing
from server.errors import ApiError, from_validation_error

MPS_PER_KNOT = 0.514444
MS_THRESHOLD = 1e11
"""Epoch values at or above this are milliseconds: 1e11 s is the year 5138."""
MAX_LOCATIONS = 1000


def parse_timestamp(value: Any, *, assume_utc: bool = True) -> Any:
    """Epoch seconds from seconds, milliseconds or ISO-8601 (see the module doc)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("must be epoch seconds, epoch milliseconds or ISO-8601")
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ValueError("must be epoch seconds, epoch milliseconds or "
                                 "ISO-8601") from exc
            if parsed.tzinfo is None:
                if not assume_utc:
                    raise ValueError("an ISO-8601 time needs a UTC offset") from None
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.timestamp()
        value = number
    if isinstance(value, int | float):
        return value / 1000.0 if abs(value) >= MS_THRESHOLD else float(value)
    return value


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


Timestamp = Annotated[float | None, BeforeValidator(parse_timestamp)]
OptFloat = Annotated[float | None, BeforeValidator(_blank_is_none)]


class OsmAndParams(BaseModel):
    """The parameters we read; any other parameter is accepted and ignored."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, populate_by_name=True)

    id: str | None = Field(default=None, min_length=1, max_length=256)
    deviceid: str | None = Field(default=None, min_length=1, max_length=256)
    lat: OptFloat = Field(default=None, ge=-90, le=90)
    lon: OptFloat = Field(default=None, ge=-180, le=180)
    location: str | None = Field(default=None, description="lat,lon")
    timestamp: Timestamp = None
    speed: OptFloat = Field(default=None, description="knots")
    bearing: OptFloat = None
    heading: OptFloat = None
    altitude: OptFloat = None
    accuracy: OptFloat = None
    batt: OptFloat = None
    mock: bool = False
    is_mock: bool = False
    valid: bool = True


class Coords(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    accuracy: float | None = None
    speed: float | None = Field(default=None, description="m/s")
    heading: float | None = None
    altitude: float | None = None


class TraccarLocation(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    timestamp: Timestamp = None
    coords: Coords
    is_moving: bool | None = None
    mock: bool = False


class TraccarJson(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    device_id: str = Field(min_length=1, max_length=256)
    location: TraccarLocation | Annotated[list[TraccarLocation], Field(max_length=1000)]


def parse_osmand_params(
    params: Mapping[str, str], *, now: float
) -> tuple[list[PingIn], list[RejectedPing]]:
    """One fix from query/form parameters. Raises 422 naming the parameter."""
    try:
        p = OsmAndParams.model_validate(dict(params))
    except ValidationError as exc:
        raise from_validation_error(exc) from exc
    device = p.id or p.deviceid
    if not device:
        raise ApiError(422, "validation_error", "id (or deviceid) is required", field="id")
    lat, lon = p.lat, p.lon
    if (lat is None or lon is None) and p.location:
        lat, lon = _split_location(p.location)
    for name, value in (("lat", lat), ("lon", lon)):
        if value is None:
            raise ApiError(422, "validation_error", f"{name} is required", field=name)
    if not p.valid:
        return [], [RejectedPing(index=0, code="invalid_fix", field="valid",
                                 message="the device marked this fix invalid")]
    heading = p.bearing if p.bearing is not None else p.heading
    speed = None if p.speed is None else p.speed * MPS_PER_KNOT
    ping = _ping(
        field_names=_PARAM_NAMES, user_id=device, device_id=device,
        ts=now if p.timestamp is None else p.timestamp, lat=lat, lng=lon,
        accuracy_m=p.accuracy, speed_mps=speed, heading_deg=heading, altitude_m=p.altitude,
        mock=p.mock or p.is_mock,
    )
    return [ping], []


def parse_traccar_json(payload: Any, *, now: float) -> list[PingIn]:
    """The fixes of a Traccar Client JSON post. Raises 422 naming the JSON path."""
    try:
        body = TraccarJson.model_validate(payload)
    except ValidationError as exc:
        raise from_validation_error(exc) from exc
    locations = body.location if isinstance(body.location, list) else [body.location]
    if len(locations) > MAX_LOCATIONS:
        raise ApiError(413, "payload_too_large", f"more than {MAX_LOCATIONS} locations",
                       field="location")
    pings = []
    for i, loc in enumerate(locations):
        c = loc.coords
        prefix = f"location[{i}]" if isinstance(body.location, list) else "location"
        pings.append(_ping(
            field_names={k: f"{prefix}.{v}" for k, v in _JSON_NAMES.items()},
            user_id=body.device_id, device_id=body.device_id,
            ts=now if loc.timestamp is None else loc.timestamp,
            lat=c.latitude, lng=c.longitude, accuracy_m=_known(c.accuracy),
            speed_mps=_known(c.speed), heading_deg=_known(c.heading), altitude_m=c.altitude,
            mock=loc.mock,
        ))
    return pings


_PARAM_NAMES = {"user_id": "id", "device_id": "id", "ts": "timestamp", "lng": "lon",
                "accuracy_m": "accuracy", "altitude_m": "altitude", "speed_mps": "speed",
                "heading_deg": "bearing"}
_JSON_NAMES = {"ts": "timestamp", "lat": "coords.latitude", "lng": "coords.longitude",
               "accuracy_m": "coords.accuracy", "altitude_m": "coords.altitude",
               "speed_mps": "coords.speed", "heading_deg": "coords.heading"}


def _ping(*, field_names: Mapping[str, str], **fields: Any) -> PingIn:
    try:
        return PingIn(**fields)
    except ValidationError as exc:
        raise from_validation_error(exc, rename=dict(field_names)) from exc


def _known(value: float | None) -> float | None:
    return None if value is None or value < 0 else value


def _split_location(text: str) -> tuple[float | None, float | None]:
    lat_s, sep, lon_s = text.partition(",")
    try:
        if not sep:
            raise ValueError(text)
        return float(lat_s), float(lon_s)
    except ValueError as exc:
        raise ApiError(422, "validation_error", "location must be 'lat,lon' in degrees",
                       field="location") from exc
