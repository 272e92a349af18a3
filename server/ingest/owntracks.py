"""OwnTracks in HTTP mode (https://owntracks.org/booklet/tech/http/, .../tech/json/).

The app POSTs each message as one JSON object; the answer is a JSON array of messages
for the app (we send none: ``[]``). Mapping to a ping:

==================  ==========================================================
OwnTracks           ping
==================  ==========================================================
``lat``, ``lon``    ``lat``, ``lng`` (degrees)
``tst``             ``ts`` (epoch seconds of the fix)
``acc``             ``accuracy_m`` (metres)
``alt``             ``altitude_m`` (metres)
``vel``             ``speed_mps`` = ``vel`` / 3.6 (OwnTracks sends km/h)
``cog``             ``heading_deg`` (degrees; a negative course means unknown)
user                ``X-Limit-U`` header, else ``topic`` ``owntracks/<user>/<device>``,
                    else the HTTP Basic user name
device              ``X-Limit-D`` header, else the topic's device part, else ``tid``
==================  ==========================================================

``_type: location`` and ``_type: transition`` (the app's own region event, which
carries where the device was) become pings; our engine decides venue presence itself.
``waypoint(s)``, ``lwt``, ``card``, ``status``, ``steps``, ``beacon`` and the other
types are acknowledged and ignored. ``encrypted`` payloads are refused (422): we hold
no shared secret, and acknowledging them would lose the data silently. A zero-length
body (sent when a friend is deleted) is acknowledged, as the booklet recommends.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server.api.schemas import PingIn
from server.errors import ApiError, field_path, from_validation_error

KMH_PER_MPS = 3.6
LOCATION_TYPES = frozenset({"location", "transition"})
MAX_MESSAGES = 1000


class OwnTracksLocation(BaseModel):
    """The fields of a ``location`` / ``transition`` message we use; the app sends
    more (``batt``, ``conn``, ``SSID``, ``inregions``, ...), which are accepted."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, allow_inf_nan=False)

    type_: Literal["location", "transition"] = Field(alias="_type")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    tst: float = Field(ge=0, lt=1e11, description="epoch seconds of the fix")
    acc: float | None = Field(default=None, ge=0, description="accuracy, metres")
    alt: float | None = Field(default=None, description="altitude, metres")
    vel: float | None = Field(default=None, description="velocity, km/h")
    cog: float | None = Field(default=None, description="course over ground, degrees")
    tid: str | None = Field(default=None, max_length=64)
    topic: str | None = Field(default=None, max_length=512)
    m: int | None = Field(default=None, description="monitoring mode (ignored)")
    event: Literal["enter", "leave"] | None = None
    """``transition`` only."""


def parse_owntracks(
    payload: Any,
    *,
    header_user: str | None,
    header_device: str | None,
    basic_user: str | None,
) -> list[PingIn]:
    """The pings in one OwnTracks HTTP post (``None`` for an empty body). Raises
    :class:`ApiError` (422) naming the OwnTracks field when a location is unusable."""
    if payload is None:
        return []
    messages = payload if isinstance(payload, list) else [payload]
    if len(messages) > MAX_MESSAGES:
        raise ApiError(413, "payload_too_large", f"more than {MAX_MESSAGES} messages")
    pings = []
    for i, message in enumerate(messages):
        prefix: tuple[int | str, ...] = (i,) if isinstance(payload, list) else ()
        if not isinstance(message, dict):
            raise ApiError(422, "validation_error", "an OwnTracks message is a JSON object",
                           field=field_path(prefix))
        kind = message.get("_type")
        if kind == "encrypted":
            raise ApiError(422, "encrypted_not_supported",
                           "encrypted OwnTracks payloads are not supported; turn encryption "
                           "off for this endpoint", field=field_path((*prefix, "_type")))
        if not isinstance(kind, str):
            raise ApiError(422, "validation_error", "_type is missing or not a string",
                           field=field_path((*prefix, "_type")))
        if kind not in LOCATION_TYPES:
            continue
        try:
            location = OwnTracksLocation.model_validate(message)
        except ValidationError as exc:
            raise from_validation_error(exc, prefix) from exc
        pings.append(_to_ping(location, prefix, header_user=header_user,
                              header_device=header_device, basic_user=basic_user))
    return pings


def _to_ping(
    loc: OwnTracksLocation, prefix: tuple[int | str, ...], *, header_user: str | None,
    header_device: str | None, basic_user: str | None,
) -> PingIn:
    topic_user, topic_device = _split_topic(loc.topic)
    user = (header_user or "").strip() or topic_user or (basic_user or "").strip()
    if not user:
        raise ApiError(422, "missing_user",
                       "no user: send the X-Limit-U header (the app's Username setting) or "
                       "a topic owntracks/<user>/<device>", field=field_path((*prefix, "topic")))
    device = (header_device or "").strip() or topic_device or loc.tid
    speed = None if loc.vel is None or loc.vel < 0 else loc.vel / KMH_PER_MPS
    heading = loc.cog if loc.cog is not None and 0 <= loc.cog <= 360 else None
    try:
        return PingIn(user_id=user, ts=loc.tst, lat=loc.lat, lng=loc.lon, accuracy_m=loc.acc,
                      speed_mps=speed, heading_deg=heading, altitude_m=loc.alt,
                      device_id=device)
    except ValidationError as exc:
        # Only values we derived can fail here (a 300-character user name, a
        # 1e7 m altitude); name the OwnTracks field they came from.
        raise from_validation_error(exc, prefix, rename=_OWNTRACKS_NAMES) from exc


_OWNTRACKS_NAMES = {"user_id": "topic", "device_id": "tid", "ts": "tst", "lng": "lon",
                    "accuracy_m": "acc", "altitude_m": "alt", "speed_mps": "vel",
                    "heading_deg": "cog"}


def _split_topic(topic: str | None) -> tuple[str, str]:
    parts = (topic or "").split("/")
    if len(parts) >= 3 and parts[0] == "owntracks" and parts[1]:
        return parts[1], parts[2]
    return "", ""


